// Small pieces shared by the pages: DOM building (text only, never HTML strings), money and
// dates, status messages, busy buttons and modal dialogs.

export const $ = (id) => document.getElementById(id);

/** An element with attributes (`class`, `data-*`, `aria-*`, properties like `checked`). */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name in node && !name.includes("-")) node[name] = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** An inline SVG icon (decorative: the button around it carries the label). */
export function icon(name) {
  const paths = {
    reactivate:
      "M17.65 6.35A7.958 7.958 0 0 0 12 4a8 8 0 1 0 7.73 10h-2.08A6 6 0 1 1 12 6c1.66 0 3.14.69 4.22 1.78L13 11h7V4l-2.35 2.35z",
  };
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("width", "18");
  svg.setAttribute("height", "18");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", paths[name]);
  path.setAttribute("fill", "currentColor");
  svg.append(path);
  return svg;
}

// ---------------------------------------------------------------- money and dates

const moneyFormats = new Map();

/** Integer minor units to a display amount: 4900 usd is "$49.00". */
export function money(amount, currency = "usd") {
  const code = String(currency || "usd").toUpperCase();
  if (!moneyFormats.has(code)) {
    moneyFormats.set(code, new Intl.NumberFormat("en-US", { style: "currency", currency: code }));
  }
  const format = moneyFormats.get(code);
  const digits = format.resolvedOptions().maximumFractionDigits;
  return format.format(amount / 10 ** digits);
}

const dayFormat = new Intl.DateTimeFormat("en-US", { dateStyle: "medium", timeZone: "UTC" });
const momentFormat = new Intl.DateTimeFormat("en-US", {
  dateStyle: "medium",
  timeStyle: "short",
  timeZone: "UTC",
});

export function day(iso) {
  return iso ? dayFormat.format(new Date(iso)) : "—";
}

export function moment(iso) {
  return iso ? momentFormat.format(new Date(iso)) : "—";
}

/** A <time> showing the day, with the exact instant as its tooltip. */
export function timeEl(iso, withTime = false) {
  if (!iso) return document.createTextNode("—");
  return el("time", { datetime: iso, title: moment(iso) + " UTC" }, withTime ? moment(iso) : day(iso));
}

// ---------------------------------------------------------------- words

export const STATUS_LABELS = {
  active: "Active",
  freeze_pending: "Freeze pending",
  frozen: "Frozen",
  cancel_pending: "Cancel pending",
  suspended: "Suspended",
};

export const ACCOUNT_STATUS_LABELS = {
  active: "Active",
  cancel_pending: "Cancel pending",
  disabled: "Disabled",
};

/** The price catalog's plans (rules/catalog.py: the API charges from it, never from here;
 * tests/unit/test_dashboard_files.py keeps these in step): value, label, monthly fee in cents. */
export const PLANS = [
  ["starter", "Starter", 2900],
  ["standard", "Standard", 4900],
  ["premium", "Premium", 9900],
];

/** The API's cancel reasons (openapi.json CancelReason) and how the dialog words them. */
export const CANCEL_REASONS = [
  ["too_expensive", "It is too expensive"],
  ["missing_features", "It is missing features I need"],
  ["switched_provider", "I switched to another provider"],
  ["no_longer_needed", "I no longer need it"],
  ["technical_issues", "Technical issues"],
  ["other", "Other"],
];

export function plural(n, one, many) {
  return `${n} ${n === 1 ? one : many}`;
}

export function titleCase(word) {
  const text = String(word || "");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

// ---------------------------------------------------------------- feedback

/** A status message for everyone, read out by screen readers (the page's live region). */
let announcement = null;

export function announce(text) {
  const region = $("status");
  region.textContent = "";
  window.clearTimeout(announcement);
  // Written on the next frame, so the same message twice is announced twice.
  window.requestAnimationFrame(() => {
    region.textContent = text;
  });
  announcement = window.setTimeout(() => {
    region.textContent = "";
  }, 15_000);
}

export function showError(node, error) {
  node.textContent = error ? (error.detail || error.message || String(error)) : "";
}

/**
 * A form's text field checked before the form is sent: its value, trimmed; or null when it is
 * empty or invalid, the field then marked invalid, `message` shown in `errorBox` and the focus on
 * the field.
 */
export function checkedValue(field, errorBox, message) {
  const value = field.value.trim();
  if (!value || !field.checkValidity()) {
    field.setAttribute("aria-invalid", "true");
    errorBox.textContent = message;
    field.focus();
    return null;
  }
  field.removeAttribute("aria-invalid");
  return value;
}

/** Runs `work` with `buttons` disabled and marked busy; re-enables them after. */
export async function busy(buttons, work) {
  const list = (Array.isArray(buttons) ? buttons : [buttons]).filter(Boolean);
  const before = list.map((b) => b.disabled);
  list.forEach((b) => {
    b.disabled = true;
    b.setAttribute("aria-busy", "true");
  });
  try {
    return await work();
  } finally {
    list.forEach((b, i) => {
      b.removeAttribute("aria-busy");
      b.disabled = before[i];
    });
  }
}

// ---------------------------------------------------------------- dialogs

/**
 * Opens `dialog` modally. Focus goes to `focus` (or the first field) and, on close however
 * it happens (Escape included), back to the opener; `fallback()` finds another place when the
 * opener has left the page meanwhile (its row was redrawn).
 */
export function openDialog(dialog, { opener, focus, fallback } = {}) {
  const returnTo = opener || document.activeElement;
  const onClose = () => {
    dialog.removeEventListener("close", onClose);
    const usable = (node) => node && node.isConnected && !node.disabled;
    const target = usable(returnTo) ? returnTo : fallback && fallback();
    if (target && typeof target.focus === "function") target.focus();
  };
  dialog.addEventListener("close", onClose);
  dialog.showModal();
  const first = focus || dialog.querySelector("select, input, textarea, button:not([hidden])");
  if (first) first.focus();
}

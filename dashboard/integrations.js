// The "Cancel Integrations" page: the account's integrations, bulk freeze and cancel over the
// selection, the refresh icon that reactivates one (free at once, paid through a quote), and a
// new integration for users with billing access (charged a month up front).

import { ApiError, allPages, api } from "./api.js";
import { askCancelReason, showQuote } from "./dialogs.js";
import { addPaymentMethod, showProblem } from "./payment.js";
import {
  $,
  PLANS,
  STATUS_LABELS,
  announce,
  busy,
  el,
  icon,
  money,
  openDialog,
  plural,
  showError,
  timeEl,
  titleCase,
} from "./ui.js";

const BULK_MAX_IDS = 100; // api.md: 413 over 100 ids
const REACTIVATABLE = new Set(["freeze_pending", "cancel_pending", "frozen", "suspended"]);
const REACTIVATE_HINTS = {
  freeze_pending: "Undo the freeze (free)",
  cancel_pending: "Undo the cancellation (free)",
  frozen: "Unfreeze: pay the prorated difference",
  suspended: "Reactivate: pay one month up front",
};
const SCHEDULED = { freeze: "Freezes", cancel: "Deleted", suspend: "Suspends" };
const SUSPENSION_REASONS = {
  account_cancelled: "Account cancelled",
  non_payment: "Renewal unpaid",
};

const state = {
  items: [],
  loaded: false,
  selected: new Set(),
  errors: new Map(), // integration id -> the problem's detail, shown in its row
  busyRows: new Set(),
  bulkBusy: false,
};
let context = null; // app.js's {account, reloadAll}

export function resetIntegrations() {
  state.items = [];
  state.loaded = false;
  state.selected.clear();
  state.errors.clear();
  state.busyRows.clear();
  showError($("integrations-error"), null);
  showError($("bulk-error"), null);
  $("integrations-body").replaceChildren(placeholder("Loading integrations…"));
  updateToolbar();
}

export function integrationItems() {
  return state.items;
}

export async function loadIntegrations() {
  try {
    state.items = await allPages("/v1/integrations?limit=100");
    state.loaded = true;
    showError($("integrations-error"), null);
  } catch (error) {
    showError($("integrations-error"), error);
    if (!state.loaded) $("integrations-body").replaceChildren(placeholder("The integrations could not be loaded."));
    throw error;
  }
  const present = new Set(state.items.map((i) => i.id));
  for (const id of [...state.selected]) if (!present.has(id)) state.selected.delete(id);
  for (const id of [...state.errors.keys()]) if (!present.has(id)) state.errors.delete(id);
  render();
}

function byId(id) {
  return state.items.find((item) => item.id === id);
}

function replace(updated) {
  const index = state.items.findIndex((item) => item.id === updated.id);
  if (index >= 0) state.items[index] = updated;
  else state.items.push(updated);
}

// ---------------------------------------------------------------- drawing

function placeholder(text) {
  return el("tr", { class: "placeholder" }, el("td", { colspan: 8 }, text));
}

function statusCell(item) {
  const parts = [
    el("span", { class: `badge badge-${item.status}`, "data-status": item.status }, STATUS_LABELS[item.status] || item.status),
  ];
  if (item.billing_state === "past_due") {
    parts.push(" ", el("span", { class: "badge badge-past_due", "data-billing-state": "past_due" }, "Payment past due"));
  }
  const change = item.scheduled_change;
  if (change) {
    parts.push(el("div", { class: "muted small" }, `${SCHEDULED[change.action] || titleCase(change.action)} on `, timeEl(change.effective_at)));
  } else if (item.status === "suspended" && item.suspension_reason) {
    parts.push(el("div", { class: "muted small" }, SUSPENSION_REASONS[item.suspension_reason] || item.suspension_reason));
  }
  return el("td", {}, parts);
}

function row(item) {
  const id = item.id;
  const rowBusy = state.busyRows.has(id);
  const error = state.errors.get(id);
  const errorId = `row-error-${id}`;
  const checkbox = el("input", {
    type: "checkbox",
    id: `select-${id}`,
    class: "row-select",
    checked: state.selected.has(id),
    disabled: rowBusy,
    "data-id": id,
    "data-focus-key": `select:${id}`,
    "aria-describedby": error ? errorId : null,
  });
  const actions = el("td", { class: "col-actions" });
  if (REACTIVATABLE.has(item.status)) {
    const button = el(
      "button",
      {
        type: "button",
        class: "icon-button reactivate",
        "aria-label": `Reactivate ${item.name}`,
        title: REACTIVATE_HINTS[item.status],
        disabled: rowBusy,
        "data-id": id,
        "data-focus-key": `reactivate:${id}`,
      },
      icon("reactivate"),
    );
    if (rowBusy) button.setAttribute("aria-busy", "true");
    actions.append(button);
  }
  const next = item.next_charge;
  return el(
    "tr",
    { "data-id": id, "data-status": item.status, class: error ? "has-error" : null },
    el("td", { class: "col-select" }, checkbox, el("label", { for: checkbox.id, class: "visually-hidden" }, `Select ${item.name}`)),
    el(
      "td",
      { class: "col-name" },
      el("div", { class: "name" }, item.name),
      el("div", { class: "muted small" }, `${item.supplier} → ${item.channel}`),
      error ? el("p", { class: "row-error", id: errorId }, error) : null,
    ),
    el("td", {}, titleCase(item.plan), el("div", { class: "muted small" }, `${money(item.monthly_fee, item.currency)}/month`)),
    statusCell(item),
    el(
      "td",
      {},
      el("span", { class: item.sync_enabled ? "sync sync-on" : "sync sync-off" }, item.sync_enabled ? "Syncing" : "Not syncing"),
    ),
    el("td", {}, item.status === "suspended" ? "—" : timeEl(item.current_period_end)),
    el(
      "td",
      { class: "num" },
      next ? [el("span", { class: "amount" }, money(next.amount, item.currency)), el("div", { class: "muted small" }, "on ", timeEl(next.at))] : el("span", { class: "muted" }, "None"),
    ),
    actions,
  );
}

/** Redraws the table; focus stays on the same control (or its row's checkbox if it is gone). */
function render(focusKey = null) {
  const active = document.activeElement;
  const key = focusKey || (active && active.closest && active.closest("#integrations-body") ? active.dataset.focusKey : null);
  const body = $("integrations-body");
  if (state.items.length === 0) {
    body.replaceChildren(placeholder("No integrations yet. Integrations you add appear here."));
  } else {
    const items = [...state.items].sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
    body.replaceChildren(...items.map(row));
  }
  if (key) {
    const target = body.querySelector(`[data-focus-key="${CSS.escape(key)}"]`) || body.querySelector(`[data-focus-key="select:${CSS.escape(key.split(":")[1] || "")}"]`);
    if (target) target.focus();
  }
  updateToolbar();
  renderNotice();
}

function updateToolbar() {
  const n = state.selected.size;
  const noun = n === 1 ? "Integration" : "Integrations";
  const freeze = $("freeze-selected");
  const cancel = $("cancel-selected");
  freeze.textContent = `Freeze ${n} ${noun}`;
  cancel.textContent = `Cancel ${n} ${noun}`;
  freeze.disabled = cancel.disabled = n === 0 || state.bulkBusy;
  const all = $("select-all");
  const total = state.items.length;
  all.checked = total > 0 && n === total;
  all.indeterminate = n > 0 && n < total;
  all.disabled = total === 0 || state.bulkBusy;
}

function renderNotice() {
  const notice = $("account-notice");
  const account = context && context.account;
  const words = {
    cancel_pending:
      "Your account is cancelled: each integration keeps syncing until its renewal date, then stops. A user with billing access can reactivate the account on the Account page.",
    disabled:
      "Your account is disabled: nothing is synced or charged. A user with billing access can reactivate it on the Account page.",
  };
  const text = account ? words[account.status] : null;
  // A billing user of an account with no card learns it before trying to add an integration.
  const noCard = Boolean(account && account.billing_access && !account.has_payment_method && !text);
  notice.hidden = !text && !noCard;
  notice.replaceChildren();
  if (text) notice.append(text);
  if (noCard) {
    const button = el("button", { type: "button", class: "btn btn-primary", id: "notice-add-payment" }, "Add payment method");
    button.addEventListener("click", () => addPaymentMethod(button).catch((error) => showProblem($("bulk-error"), error)));
    notice.append("Add a payment method to add integrations: each is charged a month up front.", button);
  }
  $("new-integration").hidden = !(account && account.billing_access && account.status !== "cancel_pending");
}

export function refreshNotice() {
  renderNotice();
}

// ---------------------------------------------------------------- bulk freeze and cancel

function selectedIds() {
  return state.items.filter((item) => state.selected.has(item.id)).map((item) => item.id);
}

/** One bulk request per 100 ids; each id's answer lands in its row. */
async function runBulk(action, ids, extra = {}) {
  ids.forEach((id) => state.errors.delete(id));
  showError($("bulk-error"), null);
  const results = [];
  for (let start = 0; start < ids.length; start += BULK_MAX_IDS) {
    const chunk = ids.slice(start, start + BULK_MAX_IDS);
    const answer = await api("POST", "/v1/integrations/bulk", {
      body: { action, ids: chunk, ...extra },
      idempotent: true,
    });
    for (const result of answer.results) {
      results.push(result);
      if (result.ok && result.integration) replace(result.integration);
      else if (!result.ok) state.errors.set(result.id, (result.error && result.error.detail) || "This integration could not be changed.");
    }
  }
  return results;
}

function summarize(results, done, verb) {
  const failed = results.filter((r) => !r.ok).length;
  const ok = results.length - failed;
  const parts = [];
  if (ok) parts.push(`${plural(ok, "integration", "integrations")} ${done(ok === 1)}.`);
  if (failed) parts.push(`${plural(failed, "integration", "integrations")} could not be ${verb}: see the message in ${failed === 1 ? "its row" : "their rows"}.`);
  return parts.join(" ");
}

async function withBulk(ids, work) {
  state.bulkBusy = true;
  ids.forEach((id) => state.busyRows.add(id));
  render();
  try {
    return await work();
  } finally {
    state.bulkBusy = false;
    ids.forEach((id) => state.busyRows.delete(id));
  }
}

async function freezeSelected() {
  const ids = selectedIds();
  if (ids.length === 0) return;
  const button = $("freeze-selected");
  const hadFocus = document.activeElement === button;
  try {
    const results = await withBulk(ids, () => busy(button, () => runBulk("freeze", ids)));
    state.selected.clear();
    announce(summarize(results, (one) => `will freeze at ${one ? "its renewal date" : "their renewal dates"}`, "frozen"));
    context.reloadAccount();
  } catch (error) {
    showError($("bulk-error"), error);
  } finally {
    render();
    // The button is disabled with nothing selected: keep the keyboard user in the table.
    if (hadFocus && button.disabled) $("select-all").focus();
  }
}

function cancelSelected() {
  const ids = selectedIds();
  if (ids.length === 0) return;
  const names = ids.map((id) => byId(id).name);
  const n = ids.length;
  askCancelReason({
    title: `Cancel ${plural(n, "integration", "integrations")}`,
    intro:
      "Cancelled integrations keep syncing until the end of their paid period, then they and all their settings are deleted. Nothing is refunded. Product listings in your store are never removed. We value your feedback: tell us why you are cancelling.",
    names,
    submitLabel: `Cancel ${n} ${n === 1 ? "Integration" : "Integrations"}`,
    dismissLabel: "Keep them",
    opener: $("cancel-selected"),
    fallback: () => $("select-all"),
    submit: async ({ reason, comment }) => {
      try {
        const results = await withBulk(ids, () => runBulk("cancel", ids, { reason, comment }));
        state.selected.clear();
        announce(summarize(results, (one) => (one ? "cancelled: it stops at the end of its paid period" : "cancelled: they stop at the end of their paid periods"), "cancelled"));
        context.reloadAccount();
      } finally {
        render();
      }
    },
  });
}

// ---------------------------------------------------------------- the refresh icon

async function reactivate(id, button) {
  const item = byId(id);
  if (!item || state.busyRows.has(id)) return;
  state.errors.delete(id);
  state.busyRows.add(id);
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  const quotePath = `/v1/integrations/${encodeURIComponent(id)}/reactivation-quote`;
  const reactivatePath = `/v1/integrations/${encodeURIComponent(id)}/reactivate`;
  let quoting = false;
  try {
    const quote = await api("GET", quotePath);
    if (!quote.id || quote.amount === 0) {
      replace(await api("POST", reactivatePath, { body: {}, idempotent: true }));
      announce(`${item.name} is reactivated.`);
      context.reloadAccount();
      return;
    }
    quoting = true;
    const canPay = Boolean(context.account && context.account.billing_access);
    showQuote({
      title: `Reactivate ${item.name}`,
      intro:
        item.status === "frozen"
          ? "Unfreezing starts syncing again now. You pay the difference between the monthly fee and the frozen fee you already paid, prorated to your renewal date."
          : "Reactivating starts syncing again now, with a new monthly period that is paid up front.",
      quote,
      canPay,
      integrations: new Map([[id, item]]),
      opener: button,
      fallback: () => document.querySelector(`[data-focus-key="reactivate:${CSS.escape(id)}"]`) || document.querySelector(`[data-focus-key="select:${CSS.escape(id)}"]`),
      renew: () => api("GET", quotePath),
      pay: async (paid) => {
        try {
          replace(await api("POST", reactivatePath, { body: { quote_id: paid.id }, idempotent: true }));
        } catch (error) {
          if (error instanceof ApiError && error.status === 404) {
            state.items = state.items.filter((i) => i.id !== id); // deleted meanwhile
            render();
          }
          throw error;
        }
        state.errors.delete(id);
        render();
        announce(`${item.name} is reactivated: ${money(paid.amount, paid.currency)} paid.`);
        context.reloadAccount();
      },
    });
  } catch (error) {
    state.errors.set(id, error.detail || String(error));
    announce(`${item.name}: ${error.detail || String(error)}`);
  } finally {
    state.busyRows.delete(id);
    // With the quote open, focus belongs to the dialog; otherwise it stays on this row.
    render(quoting ? null : `reactivate:${id}`);
  }
}

// ---------------------------------------------------------------- a new integration

let creating = false;

function openCreate() {
  const form = $("create-form");
  form.reset();
  for (const field of form.querySelectorAll("input, select")) field.removeAttribute("aria-invalid");
  showError($("create-error"), null);
  openDialog($("create-dialog"), { opener: $("new-integration"), focus: $("create-name") });
}

async function submitCreate(event) {
  event.preventDefault();
  const form = $("create-form");
  const fields = ["create-name", "create-supplier", "create-channel", "create-plan"].map((id) => $(id));
  const missing = fields.filter((field) => !field.value.trim());
  fields.forEach((field) => field.toggleAttribute("aria-invalid", missing.includes(field)));
  if (missing.length) {
    $("create-error").textContent = "Fill in every field.";
    missing[0].focus();
    return;
  }
  const [name, supplier, channel, plan] = fields.map((field) => field.value.trim());
  showError($("create-error"), null);
  creating = true;
  try {
    const created = await busy([$("create-submit"), $("create-dismiss")], () =>
      api("POST", "/v1/integrations", { body: { name, supplier, channel, plan }, idempotent: true }),
    );
    replace(created);
    $("create-dialog").close();
    render();
    announce(`${created.name} is created: ${money(created.monthly_fee, created.currency)} paid for its first month.`);
    context.reloadAccount();
    form.reset();
  } catch (error) {
    // 402 without a card: the problem's own way out, Add payment method, next to its detail.
    showProblem($("create-error"), error);
  } finally {
    creating = false;
  }
}

function setUpCreate() {
  const select = $("create-plan");
  for (const [value, label, fee] of PLANS) select.append(el("option", { value }, `${label}: ${money(fee)} a month`));
  $("new-integration").addEventListener("click", openCreate);
  $("create-dismiss").addEventListener("click", () => $("create-dialog").close());
  $("create-dialog").addEventListener("cancel", (event) => {
    if (creating) event.preventDefault(); // its answer (a charge) must be seen
  });
  $("create-form").addEventListener("submit", submitCreate);
}

// ---------------------------------------------------------------- events

export function setUpIntegrations(app) {
  setUpCreate();
  context = app;
  const body = $("integrations-body");
  body.addEventListener("change", (event) => {
    const box = event.target.closest("input.row-select");
    if (!box) return;
    if (box.checked) state.selected.add(box.dataset.id);
    else state.selected.delete(box.dataset.id);
    updateToolbar();
  });
  body.addEventListener("click", (event) => {
    const button = event.target.closest("button.reactivate");
    if (button && !button.disabled) reactivate(button.dataset.id, button);
  });
  $("select-all").addEventListener("change", (event) => {
    state.selected = event.target.checked ? new Set(state.items.map((i) => i.id)) : new Set();
    body.querySelectorAll("input.row-select").forEach((box) => {
      box.checked = state.selected.has(box.dataset.id);
    });
    updateToolbar();
  });
  $("freeze-selected").addEventListener("click", freezeSelected);
  $("cancel-selected").addEventListener("click", cancelSelected);
}

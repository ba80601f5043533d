// The two dialogs every page uses: the cancellation feedback (a reason is required) and a
// reactivation quote (its lines, the total, and Pay for users with billing access).

import { showProblem } from "./payment.js";
import { $, CANCEL_REASONS, busy, day, el, money, moment, openDialog, showError } from "./ui.js";

// ---------------------------------------------------------------- cancellation feedback

let reasonSubmit = null; // the open dialog's action, or null
let reasonInFlight = false;

function setUpReasonDialog() {
  const select = $("reason-select");
  for (const [value, label] of CANCEL_REASONS) select.append(el("option", { value }, label));
  select.addEventListener("change", () => {
    if (select.value) {
      select.removeAttribute("aria-invalid");
      $("reason-error").textContent = "";
    }
  });
  $("reason-dismiss").addEventListener("click", () => $("reason-dialog").close());
  // Escape while the request is out would hide its answer: the dialog stays until it is back.
  $("reason-dialog").addEventListener("cancel", (event) => {
    if (reasonInFlight) event.preventDefault();
  });
  $("reason-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const reason = select.value;
    if (!reason) {
      select.setAttribute("aria-invalid", "true");
      $("reason-error").textContent = "Choose a reason to cancel. Your feedback helps us improve.";
      select.focus();
      return;
    }
    const comment = $("reason-comment").value.trim() || null;
    showError($("reason-error"), null);
    reasonInFlight = true;
    try {
      await busy([$("reason-submit"), $("reason-dismiss")], () => reasonSubmit({ reason, comment }));
      $("reason-dialog").close();
    } catch (error) {
      showError($("reason-error"), error);
    } finally {
      reasonInFlight = false;
    }
  });
}

/**
 * Asks why before cancelling. `submit({reason, comment})` sends the request; what it throws
 * is shown in the dialog, which stays open; once it resolves the dialog closes.
 */
export function askCancelReason({ title, intro, names = [], submitLabel, dismissLabel, opener, fallback, submit }) {
  $("reason-title").textContent = title;
  $("reason-intro").textContent = intro;
  const list = $("reason-names");
  list.replaceChildren(...names.map((name) => el("li", {}, name)));
  list.hidden = names.length === 0;
  $("reason-select").value = "";
  $("reason-select").removeAttribute("aria-invalid");
  $("reason-comment").value = "";
  $("reason-error").textContent = "";
  $("reason-submit").textContent = submitLabel;
  $("reason-dismiss").textContent = dismissLabel;
  reasonSubmit = submit;
  openDialog($("reason-dialog"), { opener, fallback, focus: $("reason-select") });
}

// ---------------------------------------------------------------- quotes

let quoteState = null; // {quote, pay, renew, canPay}

function setUpQuoteDialog() {
  const dialog = $("quote-dialog");
  $("quote-close").addEventListener("click", () => dialog.close());
  dialog.addEventListener("cancel", (event) => {
    if (quoteState && quoteState.inFlight) event.preventDefault();
  });
  $("quote-pay").addEventListener("click", async () => {
    const state = quoteState;
    showError($("quote-error"), null);
    state.inFlight = true;
    try {
      await busy([$("quote-pay"), $("quote-close"), $("quote-renew")], () => state.pay(state.quote));
      dialog.close();
    } catch (error) {
      // A 402 for want of a card comes with its way out: Add payment method.
      showProblem($("quote-error"), error);
      // A quote that expired or went stale cannot be paid: offer a fresh one instead.
      const stale = error.code === "quote_expired" || error.code === "quote_stale";
      $("quote-renew").hidden = !stale;
      $("quote-pay").hidden = stale;
      if (stale) $("quote-renew").focus();
    } finally {
      state.inFlight = false;
    }
  });
  $("quote-renew").addEventListener("click", async () => {
    const state = quoteState;
    showError($("quote-error"), null);
    try {
      const quote = await busy([$("quote-renew"), $("quote-close")], () => state.renew());
      fillQuote(quote, state);
      $("quote-pay").focus();
    } catch (error) {
      showError($("quote-error"), error);
    }
  });
}

function proration(line, integration) {
  // An unfreeze covers the rest of the current period: say how much of it is charged.
  if (!integration || integration.status !== "frozen") return null;
  const full = Date.parse(integration.current_period_end) - Date.parse(integration.current_period_start);
  const covered = Date.parse(line.period_end) - Date.parse(line.period_start);
  if (!(full > 0) || covered >= full) return null;
  const monthly = Math.max(integration.monthly_fee - integration.frozen_fee, 0);
  const days = (ms) => Math.round((ms / 86_400_000) * 10) / 10;
  return (
    `Prorated: ${days(covered)} of ${days(full)} days of ${money(monthly, integration.currency)}` +
    ` (${money(integration.monthly_fee, integration.currency)} monthly less` +
    ` ${money(integration.frozen_fee, integration.currency)} frozen fee)`
  );
}

function fillQuote(quote, state) {
  state.quote = quote;
  const currency = quote.currency;
  $("quote-lines").replaceChildren(
    ...quote.lines.map((line) => {
      const detail = proration(line, state.integrations && state.integrations.get(line.integration_id));
      return el(
        "tr",
        { "data-integration-id": line.integration_id },
        el("td", {}, line.description, detail ? el("div", { class: "muted small" }, detail) : null),
        el("td", {}, `${day(line.period_start)} – ${day(line.period_end)}`),
        el("td", { class: "num" }, money(line.amount, currency)),
      );
    }),
  );
  $("quote-total").textContent = money(quote.amount, currency);
  $("quote-expiry").textContent = quote.expires_at
    ? `Charged to your payment method on file. This quote is valid until ${moment(quote.expires_at)} UTC.`
    : "";
  $("quote-pay").textContent = `Pay ${money(quote.amount, currency)}`;
  $("quote-pay").hidden = !state.canPay;
  $("quote-renew").hidden = true;
  $("quote-member-note").hidden = state.canPay;
}

/**
 * Shows `quote`. Users with billing access get Pay (`pay(quote)`, whose error is shown in the
 * dialog); members see the amounts and a note. `renew()` fetches a fresh quote.
 */
export function showQuote({ title, intro, quote, canPay, integrations, pay, renew, opener, fallback }) {
  quoteState = { quote, canPay, integrations, pay, renew, inFlight: false };
  $("quote-title").textContent = title;
  $("quote-intro").textContent = intro;
  showError($("quote-error"), null);
  fillQuote(quote, quoteState);
  openDialog($("quote-dialog"), {
    opener,
    fallback,
    focus: canPay ? $("quote-pay") : $("quote-close"),
  });
}

export function setUpDialogs() {
  setUpReasonDialog();
  setUpQuoteDialog();
}

// The Account page: status, next renewal, upcoming charges and the charges ledger; for users
// with billing access, cancel or reactivate the account, add or manage the payment method, and
// the account's users (users.js).

import { api, download } from "./api.js";
import { askCancelReason, showQuote } from "./dialogs.js";
import { addPaymentMethod, showProblem } from "./payment.js";
import { $, ACCOUNT_STATUS_LABELS, STATUS_LABELS, announce, busy, el, money, showError, timeEl } from "./ui.js";
import { loadUsers, resetUsers, setUpUsers } from "./users.js";

const UPCOMING_DAYS = 31;
const CHARGES_PAGE = 25;
const CHARGE_STATUS = {
  pending: "Pending",
  succeeded: "Paid",
  failed: "Failed",
  written_off: "Written off",
  refunded: "Refunded",
};

let context = null; // app.js's {account, reloadAll, ...}
let chargesCursor = null;

export function resetAccount() {
  chargesCursor = null;
  for (const id of ["account-error", "account-billing-error", "upcoming-error", "charges-error"]) showError($(id), null);
  for (const id of ["account-status", "account-renewal", "account-counts", "account-payment"]) $(id).textContent = "…";
  $("upcoming-body").replaceChildren();
  $("upcoming-total").textContent = "…";
  $("charges-body").replaceChildren();
  $("account-billing").hidden = true;
  $("account-member-note").hidden = true;
  $("charges-block").hidden = true;
  $("users-block").hidden = true;
  resetUsers();
}

/** GET /v1/account: the summary both pages use (status, billing access). */
export async function loadAccount() {
  try {
    context.account = await api("GET", "/v1/account");
    showError($("account-error"), null);
  } catch (error) {
    showError($("account-error"), error);
    throw error;
  }
  renderSummary();
}

export async function loadAccountDetails() {
  const jobs = [loadUpcoming()];
  if (context.account && context.account.billing_access) jobs.push(loadCharges(true), loadUsers());
  const results = await Promise.allSettled(jobs);
  const failed = results.find((r) => r.status === "rejected");
  if (failed) throw failed.reason;
}

// ---------------------------------------------------------------- drawing

function counts(account) {
  const parts = Object.entries(account.counts || {})
    .filter(([, n]) => n > 0)
    .map(([status, n]) => `${n} ${(STATUS_LABELS[status] || status).toLowerCase()}`);
  return parts.length ? parts.join(", ") : "None";
}

function renderSummary() {
  const account = context.account;
  const status = $("account-status");
  status.replaceChildren(
    el("span", { class: `badge badge-account-${account.status}`, "data-status": account.status }, ACCOUNT_STATUS_LABELS[account.status] || account.status),
  );
  $("account-renewal").replaceChildren(timeEl(account.next_renewal_at));
  $("account-counts").textContent = counts(account);
  $("account-payment").textContent = account.has_payment_method ? "Card on file" : "None on file";

  const billing = Boolean(account.billing_access);
  $("account-billing").hidden = !billing;
  $("account-member-note").hidden = billing;
  $("charges-block").hidden = !billing;
  $("users-block").hidden = !billing;
  // Without a card: Add payment method (Stripe Checkout). With one: Stripe's portal manages it,
  // and Checkout replaces it.
  $("add-payment").textContent = account.has_payment_method ? "Replace card" : "Add payment method";
  $("add-payment").classList.toggle("btn-primary", !account.has_payment_method);
  $("manage-payment").hidden = !account.has_payment_method;
  $("account-cancel").hidden = account.status !== "active";
  $("account-reactivate").hidden = !["cancel_pending", "disabled"].includes(account.status);
  const words = {
    active: "Cancelling the account stops every integration at its own renewal date. Nothing is refunded, and you can still sign in and come back.",
    cancel_pending: "The account is cancelled: each integration stops at its renewal date. Reactivating now is free and keeps everything as it was.",
    disabled: "The account is disabled. Reactivating it resumes its integrations with a new month, paid up front.",
  };
  $("account-billing-text").textContent = words[account.status] || "";
}

async function loadUpcoming() {
  try {
    const answer = await api("GET", `/v1/account/upcoming-charges?days=${UPCOMING_DAYS}`);
    showError($("upcoming-error"), null);
    const currency = (context.account && context.account.currency) || "usd";
    const names = context.integrationNames();
    $("upcoming-body").replaceChildren(
      ...(answer.items.length
        ? answer.items.map((item) =>
            el(
              "tr",
              { "data-integration-id": item.integration_id },
              el("td", {}, timeEl(item.at)),
              el("td", {}, item.description || names.get(item.integration_id) || item.integration_id),
              el("td", { class: "num" }, money(item.amount, currency)),
            ),
          )
        : [el("tr", { class: "placeholder" }, el("td", { colspan: 3 }, `Nothing will be charged in the next ${UPCOMING_DAYS} days.`))]),
    );
    $("upcoming-total").textContent = money(answer.total, currency);
  } catch (error) {
    showError($("upcoming-error"), error);
    throw error;
  }
}

function receiptButton(charge) {
  const button = el(
    "button",
    { type: "button", class: "btn btn-quiet", "data-receipt": charge.id, title: `Download receipt ${charge.receipt_number} (PDF)` },
    charge.receipt_number,
  );
  button.addEventListener("click", () => busy(button, () => openReceipt(charge.id)).catch(() => {}));
  return button;
}

/**
 * Download a charge's receipt (PDF): fetched with the token (a plain link cannot carry it), then
 * saved from a blob URL. The emails' receipt links (`#receipt/<id>`) land here too.
 */
export async function openReceipt(chargeId) {
  try {
    const { blob, filename } = await download(`/v1/account/charges/${encodeURIComponent(chargeId)}/receipt`, "application/pdf");
    const url = URL.createObjectURL(blob);
    const link = el("a", { href: url, download: filename, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
    showError($("charges-error"), null);
    announce(`Receipt downloaded: ${filename}.`);
  } catch (error) {
    showError($("charges-error"), error);
    announce(error.detail || "The receipt could not be downloaded.");
    throw error;
  }
}

async function loadCharges(first) {
  try {
    const cursor = first ? null : chargesCursor;
    const query = `limit=${CHARGES_PAGE}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
    const page = await api("GET", `/v1/account/charges?${query}`);
    showError($("charges-error"), null);
    const rows = page.items.map((charge) =>
      el(
        "tr",
        { "data-charge-id": charge.id },
        el("td", {}, timeEl(charge.created_at, true)),
        el("td", {}, charge.description),
        el("td", {}, el("span", { class: `badge badge-charge-${charge.status}`, "data-status": charge.status }, CHARGE_STATUS[charge.status] || charge.status)),
        el("td", { class: "num" }, money(charge.amount, charge.currency)),
        el("td", {}, charge.receipt_number ? receiptButton(charge) : ""),
      ),
    );
    if (first) {
      $("charges-body").replaceChildren(
        ...(rows.length ? rows : [el("tr", { class: "placeholder" }, el("td", { colspan: 5 }, "No charges yet."))]),
      );
    } else {
      $("charges-body").append(...rows);
    }
    chargesCursor = page.next_cursor || null;
    $("charges-more").hidden = !chargesCursor;
  } catch (error) {
    showError($("charges-error"), error);
    throw error;
  }
}

// ---------------------------------------------------------------- billing actions

function cancelAccount() {
  askCancelReason({
    title: "Cancel your account",
    intro:
      "Each integration keeps syncing until its own renewal date, then stops; its settings are kept. Nothing is refunded. You can still sign in, and reactivate the account later. We value your feedback: tell us why you are cancelling.",
    submitLabel: "Cancel account",
    dismissLabel: "Keep my account",
    opener: $("account-cancel"),
    fallback: () => $("account-reactivate"),
    submit: async ({ reason, comment }) => {
      await api("POST", "/v1/account/cancel", { body: { reason, comment }, idempotent: true });
      await context.reloadAll();
      announce("Your account is cancelled. Each integration stops at its renewal date.");
    },
  });
}

async function reactivateAccount() {
  const button = $("account-reactivate");
  showError($("account-billing-error"), null);
  try {
    await busy(button, async () => {
      const quote = await api("GET", "/v1/account/reactivation-quote");
      if (!quote.id || quote.amount === 0) {
        await api("POST", "/v1/account/reactivate", { body: {}, idempotent: true });
        await context.reloadAll();
        announce("Your account is active again.");
        return;
      }
      showQuote({
        title: "Reactivate your account",
        intro: "Reactivating resumes these integrations now, each with a new month paid up front.",
        quote,
        canPay: true,
        integrations: context.integrationsById(),
        opener: button,
        fallback: () => $("manage-payment"),
        renew: () => api("GET", "/v1/account/reactivation-quote"),
        pay: async (paid) => {
          await api("POST", "/v1/account/reactivate", { body: { quote_id: paid.id }, idempotent: true });
          await context.reloadAll();
          announce(`Your account is active again: ${money(paid.amount, paid.currency)} paid.`);
        },
      });
    });
  } catch (error) {
    showProblem($("account-billing-error"), error);
  }
}

async function startCheckout() {
  showError($("account-billing-error"), null);
  try {
    await addPaymentMethod($("add-payment"));
  } catch (error) {
    showError($("account-billing-error"), error);
  }
}

async function managePaymentMethod() {
  const button = $("manage-payment");
  showError($("account-billing-error"), null);
  try {
    const returnUrl = `${window.location.origin}${window.location.pathname}#/account`;
    const portal = await busy(button, () =>
      api("POST", "/v1/account/billing-portal", { body: { return_url: returnUrl }, idempotent: true }),
    );
    if (!/^https?:\/\//.test(portal.url)) throw new Error("The billing portal answered with an unusable address.");
    window.location.assign(portal.url);
  } catch (error) {
    showError($("account-billing-error"), error);
  }
}

export function setUpAccount(app) {
  context = app;
  $("account-cancel").addEventListener("click", cancelAccount);
  $("account-reactivate").addEventListener("click", reactivateAccount);
  $("manage-payment").addEventListener("click", managePaymentMethod);
  $("add-payment").addEventListener("click", startCheckout);
  setUpUsers();
  $("charges-more").addEventListener("click", () => busy($("charges-more"), () => loadCharges(false)).catch(() => {}));
}

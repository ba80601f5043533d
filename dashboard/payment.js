// Adding a payment method: a Stripe Checkout page (setup mode) the API opens for a billing user,
// which sends the browser back to the Account page once the card is saved. A problem that says
// a payment method is required (402, `payment_method_required`) offers the same button.

import { api } from "./api.js";
import { busy, el } from "./ui.js";

/** Opens Stripe Checkout for this account; the browser comes back to the Account page. */
export async function addPaymentMethod(button) {
  const returnUrl = `${window.location.origin}${window.location.pathname}#/account`;
  const session = await busy(button, () =>
    api("POST", "/v1/account/payment-method", { body: { return_url: returnUrl }, idempotent: true }),
  );
  if (!session || !/^https?:\/\//.test(session.url)) {
    throw new Error("The payment page answered with an unusable address.");
  }
  window.location.assign(session.url);
}

/** Shows `error` in `node` (its detail), with an "Add payment method" button when the problem
 * says one is needed; the button's own failure is shown in its place. */
export function showProblem(node, error) {
  node.replaceChildren();
  if (!error) return;
  node.append(error.detail || error.message || String(error));
  const problem = error.problem || {};
  if (!problem.payment_method_required) return;
  const button = el("button", { type: "button", class: "btn btn-primary btn-inline" }, "Add payment method");
  button.addEventListener("click", () =>
    addPaymentMethod(button).catch((failure) => {
      node.replaceChildren(failure.detail || failure.message || String(failure));
    }),
  );
  node.append(" ", button);
}

// The dashboard's entry point: sign-in (the local stack's user picker or Cognito's hosted UI),
// the two pages behind hash routes, and the refresh of everything.

import {
  AUTH_MODE,
  completeCognitoSignIn,
  currentSession,
  signInLocally,
  signInWithCognito,
  signOut,
  signOutOfCognito,
  signUpLocally,
  signUpWithCognito,
  whenUnauthorized,
} from "./api.js";
import { loadAccount, loadAccountDetails, openReceipt, resetAccount, setUpAccount } from "./account.js";
import { setUpDialogs } from "./dialogs.js";
import { integrationItems, loadIntegrations, refreshNotice, resetIntegrations, setUpIntegrations } from "./integrations.js";
import { $, announce, busy, checkedValue, showError } from "./ui.js";

const ROUTES = {
  integrations: { view: "integrations-view", title: "Cancel Integrations" },
  account: { view: "account-view", title: "Account" },
};

const app = {
  session: null,
  account: null,
  reloadAll,
  // After a change on the integrations page: the summary, upcoming charges and charges move too.
  reloadAccount: () =>
    loadAccount()
      .then(refreshNotice)
      .then(loadAccountDetails)
      .catch(() => {}), // each part shows its own error
  integrationNames: () => new Map(integrationItems().map((i) => [i.id, i.name])),
  integrationsById: () => new Map(integrationItems().map((i) => [i.id, i])),
};

// The emails' receipt links: `#receipt/<charge id>` opens the Account page and downloads it.
const RECEIPT_ROUTE = /^#\/?receipt\/(ch_[0-9A-Za-z_]{1,61})$/;
const PENDING_RECEIPT = "pendingReceipt";

function routeName() {
  const name = window.location.hash.replace(/^#\/?/, "");
  if (RECEIPT_ROUTE.test(window.location.hash)) return "account";
  return name in ROUTES ? name : "integrations";
}

/** A receipt link followed before signing in is kept for the tab and opened after it. */
function rememberReceiptLink() {
  const found = RECEIPT_ROUTE.exec(window.location.hash);
  if (found) sessionStorage.setItem(PENDING_RECEIPT, found[1]);
}

function openPendingReceipt() {
  rememberReceiptLink();
  const chargeId = sessionStorage.getItem(PENDING_RECEIPT);
  if (!chargeId) return;
  sessionStorage.removeItem(PENDING_RECEIPT);
  history.replaceState(null, "", "#account");
  showRoute({ focus: false });
  openReceipt(chargeId).catch(() => {}); // the charges block shows why
}

function showView(id) {
  for (const view of document.querySelectorAll("main > .view")) view.hidden = view.id !== id;
}

function showRoute({ focus }) {
  const name = routeName();
  const route = ROUTES[name];
  showView(route.view);
  document.title = `${route.title} · Supplier Feeds`;
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.dataset.route === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  // A page change moves focus to its heading, so screen readers read where they are.
  if (focus) $(`${name}-title`).focus();
}

// ---------------------------------------------------------------- loading

async function reloadAll() {
  const results = await Promise.allSettled([
    loadAccount().then(refreshNotice),
    loadIntegrations(),
  ]);
  if (results[0].status === "fulfilled") {
    await loadAccountDetails().catch(() => {}); // each table shows its own error
  }
}

// ---------------------------------------------------------------- sign-in

function showSignIn(message = "") {
  app.session = null;
  app.account = null;
  $("nav").hidden = true;
  $("session").hidden = true;
  showView("signin-view");
  document.title = "Sign in · Supplier Feeds";
  const local = AUTH_MODE === "local";
  for (const part of document.querySelectorAll("[data-auth='local']")) part.hidden = !local;
  $("signin-intro").textContent = local
    ? "Local stack: pick an account and the kind of user to sign in as. The token is kept for this tab only."
    : "Sign in with your account's user name and password.";
  $("signin-submit").textContent = local ? "Sign in" : "Continue to sign-in";
  $("signin-error").textContent = message;
  $("signup-intro").textContent = local
    ? "Sign up as a new merchant: a free account opens, with you as its billing user (the stack runs the real sign-up trigger)."
    : "New here? Create an account: choose a password and confirm your email address. Your free account opens with you as its billing user.";
  $("signup-submit").textContent = local ? "New account" : "Create an account";
  $("signup-error").textContent = "";
  $(local ? "signin-account" : "signin-submit").focus();
}

function start(session) {
  app.session = session;
  app.account = null;
  resetIntegrations();
  resetAccount();
  const role = session.billing ? "Billing user" : "Member";
  $("who").textContent = [session.email, session.accountId, role].filter(Boolean).join(" · ");
  $("who").title = `Signed in as ${session.user || session.email}`;
  $("switch-user").textContent = AUTH_MODE === "local" ? "Switch user" : "Sign out";
  $("nav").hidden = false;
  $("session").hidden = false;
  showRoute({ focus: true });
  reloadAll();
  openPendingReceipt();
}

/**
 * The first steps of the sign-in and sign-up forms (`form` names their elements): where the
 * dashboard is deployed with Cognito, its hosted pages (null); locally, the form's field
 * `fieldId`, trimmed, once it is valid (null until then).
 */
async function localFormValue(event, form, hostedUi, fieldId, message) {
  event.preventDefault();
  const errorBox = $(`${form}-error`);
  showError(errorBox, null);
  if (AUTH_MODE !== "local") {
    try {
      await hostedUi();
    } catch (error) {
      showError(errorBox, error);
    }
    return null;
  }
  return checkedValue($(fieldId), errorBox, message);
}

/** The session `open` answers started and `welcome(session)` announced; an error shown on `form`. */
async function startSession(form, open, welcome) {
  try {
    const session = await busy($(`${form}-submit`), open);
    start(session);
    announce(welcome(session));
  } catch (error) {
    showError($(`${form}-error`), error);
  }
}

async function submitSignIn(event) {
  const accountId = await localFormValue(
    event,
    "signin",
    signInWithCognito,
    "signin-account",
    "Enter an account id: 1 to 64 letters, digits, '_' or '-'.",
  );
  if (accountId === null) return;
  const billing = document.querySelector("input[name='role']:checked").value === "billing";
  await startSession(
    "signin",
    () => signInLocally(accountId, billing),
    (session) => `Signed in to ${session.accountId} as a ${billing ? "billing user" : "member"}.`,
  );
}

async function submitSignUp(event) {
  const email = await localFormValue(event, "signup", signUpWithCognito, "signup-email", "Enter your email address.");
  if (email === null) return;
  await startSession(
    "signup",
    () => signUpLocally(email),
    (session) => `Your account ${session.accountId} is open. Add a payment method to add integrations.`,
  );
}

function switchUser() {
  const accountId = app.session && app.session.accountId;
  if (AUTH_MODE === "cognito" && signOutOfCognito()) return;
  signOut();
  if (accountId) $("signin-account").value = accountId;
  showSignIn();
  announce("Signed out.");
}

// ---------------------------------------------------------------- boot

async function boot() {
  setUpDialogs();
  setUpIntegrations(app);
  setUpAccount(app);
  $("signin-form").addEventListener("submit", submitSignIn);
  $("signup-form").addEventListener("submit", submitSignUp);
  $("switch-user").addEventListener("click", switchUser);
  $("refresh-all").addEventListener("click", () =>
    busy($("refresh-all"), async () => {
      await reloadAll();
      announce("Refreshed.");
    }),
  );
  window.addEventListener("hashchange", () => {
    rememberReceiptLink();
    if (!app.session) return;
    if (RECEIPT_ROUTE.test(window.location.hash)) {
      openPendingReceipt();
      return;
    }
    showRoute({ focus: true });
    // Charges may have moved since they were loaded (a renewal, another user): read them again.
    if (routeName() === "account" && app.account) loadAccountDetails().catch(() => {});
  });
  whenUnauthorized(() => showSignIn("Your session has ended. Sign in again."));
  // A bug of ours must still end in words on the page, never in silence.
  window.addEventListener("unhandledrejection", (event) => {
    const reason = event.reason || {};
    announce(reason.detail || "Something went wrong. Refresh the page and try again.");
  });

  rememberReceiptLink();
  let failure = "";
  if (AUTH_MODE === "cognito") {
    try {
      await completeCognitoSignIn();
    } catch (error) {
      failure = error.detail || String(error);
    }
  }
  const session = currentSession();
  if (session) start(session);
  else showSignIn(failure);
}

boot();

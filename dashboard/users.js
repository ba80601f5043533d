// The Users section of the Account page, for users with billing access (the Extensiv article:
// billing access is managed by the account's own users): who the users are, an invitation by
// email (Cognito mails a temporary password), billing access granted or revoked, removal. The
// API keeps one billing user at least; its problem's detail is shown as it is.

import { api } from "./api.js";
import { $, announce, busy, checkedValue, el, openDialog, showError, timeEl } from "./ui.js";

const STATUS = { invited: "Invited", active: "Active" };

let users = [];
let pendingRemoval = null; // the user the confirmation dialog is about

export function resetUsers() {
  users = [];
  $("users-body").replaceChildren();
  showError($("users-error"), null);
  showError($("invite-error"), null);
}

export async function loadUsers() {
  try {
    users = (await api("GET", "/v1/account/users")).items;
    showError($("users-error"), null);
  } catch (error) {
    showError($("users-error"), error);
    throw error;
  }
  render();
}

function render(focusKey = null) {
  const body = $("users-body");
  body.replaceChildren(
    ...users.map((user) => {
      const toggle = el(
        "button",
        {
          type: "button",
          class: "btn btn-quiet",
          "data-action": "billing",
          "data-id": user.id,
          "data-focus-key": `billing:${user.id}`,
        },
        user.billing_access ? "Revoke billing access" : "Grant billing access",
      );
      const remove = el(
        "button",
        {
          type: "button",
          class: "btn btn-danger-outline",
          "data-action": "remove",
          "data-id": user.id,
          "data-focus-key": `remove:${user.id}`,
          "aria-label": `Remove ${user.email}`,
        },
        "Remove",
      );
      return el(
        "tr",
        { "data-user-id": user.id },
        el("td", {}, user.email),
        el("td", {}, el("span", { class: `badge badge-user-${user.status}` }, STATUS[user.status] || user.status)),
        el("td", { "data-billing": String(user.billing_access) }, user.billing_access ? "Yes" : "No"),
        el("td", {}, timeEl(user.created_at)),
        el("td", { class: "col-actions wide" }, toggle, " ", remove),
      );
    }),
  );
  if (focusKey) {
    const target = body.querySelector(`[data-focus-key="${CSS.escape(focusKey)}"]`);
    if (target) target.focus();
  }
}

function replace(updated) {
  users = users.map((user) => (user.id === updated.id ? updated : user));
}

async function toggleBilling(user, button) {
  showError($("users-error"), null);
  const granting = !user.billing_access;
  try {
    const updated = await busy(button, () =>
      api("PUT", `/v1/account/users/${encodeURIComponent(user.id)}`, {
        body: { billing_access: granting },
        idempotent: true,
      }),
    );
    replace(updated);
    render(`billing:${user.id}`);
    announce(
      granting
        ? `${user.email} has billing access: it shows at their next sign-in.`
        : `${user.email} no longer has billing access from their next sign-in.`,
    );
  } catch (error) {
    showError($("users-error"), error);
  }
}

function askRemoval(user, button) {
  pendingRemoval = user;
  $("remove-user-text").textContent =
    `${user.email} can no longer sign in, and is signed out everywhere within the hour. Their changes stay in the history.`;
  showError($("remove-user-error"), null);
  openDialog($("remove-user-dialog"), {
    opener: button,
    fallback: () => $("invite-email"),
    focus: $("remove-user-keep"),
  });
}

async function confirmRemoval() {
  const user = pendingRemoval;
  if (!user) return;
  showError($("remove-user-error"), null);
  try {
    await busy([$("remove-user-confirm"), $("remove-user-keep")], () =>
      api("DELETE", `/v1/account/users/${encodeURIComponent(user.id)}`, { idempotent: true }),
    );
    users = users.filter((u) => u.id !== user.id);
    $("remove-user-dialog").close();
    render();
    announce(`${user.email} is removed from the account.`);
  } catch (error) {
    showError($("remove-user-error"), error);
  }
}

async function invite(event) {
  event.preventDefault();
  const field = $("invite-email");
  showError($("invite-error"), null);
  const email = checkedValue(field, $("invite-error"), "Enter the email address of the person to invite.");
  if (email === null) return;
  const billing = $("invite-billing").checked;
  try {
    const invited = await busy($("invite-submit"), () =>
      api("POST", "/v1/account/users", { body: { email, billing_access: billing }, idempotent: true }),
    );
    users.push(invited);
    render();
    field.value = "";
    $("invite-billing").checked = false;
    announce(`${invited.email} is invited: they get an email with a temporary password.`);
  } catch (error) {
    showError($("invite-error"), error);
  }
}

export function setUpUsers() {
  $("users-body").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button || button.disabled) return;
    const user = users.find((u) => u.id === button.dataset.id);
    if (!user) return;
    if (button.dataset.action === "billing") toggleBilling(user, button);
    else askRemoval(user, button);
  });
  $("invite-form").addEventListener("submit", invite);
  $("remove-user-keep").addEventListener("click", () => $("remove-user-dialog").close());
  $("remove-user-confirm").addEventListener("click", confirmRemoval);
}

"""Sign-up: a person whose email address is confirmed opens a free account and is its first
user, with billing access (lifecycle.md, "Accounts and users"; api.md, "Sign-up").

The same use case runs in Cognito's post-confirmation trigger (`functions/post_confirmation`)
and on the local stack (`POST /_local/signup`). Cognito may invoke the trigger twice, or twice at
once: the account is opened in one transaction with the user's login, written only if absent,
so a retry finds the account the first run opened and finishes the directory's part (the
account attribute, the billing group), which is idempotent.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from lifecycle.ids import new_id
from lifecycle.observability import logger, record_events
from lifecycle.rules.errors import Conflict
from lifecycle.rules.users import open_account
from lifecycle.store.repository import LoginTaken
from lifecycle.usecases.services import Services

CONFIRM_SIGN_UP = "PostConfirmation_ConfirmSignUp"
ACCOUNT_ATTRIBUTE = "custom:account_id"
_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class SignedUp:
    account_id: str
    user_id: str
    opened: bool  # False: a retry, the account was opened before


def sign_up(
    services: Services,
    username: str,
    email: str,
    *,
    account_id: str | None = None,
) -> SignedUp:
    """Open the account of a confirmed sign-up (or find the one a first run opened), then set
    the user's `custom:account_id` and billing group. `account_id` is for the local stack's
    fixed demo account; production always gets a new id."""
    store = services.store
    opened = False
    found = store.login(username)
    for attempt in range(_ATTEMPTS):
        if found is not None:
            break
        opening = open_account(
            account_id or new_id("acc"),
            new_id("usr"),
            username,
            email,
            services.clock.now(),
            services.catalog.currency,
        )
        try:
            store.open_account(opening)
        except LoginTaken:
            found = store.login(username)  # another run of the trigger opened it
        except Conflict:
            if account_id is not None and store.get_account(account_id) is not None:
                raise  # the chosen id is another account's
            # A run at the same moment holds the login: wait for it, then read it.
            time.sleep(0.05 * (attempt + 1))
            found = store.login(username)
        else:
            opened = True
            found = (opening.account.id, opening.user.id)
            record_events(opening.events)
    if found is None:
        raise Conflict("The sign-up could not be completed. Retry.")
    account, user_id = found
    services.directory.set_account(username, account)
    services.directory.set_billing_access(username, True)
    logger.info("sign-up", extra={"account_id": account, "user_id": user_id, "opened": opened})
    return SignedUp(account_id=account, user_id=user_id, opened=opened)


def on_confirmation(services: Services, event: Mapping[str, Any]) -> str:
    """Cognito's post-confirmation event: a confirmed self sign-up opens its account. Anything
    else is left alone: a confirmed password reset (`PostConfirmation_ConfirmForgotPassword`),
    and a user who belongs to an account already (an invited user, whose account came with
    the invitation; Cognito does not run this trigger for them, but an administrator's
    AdminConfirmSignUp could). Returns what was done (for logs and tests)."""
    if event.get("triggerSource") != CONFIRM_SIGN_UP:
        return "ignored"
    username = event.get("userName")
    request = event.get("request")
    attributes = request.get("userAttributes") if isinstance(request, Mapping) else None
    if not isinstance(username, str) or not username or not isinstance(attributes, Mapping):
        raise ValueError("not a Cognito post-confirmation event")
    email = attributes.get("email")
    if not isinstance(email, str) or not email:
        raise ValueError("the confirmed user has no email address")
    if attributes.get(ACCOUNT_ATTRIBUTE) and services.store.login(username) is None:
        return "already_in_an_account"
    pool = event.get("userPoolId")
    if isinstance(pool, str) and pool:  # the event's pool is the one to update
        services = replace(services, directory=services.directory.in_pool(pool))
    signed_up = sign_up(services, username, email)
    return "opened" if signed_up.opened else "already_opened"

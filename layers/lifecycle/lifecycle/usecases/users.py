"""Users and billing access, managed by the account's own billing users (the Extensiv article):
list, invite, grant or revoke billing access, remove. The table decides (conditional writes,
the count of billing users); the directory (Cognito) follows, and every directory call is
made again by a retry of the same request, so a change half made is finished, never lost.

Also the recipients port of the notifications: who the users (or billing users) of an account
are, with their email addresses.
"""

from __future__ import annotations

from collections.abc import Callable

from lifecycle.directory.port import InvalidEmail, UserAlreadyExists
from lifecycle.ids import is_issued, new_id
from lifecycle.observability import record_events
from lifecycle.rules.calendar import format_instant
from lifecycle.rules.errors import (
    Conflict,
    LastBillingUser,
    NotFound,
    UserExists,
    ValidationFailed,
)
from lifecycle.rules.users import (
    LAST_BILLING_USER,
    User,
    UserChange,
    UserStatus,
    invite,
    remove,
    set_billing_access,
)
from lifecycle.store.repository import LoginTaken, NoBillingUserLeft
from lifecycle.usecases.caller import Caller
from lifecycle.usecases.services import Services
from lifecycle.usecases.views import UserPage, UserView

_ATTEMPTS = 5
_NOT_FOUND = "There is no such user in this account."
_OTHER_ACCOUNT = (
    "This email address belongs to a user of another account, and a user belongs to one account"
    " only: invite another address."
)


def recipients(services: Services, account_id: str, billing_only: bool) -> list[tuple[str, str]]:
    """(user id, email address) of the account's users, only those with billing access when
    `billing_only`: whom the notifier mails (notifications.md, Recipients). Removed users are
    never among them."""
    return [
        (user.id, user.email)
        for user in services.store.list_users(account_id)
        if user.status is not UserStatus.REMOVED and (user.billing_access or not billing_only)
    ]


def list_users(services: Services, caller: Caller) -> UserPage:
    """Every user of the caller's account (any user may see who the others are)."""
    found = services.store.list_users(caller.account_id)
    users = [u for u in found if u.status is not UserStatus.REMOVED]
    return UserPage(items=[_view(u, _status(services, u)) for u in users])


def invite_user(services: Services, caller: Caller, email: str, billing_access: bool) -> UserView:
    """Invite `email` into the caller's account: the directory creates the user with the
    account's id and sends its invitation; then the table adds the user. An address that is a
    user already is a 409 (of another account: a user belongs to one account only)."""
    caller.require_billing()
    email = email.strip().lower()
    account = services.store.get_account(caller.account_id)
    if account is None:
        raise NotFound("This account does not exist.")
    try:
        username = services.directory.create_user(email=email, account_id=account.id)
    except InvalidEmail:
        raise ValidationFailed(
            "The email address is not one the directory accepts.",
            errors=[{"loc": ["body", "email"], "msg": "not a valid address", "type": "email"}],
        ) from None
    except UserAlreadyExists as exists:
        username = _half_made_invitation(services, account.id, exists)
    change = invite(
        new_id("usr"),
        account.id,
        username,
        email,
        billing_access,
        services.clock.now(),
        caller.actor,
    )
    try:
        services.store.save_user_change(change)
    except LoginTaken:
        raise _already_here(services, username) from None
    if billing_access:
        services.directory.set_billing_access(username, True)
    record_events(change.events)
    return _view(change.after)


def _half_made_invitation(services: Services, account_id: str, exists: UserAlreadyExists) -> str:
    """The username to finish an invitation with: the directory has this account's user and
    the table has not (the request died in between). Anything else is a 409."""
    existing = exists.existing
    if existing.account_id != account_id:
        raise UserExists(_OTHER_ACCOUNT)
    if services.store.login(existing.username) is not None:
        raise _already_here(services, existing.username)
    if not existing.enabled:
        raise UserExists("This email address belonged to a user removed from this account.")
    return existing.username


def _already_here(services: Services, username: str) -> UserExists:
    login = services.store.login(username)
    user_id = login[1] if login else None
    user = services.store.get_user(login[0], user_id) if login and user_id else None
    if user is not None and user.status is UserStatus.REMOVED:
        return UserExists("This email address belonged to a user removed from this account.")
    return UserExists("This email address is a user of this account already.", user_id=user_id)


def update_user(services: Services, caller: Caller, user_id: str, billing_access: bool) -> UserView:
    """Grant or revoke a user's billing access. Revoking the last billing user's is 409
    `last_billing_user`, also when two billing users revoke each other at the same moment."""
    caller.require_billing()
    subject = _user(services, caller, user_id)
    change = _decided(
        services,
        subject,
        lambda user, count: set_billing_access(
            user, billing_access, count, services.clock.now(), caller.actor
        ),
    )
    # Also when nothing changed in the table: a retry finishes a change half made.
    services.directory.set_billing_access(change.after.username, billing_access)
    return _view(change.after)


def remove_user(services: Services, caller: Caller, user_id: str) -> None:
    """Remove a user: its billing access goes, the directory disables it and signs it out
    everywhere (its ID tokens expire within the hour). The last billing user stays: 409."""
    caller.require_billing()
    subject = _user(services, caller, user_id, removed=True)
    change = _decided(
        services,
        subject,
        lambda user, count: remove(user, count, services.clock.now(), caller.actor),
    )
    services.directory.set_billing_access(change.after.username, False)
    services.directory.disable(change.after.username)


def _decided(
    services: Services, subject: User, decide: Callable[[User, int], UserChange]
) -> UserChange:
    """Decide and save a change of `subject`, again from what is stored after a lost race."""
    store = services.store
    for _ in range(_ATTEMPTS):
        change = decide(subject, store.billing_users(subject.account_id))
        try:
            store.save_user_change(change)
        except NoBillingUserLeft:
            raise LastBillingUser(LAST_BILLING_USER, user_id=subject.id) from None
        except Conflict:
            fresh = store.get_user(subject.account_id, subject.id)
            if fresh is None:
                raise NotFound(_NOT_FOUND) from None
            subject = fresh
            continue
        record_events(change.events)
        return change
    raise Conflict("The users of this account kept changing. Retry.")


def _user(services: Services, caller: Caller, user_id: str, *, removed: bool = False) -> User:
    """A user of the caller's account; 404 for an id of another form, another account's user,
    or (unless `removed`) a removed one."""
    if not is_issued(user_id, "usr"):
        raise NotFound(_NOT_FOUND)
    found = services.store.get_user(caller.account_id, user_id)
    if found is None or (found.status is UserStatus.REMOVED and not removed):
        raise NotFound(_NOT_FOUND)
    return found


def _status(services: Services, user: User) -> UserStatus:
    """An invited user is active once the directory has them confirmed (their first sign-in
    set their password): asked only while the table says invited."""
    if user.status is not UserStatus.INVITED:
        return user.status
    found = services.directory.get_user(user.username)
    return UserStatus.ACTIVE if found is not None and found.confirmed else UserStatus.INVITED


def _view(user: User, status: UserStatus | None = None) -> UserView:
    return UserView(
        id=user.id,
        email=user.email,
        billing_access=user.billing_access,
        status=(status or user.status).value,
        created_at=format_instant(user.created_at),
    )

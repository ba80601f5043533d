"""An account's users and billing access: sign-up opens an account with its first billing user;
billing users invite, grant or revoke billing access and remove users; an account never loses
its last billing user (lifecycle.md, "Accounts and users")."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from lifecycle.rules.calendar import normalize
from lifecycle.rules.effects import history_entry
from lifecycle.rules.errors import LastBillingUser
from lifecycle.rules.model import (
    Account,
    AccountStatus,
    Actor,
    DetailType,
    DomainEvent,
    HistoryEntry,
    user,
)

LAST_BILLING_USER = (
    "An account keeps at least one user with billing access: give another user billing access"
    " first."
)


class UserStatus(StrEnum):
    INVITED = "invited"  # created by an invitation; has not signed in yet
    ACTIVE = "active"  # signed up, or signed in since the invitation
    # Removed: no longer listed, counted or mailed; kept so that a removal half made (the
    # directory not told yet) is finished by the same request again.
    REMOVED = "removed"


@dataclass(frozen=True, slots=True)
class User:
    """A user of one account. `id` is the API's (`usr_...`); `username` is the directory's
    (Cognito's, the JWT's `sub`), never shown in a path."""

    id: str
    account_id: str
    username: str
    email: str
    billing_access: bool
    status: UserStatus
    created_at: datetime
    version: int = 1


@dataclass(frozen=True, slots=True)
class UserChange:
    """The outcome of a users action. `before` None: a new user.
    `billing_delta` is what the change does to the account's count of billing users: the store
    applies a -1 only while the count stays above zero, so two demotions at once cannot both
    pass."""

    before: User | None
    after: User
    billing_delta: int = 0
    events: tuple[DomainEvent, ...] = ()
    activity: tuple[HistoryEntry, ...] = ()
    noop: bool = False


@dataclass(frozen=True, slots=True)
class Opening:
    """A sign-up: the new free account and its first user, with billing access."""

    account: Account
    user: User
    events: tuple[DomainEvent, ...]
    activity: tuple[HistoryEntry, ...]


def open_account(
    account_id: str,
    user_id: str,
    username: str,
    email: str,
    now: datetime,
    currency: str = "usd",
) -> Opening:
    """The account a confirmed sign-up opens: active, no integration, no payment method (so
    never charged), its first user the person who signed up, with billing access."""
    now = normalize(now)
    account = Account(
        id=account_id,
        status=AccountStatus.ACTIVE,
        created_at=now,
        currency=currency,
        status_changed_at=now,
        version=1,
    )
    first = User(
        id=user_id,
        account_id=account_id,
        username=username,
        email=email,
        billing_access=True,
        status=UserStatus.ACTIVE,
        created_at=now,
    )
    actor = user(username)
    return Opening(
        account=account,
        user=first,
        events=(
            DomainEvent(
                detail_type=DetailType.ACCOUNT_CREATED,
                account_id=account_id,
                at=now,
                data={"user_id": user_id},
            ),
        ),
        activity=(history_entry(DetailType.ACCOUNT_CREATED, actor, now, {"user_id": user_id}),),
    )


def invite(
    user_id: str,
    account_id: str,
    username: str,
    email: str,
    billing_access: bool,
    now: datetime,
    actor: Actor,
) -> UserChange:
    """A user invited by a billing user (the directory sends the invitation)."""
    now = normalize(now)
    invited = User(
        id=user_id,
        account_id=account_id,
        username=username,
        email=email,
        billing_access=billing_access,
        status=UserStatus.INVITED,
        created_at=now,
    )
    details = {"user_id": user_id, "billing_access": billing_access}
    return UserChange(
        before=None,
        after=invited,
        billing_delta=1 if billing_access else 0,
        events=(
            DomainEvent(
                detail_type=DetailType.USER_INVITED, account_id=account_id, at=now, data=details
            ),
        ),
        activity=(history_entry(DetailType.USER_INVITED, actor, now, details),),
    )


def set_billing_access(
    subject: User, billing_access: bool, billing_users: int, now: datetime, actor: Actor
) -> UserChange:
    """Grant or revoke billing access; revoking the last billing user's is refused."""
    if subject.status is UserStatus.REMOVED:
        raise ValueError("a removed user has no billing access to change")
    if subject.billing_access == billing_access:
        return UserChange(before=subject, after=subject, noop=True)
    if not billing_access and billing_users <= 1:
        raise LastBillingUser(LAST_BILLING_USER, user_id=subject.id)
    now = normalize(now)
    after = replace(subject, billing_access=billing_access, version=subject.version + 1)
    kind = "billing_access_granted" if billing_access else "billing_access_revoked"
    return UserChange(
        before=subject,
        after=after,
        billing_delta=1 if billing_access else -1,
        activity=(history_entry(kind, actor, now, {"user_id": subject.id}),),
    )


def remove(subject: User, billing_users: int, now: datetime, actor: Actor) -> UserChange:
    """Remove a user from the account (billing access goes with it); removing the last billing
    user is refused. Removing a removed user again changes nothing."""
    if subject.status is UserStatus.REMOVED:
        return UserChange(before=subject, after=subject, noop=True)
    if subject.billing_access and billing_users <= 1:
        raise LastBillingUser(LAST_BILLING_USER, user_id=subject.id)
    now = normalize(now)
    after = replace(
        subject, status=UserStatus.REMOVED, billing_access=False, version=subject.version + 1
    )
    return UserChange(
        before=subject,
        after=after,
        billing_delta=-1 if subject.billing_access else 0,
        activity=(history_entry("user_removed", actor, now, {"user_id": subject.id}),),
    )

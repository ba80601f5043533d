"""The user directory port: what the users use cases need from an identity provider's admin API
(Cognito's user pool), and nothing more. Every call is idempotent: doing it twice is doing it
once, so a retried request heals a change half made."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

BILLING_GROUP = "billing"


@dataclass(frozen=True, slots=True)
class DirectoryUser:
    """A user as the directory knows it. `username` is the directory's id (Cognito's sub, in a
    pool whose users sign in with their email); `account_id` is `custom:account_id`."""

    username: str
    email: str | None
    account_id: str | None
    enabled: bool
    confirmed: bool


class UserAlreadyExists(Exception):
    """The email address is a user of the directory already: `existing` is that user."""

    def __init__(self, existing: DirectoryUser) -> None:
        super().__init__("the email address is a user already")
        self.existing = existing


class InvalidEmail(ValueError):
    """The directory refuses the address."""


class DirectoryUnavailable(Exception):
    """The directory could not be reached or is throttling; the caller may retry later."""


class Directory(Protocol):
    def in_pool(self, user_pool_id: str) -> Directory:
        """The same directory on the pool a trigger's event names: the sign-up trigger cannot
        be configured with its pool (the pool names the trigger; IAM allows that pool only)."""
        ...

    def create_user(self, *, email: str, account_id: str) -> str:
        """Create a user of `account_id` and have the directory send its invitation (a
        temporary password); the new username. Raises UserAlreadyExists, InvalidEmail."""
        ...

    def get_user(self, username: str) -> DirectoryUser | None:
        """The user with this username (or email address), if any."""
        ...

    def set_account(self, username: str, account_id: str) -> None:
        """Set the user's `custom:account_id` (a sign-up, once its account is open)."""
        ...

    def set_billing_access(self, username: str, billing_access: bool) -> None:
        """Put the user in the `billing` group, or take it out."""
        ...

    def disable(self, username: str) -> None:
        """Stop the user from signing in, and revoke its refresh tokens (its ID tokens expire
        within the hour)."""
        ...

    def groups(self, username: str) -> frozenset[str]:
        """The user's groups (what Cognito puts in `cognito:groups`)."""
        ...

"""An in-memory user directory that records what was asked of it (tests, no network)."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field, replace

from lifecycle.directory.port import (
    BILLING_GROUP,
    DirectoryUnavailable,
    DirectoryUser,
    InvalidEmail,
    UserAlreadyExists,
)


@dataclass
class FakeDirectory:
    """Users by username, groups by username, invitations sent; `unavailable` fails every call."""

    users: dict[str, DirectoryUser] = field(default_factory=dict)
    members: dict[str, set[str]] = field(default_factory=dict)
    invitations: list[str] = field(default_factory=list)  # usernames invited
    signed_out: list[str] = field(default_factory=list)
    unavailable: bool = False
    pools: set[str] = field(default_factory=set)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def sign_up(self, email: str) -> str:
        """A confirmed self sign-up, as Cognito has it before the post-confirmation trigger."""
        with self._lock:
            if self._by_email(email):
                raise UserAlreadyExists(self._by_email(email))  # type: ignore[arg-type]
            username = str(uuid.uuid4())
            self.users[username] = DirectoryUser(username, email, None, True, True)
            return username

    def in_pool(self, user_pool_id: str) -> FakeDirectory:
        self.pools.add(user_pool_id)
        return self

    def create_user(self, *, email: str, account_id: str) -> str:
        with self._lock:
            self._check()
            if "@" not in email:
                raise InvalidEmail("Invalid email address format.")
            existing = self._by_email(email)
            if existing is not None:
                raise UserAlreadyExists(existing)
            username = str(uuid.uuid4())
            self.users[username] = DirectoryUser(username, email, account_id, True, False)
            self.invitations.append(username)
            return username

    def get_user(self, username: str) -> DirectoryUser | None:
        with self._lock:
            self._check()
            return self.users.get(username) or self._by_email(username)

    def set_account(self, username: str, account_id: str) -> None:
        with self._lock:
            self._check()
            self.users[username] = replace(self.users[username], account_id=account_id)

    def set_billing_access(self, username: str, billing_access: bool) -> None:
        with self._lock:
            self._check()
            groups = self.members.setdefault(username, set())
            if billing_access:
                groups.add(BILLING_GROUP)
            else:
                groups.discard(BILLING_GROUP)

    def disable(self, username: str) -> None:
        with self._lock:
            self._check()
            self.users[username] = replace(self.users[username], enabled=False)
            self.signed_out.append(username)

    def groups(self, username: str) -> frozenset[str]:
        with self._lock:
            return frozenset(self.members.get(username, set()))

    def _by_email(self, email: str) -> DirectoryUser | None:
        wanted = email.lower()
        return next((u for u in self.users.values() if (u.email or "").lower() == wanted), None)

    def _check(self) -> None:
        if self.unavailable:
            raise DirectoryUnavailable("the fake directory is unavailable")

"""The store's users: a sign-up's transaction, an account's users, logins, the billing count.

A login (the directory's username, Cognito's `sub`) names the one account its user belongs to,
written once, in the transaction that adds the user: a retried sign-up finds the account it
opened, and a user can never be added to a second account. `USERS` counts the account's users
with billing access; a change that takes one away applies only while the count stays above
zero, so concurrent demotions never leave an account without a billing user.
"""

from __future__ import annotations

from typing import Any

from lifecycle.rules.errors import Conflict
from lifecycle.rules.users import Opening, User, UserChange
from lifecycle.store import items, keys
from lifecycle.store.table import CHANGED, Table, condition_failed


class NoBillingUserLeft(Conflict):
    """The change would take the account's last user with billing access away."""


class LoginTaken(Conflict):
    """The login belongs to an account already (a sign-up retried, a user invited twice)."""


class Users(Table):
    """An account's users and logins."""

    def open_account(self, opening: Opening) -> None:
        """A sign-up, all or nothing: the account, its first user (billing access, counted),
        the user's login and id, the activity line and the outbox events. `LoginTaken` when
        the login has an account already (the sign-up was retried: read it back)."""
        account, first = opening.account, opening.user
        pk = keys.account_pk(account.id)
        login = self._login_put(first)
        actions = [
            login,
            self._put(
                {**keys.key(pk, keys.ACCOUNT_SK), **items.account_attributes(account)},
                "attribute_not_exists(PK)",
            ),
            self._put(
                {
                    **keys.key(pk, keys.USERS_SK),
                    "type": items.s("billing_users"),
                    "billing_users": items.n(1 if first.billing_access else 0),
                },
                "attribute_not_exists(PK)",
            ),
            self._put({**keys.key(pk, keys.user_sk(first.id)), **items.user_attributes(first)}),
            self._user_id_put(first),
            *self._activity_puts(pk, f"{first.id}.{first.version}", opening.activity),
            *self._event_actions(pk, f"{account.id}:{account.version}", opening.events),
        ]
        try:
            self._transact(actions)
        except Conflict as conflict:
            if condition_failed(conflict, 0):
                raise LoginTaken(CHANGED) from conflict
            raise

    def login(self, username: str) -> tuple[str, str] | None:
        """(account id, user id) of a directory login, if it belongs to an account."""
        item = self._get(keys.login_key(username))
        if item is None:
            return None
        return items.req_s(item, "account_id"), items.req_s(item, "user_id")

    def user_account(self, user_id: str) -> str | None:
        """The account a user id belongs to (None: unknown)."""
        item = self._get(keys.user_id_key(user_id))
        return items.req_s(item, "account_id") if item else None

    def get_user(self, account_id: str, user_id: str) -> User | None:
        item = self._get(keys.key(keys.account_pk(account_id), keys.user_sk(user_id)))
        return items.user_from(item) if item else None

    def list_users(self, account_id: str) -> list[User]:
        """The account's users, oldest first (user ids are time-ordered), removed ones too."""
        return [
            items.user_from(item)
            for item in self._query_prefix(keys.account_pk(account_id), keys.USER_PREFIX)
        ]

    def billing_users(self, account_id: str) -> int:
        """How many of the account's users have billing access."""
        item = self._get(keys.key(keys.account_pk(account_id), keys.USERS_SK))
        return items.get_n(item, "billing_users") if item else 0

    def save_user_change(self, change: UserChange) -> None:
        """Apply a users change in one transaction: the user conditioned on the version it was
        decided from (a new one on its login being free: `LoginTaken`), the billing count
        moved with it (`NoBillingUserLeft` when it would reach zero), activity and events.
        Any other change in between is a `Conflict`."""
        if change.noop:
            return
        subject = change.after
        pk = keys.account_pk(subject.account_id)
        user_key = keys.key(pk, keys.user_sk(subject.id))
        actions: list[dict[str, Any]] = []
        if change.before is None:
            actions += [
                self._login_put(subject),
                self._put(
                    {**user_key, **items.user_attributes(subject)}, "attribute_not_exists(PK)"
                ),
                self._user_id_put(subject),
            ]
        else:
            actions.append(
                self._put(
                    {**user_key, **items.user_attributes(subject)},
                    "version = :expected",
                    {":expected": items.n(change.before.version)},
                )
            )
        count_at = len(actions)
        if change.billing_delta > 0:
            actions.append(
                {
                    "Update": {
                        "TableName": self.table_name,
                        "Key": keys.key(pk, keys.USERS_SK),
                        "UpdateExpression": "SET #type = :type ADD billing_users :delta",
                        "ExpressionAttributeNames": {"#type": "type"},
                        "ExpressionAttributeValues": {
                            ":type": items.s("billing_users"),
                            ":delta": items.n(change.billing_delta),
                        },
                    }
                }
            )
        elif change.billing_delta < 0:
            actions.append(
                {
                    "Update": {
                        "TableName": self.table_name,
                        "Key": keys.key(pk, keys.USERS_SK),
                        "UpdateExpression": "SET billing_users = billing_users - :delta",
                        "ConditionExpression": "billing_users > :delta",
                        "ExpressionAttributeValues": {":delta": items.n(-change.billing_delta)},
                    }
                }
            )
        actions += self._activity_puts(pk, f"{subject.id}.{subject.version}", change.activity)
        actions += self._event_actions(pk, f"{subject.id}:{subject.version}", change.events)
        try:
            self._transact(actions)
        except Conflict as conflict:
            if change.billing_delta < 0 and condition_failed(conflict, count_at):
                raise NoBillingUserLeft(CHANGED) from conflict
            if change.before is None and condition_failed(conflict, 0):
                raise LoginTaken(CHANGED) from conflict
            raise

    def _login_put(self, user: User) -> dict[str, Any]:
        return self._put(
            {
                **keys.login_key(user.username),
                "type": items.s("login"),
                "account_id": items.s(user.account_id),
                "user_id": items.s(user.id),
            },
            "attribute_not_exists(PK)",
        )

    def _user_id_put(self, user: User) -> dict[str, Any]:
        return self._put(
            {
                **keys.user_id_key(user.id),
                "type": items.s("user_id"),
                "account_id": items.s(user.account_id),
            },
            "attribute_not_exists(PK)",
        )

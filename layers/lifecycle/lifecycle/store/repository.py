"""The DynamoDB repository: every key, every read and every conditional write of the table.

Single-table design (partition = the account, so a tenant's data is one query away and
another tenant's is never addressable):

| item         | PK                 | SK                                  |
| ------------ | ------------------ | ----------------------------------- |
| account      | ACCOUNT#{account}  | ACCOUNT                             |
| integration  | ACCOUNT#{account}  | ACCOUNT#INTEGRATION#{integration}   |
| settings     | ACCOUNT#{account}  | SETTINGS#{integration}              |
| history line | ACCOUNT#{account}  | HISTORY#{integration}#{at}#{seq}    |
| activity     | ACCOUNT#{account}  | ACTIVITY#{at}#{seq}                 |
| quote        | ACCOUNT#{account}  | QUOTE#{quote}                       |
| outbox event | ACCOUNT#{account}  | OUTBOX#{event id}                   |
| ledger line  | ACCOUNT#{account}  | CHARGE#{ledger key}                 |
| replaced one | ACCOUNT#{account}  | CHARGE#superseded:{charge id}       |
| charge ref   | ACCOUNT#{account}  | CHARGEREF#{quote id}                |
| user         | ACCOUNT#{account}  | USER#{user id}                      |
| billing count| ACCOUNT#{account}  | USERS                               |
| login        | LOGIN#{username}   | LOGIN                               |
| user id      | USERID#{user id}   | USERID                              |
| receipts     | ACCOUNT#{account}  | RECEIPTS (the receipt counter)      |
| reminder due | ACCOUNT#{account}  | REMINDER#{integration}              |
| reminded     | ACCOUNT#{account}  | REMINDED#{integration}#{period end} |
| email sent   | ACCOUNT#{account}  | EMAIL#{event id}#{user}             |

A login (the directory's username, Cognito's `sub`) names the one account its user belongs to,
written once, in the transaction that adds the user: a retried sign-up finds the account it
opened, and a user can never be added to a second account. `USERS` counts the account's users
with billing access; a change that takes one away applies only while the count stays above
zero, so concurrent demotions never leave an account without a billing user.

Integrations sort right after their account (`ACCOUNT` < `ACCOUNT#INTEGRATION#...`), so the
first page of a list reads the account and the integrations in one query.

A ledger line is keyed by the thing it bought (its ledger key): the line is its own guard, so
the write before the provider is called is one conditional PutItem (`attribute_not_exists`),
and a second attempt at the same thing finds the line with one GetItem. A line refunded and
bought again moves to `CHARGE#superseded:{id}` as the new line takes the key (one transaction,
conditional on the old line being still there as read). The ledger index (GSI `LedgerIndex`,
KEYS_ONLY, `GSI2SK` = the line's time-ordered id) lists an account's lines newest first and
finds a line by its id alone.

The due index (GSI `DueIndex`, KEYS_ONLY) is sparse and write-sharded: an integration carries
`GSI1PK = DUE#{renewal|deletion}#{shard}` and `GSI1SK = {due at}#{integration}` only while a
sweep has something to do with it, so a sweep reads what is due and nothing else. A sweep that
hands an entry to the worker leases it: its position moves to the end of the lease (one
conditional UpdateItem on the position read), so no other run sends it while it is in flight;
the worker's decision rewrites the item, and with it the position.

Every state change is one `TransactWriteItems`: the new state conditioned on the version it was
read at, its history lines and its outbox events. A lost race is a domain `Conflict`.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from lifecycle import aws
from lifecycle.rules.calendar import format_instant, parse_instant
from lifecycle.rules.errors import Conflict
from lifecycle.rules.ledger import ChargeRecord
from lifecycle.rules.model import (
    Account,
    AccountDecision,
    Decision,
    DomainEvent,
    HistoryEntry,
    Integration,
    Status,
)
from lifecycle.rules.quotes import Quote
from lifecycle.rules.renewal import DueKind, due_entry, reminder_at
from lifecycle.rules.users import Opening, User, UserChange
from lifecycle.store import items
from lifecycle.store.items import Item

DUE_INDEX = "DueIndex"
LEDGER_INDEX = "LedgerIndex"
DUE_SHARDS = 16
OUTBOX_RETENTION = timedelta(days=7)
QUOTE_RETENTION = timedelta(days=1)
WEBHOOK_EVENT_RETENTION = timedelta(days=35)
# A reminder marker outlives the period it is for (an un-cancel and a new cancel in the same
# period find it); an email's sent marker outlives every redelivery (Lambda retries for 6
# hours, a dead-letter redrive within the DLQ's 14 days).
REMINDED_RETENTION = timedelta(days=35)
EMAIL_RETENTION = timedelta(days=35)
RECEIPTS_SK = "RECEIPTS"
TRANSACTION_LIMIT = 100
# Leases a sweep takes side by side: one batch of messages (SendMessageBatch's 10).
LEASE_THREADS = 10


def account_pk(account_id: str) -> str:
    return f"ACCOUNT#{account_id}"


ACCOUNT_SK = "ACCOUNT"


INTEGRATION_PREFIX = "ACCOUNT#INTEGRATION#"


def integration_sk(integration_id: str) -> str:
    return f"{INTEGRATION_PREFIX}{integration_id}"


def settings_sk(integration_id: str) -> str:
    return f"SETTINGS#{integration_id}"


def history_prefix(integration_id: str) -> str:
    return f"HISTORY#{integration_id}#"


CHARGE_PREFIX = "CHARGE#"
SUPERSEDED_PREFIX = f"{CHARGE_PREFIX}superseded:"


def charge_sk(ledger_key: str) -> str:
    """The ledger line that holds the thing bought: the line and its guard in one item."""
    return f"{CHARGE_PREFIX}{ledger_key}"


def superseded_charge_sk(charge_id: str) -> str:
    """Where a line is kept once a newer line bought the same thing again (ledger keys all
    start with their kind, `create:`, `renewal:`..., never `superseded:`)."""
    return f"{SUPERSEDED_PREFIX}{charge_id}"


def line_sk(record: ChargeRecord) -> str:
    return superseded_charge_sk(record.id) if record.superseded_by else charge_sk(record.ledger_key)


def charge_ref_sk(request_ref: str) -> str:
    return f"CHARGEREF#{request_ref}"


USER_PREFIX = "USER#"
# The account's count of users with billing access (`billing_users`).
USERS_SK = "USERS"


def user_sk(user_id: str) -> str:
    return f"{USER_PREFIX}{user_id}"


def login_key(username: str) -> Item:
    """Which account (and user) a directory login belongs to: one item per login, ever."""
    return _key(f"LOGIN#{username}", "LOGIN")


def user_id_key(user_id: str) -> Item:
    """Which account a user id belongs to (the local stack's token route reads it)."""
    return _key(f"USERID#{user_id}", "USERID")


def purge_sk(integration_id: str) -> str:
    return f"PURGE#{integration_id}"


def quote_sk(quote_id: str) -> str:
    return f"QUOTE#{quote_id}"


def reminder_sk(integration_id: str) -> str:
    return f"REMINDER#{integration_id}"


def reminded_sk(integration_id: str, period_end: datetime) -> str:
    return f"REMINDED#{integration_id}#{format_instant(period_end)}"


def email_sk(event_id: str, user_id: str) -> str:
    return f"EMAIL#{event_id}#{user_id}"


def due_shard(integration_id: str) -> int:
    """A stable shard for the due index (crc32, not `hash()`, which changes per process)."""
    return zlib.crc32(integration_id.encode()) % DUE_SHARDS


def due_partition(kind: DueKind, shard: int) -> str:
    return f"DUE#{kind.value}#{shard:02d}"


def _key(pk: str, sk: str) -> Item:
    return {"PK": items.s(pk), "SK": items.s(sk)}


ACCOUNT_SUBJECT = "account"


@dataclass(frozen=True, slots=True)
class Expect:
    """What a write requires of an account (`subject` "account") or one of its integrations
    (`subject` its id): a version, a status, or both (a DynamoDB ConditionCheck)."""

    subject: str
    version: int | None = None
    status: str | None = None


class GuardTaken(Conflict):
    """The thing bought already has a ledger line (another request, or an earlier attempt)."""


class SubjectChanged(Conflict):
    """The account or integration is no longer as expected (the quote is stale)."""


class NoBillingUserLeft(Conflict):
    """The change would take the account's last user with billing access away."""


class LoginTaken(Conflict):
    """The login belongs to an account already (a sign-up retried, a user invited twice)."""


class Reminded(NamedTuple):
    """What became of a deletion reminder: `sent` (its event is in the outbox), or `already`
    (one was sent for this period before: an un-cancel and a new cancel)."""

    sent: bool


@dataclass(frozen=True, slots=True)
class EmailClaim:
    """The marker of one email (an event, a recipient): `claimed` by a sender until
    `lease_until` (wall-clock epoch seconds), or `sent`."""

    state: str
    token: str
    lease_until: int


@dataclass(frozen=True, slots=True)
class DueKey:
    """An item a sweep must look at, as the index showed it (re-read it before acting): the
    integration (or, for the reconciler, the charge) it is about, and where it sits in the
    index, `due_at` and the item's own sort key `sk`, which a lease is conditioned on."""

    account_id: str
    integration_id: str
    due_at: str
    sk: str = ""

    @property
    def subject(self) -> str:
        return self.integration_id

    @property
    def position(self) -> str:
        return f"{self.due_at}#{self.integration_id}"


class Loaded(NamedTuple):
    account: Account | None
    integration: Integration | None
    settings: dict[str, Any] | None
    quote: Quote | None


@dataclass(frozen=True, slots=True)
class Page:
    account: Account | None
    integrations: tuple[Integration, ...]
    # The id the next page starts after (None: this was the last page). Ids, not keys: the
    # caller never names a sort key (lifecycle.http.cursors makes the API's cursors from it).
    last_id: str | None


@dataclass(slots=True)
class ReadCounter:
    """Round trips and items read, for tests and the benchmark (not for production logic)."""

    calls: int = 0
    items_read: int = 0
    by_operation: dict[str, int] = field(default_factory=dict)

    def record(self, operation: str, read: int = 0) -> None:
        self.calls += 1
        self.items_read += read
        self.by_operation[operation] = self.by_operation.get(operation, 0) + 1


_CHANGED = "This changed while your request was being handled. Reload and try again."
# A transaction's action -> the single-item write that does the same (operation, method).
_SINGLE_WRITES: Mapping[str, tuple[str, str]] = {
    "Put": ("PutItem", "put_item"),
    "Update": ("UpdateItem", "update_item"),
    "Delete": ("DeleteItem", "delete_item"),
}


def _condition_failed(conflict: Conflict, index: int) -> bool:
    """Whether the transaction's action `index` failed its condition (not a concurrent
    transaction on the same item, which is worth a retry)."""
    reasons = conflict.extra.get("reasons", ())
    return index < len(reasons) and reasons[index] == "ConditionalCheckFailed"


@functools.cache
def default_client() -> Any:
    """The DynamoDB client, built on first use (never at import time).

    boto3 honours `AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL` itself (DynamoDB Local).
    """
    return aws.client("dynamodb")


class Store:
    """The repository of one table. `client` is a boto3 DynamoDB client (lazy by default)."""

    def __init__(self, table_name: str, client: Any | None = None) -> None:
        self.table_name = table_name
        self._client = client
        self.counter = ReadCounter()

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = default_client()
        return self._client

    # ---- accounts ---------------------------------------------------------------------

    def get_account(self, account_id: str) -> Account | None:
        item = self._get(_key(account_pk(account_id), ACCOUNT_SK))
        return items.account_from(item) if item else None

    def create_account(self, account: Account) -> None:
        """Put a new account; an existing one with that id is a Conflict, never overwritten."""
        item = {**_key(account_pk(account.id), ACCOUNT_SK), **items.account_attributes(account)}
        self._transact([self._put(item, "attribute_not_exists(PK)")])

    def set_customer(self, account_id: str, customer_id: str) -> bool:
        """Record the account's Stripe customer once: False when the account has one already
        (a concurrent request won; read it back) or does not exist. The version moves on, so
        a write decided from the account as it was before fails instead of dropping it."""
        from botocore.exceptions import ClientError  # noqa: PLC0415 - loaded with the client

        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=_key(account_pk(account_id), ACCOUNT_SK),
                UpdateExpression="SET stripe_customer_id = :customer, version = version + :one",
                ConditionExpression=(
                    "attribute_exists(PK) AND attribute_not_exists(stripe_customer_id)"
                ),
                ExpressionAttributeValues={":customer": items.s(customer_id), ":one": items.n(1)},
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        finally:
            self.counter.record("UpdateItem")
        return True

    # ---- users ---------------------------------------------------------------------------

    def open_account(self, opening: Opening) -> None:
        """A sign-up, all or nothing: the account, its first user (billing access, counted),
        the user's login and id, the activity line and the outbox events. `LoginTaken` when
        the login has an account already (the sign-up was retried: read it back)."""
        account, first = opening.account, opening.user
        pk = account_pk(account.id)
        login = self._login_put(first)
        actions = [
            login,
            self._put(
                {**_key(pk, ACCOUNT_SK), **items.account_attributes(account)},
                "attribute_not_exists(PK)",
            ),
            self._put(
                {
                    **_key(pk, USERS_SK),
                    "type": items.s("billing_users"),
                    "billing_users": items.n(1 if first.billing_access else 0),
                },
                "attribute_not_exists(PK)",
            ),
            self._put({**_key(pk, user_sk(first.id)), **items.user_attributes(first)}),
            self._user_id_put(first),
            *self._activity_puts(pk, f"{first.id}.{first.version}", opening.activity),
            *self._event_actions(pk, f"{account.id}:{account.version}", opening.events),
        ]
        try:
            self._transact(actions)
        except Conflict as conflict:
            if _condition_failed(conflict, 0):
                raise LoginTaken(_CHANGED) from conflict
            raise

    def login(self, username: str) -> tuple[str, str] | None:
        """(account id, user id) of a directory login, if it belongs to an account."""
        item = self._get(login_key(username))
        if item is None:
            return None
        return items.req_s(item, "account_id"), items.req_s(item, "user_id")

    def user_account(self, user_id: str) -> str | None:
        """The account a user id belongs to (None: unknown)."""
        item = self._get(user_id_key(user_id))
        return items.req_s(item, "account_id") if item else None

    def get_user(self, account_id: str, user_id: str) -> User | None:
        item = self._get(_key(account_pk(account_id), user_sk(user_id)))
        return items.user_from(item) if item else None

    def list_users(self, account_id: str) -> list[User]:
        """The account's users, oldest first (user ids are time-ordered), removed ones too."""
        return [
            items.user_from(item)
            for item in self._query_prefix(account_pk(account_id), USER_PREFIX)
        ]

    def billing_users(self, account_id: str) -> int:
        """How many of the account's users have billing access."""
        item = self._get(_key(account_pk(account_id), USERS_SK))
        return items.get_n(item, "billing_users") if item else 0

    def save_user_change(self, change: UserChange) -> None:
        """Apply a users change in one transaction: the user conditioned on the version it was
        decided from (a new one on its login being free: `LoginTaken`), the billing count
        moved with it (`NoBillingUserLeft` when it would reach zero), activity and events.
        Any other change in between is a `Conflict`."""
        if change.noop:
            return
        subject = change.after
        pk = account_pk(subject.account_id)
        actions: list[dict[str, Any]] = []
        if change.before is None:
            actions += [
                self._login_put(subject),
                self._put(
                    {**_key(pk, user_sk(subject.id)), **items.user_attributes(subject)},
                    "attribute_not_exists(PK)",
                ),
                self._user_id_put(subject),
            ]
        else:
            actions.append(
                self._put(
                    {**_key(pk, user_sk(subject.id)), **items.user_attributes(subject)},
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
                        "Key": _key(pk, USERS_SK),
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
                        "Key": _key(pk, USERS_SK),
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
            if change.billing_delta < 0 and _condition_failed(conflict, count_at):
                raise NoBillingUserLeft(_CHANGED) from conflict
            if change.before is None and _condition_failed(conflict, 0):
                raise LoginTaken(_CHANGED) from conflict
            raise

    def _login_put(self, user: User) -> dict[str, Any]:
        return self._put(
            {
                **login_key(user.username),
                "type": items.s("login"),
                "account_id": items.s(user.account_id),
                "user_id": items.s(user.id),
            },
            "attribute_not_exists(PK)",
        )

    def _user_id_put(self, user: User) -> dict[str, Any]:
        return self._put(
            {
                **user_id_key(user.id),
                "type": items.s("user_id"),
                "account_id": items.s(user.account_id),
            },
            "attribute_not_exists(PK)",
        )

    def _activity_puts(
        self, pk: str, unique: str, lines: Sequence[HistoryEntry]
    ) -> list[dict[str, Any]]:
        return [
            self._put(
                {
                    **_key(pk, f"ACTIVITY#{format_instant(line.at)}#{unique}.{index:02d}"),
                    **items.history_attributes(line),
                },
                "attribute_not_exists(PK)",
            )
            for index, line in enumerate(lines)
        ]

    # ---- integrations ----------------------------------------------------------------

    def get_integration(self, account_id: str, integration_id: str) -> Integration | None:
        """Strongly consistent read of one integration of `account_id` (None when absent)."""
        item = self._get(_key(account_pk(account_id), integration_sk(integration_id)))
        return items.integration_from(item) if item else None

    def load(
        self, account_id: str, integration_id: str | None = None, quote_id: str | None = None
    ) -> Loaded:
        """The account, one of its integrations with its settings, and a quote, in one round
        trip (a strongly consistent BatchGetItem). Absent items are None."""
        pk = account_pk(account_id)
        keys = [_key(pk, ACCOUNT_SK)]
        if integration_id is not None:
            keys += [
                _key(pk, integration_sk(integration_id)),
                _key(pk, settings_sk(integration_id)),
            ]
        if quote_id is not None:
            keys.append(_key(pk, quote_sk(quote_id)))
        found: dict[str, Item] = {}
        request: dict[str, Any] = {self.table_name: {"Keys": keys, "ConsistentRead": True}}
        while request:
            response = self.client.batch_get_item(RequestItems=request)
            got = response["Responses"].get(self.table_name, [])
            self.counter.record("BatchGetItem", len(got))
            for item in got:
                found[item["SK"]["S"]] = item
            request = response.get("UnprocessedKeys") or {}
        account_item = found.get(ACCOUNT_SK)
        quote_item = found.get(quote_sk(quote_id)) if quote_id else None
        integration_item = found.get(integration_sk(integration_id)) if integration_id else None
        settings_item = found.get(settings_sk(integration_id)) if integration_id else None
        return Loaded(
            account=items.account_from(account_item) if account_item else None,
            integration=items.integration_from(integration_item) if integration_item else None,
            settings=((items.get_j(settings_item, "document") if settings_item else None) or {})
            if integration_item
            else None,
            quote=items.quote_from(quote_item) if quote_item else None,
        )

    def get_integration_with_settings(
        self, account_id: str, integration_id: str
    ) -> tuple[Integration, dict[str, Any]] | None:
        loaded = self.load(account_id, integration_id)
        if loaded.integration is None:
            return None
        return loaded.integration, loaded.settings or {}

    def list_integrations(
        self,
        account_id: str,
        *,
        limit: int = 50,
        after: str | None = None,
        status: Status | None = None,
    ) -> Page:
        """One page of the account's integrations, oldest first (ids are time-ordered), after
        the integration `after` when given.

        The first page also reads the account item (it sorts just before the integrations):
        one query. A later page reads the account with a GetItem beside its query.
        """
        pk = account_pk(account_id)
        values: dict[str, Any] = {
            ":pk": items.s(pk),
            ":low": items.s(ACCOUNT_SK if after is None else INTEGRATION_PREFIX),
            ":high": items.s(INTEGRATION_PREFIX + "\uffff"),
        }
        query: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "PK = :pk AND SK BETWEEN :low AND :high",
            "ExpressionAttributeValues": values,
            "ConsistentRead": True,
            # One more than asked for on the first page: the account item comes first.
            "Limit": limit + (1 if after is None else 0),
        }
        if status is not None:
            query["FilterExpression"] = "#status = :status OR #type = :account"
            query["ExpressionAttributeNames"] = {"#status": "status", "#type": "type"}
            values[":status"] = items.s(status.value)
            values[":account"] = items.s("account")
        if after is not None:
            query["ExclusiveStartKey"] = _key(pk, integration_sk(after))
        account: Account | None = None
        found: list[Integration] = []
        while True:
            response = self.client.query(**query)
            self.counter.record("Query", response.get("ScannedCount", 0))
            for item in response["Items"]:
                if item["SK"]["S"] == ACCOUNT_SK:
                    account = items.account_from(item)
                else:
                    found.append(items.integration_from(item))
            last = response.get("LastEvaluatedKey")
            if not last or len(found) >= limit:
                break
            # A status filter can leave a page short: read on until it is full.
            query["ExclusiveStartKey"] = last
            query["Limit"] = limit - len(found)
        if len(found) > limit:
            found = found[:limit]
            last = _key(pk, integration_sk(found[-1].id))
        last_id = None
        if last and last["SK"]["S"] != ACCOUNT_SK:
            last_id = last["SK"]["S"].removeprefix(INTEGRATION_PREFIX)
        if after is not None:
            account = self.get_account(account_id)
        return Page(account=account, integrations=tuple(found), last_id=last_id)

    def all_integrations(self, account_id: str) -> list[Integration]:
        """Every integration of the account (account-level actions need the whole set)."""
        result: list[Integration] = []
        after = None
        while True:
            page = self.list_integrations(account_id, limit=100, after=after)
            result.extend(page.integrations)
            after = page.last_id
            if after is None:
                return result

    def history(self, account_id: str, integration_id: str) -> list[HistoryEntry]:
        """The integration's history, oldest first."""
        return [
            items.history_from(item)
            for item in self._query_prefix(account_pk(account_id), history_prefix(integration_id))
        ]

    def activity(self, account_id: str) -> list[HistoryEntry]:
        """The account's activity (tombstones of deleted integrations included), oldest first."""
        return [
            items.history_from(item)
            for item in self._query_prefix(account_pk(account_id), "ACTIVITY#")
        ]

    def outbox(self, account_id: str) -> list[dict[str, Any]]:
        """The account's outbox events still kept (tests and the local bus read these)."""
        return [
            {"detail-type": items.req_s(item, "detail_type"), "detail": items.event_detail(item)}
            for item in self._query_prefix(account_pk(account_id), "OUTBOX#")
        ]

    def load_integrations(self, integrations: Sequence[Integration]) -> None:
        """Bulk-load integrations as they are, without history or events (demo seeds,
        benchmarks, migrations): BatchWriteItem, 25 at a time, unprocessed items retried."""
        requests = [{"PutRequest": {"Item": self._integration_item(i)}} for i in integrations]
        for start in range(0, len(requests), 25):
            pending: dict[str, Any] = {self.table_name: requests[start : start + 25]}
            while pending:
                response = self.client.batch_write_item(RequestItems=pending)
                self.counter.record("BatchWriteItem")
                pending = response.get("UnprocessedItems") or {}

    def _integration_item(self, integration: Integration) -> Item:
        item = {
            **_key(account_pk(integration.account_id), integration_sk(integration.id)),
            **items.integration_attributes(integration),
        }
        entry = due_entry(integration)
        if entry is not None:
            item["GSI1PK"] = items.s(due_partition(entry.kind, due_shard(integration.id)))
            item["GSI1SK"] = items.s(f"{format_instant(entry.at)}#{integration.id}")
        return item

    # ---- quotes ------------------------------------------------------------------------

    def put_quote(self, quote: Quote) -> None:
        expires = int((quote.expires_at + QUOTE_RETENTION).timestamp())
        item = {
            **_key(account_pk(quote.account_id), quote_sk(quote.id)),
            **items.quote_attributes(quote, expires),
        }
        self._transact([self._put(item, "attribute_not_exists(PK)")])

    def get_quote(self, account_id: str, quote_id: str) -> Quote | None:
        item = self._get(_key(account_pk(account_id), quote_sk(quote_id)))
        return items.quote_from(item) if item else None

    # ---- charges ledger ----------------------------------------------------------------

    def begin_charge(self, record: ChargeRecord, expect: Sequence[Expect] = ()) -> None:
        """Write a pending ledger line *before* the provider is called. The line is keyed by
        the thing bought, so it is its own guard: it exists once, and a second attempt at the
        same change raises `GuardTaken` (the caller reconciles with the line that exists
        instead of charging again). Alone (a renewal, a create) it is one conditional PutItem;
        with `expect` (the subject must still be as the quote saw it, else `SubjectChanged`)
        or a request pointer, one transaction."""
        self._begin(
            [self._put(self._charge_item(record), "attribute_not_exists(PK)")], record, expect
        )

    def retry_charge(self, before: ChargeRecord, after: ChargeRecord) -> None:
        """A new attempt on a failed line (maybe for another quote), conditionally on the
        revision read: one taker wins."""
        self._transact([self.charge_write(before, after), *self._ref_puts(after)])

    def charge_by_ref(self, account_id: str, request_ref: str) -> ChargeRecord | None:
        """The ledger line a request (a quote) paid or is paying through, if any."""
        ref = self._get(_key(account_pk(account_id), charge_ref_sk(request_ref)))
        if ref is None:
            return None
        return self.get_charge(
            account_id, items.req_s(ref, "charge_id"), items.get_s(ref, "ledger_key")
        )

    def _ref_puts(self, record: ChargeRecord) -> list[dict[str, Any]]:
        """A pointer from the request (a quote id) to its line, when the request is not the
        ledger key itself: a retry of a paid quote finds what became of it."""
        if not record.request_ref or record.request_ref == record.ledger_key:
            return []
        pointer = {
            **_key(account_pk(record.account_id), charge_ref_sk(record.request_ref)),
            "type": items.s("charge_ref"),
            "charge_id": items.s(record.id),
            "ledger_key": items.s(record.ledger_key),
        }
        return [self._put(pointer)]

    def supersede_charge(
        self, previous: ChargeRecord, record: ChargeRecord, expect: Sequence[Expect] = ()
    ) -> None:
        """A new line for a change whose last line was refunded: the new line takes the ledger
        key, conditionally on the old line being still there as read (one taker wins), and the
        old line is kept under its own id."""
        kept = replace(previous, superseded_by=record.id, revision=previous.revision + 1)
        taken = self._put(
            self._charge_item(record),
            "id = :previous AND revision = :revision",
            {":previous": items.s(previous.id), ":revision": items.n(previous.revision)},
        )
        self._begin(
            [taken, self._put(self._charge_item(kept), "attribute_not_exists(PK)")],
            record,
            expect,
        )

    def _begin(
        self, actions: list[dict[str, Any]], record: ChargeRecord, expect: Sequence[Expect]
    ) -> None:
        actions = [*actions, *self._ref_puts(record)]
        checks = [self._check(record.account_id, e) for e in expect]
        try:
            self._transact([*actions, *checks])
        except Conflict as conflict:
            failed = conflict.extra.get("failed", ())
            if any(index >= len(actions) for index in failed):
                raise SubjectChanged(_CHANGED) from conflict
            raise GuardTaken(_CHANGED) from conflict

    def _check(self, account_id: str, expect: Expect) -> dict[str, Any]:
        """A ConditionCheck that an account or integration is still at a version or status."""
        pk = account_pk(account_id)
        sk = ACCOUNT_SK if expect.subject == ACCOUNT_SUBJECT else integration_sk(expect.subject)
        conditions, values = [], {}
        if expect.version is not None:
            conditions.append("version = :version")
            values[":version"] = items.n(expect.version)
        if expect.status is not None:
            conditions.append("#status = :status")
            values[":status"] = items.s(expect.status)
        check: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": _key(pk, sk),
            "ConditionExpression": " AND ".join(conditions) or "attribute_exists(PK)",
        }
        if values:
            check["ExpressionAttributeValues"] = values
        if expect.status is not None:
            check["ExpressionAttributeNames"] = {"#status": "status"}
        return {"ConditionCheck": check}

    def _charge_item(self, record: ChargeRecord) -> Item:
        pk = account_pk(record.account_id)
        item = {
            **_key(pk, line_sk(record)),
            **items.charge_attributes(record),
            # The ledger index: the account's lines by time-ordered id (never changes).
            "GSI2SK": items.s(record.id),
        }
        if record.unsettled:
            # In the reconciler's part of the due index while money may be taken and not yet
            # applied or refunded (gone from it once the line is settled: the index is sparse).
            item["GSI1PK"] = items.s(due_partition(DueKind.SETTLEMENT, due_shard(record.id)))
            item["GSI1SK"] = items.s(f"{format_instant(record.updated_at)}#{record.id}")
        return item

    def charge_by_key(self, account_id: str, ledger_key: str) -> ChargeRecord | None:
        """The line that holds the thing bought (one GetItem: the line is its own guard)."""
        item = self._get(_key(account_pk(account_id), charge_sk(ledger_key)))
        return items.charge_from(item) if item else None

    def get_charge(
        self, account_id: str, charge_id: str, ledger_key: str | None = None
    ) -> ChargeRecord | None:
        """The ledger line `charge_id`, strongly consistent: at its ledger key when that is
        known (one GetItem), else where a replaced line is kept, else found by its id in the
        ledger index (a line just written may take a moment to show there)."""
        pk = account_pk(account_id)
        if ledger_key is not None:
            current = self.charge_by_key(account_id, ledger_key)
            if current is not None and current.id == charge_id:
                return current
        kept = self._get(_key(pk, superseded_charge_sk(charge_id)))
        if kept is not None:
            return items.charge_from(kept)
        response = self.client.query(
            TableName=self.table_name,
            IndexName=LEDGER_INDEX,
            KeyConditionExpression="PK = :pk AND GSI2SK = :id",
            ExpressionAttributeValues={":pk": items.s(pk), ":id": items.s(charge_id)},
        )
        self.counter.record("Query", response.get("ScannedCount", 0))
        for found in response["Items"]:
            item = self._get({"PK": found["PK"], "SK": found["SK"]})
            if item is not None and items.req_s(item, "id") == charge_id:
                return items.charge_from(item)
        return None

    def reload_charge(self, line: ChargeRecord) -> ChargeRecord | None:
        """The line as stored now (after a lost race on it)."""
        return self.get_charge(
            line.account_id, line.id, None if line.superseded_by else line.ledger_key
        )

    def charge_write(self, before: ChargeRecord, after: ChargeRecord) -> dict[str, Any]:
        """The conditional write of a ledger line's new state, for `commit(extra=...)`: it
        applies only if the line is still the one read, at the revision it was read at (the
        key may hold a newer line for the same thing meanwhile: never overwritten)."""
        after = replace(after, revision=before.revision + 1)
        return self._put(
            self._charge_item(after),
            "id = :id AND revision = :revision",
            {":id": items.s(before.id), ":revision": items.n(before.revision)},
        )

    def save_charge(self, before: ChargeRecord, after: ChargeRecord) -> None:
        self._transact([self.charge_write(before, after)])

    def ledger_effects(
        self,
        line: ChargeRecord,
        name: str,
        *,
        history: Sequence[tuple[str, HistoryEntry]] = (),
        activity: HistoryEntry | None = None,
        events: Sequence[DomainEvent] = (),
    ) -> list[dict[str, Any]]:
        """What a ledger fact writes besides the line (history lines of its integrations, one
        account activity line, outbox events), each once per (line, `name`): deterministic keys
        written only if absent, for `commit(extra=...)` beside the line's conditional write."""
        pk = account_pk(line.account_id)
        unique = f"{line.id}.{name}"
        actions = []
        for integration_id, entry in history:
            sk = f"{history_prefix(integration_id)}{format_instant(entry.at)}#{unique}"
            actions.append(
                self._put(
                    {**_key(pk, sk), **items.history_attributes(entry)}, "attribute_not_exists(PK)"
                )
            )
        if activity is not None:
            sk = f"ACTIVITY#{format_instant(activity.at)}#{unique}"
            actions.append(
                self._put(
                    {**_key(pk, sk), **items.history_attributes(activity)},
                    "attribute_not_exists(PK)",
                )
            )
        actions.extend(self._event_actions(pk, f"{line.id}:{name}", events))
        return actions

    def list_charges(
        self, account_id: str, *, limit: int = 50, after: str | None = None
    ) -> tuple[list[ChargeRecord], str | None]:
        """The account's ledger, newest first (charge ids are time-ordered), after the charge
        `after` when given; with the id the next page starts after (None: no more).

        The ledger index gives the page's keys in order (ids below `after`: no start key to
        forge); the lines themselves are then read consistently, in one BatchGetItem."""
        pk = account_pk(account_id)
        condition = "PK = :pk" + (" AND GSI2SK < :after" if after is not None else "")
        values = {":pk": items.s(pk)}
        if after is not None:
            values[":after"] = items.s(after)
        response = self.client.query(
            TableName=self.table_name,
            IndexName=LEDGER_INDEX,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=values,
            ScanIndexForward=False,
            Limit=limit,
        )
        self.counter.record("Query", response.get("ScannedCount", 0))
        keys = [{"PK": found["PK"], "SK": found["SK"]} for found in response["Items"]]
        lines = {line_sk(line): line for line in self._charges(keys)}
        records = [lines[k["SK"]["S"]] for k in keys if k["SK"]["S"] in lines]
        last = response.get("LastEvaluatedKey")
        return records, (last["GSI2SK"]["S"] if last else None)

    def _charges(self, keys: Sequence[Item]) -> list[ChargeRecord]:
        """Ledger lines by key, strongly consistent (BatchGetItem takes 100 keys at a time)."""
        found: list[ChargeRecord] = []
        for start in range(0, len(keys), 100):
            request: dict[str, Any] = {
                self.table_name: {"Keys": list(keys[start : start + 100]), "ConsistentRead": True}
            }
            while request:
                response = self.client.batch_get_item(RequestItems=request)
                got = response["Responses"].get(self.table_name, [])
                self.counter.record("BatchGetItem", len(got))
                found.extend(items.charge_from(item) for item in got)
                request = response.get("UnprocessedKeys") or {}
        return found

    # ---- state changes -----------------------------------------------------------------

    def commit(
        self,
        decision: Decision | None = None,
        *,
        account: AccountDecision | None = None,
        settings: Mapping[str, Any] | None = None,
        extra: Sequence[Mapping[str, Any]] = (),
        expect: Sequence[tuple[str, Expect]] = (),
    ) -> None:
        """Apply decisions atomically: one TransactWriteItems, each state conditioned on the
        version it was decided from, and each (account id, `Expect`) still holding. Raises
        `Conflict` when anything changed in between."""
        actions: list[dict[str, Any]] = []
        if decision is not None and not decision.noop:
            actions.extend(self._decision_actions(decision, settings))
        elif decision is not None and settings is not None:
            raise ValueError("settings are written with the decision that replaces them")
        if account is not None:
            actions.extend(self._account_actions(account))
            for integration_decision in account.integrations:
                actions.extend(self._decision_actions(integration_decision, None))
        actions.extend(dict(action) for action in extra)
        actions.extend(self._check(account_id, e) for account_id, e in expect)
        if not actions:
            return
        if len(actions) > TRANSACTION_LIMIT:
            raise ValueError(f"{len(actions)} writes exceed one transaction ({TRANSACTION_LIMIT})")
        self._transact(actions)

    def _decision_actions(
        self, decision: Decision, settings: Mapping[str, Any] | None
    ) -> list[dict[str, Any]]:
        subject = decision.after or decision.before
        assert subject is not None
        pk = account_pk(subject.account_id)
        actions: list[dict[str, Any]] = []
        if decision.after is None:
            assert decision.before is not None
            actions.append(
                {
                    "Delete": {
                        "TableName": self.table_name,
                        "Key": _key(pk, integration_sk(subject.id)),
                        "ConditionExpression": "version = :expected",
                        "ExpressionAttributeValues": {
                            ":expected": items.n(decision.before.version)
                        },
                    }
                }
            )
            actions.append(
                {"Delete": {"TableName": self.table_name, "Key": _key(pk, settings_sk(subject.id))}}
            )
            # A marker in the deletion sweep's part of the due index: the integration's history
            # lines (too many for this transaction) are purged after it, even after a crash.
            deleted_at = (
                decision.tombstone.deleted_at if decision.tombstone else subject.current_period_end
            )
            actions.append(
                self._put(
                    {
                        **_key(pk, purge_sk(subject.id)),
                        "type": items.s("purge"),
                        "GSI1PK": items.s(due_partition(DueKind.DELETION, due_shard(subject.id))),
                        "GSI1SK": items.s(f"{format_instant(deleted_at)}#{subject.id}"),
                    }
                )
            )
        else:
            item = self._integration_item(decision.after)
            if decision.before is None:
                actions.append(self._put(item, "attribute_not_exists(PK)"))
            else:
                actions.append(
                    self._put(
                        item, "version = :expected", {":expected": items.n(decision.before.version)}
                    )
                )
            reminder = self._reminder_due(decision)
            if reminder is not None:
                actions.append(reminder)
            if settings is not None:
                actions.append(
                    self._put(
                        {
                            **_key(pk, settings_sk(subject.id)),
                            "type": items.s("settings"),
                            "document": items.j(dict(settings)),
                            "version": items.n(decision.after.version),
                        }
                    )
                )
        version = decision.after.version if decision.after else subject.version + 1
        seq = f"{version:010d}"
        for index, entry_line in enumerate(decision.history):
            sk = f"{history_prefix(subject.id)}{format_instant(entry_line.at)}#{seq}.{index:02d}"
            actions.append(
                self._put(
                    {**_key(pk, sk), **items.history_attributes(entry_line)},
                    "attribute_not_exists(PK)",
                )
            )
        if decision.tombstone is not None:
            tomb = decision.tombstone
            line = HistoryEntry(
                at=tomb.deleted_at,
                type="integration_deleted",
                actor=decision.history[0].actor if decision.history else "system",
                details={
                    "integration_id": tomb.integration_id,
                    "name": tomb.name,
                    "cancelled_at": format_instant(tomb.cancelled_at)
                    if tomb.cancelled_at
                    else None,
                    "deleted_at": format_instant(tomb.deleted_at),
                    "reason": tomb.reason,
                },
            )
            sk = f"ACTIVITY#{format_instant(tomb.deleted_at)}#{tomb.integration_id}"
            actions.append(
                self._put(
                    {**_key(pk, sk), **items.history_attributes(line)}, "attribute_not_exists(PK)"
                )
            )
        actions.extend(self._event_actions(pk, f"{subject.id}:{version}", decision.events))
        return actions

    def _reminder_due(self, decision: Decision) -> dict[str, Any] | None:
        """An integration that becomes cancel_pending gets a deletion reminder in the reminder
        part of the due index (an item of its own: the integration's index entry is its
        deletion). Whether one was sent for this period already is the sweep's question."""
        after, before = decision.after, decision.before
        due = reminder_at(after) if after is not None else None
        if after is None or due is None:
            return None
        if before is not None and reminder_at(before) is not None:
            return None  # cancel_pending before too: the item is there
        return self._put(
            {
                **_key(account_pk(after.account_id), reminder_sk(after.id)),
                "type": items.s("reminder_due"),
                "integration_id": items.s(after.id),
                "period_end": items.t(after.current_period_end),
                "GSI1PK": items.s(due_partition(DueKind.REMINDER, due_shard(after.id))),
                "GSI1SK": items.s(f"{format_instant(due)}#{after.id}"),
            }
        )

    def remind(self, integration: Integration, event: DomainEvent) -> Reminded:
        """Send an integration's deletion reminder once per cancelled period: its event in the
        outbox and a marker for the period (written only if absent), the due entry removed, in
        one transaction conditioned on the integration being as read. Raises `Conflict` when
        the integration changed meanwhile."""
        pk = account_pk(integration.account_id)
        end = integration.current_period_end
        expires = int((end + REMINDED_RETENTION).timestamp())
        check = self._check(
            integration.account_id,
            Expect(integration.id, version=integration.version, status="cancel_pending"),
        )
        marker = self._put(
            {
                **_key(pk, reminded_sk(integration.id, end)),
                "type": items.s("reminded"),
                "at": items.t(event.at),
                "expires_at": items.n(expires),
            },
            "attribute_not_exists(PK)",
        )
        done = {
            "Delete": {"TableName": self.table_name, "Key": _key(pk, reminder_sk(integration.id))}
        }
        events = self._event_actions(
            pk, f"{integration.id}:reminder:{format_instant(end)}", [event]
        )
        try:
            self._transact([check, marker, *events, done])
        except Conflict as conflict:
            # The period's marker is there (its event too): reminded before, nothing to send.
            if 1 in conflict.extra.get("failed", ()) and 0 not in conflict.extra.get("failed", ()):
                self.drop_reminder(integration.account_id, integration.id, None)
                return Reminded(sent=False)
            raise
        return Reminded(sent=True)

    def drop_reminder(self, account_id: str, integration_id: str, due_at: str | None) -> None:
        """Remove a reminder's due entry that has nothing left to send (the integration is
        gone, taken back, or reminded already); with `due_at`, only while it is still that
        entry (a new cancel may have written another)."""
        delete: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": _key(account_pk(account_id), reminder_sk(integration_id)),
        }
        if due_at is not None:
            delete["ConditionExpression"] = "GSI1SK = :entry"
            delete["ExpressionAttributeValues"] = {":entry": items.s(f"{due_at}#{integration_id}")}
        try:
            self._transact([{"Delete": delete}])
        except Conflict:
            return  # rewritten meanwhile: the new entry stands

    # ---- receipts --------------------------------------------------------------------------

    def receipts_issued(self, account_id: str) -> int:
        """How many receipt numbers the account has issued (its counter, read consistently)."""
        item = self._get(_key(account_pk(account_id), RECEIPTS_SK))
        return items.get_n(item, "issued") if item else 0

    def receipt_write(self, account_id: str, issued: int) -> dict[str, Any]:
        """The counter moved from `issued` to `issued + 1`, for `commit(extra=...)` beside the
        ledger line that takes the number: two charges racing for one number cannot both
        commit (the loser re-reads and takes the next one), so numbers have no gap."""
        item = {
            **_key(account_pk(account_id), RECEIPTS_SK),
            "type": items.s("receipt_counter"),
            "issued": items.n(issued + 1),
        }
        if issued == 0:
            return self._put(item, "attribute_not_exists(PK)")
        return self._put(item, "issued = :issued", {":issued": items.n(issued)})

    # ---- emails: at most one per (event, recipient) ---------------------------------------

    def claim_email(
        self,
        account_id: str,
        event_id: str,
        user_id: str,
        *,
        token: str,
        now: int,
        lease_until: int,
        expires_at: int,
    ) -> bool:
        """Claim the sending of one email: the marker written if absent, or taken over when
        its sender's lease ran out without sending (it crashed). False when it is sent, or
        claimed by a sender whose lease still runs."""
        item = {
            **_key(account_pk(account_id), email_sk(event_id, user_id)),
            "type": items.s("email"),
            "state": items.s("claimed"),
            "token": items.s(token),
            "lease_until": items.n(lease_until),
            "expires_at": items.n(expires_at),
        }
        try:
            self._transact(
                [
                    self._put(
                        item,
                        "attribute_not_exists(PK) OR (#state = :claimed AND lease_until < :now)",
                        {":claimed": items.s("claimed"), ":now": items.n(now)},
                        {"#state": "state"},
                    )
                ]
            )
        except Conflict:
            return False
        return True

    def email_claim(self, account_id: str, event_id: str, user_id: str) -> EmailClaim | None:
        item = self._get(_key(account_pk(account_id), email_sk(event_id, user_id)))
        if item is None:
            return None
        return EmailClaim(
            state=items.req_s(item, "state"),
            token=items.get_s(item, "token") or "",
            lease_until=items.get_n(item, "lease_until"),
        )

    def mark_email_sent(
        self,
        account_id: str,
        event_id: str,
        user_id: str,
        *,
        token: str,
        message_id: str,
        at: datetime,
    ) -> bool:
        """The email went out: its marker `sent` for good (False when the claim was lost)."""
        return self._update_claim(
            account_id,
            event_id,
            user_id,
            token,
            "SET #state = :sent, message_id = :message, sent_at = :at REMOVE lease_until",
            {":sent": items.s("sent"), ":message": items.s(message_id), ":at": items.t(at)},
        )

    def release_email(self, account_id: str, event_id: str, user_id: str, *, token: str) -> None:
        """SES refused or failed: the claim is removed so that a retry can send."""
        try:
            self._transact(
                [
                    {
                        "Delete": {
                            "TableName": self.table_name,
                            "Key": _key(account_pk(account_id), email_sk(event_id, user_id)),
                            "ConditionExpression": "#token = :token AND #state = :claimed",
                            "ExpressionAttributeNames": {"#token": "token", "#state": "state"},
                            "ExpressionAttributeValues": {
                                ":token": items.s(token),
                                ":claimed": items.s("claimed"),
                            },
                        }
                    }
                ]
            )
        except Conflict:
            return  # taken over meanwhile: the other sender owns it

    def _update_claim(
        self,
        account_id: str,
        event_id: str,
        user_id: str,
        token: str,
        expression: str,
        values: dict[str, Any],
    ) -> bool:
        update = {
            "Update": {
                "TableName": self.table_name,
                "Key": _key(account_pk(account_id), email_sk(event_id, user_id)),
                "UpdateExpression": expression,
                "ConditionExpression": "#token = :token",
                "ExpressionAttributeNames": {"#token": "token", "#state": "state"},
                "ExpressionAttributeValues": {**values, ":token": items.s(token)},
            }
        }
        try:
            self._transact([update])
        except Conflict:
            return False
        return True

    def _account_actions(self, decision: AccountDecision) -> list[dict[str, Any]]:
        if decision.noop:
            return []
        pk = account_pk(decision.after.id)
        item = {**_key(pk, ACCOUNT_SK), **items.account_attributes(decision.after)}
        actions = [
            self._put(item, "version = :expected", {":expected": items.n(decision.before.version)})
        ]
        seq = f"{decision.after.version:010d}"
        for index, line in enumerate(decision.activity):
            sk = f"ACTIVITY#{format_instant(line.at)}#{decision.after.id}.{seq}.{index:02d}"
            actions.append(
                self._put(
                    {**_key(pk, sk), **items.history_attributes(line)}, "attribute_not_exists(PK)"
                )
            )
        actions.extend(
            self._event_actions(
                pk, f"{decision.after.id}:{decision.after.version}", decision.events
            )
        )
        return actions

    def _event_actions(
        self, pk: str, subject: str, events: Sequence[DomainEvent]
    ) -> list[dict[str, Any]]:
        actions = []
        for index, event in enumerate(events):
            # Deterministic: one event per state change and index, never written twice.
            event_id = f"{subject}:{index}"
            expires = int((event.at + OUTBOX_RETENTION).timestamp())
            item = {
                **_key(pk, f"OUTBOX#{event_id}"),
                **items.event_attributes(event, event_id, expires),
            }
            actions.append(self._put(item, "attribute_not_exists(PK)"))
        return actions

    def mark_published(self, account_id: str, event_id: str, at: datetime) -> bool:
        """Record that an outbox event went out; False when it already had (a redelivery)."""
        from botocore.exceptions import ClientError  # noqa: PLC0415 - loaded with the client

        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=_key(account_pk(account_id), f"OUTBOX#{event_id}"),
                UpdateExpression="SET published_at = :at",
                ConditionExpression="attribute_exists(PK) AND attribute_not_exists(published_at)",
                ExpressionAttributeValues={":at": items.t(at)},
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        finally:
            self.counter.record("UpdateItem")
        return True

    def published_among(self, events: Sequence[tuple[str, str]]) -> set[str]:
        """Which of these outbox rows, (account id, event id), are marked published: strongly
        consistent reads, 100 keys per BatchGetItem (its limit)."""
        keys = [_key(account_pk(account), f"OUTBOX#{event}") for account, event in events]
        published: set[str] = set()
        for start in range(0, len(keys), 100):
            request: dict[str, Any] = {
                self.table_name: {
                    "Keys": keys[start : start + 100],
                    "ConsistentRead": True,
                    "ProjectionExpression": "SK, published_at",
                }
            }
            while request:
                response = self.client.batch_get_item(RequestItems=request)
                got = response["Responses"].get(self.table_name, [])
                self.counter.record("BatchGetItem", len(got))
                published |= {
                    item["SK"]["S"].removeprefix("OUTBOX#")
                    for item in got
                    if "published_at" in item
                }
                request = response.get("UnprocessedKeys") or {}
        return published

    def purge_history(self, account_id: str, integration_id: str) -> int:
        """Remove a deleted integration's history lines, then its purge marker. Refuses while
        the integration exists (history is only ever removed with it)."""
        if self.get_integration(account_id, integration_id) is not None:
            raise Conflict("The integration exists: its history is kept.")
        pk = account_pk(account_id)
        keys = [
            {"PK": item["PK"], "SK": item["SK"]}
            for item in self._query_prefix(pk, history_prefix(integration_id), keys_only=True)
        ]
        keys.append(_key(pk, purge_sk(integration_id)))
        for start in range(0, len(keys), 25):
            pending: dict[str, Any] = {
                self.table_name: [
                    {"DeleteRequest": {"Key": key}} for key in keys[start : start + 25]
                ]
            }
            while pending:
                response = self.client.batch_write_item(RequestItems=pending)
                self.counter.record("BatchWriteItem")
                pending = response.get("UnprocessedItems") or {}
        return len(keys) - 1

    # ---- Stripe webhook events ------------------------------------------------------------

    def webhook_event_seen(self, event_id: str) -> bool:
        return self._get(_key(f"STRIPE_EVENT#{event_id}", "STRIPE_EVENT")) is not None

    def record_webhook_event(self, event_id: str, event_type: str, at: datetime) -> bool:
        """Remember a processed Stripe event for 35 days (Stripe resends for up to 30); False
        when it was already recorded."""
        item = {
            **_key(f"STRIPE_EVENT#{event_id}", "STRIPE_EVENT"),
            "type": items.s("stripe_event"),
            "event_type": items.s(event_type),
            "processed_at": items.t(at),
            "expires_at": items.n(int((at + WEBHOOK_EVENT_RETENTION).timestamp())),
        }
        try:
            self._transact([self._put(item, "attribute_not_exists(PK)")])
        except Conflict:
            return False
        return True

    def add_history(
        self, account_id: str, integration_id: str, entry: HistoryEntry, unique: str
    ) -> None:
        """One history line outside a state change (a payment event), written once per `unique`."""
        pk = account_pk(account_id)
        sk = f"{history_prefix(integration_id)}{format_instant(entry.at)}#{unique}"
        try:
            self._transact(
                [
                    self._put(
                        {**_key(pk, sk), **items.history_attributes(entry)},
                        "attribute_not_exists(PK)",
                    )
                ]
            )
        except Conflict:
            return

    # ---- sweeps -------------------------------------------------------------------------

    def due(self, kind: DueKind, now: datetime, *, page_size: int = 500) -> Iterator[DueKey]:
        """Every item due for `kind` at `now`, shard by shard, from the sparse index.

        Reads only index entries that are due: work grows with what is due, not the table.
        """
        for page in self.due_pages(kind, now, page_size=page_size):
            yield from page

    def due_pages(
        self, kind: DueKind, now: datetime, *, page_size: int = 500, first_shard: int = 0
    ) -> Iterator[list[DueKey]]:
        """The same, a page (one query, at most `page_size` entries) at a time, the shards in
        turn from `first_shard`: a sweep can stop between two pages, and overlapping sweeps
        that start at different shards mostly lease different entries."""
        bound = f"{format_instant(now)}$"  # '$' sorts just after '#': every entry due at <= now
        for turn in range(DUE_SHARDS):
            shard = (first_shard + turn) % DUE_SHARDS
            query: dict[str, Any] = {
                "TableName": self.table_name,
                "IndexName": DUE_INDEX,
                "KeyConditionExpression": "GSI1PK = :pk AND GSI1SK < :bound",
                "ExpressionAttributeValues": {
                    ":pk": items.s(due_partition(kind, shard)),
                    ":bound": items.s(bound),
                },
                "Limit": page_size,
            }
            while True:
                response = self.client.query(**query)
                self.counter.record("Query", response.get("ScannedCount", 0))
                page = []
                for item in response["Items"]:
                    due_at, _, subject = item["GSI1SK"]["S"].partition("#")
                    page.append(
                        DueKey(
                            account_id=item["PK"]["S"].removeprefix("ACCOUNT#"),
                            integration_id=subject,
                            due_at=due_at,
                            sk=item["SK"]["S"],
                        )
                    )
                if page:
                    yield page
                last = response.get("LastEvaluatedKey")
                if not last:
                    break
                query["ExclusiveStartKey"] = last

    def unsettled(self, now: datetime, *, page_size: int = 500) -> Iterator[tuple[str, str, str]]:
        """(account id, charge id, ledger key) of every ledger line that may hold money not yet
        applied or refunded, last written at or before `now` (the reconciler's share of the
        index)."""
        for key in self.due(DueKind.SETTLEMENT, now, page_size=page_size):
            yield key.account_id, key.integration_id, key.sk.removeprefix(CHARGE_PREFIX)

    def lease(self, key: DueKey, until: datetime) -> DueKey | None:
        """Move a due entry to `until`, conditionally on it still being where the index showed
        it: the sweep that wins hands it to the worker, and no other run sees it due until the
        lease ends (or the worker's decision rewrites the item). None: someone else moved it
        first (another sweep, the worker, a change of the item), or it is gone.

        An UpdateItem of the position alone: the item's version is untouched, so a user's
        change racing the lease is never refused for it."""
        from botocore.exceptions import ClientError  # noqa: PLC0415 - loaded with the client

        leased = replace(key, due_at=format_instant(until))
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=_key(account_pk(key.account_id), key.sk),
                UpdateExpression="SET GSI1SK = :leased",
                ConditionExpression="GSI1SK = :read",
                ExpressionAttributeValues={
                    ":leased": items.s(leased.position),
                    ":read": items.s(key.position),
                },
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in (
                "ConditionalCheckFailedException",
                "TransactionConflictException",
            ):
                return None
            raise
        finally:
            self.counter.record("UpdateItem")
        return leased

    def lease_all(self, keys: Sequence[DueKey], until: datetime) -> list[DueKey]:
        """`lease` for each key, side by side (a batch of the sweep's: as many threads as
        keys, at most 10); the leases won, in the order given."""
        if len(keys) <= 1:
            won = [self.lease(key, until) for key in keys]
        else:
            won = list(self._lease_pool.map(lambda key: self.lease(key, until), keys))
        return [key for key in won if key is not None]

    def release(self, leased: DueKey, to: DueKey) -> bool:
        """Give a lease back (a message the queue refused): the entry returns to its position
        `to`, conditionally on still being at the leased one."""
        return self.lease(leased, parse_instant(to.due_at)) is not None

    @functools.cached_property
    def _lease_pool(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(max_workers=LEASE_THREADS, thread_name_prefix="lease")

    # ---- low level ----------------------------------------------------------------------

    def _get(self, key: Item) -> Item | None:
        response = self.client.get_item(TableName=self.table_name, Key=key, ConsistentRead=True)
        item: Item | None = response.get("Item")
        self.counter.record("GetItem", 1 if item else 0)
        return item

    def _query_prefix(self, pk: str, prefix: str, *, keys_only: bool = False) -> Iterator[Item]:
        query: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :prefix)",
            "ExpressionAttributeValues": {":pk": items.s(pk), ":prefix": items.s(prefix)},
        }
        if keys_only:
            query["ProjectionExpression"] = "PK, SK"
        while True:
            response = self.client.query(**query)
            self.counter.record("Query", response.get("ScannedCount", 0))
            yield from response["Items"]
            last = response.get("LastEvaluatedKey")
            if not last:
                return
            query["ExclusiveStartKey"] = last

    def _put(
        self,
        item: Item,
        condition: str | None = None,
        values: Mapping[str, Any] | None = None,
        names: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        put: dict[str, Any] = {"TableName": self.table_name, "Item": item}
        if condition:
            put["ConditionExpression"] = condition
        if values:
            put["ExpressionAttributeValues"] = dict(values)
        if names:
            put["ExpressionAttributeNames"] = dict(names)
        return {"Put": put}

    def _transact(self, actions: list[dict[str, Any]]) -> None:
        """Apply `actions` all or none; a failed condition is a Conflict.

        One action is sent as the single-item write it is (PutItem, UpdateItem, DeleteItem
        with the same condition): as atomic and as conditional, at half the write capacity of
        a transaction and one write instead of a transaction's two phases.
        """
        from botocore.exceptions import ClientError  # noqa: PLC0415 - loaded with the client

        if len(actions) == 1 and next(iter(actions[0])) in _SINGLE_WRITES:
            self._write_one(actions[0])
            return
        try:
            self.client.transact_write_items(TransactItems=actions)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code")
            if code == "TransactionCanceledException":
                reasons = [
                    r.get("Code", "None") for r in error.response.get("CancellationReasons", [])
                ]
                failed = tuple(
                    index
                    for index, reason in enumerate(reasons)
                    if reason in ("ConditionalCheckFailed", "TransactionConflict")
                )
                if failed:
                    raise Conflict(_CHANGED, failed=failed, reasons=tuple(reasons)) from error
            raise
        finally:
            self.counter.record("TransactWriteItems")

    def _write_one(self, action: dict[str, Any]) -> None:
        from botocore.exceptions import ClientError  # noqa: PLC0415 - loaded with the client

        ((kind, parameters),) = action.items()
        operation, method = _SINGLE_WRITES[kind]
        try:
            getattr(self.client, method)(**parameters)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code")
            if code in ("ConditionalCheckFailedException", "TransactionConflictException"):
                raise Conflict(_CHANGED, failed=(0,)) from error
            raise
        finally:
            self.counter.record(operation)

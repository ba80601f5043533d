"""The key schema of the one table: every key and index position, built and parsed here only.

Single-table design: the partition is the account, so a tenant's data is one query away and
another tenant's is never addressable. `DATA_MODEL` lists every item with its keys, built by
the functions below; `data_model_table()` is the table that README.md and docs/architecture.md
show (`make docs` rewrites it there, and a test fails when the committed one differs).

Integrations sort right after their account (`ACCOUNT` < `ACCOUNT#INTEGRATION#...`), so the
first page of a list reads the account and the integrations in one query. A ledger line is keyed
by the thing it bought (its ledger key): the line is its own guard.

The due index (GSI `DueIndex`, KEYS_ONLY) is sparse and write-sharded: an item carries
`GSI1PK = DUE#{kind}#{shard}` and `GSI1SK = {due at}#{subject}` only while a sweep has work to
do with it. The ledger index (GSI `LedgerIndex`, KEYS_ONLY) orders an account's lines by their
time-ordered id, `GSI2SK`.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lifecycle.rules.calendar import format_instant
from lifecycle.rules.renewal import DueKind

Item = dict[str, dict[str, Any]]

DUE_INDEX = "DueIndex"
LEDGER_INDEX = "LedgerIndex"
DUE_SHARDS = 16

ACCOUNT_PREFIX = "ACCOUNT#"
ACCOUNT_SK = "ACCOUNT"
INTEGRATION_PREFIX = "ACCOUNT#INTEGRATION#"
ACTIVITY_PREFIX = "ACTIVITY#"
OUTBOX_PREFIX = "OUTBOX#"
CHARGE_PREFIX = "CHARGE#"
SUPERSEDED_PREFIX = f"{CHARGE_PREFIX}superseded:"
USER_PREFIX = "USER#"
# The account's count of users with billing access (`billing_users`).
USERS_SK = "USERS"
# The account's receipt counter.
RECEIPTS_SK = "RECEIPTS"


def _instant(at: datetime | str) -> str:
    """An instant as keys hold it (a string is a placeholder of the data-model table)."""
    return at if isinstance(at, str) else format_instant(at)


def key(pk: str, sk: str) -> Item:
    return {"PK": {"S": pk}, "SK": {"S": sk}}


@dataclass(frozen=True, slots=True)
class _Prefixed:
    """Keys that are a prefix and an id: `key` builds one, `id_of` reads its id back."""

    prefix: str

    def key(self, id_: str) -> str:
        return f"{self.prefix}{id_}"

    def id_of(self, text: str) -> str:
        return text.removeprefix(self.prefix)


_ACCOUNTS = _Prefixed(ACCOUNT_PREFIX)
_INTEGRATIONS = _Prefixed(INTEGRATION_PREFIX)
_OUTBOX = _Prefixed(OUTBOX_PREFIX)
# A ledger line, by its ledger key (the thing bought): the line and its guard in one item.
_CHARGES = _Prefixed(CHARGE_PREFIX)

account_pk = _ACCOUNTS.key
account_of = _ACCOUNTS.id_of
integration_sk = _INTEGRATIONS.key
integration_of = _INTEGRATIONS.id_of


def settings_sk(integration_id: str) -> str:
    return f"SETTINGS#{integration_id}"


def history_prefix(integration_id: str) -> str:
    return f"HISTORY#{integration_id}#"


def history_sk(integration_id: str, at: datetime | str, unique: str) -> str:
    """A history line of an integration: `unique` makes it one per state change and index."""
    return f"{history_prefix(integration_id)}{_instant(at)}#{unique}"


def activity_sk(at: datetime | str, unique: str) -> str:
    """An account activity line (account events, tombstones of deleted integrations)."""
    return f"{ACTIVITY_PREFIX}{_instant(at)}#{unique}"


def quote_sk(quote_id: str) -> str:
    return f"QUOTE#{quote_id}"


outbox_sk = _OUTBOX.key
event_id_of = _OUTBOX.id_of
charge_sk = _CHARGES.key
ledger_key_of = _CHARGES.id_of


def is_outbox(sk: str) -> bool:
    return sk.startswith(OUTBOX_PREFIX)


def superseded_charge_sk(charge_id: str) -> str:
    """Where a line is kept once a newer line bought the same thing again (ledger keys all
    start with their kind, `create:`, `renewal:`..., never `superseded:`)."""
    return f"{SUPERSEDED_PREFIX}{charge_id}"


def charge_ref_sk(request_ref: str) -> str:
    return f"CHARGEREF#{request_ref}"


def user_sk(user_id: str) -> str:
    return f"{USER_PREFIX}{user_id}"


def login_key(username: str) -> Item:
    """Which account (and user) a directory login belongs to: one item per login, ever."""
    return key(f"LOGIN#{username}", "LOGIN")


def user_id_key(user_id: str) -> Item:
    """Which account a user id belongs to (the local stack's token route reads it)."""
    return key(f"USERID#{user_id}", "USERID")


def stripe_event_key(event_id: str) -> Item:
    return key(f"STRIPE_EVENT#{event_id}", "STRIPE_EVENT")


def purge_sk(integration_id: str) -> str:
    return f"PURGE#{integration_id}"


def reminder_sk(integration_id: str) -> str:
    return f"REMINDER#{integration_id}"


def reminded_sk(integration_id: str, period_end: datetime | str) -> str:
    return f"REMINDED#{integration_id}#{_instant(period_end)}"


def email_sk(event_id: str, user_id: str) -> str:
    return f"EMAIL#{event_id}#{user_id}"


# ---- the due index -----------------------------------------------------------------------


def due_shard(subject: str) -> int:
    """A stable shard for the due index (crc32, not `hash()`, which changes per process)."""
    return zlib.crc32(subject.encode()) % DUE_SHARDS


def due_partition(kind: DueKind | str, shard: int | str) -> str:
    value = kind.value if isinstance(kind, DueKind) else kind
    return f"DUE#{value}#{shard:02d}" if isinstance(shard, int) else f"DUE#{value}#{shard}"


def due_position(at: datetime | str, subject: str) -> str:
    """An entry's sort key in the due index: when it is due, then what it is about."""
    return f"{_instant(at)}#{subject}"


def due_bound(now: datetime) -> str:
    """A sort key just above every entry due at or before `now` ('$' sorts after '#')."""
    return f"{format_instant(now)}$"


def parse_due_position(position: str) -> tuple[str, str]:
    """(due at, subject) of a due index sort key."""
    due_at, _, subject = position.partition("#")
    return due_at, subject


def due_attributes(kind: DueKind, subject: str, at: datetime) -> Item:
    """The attributes that put an item in the due index: `kind`'s part, due at `at`."""
    return {
        "GSI1PK": {"S": due_partition(kind, due_shard(subject))},
        "GSI1SK": {"S": due_position(at, subject)},
    }


# ---- the data model, as the docs show it -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Row:
    item: str
    pk: str
    sk: str
    notes: str


_A = account_pk("{a}")
DATA_MODEL: tuple[Row, ...] = (
    Row("account", _A, ACCOUNT_SK, "status, Stripe customer, version"),
    Row(
        "integration",
        _A,
        integration_sk("{id}"),
        "status, period, anchor, dunning, version; `GSI1PK/GSI1SK` while due",
    ),
    Row("settings", _A, settings_sk("{id}"), "opaque JSON kept verbatim (64 KiB max)"),
    Row(
        "history line",
        _A,
        history_sk("{id}", "{at}", "{version}.{n}"),
        "removed with the integration",
    ),
    Row(
        "activity",
        _A,
        activity_sk("{at}", "..."),
        "account events, tombstones of deleted integrations",
    ),
    Row("quote", _A, quote_sk("{id}"), "15-minute validity, TTL a day later"),
    Row(
        "charge (ledger line)",
        _A,
        charge_sk("{ledger key}"),
        "keyed by what it pays for (`create:..`, `unfreeze:..`, `renewal:{id}:{period start}`):"
        " the line is its own guard; status, PaymentIntent, paid action, revision, lease;"
        " `GSI2SK` = its id `ch_ULID`; in the settlement part of the due index while unsettled",
    ),
    Row(
        "replaced ledger line",
        _A,
        superseded_charge_sk("{ch_ULID}"),
        "a refunded line whose change was bought again (the new line took the key)",
    ),
    Row(
        "charge ref",
        _A,
        charge_ref_sk("{quote id}"),
        "the line a quote paid through (a retry of a paid quote answers as the first did)",
    ),
    Row(
        "outbox event",
        _A,
        outbox_sk("{subject}:{version}:{n}"),
        "published from the stream, TTL 7 days",
    ),
    Row(
        "receipt counter",
        _A,
        RECEIPTS_SK,
        "the account's last receipt number, moved in the settle transaction",
    ),
    Row(
        "reminder due",
        _A,
        reminder_sk("{id}"),
        "written with a cancel; in the reminder part of the due index",
    ),
    Row(
        "reminded",
        _A,
        reminded_sk("{id}", "{period end}"),
        "one deletion reminder per cancelled period, TTL 35 days after it",
    ),
    Row(
        "email",
        _A,
        email_sk("{event id}", "{user}"),
        "`claimed` (lease) then `sent`: one email per event and recipient, TTL 35 days",
    ),
    Row("purge marker", _A, purge_sk("{id}"), "in the deletion part of the due index"),
    Row(
        "user",
        _A,
        user_sk("{usr_ULID}"),
        "email, Cognito username, billing access, status (invited, active, removed), version",
    ),
    Row("billing users", _A, USERS_SK, "the count of users with billing access"),
    *(
        Row(item, found["PK"]["S"], found["SK"]["S"], notes)
        for item, found, notes in (
            (
                "login",
                login_key("{username}"),
                "the account (and user) a Cognito username belongs to, written once",
            ),
            (
                "user id",
                user_id_key("{usr}"),
                "the account of a user id (the local stack's token route)",
            ),
            ("Stripe event", stripe_event_key("{evt}"), "processed once, kept 35 days"),
        )
    ),
)
INDEXES: tuple[Row, ...] = (
    Row(
        f"`{DUE_INDEX}` entry (GSI1PK, GSI1SK; KEYS_ONLY)",
        due_partition("{renewal|deletion|settlement|reminder}", "{00..15}"),
        due_position("{due at}", "{id}"),
        "sparse: only while a sweep has work; the shard is crc32 of the id",
    ),
    Row(
        f"`{LEDGER_INDEX}` entry (PK, GSI2SK; KEYS_ONLY)",
        _A,
        "{ch_ULID}",
        "the charges list, newest first; a line found by its id alone",
    ),
)


def data_model_table() -> str:
    """The Markdown table of every item and index entry, as the docs show it."""
    lines = ["| item | PK | SK | notes |", "| --- | --- | --- | --- |"]
    for row in (*DATA_MODEL, *INDEXES):
        lines.append(f"| {row.item} | `{row.pk}` | `{row.sk}` | {row.notes} |")
    return "\n".join(lines) + "\n"

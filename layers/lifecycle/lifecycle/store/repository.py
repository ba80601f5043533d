"""The DynamoDB repository: `Store`, the one object the use cases read and write the table with.

It is composed of parts, each with one reason to change: the key schema (`keys`, shown in the
docs' data-model table), item shapes (`items`), the low level (`table`), an
account's partition (`accounts`), users and logins (`users`), the ledger (`ledger`), decisions
as transactions (`decisions`), the due index and its leases (`due`) and once-only markers
(`markers`). The names callers use are exported from here.
"""

from __future__ import annotations

from lifecycle.store.accounts import Accounts, Loaded, Page
from lifecycle.store.decisions import Decisions
from lifecycle.store.due import Due, DueKey, Reminded
from lifecycle.store.keys import DUE_INDEX, DUE_SHARDS, LEDGER_INDEX, due_partition, due_shard
from lifecycle.store.ledger import GuardTaken, Ledger, SubjectChanged
from lifecycle.store.markers import EMAIL_RETENTION, EmailClaim, Markers
from lifecycle.store.table import (
    ACCOUNT_SUBJECT,
    TRANSACTION_LIMIT,
    Expect,
    ReadCounter,
    default_client,
)
from lifecycle.store.users import LoginTaken, NoBillingUserLeft, Users

__all__ = [
    "ACCOUNT_SUBJECT",
    "DUE_INDEX",
    "DUE_SHARDS",
    "EMAIL_RETENTION",
    "LEDGER_INDEX",
    "TRANSACTION_LIMIT",
    "DueKey",
    "EmailClaim",
    "Expect",
    "GuardTaken",
    "Loaded",
    "LoginTaken",
    "NoBillingUserLeft",
    "Page",
    "ReadCounter",
    "Reminded",
    "Store",
    "SubjectChanged",
    "default_client",
    "due_partition",
    "due_shard",
]


class Store(Accounts, Users, Ledger, Decisions, Due, Markers):
    """The repository of one table. `client` is a boto3 DynamoDB client (lazy by default)."""

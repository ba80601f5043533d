"""Item shapes: the domain's dataclasses to and from DynamoDB attribute values (no keys here)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from lifecycle.rules.calendar import format_instant, parse_instant
from lifecycle.rules.ledger import ChargeRecord, ChargeStatus, ReceiptItem
from lifecycle.rules.model import (
    Account,
    AccountStatus,
    BillingState,
    Cancellation,
    CancelReason,
    DomainEvent,
    HistoryEntry,
    Integration,
    Status,
    SuspensionReason,
)
from lifecycle.rules.paid import (
    AccountReactivationPaid,
    CreatePaid,
    PaidAction,
    ReinstatePaid,
    RenewalPaid,
    UnfreezePaid,
)
from lifecycle.rules.quotes import Quote, QuoteLine
from lifecycle.rules.users import User, UserStatus
from lifecycle.store.fields import (
    MOMENT,
    TEXT,
    WHOLE,
    Codec,
    Field,
    Fields,
    choice,
    decode,
    encode,
    nullable,
    record,
    sequence,
)

AttributeValue = dict[str, Any]
Item = dict[str, AttributeValue]


def s(value: str) -> AttributeValue:
    return {"S": value}


def n(value: int) -> AttributeValue:
    return {"N": str(value)}


def t(value: datetime) -> AttributeValue:
    return {"S": format_instant(value)}


def j(value: Any) -> AttributeValue:
    """Opaque JSON kept verbatim as a string (no float-to-Decimal surprises)."""
    return {"S": json.dumps(value, separators=(",", ":"), sort_keys=True)}


def put_optional(item: Item, name: str, value: AttributeValue | None) -> None:
    if value is not None:
        item[name] = value


def get_s(item: Mapping[str, AttributeValue], name: str) -> str | None:
    value = item.get(name)
    return None if value is None else str(value["S"])


def req_s(item: Mapping[str, AttributeValue], name: str) -> str:
    return str(item[name]["S"])


def get_n(item: Mapping[str, AttributeValue], name: str, default: int = 0) -> int:
    value = item.get(name)
    return default if value is None else int(value["N"])


def req_t(item: Mapping[str, AttributeValue], name: str) -> datetime:
    return parse_instant(req_s(item, name))


def get_j(item: Mapping[str, AttributeValue], name: str) -> Any:
    text = get_s(item, name)
    return None if text is None else json.loads(text)


def string(codec: Codec) -> Codec:
    """A value whose stored form is text (of `codec`), kept as a string attribute."""
    return Codec(lambda value: s(codec.dump(value)), lambda value: codec.load(value["S"]))


def document(codec: Codec) -> Codec:
    """A JSON document (of `codec`) kept verbatim as a string attribute."""
    return Codec(
        lambda value: j(codec.dump(value)), lambda value: codec.load(json.loads(value["S"]))
    )


S = string(TEXT)
INSTANT = string(MOMENT)
N = Codec(n, lambda value: int(value["N"]))
BOOL = Codec(lambda value: {"BOOL": value}, lambda value: bool(value["BOOL"]))


def attributes(kind: str, source: object, fields: Fields) -> Item:
    """The item of `source` (its keys aside): its `type`, then its fields."""
    return {"type": s(kind), **encode(source, fields)}


CANCELLATION = document(
    record(
        Cancellation,
        (
            Field("reason", choice(CancelReason)),
            Field("comment", nullable(TEXT), default=None),
            Field("requested_at", MOMENT),
        ),
    )
)

INTEGRATION_FIELDS: Fields = (
    Field("id", S),
    Field("account_id", S),
    Field("name", S),
    Field("supplier", S),
    Field("channel", S),
    Field("plan", S),
    Field("status", string(choice(Status))),
    Field("billing_state", string(choice(BillingState))),
    Field("sync_enabled", BOOL, derived=True),
    Field("current_period_start", INSTANT),
    Field("current_period_end", INSTANT),
    Field("anchor", INSTANT),
    Field("period_index", N, default=0),
    Field("dunning_attempts", N, default=0),
    Field("created_at", INSTANT),
    Field("currency", S),
    Field("version", N, default=0),
    Field("next_attempt_at", INSTANT, sparse=True),
    Field("cancellation", CANCELLATION, sparse=True),
    Field("cancelled_from", string(choice(Status)), sparse=True),
    Field("suspension_reason", string(choice(SuspensionReason)), sparse=True),
    Field("suspended_from", string(choice(Status)), sparse=True),
    Field("suspended_at", INSTANT, sparse=True),
)


def integration_attributes(integration: Integration) -> Item:
    return attributes("integration", integration, INTEGRATION_FIELDS)


def integration_from(item: Mapping[str, AttributeValue]) -> Integration:
    return Integration(**decode(item, INTEGRATION_FIELDS))


ACCOUNT_FIELDS: Fields = (
    Field("id", S),
    Field("status", string(choice(AccountStatus))),
    Field("currency", S),
    Field("has_payment_method", BOOL, default=False),
    Field("created_at", INSTANT),
    Field("version", N, default=0),
    Field("stripe_customer_id", S, sparse=True),
    Field("cancellation", CANCELLATION, sparse=True),
    Field("status_changed_at", INSTANT, sparse=True),
    Field("payment_method_id", S, sparse=True),
)


def account_attributes(account: Account) -> Item:
    return attributes("account", account, ACCOUNT_FIELDS)


def account_from(item: Mapping[str, AttributeValue]) -> Account:
    return Account(**decode(item, ACCOUNT_FIELDS))


USER_FIELDS: Fields = (
    Field("id", S),
    Field("account_id", S),
    Field("username", S),
    Field("email", S),
    Field("billing_access", BOOL, default=False),
    Field("status", string(choice(UserStatus))),
    Field("created_at", INSTANT),
    Field("version", N, default=1),
)


def user_attributes(user: User) -> Item:
    return attributes("user", user, USER_FIELDS)


def user_from(item: Mapping[str, AttributeValue]) -> User:
    return User(**decode(item, USER_FIELDS))


HISTORY_FIELDS: Fields = (
    Field("at", INSTANT),
    Field("type", S, key="entry_type"),
    Field("actor", S),
    Field("details", document(Codec(dict, lambda data: data or {})), default_factory=dict),
)


def history_attributes(entry: HistoryEntry) -> Item:
    return attributes("history", entry, HISTORY_FIELDS)


def history_from(item: Mapping[str, AttributeValue]) -> HistoryEntry:
    return HistoryEntry(**decode(item, HISTORY_FIELDS))


def event_attributes(event: DomainEvent, event_id: str, expires_at: int) -> Item:
    item: Item = {
        "type": s("outbox"),
        "event_id": s(event_id),
        "detail_type": s(event.detail_type.value),
        "account_id": s(event.account_id),
        "at": t(event.at),
        "data": j(dict(event.data)),
        "expires_at": n(expires_at),
    }
    put_optional(item, "integration_id", s(event.integration_id) if event.integration_id else None)
    if event.sync_enabled is not None:
        item["sync_enabled"] = {"BOOL": event.sync_enabled}
    return item


def event_detail(item: Mapping[str, AttributeValue]) -> dict[str, Any]:
    """The EventBridge `detail` of an outbox item (what the sync engine receives)."""
    detail: dict[str, Any] = {
        "event_id": req_s(item, "event_id"),
        "account_id": req_s(item, "account_id"),
        "at": req_s(item, "at"),
        **(get_j(item, "data") or {}),
    }
    integration_id = get_s(item, "integration_id")
    if integration_id:
        detail["integration_id"] = integration_id
    if "sync_enabled" in item:
        detail["sync_enabled"] = bool(item["sync_enabled"]["BOOL"])
    return detail


QUOTE_LINE_FIELDS: Fields = (
    Field("integration_id", TEXT),
    Field("description", TEXT),
    Field("amount", WHOLE),
    Field("period_start", MOMENT),
    Field("period_end", MOMENT),
)
QUOTE_FIELDS: Fields = (
    Field("id", S),
    Field("account_id", S),
    Field("scope", S),
    Field("currency", S),
    Field("created_at", INSTANT),
    Field("expires_at", INSTANT, key="quote_expires_at"),
    Field("lines", document(sequence(record(QuoteLine, QUOTE_LINE_FIELDS))), default=()),
    Field(
        "versions",
        document(Codec(dict, lambda data: {k: int(v) for k, v in (data or {}).items()})),
        default_factory=dict,
    ),
)


def quote_attributes(quote: Quote, expires_at: int) -> Item:
    """`expires_at` is the item's time to live (the quote's own is `quote_expires_at`)."""
    return {**attributes("quote", quote, QUOTE_FIELDS), "expires_at": n(expires_at)}


def quote_from(item: Mapping[str, AttributeValue]) -> Quote:
    return Quote(**decode(item, QUOTE_FIELDS))


def receipts_issued_from(counter: Mapping[str, AttributeValue] | None) -> int:
    """The count of an account's receipt counter item (none yet: 0)."""
    return get_n(counter, "issued") if counter else 0


# ---------------------------------------------------------------------------- ledger lines
# The line, its paid action (a tagged JSON document) and its receipt items.

# The variants of a paid action: the `kind` that tags each, its class and its fields.
_PAID_ACTIONS: Mapping[str, tuple[type[PaidAction], Fields]] = {
    "create": (
        CreatePaid,
        (
            Field("integration_id", TEXT),
            Field("name", TEXT),
            Field("supplier", TEXT),
            Field("channel", TEXT),
            Field("plan", TEXT),
        ),
    ),
    "unfreeze": (
        UnfreezePaid,
        (Field("integration_id", TEXT), Field("period_start", MOMENT), Field("quote_id", TEXT)),
    ),
    "reinstate": (
        ReinstatePaid,
        (Field("integration_id", TEXT), Field("suspended_at", MOMENT), Field("quote_id", TEXT)),
    ),
    "account_reactivation": (
        AccountReactivationPaid,
        (
            Field("disabled_at", nullable(MOMENT), default=None),
            Field("integration_ids", sequence(TEXT), default=()),
            Field("quote_id", TEXT),
        ),
    ),
    "renewal": (RenewalPaid, (Field("integration_id", TEXT), Field("period_start", MOMENT))),
}
_KIND_OF = {variant: kind for kind, (variant, _) in _PAID_ACTIONS.items()}


def paid_action_document(action: PaidAction | None) -> dict[str, Any]:
    """A paid action as a tagged JSON object (`kind` names the variant)."""
    if action is None:
        return {}
    kind = _KIND_OF[type(action)]
    return {"kind": kind, **encode(action, _PAID_ACTIONS[kind][1])}


def paid_action_from(document: Mapping[str, Any] | None) -> PaidAction | None:
    """The paid action of a stored line; None for a line without one (nothing to apply)."""
    if not document or document.get("kind") not in _PAID_ACTIONS:
        return None
    variant, fields = _PAID_ACTIONS[document["kind"]]
    return variant(**decode(document, fields))


RECEIPT_ITEM_FIELDS: Fields = (
    Field("integration_id", TEXT),
    Field("name", TEXT),
    Field("plan", TEXT),
    Field("fee", TEXT),
    Field("period_start", MOMENT),
    Field("period_end", MOMENT),
    Field("amount", WHOLE),
    Field("proration", nullable(TEXT), default=None),
)
CHARGE_FIELDS: Fields = (
    Field("id", S),
    Field("account_id", S),
    Field("ledger_key", S),
    Field("kind", S),
    Field("amount", N, default=0),
    Field("currency", S),
    Field("description", S),
    Field("integration_ids", document(sequence(TEXT)), default=()),
    Field("status", string(choice(ChargeStatus))),
    Field("attempt", N, default=1),
    Field("applied", BOOL, default=False),
    Field("action", document(Codec(paid_action_document, paid_action_from)), default=None),
    Field("request_ref", S, default=""),
    Field("created_at", INSTANT),
    Field("updated_at", INSTANT),
    Field("lease_until", N, default=0),
    Field("disputed", BOOL, default=False),
    Field("revision", N, default=0),
    Field("customer_id", S, sparse=True),
    Field("stripe_payment_intent", S, sparse=True),
    Field("failure_message", S, sparse=True),
    Field("refund_reason", S, sparse=True),
    Field("refund_id", S, sparse=True),
    Field("supersedes", S, sparse=True),
    Field("superseded_by", S, sparse=True),
)
# Written only once the line has its receipt number.
RECEIPT_FIELDS: Fields = (
    Field("receipt_number", S, sparse=True),
    Field("succeeded_at", INSTANT, sparse=True),
    Field(
        "receipt_items",
        document(sequence(record(ReceiptItem, RECEIPT_ITEM_FIELDS))),
        default=(),
    ),
)


def charge_attributes(charge: ChargeRecord) -> Item:
    item = attributes("charge", charge, CHARGE_FIELDS)
    if charge.receipt_number:
        item |= encode(charge, RECEIPT_FIELDS)
    return item


def charge_from(item: Mapping[str, AttributeValue]) -> ChargeRecord:
    values = decode(item, CHARGE_FIELDS + RECEIPT_FIELDS)
    # A line without a `request_ref` of its own is driven by its ledger key.
    values["request_ref"] = values["request_ref"] or values["ledger_key"]
    return ChargeRecord(**values)

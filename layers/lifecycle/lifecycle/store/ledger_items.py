"""Ledger lines to and from DynamoDB attribute values: the line, its paid action (a tagged JSON
document) and its receipt items (no keys here: `lifecycle.store.keys`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lifecycle.rules.ledger import ChargeRecord, ChargeStatus, ReceiptItem
from lifecycle.rules.paid import (
    AccountReactivationPaid,
    CreatePaid,
    PaidAction,
    ReinstatePaid,
    RenewalPaid,
    UnfreezePaid,
)
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
from lifecycle.store.items import (
    BOOL,
    INSTANT,
    AttributeValue,
    Item,
    N,
    S,
    attributes,
    document,
    string,
)

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

"""A refund recorded on its ledger line: `refunded`, with its history lines, account activity line
and `ChargeRefunded` event, written once by whoever moves the line."""

from __future__ import annotations

from dataclasses import replace

from lifecycle.observability import record_events
from lifecycle.rules.effects import history_entry
from lifecycle.rules.errors import (
    Conflict,
)
from lifecycle.rules.ledger import ChargeRecord, ChargeStatus
from lifecycle.rules.model import (
    Actor,
    DetailType,
    DomainEvent,
)
from lifecycle.usecases.purchase import ATTEMPTS
from lifecycle.usecases.services import Services


def record_refund(
    services: Services, line: ChargeRecord, refund_id: str | None, actor: Actor
) -> ChargeRecord:
    """The line `refunded` (a refund we made, or one Stripe reports), with one history line per
    integration still there, one account activity line and one `ChargeRefunded` event, all
    once: whoever moves the line to `refunded` writes them, conditionally on its revision."""
    store = services.store
    for _ in range(ATTEMPTS):
        if line.status is ChargeStatus.REFUNDED:
            return line
        now = services.clock.now()
        reason = line.refund_reason or "refunded_at_stripe"
        after = replace(
            line,
            status=ChargeStatus.REFUNDED,
            refund_reason=reason,
            refund_id=refund_id or line.refund_id,
            lease_until=0,
            updated_at=now,
        )
        details = {"charge_id": line.id, "amount": line.amount, "reason": reason}
        present = [
            i for i in line.integration_ids if store.get_integration(line.account_id, i) is not None
        ]
        event = DomainEvent(
            detail_type=DetailType.CHARGE_REFUNDED,
            account_id=line.account_id,
            at=now,
            integration_id=line.integration_ids[0] if line.integration_ids else None,
            data={**details, "currency": line.currency, "applied": line.applied},
        )
        try:
            store.commit(
                extra=[
                    store.charge_write(line, after),
                    *store.ledger_effects(
                        line,
                        "refunded",
                        history=[
                            (i, history_entry("charge_refunded", actor, now, details))
                            for i in present
                        ],
                        activity=history_entry(
                            "charge_refunded",
                            actor,
                            now,
                            {**details, "integration_ids": list(line.integration_ids)},
                        ),
                        events=[event],
                    ),
                ]
            )
        except Conflict:
            fresh = store.reload_charge(line)
            if fresh is None:
                raise
            line = fresh
            continue
        record_events([event])
        return replace(after, revision=line.revision + 1)
    raise Conflict("The ledger line kept changing while its refund was recorded.")

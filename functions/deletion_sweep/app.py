"""Deletion sweep (hourly): delete cancel_pending integrations whose paid period has ended.
The ledger stays; a tombstone goes to the account's activity; product listings are never
touched (the sync engine is only told to stop, by IntegrationDeleted)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from lifecycle.observability import logger, metrics
from lifecycle.schedule import ScheduledEvent
from lifecycle.usecases import renewals
from lifecycle.usecases.services import services


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    scheduled = ScheduledEvent.parse(event)
    outcomes = Counter(o.result for o in renewals.delete_due(services()))
    metrics.add_metric(name="IntegrationsDeleted", unit="Count", value=outcomes["deleted"])
    logger.info(
        "deletion sweep",
        extra={"outcomes": dict(outcomes), "scheduled_time": scheduled.time.isoformat()},
    )
    return {"deleted": outcomes["deleted"], **{k: v for k, v in outcomes.items() if k != "deleted"}}

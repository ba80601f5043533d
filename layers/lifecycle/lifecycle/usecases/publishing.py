"""Publish the transactional outbox: table stream records to the domain event bus (EventBridge).

Exactly once as far as a stream allows: an outbox row is checked before it is sent and marked
after EventBridge accepted it, so a redelivered batch sends nothing twice. The one window left:
EventBridge accepted an entry and the mark was then lost (the function died, or DynamoDB
refused the write) before a retry of the same records; that event goes out a second time.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lifecycle import aws
from lifecycle.clock import Clock
from lifecycle.observability import logger
from lifecycle.rules.calendar import parse_instant
from lifecycle.settings import settings
from lifecycle.store import items, keys
from lifecycle.store.repository import Store

SOURCE = "integrations.lifecycle"
# PutEvents limits: at most 10 entries, and their sizes (counted as EventBridge counts them,
# see `entry_size`) at most 256 KB in all.
MAX_ENTRIES = 10
MAX_REQUEST_BYTES = 256 * 1024
_TIME_BYTES = 14

StreamRecord = Mapping[str, Any]


@functools.cache
def default_client() -> Any:
    """The EventBridge client, built on first use (never at import time). Its retries resend a
    throttled or failed PutEvents call as a whole; entries EventBridge rejected one by one are
    not retried: those are ours to report."""
    return aws.client("events")


@dataclass(frozen=True, slots=True)
class Outbound:
    """One outbox row of the batch, ready to send."""

    position: int  # index of its record in the batch
    account_id: str
    event_id: str
    entry: dict[str, Any]
    size: int


@dataclass(slots=True)
class Outcome:
    """What one batch came to; `failed` are the sequence numbers Lambda must deliver again."""

    published: int = 0
    already_published: int = 0
    ignored: int = 0
    put_events_calls: int = 0
    failed: list[str] = field(default_factory=list)

    def response(self) -> dict[str, Any]:
        """The partial batch response of a stream event source (`ReportBatchItemFailures`)."""
        return {"batchItemFailures": [{"itemIdentifier": number} for number in self.failed]}


def is_outbox_insert(record: StreamRecord) -> bool:
    """A new outbox row. Lambda's filter already drops everything else; this is the defence if
    the filter is ever loosened: updates (the `published_at` mark), TTL removals, state rows."""
    if record.get("eventName") != "INSERT":
        return False
    image = record.get("dynamodb", {}).get("NewImage") or {}
    return keys.is_outbox(str(image.get("SK", {}).get("S", "")))


def entry_size(entry: Mapping[str, Any]) -> int:
    """The size EventBridge counts for a PutEvents entry (its documented calculation)."""
    size = _TIME_BYTES if "Time" in entry else 0
    for name in ("Source", "DetailType", "Detail"):
        if name in entry:
            size += len(str(entry[name]).encode())
    return size + sum(len(str(r).encode()) for r in entry.get("Resources", ()))


def outbound(position: int, image: Mapping[str, Any], bus_name: str) -> Outbound:
    """The EventBridge entry of an outbox row (`NewImage`, in DynamoDB JSON)."""
    entry = {
        "Source": SOURCE,
        "DetailType": items.req_s(image, "detail_type"),
        "Detail": json.dumps(items.event_detail(image), separators=(",", ":")),
        "EventBusName": bus_name,
        "Time": parse_instant(items.req_s(image, "at")),
    }
    return Outbound(
        position=position,
        account_id=items.req_s(image, "account_id"),
        event_id=items.req_s(image, "event_id"),
        entry=entry,
        size=entry_size(entry),
    )


def publish_outbox(
    records: Sequence[StreamRecord],
    store: Store,
    events: Any,
    clock: Clock,
    bus_name: str | None = None,
) -> Outcome:
    """Send the batch's new outbox rows to the bus in stream order, mark each one sent.

    Ordering: the first record that cannot be published stops the batch, and it and every
    later record are reported as failed. Lambda checkpoints a stream at the lowest sequence
    number reported and delivers everything from there again, so reporting the later records
    changes nothing there; not *sending* them does: a later event of the same account must not
    reach the bus before the earlier one it follows (say IntegrationFrozen before
    FreezeScheduled), nor be sent now only to be sent again with the retry.

    `bus_name` defaults to the function's (EVENT_BUS_NAME); the runbook's republish of the
    outbox (ops/redrive.py) names the stack's.
    """
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    outcome = Outcome()
    candidates, stop_at = _candidates(records, bus_name or settings().event_bus_name, outcome)
    # One consistent read of the batch's rows (BatchGetItem), on every delivery: a Lambda
    # retry carries no mark of being one, and `mark_published` answers "already" only after
    # the send it was meant to prevent. Marking first would lose the event whenever the send
    # then fails.
    try:
        published = store.published_among([(c.account_id, c.event_id) for c in candidates])
    except (ClientError, BotoCoreError):
        logger.exception("could not check the outbox rows", extra={"rows": len(candidates)})
        if candidates:
            stop_at = candidates[0].position  # nothing is sent; all of it comes again
        published, candidates = set(), []
    pending: list[Outbound] = []
    for candidate in candidates:
        if candidate.event_id in published:
            outcome.already_published += 1
        else:
            pending.append(candidate)

    for chunk in put_events_chunks(pending):
        outcome.put_events_calls += 1
        try:
            response = events.put_events(Entries=[o.entry for o in chunk])
        except (ClientError, BotoCoreError) as error:
            # Throttled (after the client's own retries), denied, unreachable: none went out.
            logger.warning(
                "PutEvents failed", extra={"error": type(error).__name__, "entries": len(chunk)}
            )
            stop_at = min(stop_at, chunk[0].position)
            break
        results = response.get("Entries", [])
        first_rejected: Outbound | None = None
        for sent, result in zip(chunk, results, strict=True):
            if result.get("ErrorCode"):
                first_rejected = first_rejected or sent
                logger.warning(
                    "EventBridge rejected an event",
                    extra={"event_id": sent.event_id, "error_code": result["ErrorCode"]},
                )
                continue
            # Accepted entries are marked even after a rejected one in the same call: they are
            # on the bus, and sending them again with the retry would only add a duplicate.
            _mark(store, sent, clock, outcome)
        if first_rejected is not None:
            stop_at = min(stop_at, first_rejected.position)
            break

    outcome.failed = [str(record["dynamodb"]["SequenceNumber"]) for record in records[stop_at:]]
    return outcome


def _candidates(
    records: Sequence[StreamRecord], bus_name: str, outcome: Outcome
) -> tuple[list[Outbound], int]:
    """The batch's outbox rows up to the first one that cannot be sent, and that one's position
    (`len(records)` when there is none): a malformed row, or one too large for EventBridge, is
    retried, then the stream pointer goes to the EventsDLQ (alarmed) rather than the event
    being dropped silently."""
    candidates: list[Outbound] = []
    for position, record in enumerate(records):
        if not is_outbox_insert(record):
            outcome.ignored += 1
            continue
        try:
            candidate = outbound(position, record["dynamodb"]["NewImage"], bus_name)
        except (KeyError, ValueError, TypeError):
            logger.exception(
                "outbox record not publishable",
                extra={"sequence_number": record["dynamodb"].get("SequenceNumber")},
            )
            return candidates, position
        if candidate.size > MAX_REQUEST_BYTES:
            logger.error(
                "outbox event too large for EventBridge",
                extra={"event_id": candidate.event_id, "size": candidate.size},
            )
            return candidates, position
        candidates.append(candidate)
    return candidates, len(records)


def _mark(store: Store, sent: Outbound, clock: Clock, outcome: Outcome) -> None:
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    outcome.published += 1
    try:
        if not store.mark_published(sent.account_id, sent.event_id, clock.now()):
            # Someone marked it between our check and our send (two deliveries at once), or
            # the row has expired: either way this send was a duplicate.
            logger.warning("outbox event was already marked", extra={"event_id": sent.event_id})
    except (ClientError, BotoCoreError):
        # The event is on the bus. Reporting the record would make Lambda resend it for sure;
        # leaving it unmarked resends it only if this very record is ever delivered again.
        logger.exception("could not mark outbox event published", extra={"event_id": sent.event_id})


def put_events_chunks(pending: Sequence[Outbound]) -> Iterator[list[Outbound]]:
    """Consecutive runs of `pending`, each one PutEvents request within its limits."""
    chunk: list[Outbound] = []
    size = 0
    for candidate in pending:
        if chunk and (len(chunk) == MAX_ENTRIES or size + candidate.size > MAX_REQUEST_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(candidate)
        size += candidate.size
    if chunk:
        yield chunk

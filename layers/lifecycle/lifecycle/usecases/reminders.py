"""Deletion reminders (notifications.md): 3 days before a cancel_pending integration's period
end (at once when the cancel came later), one `DeletionReminder` per cancelled period, found
through the reminder part of the sparse due index. The renewal sweep sends them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from lifecycle.observability import logger, record_events
from lifecycle.rules.calendar import format_instant
from lifecycle.rules.errors import Conflict
from lifecycle.rules.renewal import DueKind, deletion_reminder, reminder_at
from lifecycle.store.repository import DueKey
from lifecycle.usecases.services import Services

_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class Reminder:
    integration_id: str
    result: str  # sent | already | not_due | dropped


def due(services: Services) -> Iterator[DueKey]:
    """The reminders due now (work grows with what is due, never with the table)."""
    return services.store.due(DueKind.REMINDER, services.clock.now())


def remind(services: Services, key: DueKey) -> Reminder:
    """Send one due reminder, once per cancelled period: re-read the integration, decide from
    its current state, write the event with the period's marker (or drop an entry with
    nothing left to send: deleted, taken back, reminded already)."""
    store = services.store
    for _ in range(_ATTEMPTS):
        now = services.clock.now()
        integration = store.get_integration(key.account_id, key.integration_id)
        due_at = reminder_at(integration) if integration is not None else None
        if integration is None or due_at is None:
            store.drop_reminder(key.account_id, key.integration_id, key.due_at)
            return Reminder(key.integration_id, "dropped")
        if format_instant(due_at) != key.due_at and due_at > now:
            return Reminder(key.integration_id, "not_due")  # cancelled again for a later period
        event = deletion_reminder(integration, now)
        if event is None:
            return Reminder(key.integration_id, "not_due")
        try:
            reminded = store.remind(integration, event)
        except Conflict:
            continue  # the integration changed meanwhile: decide again
        if reminded.sent:
            record_events([event])
            return Reminder(key.integration_id, "sent")
        return Reminder(key.integration_id, "already")
    logger.info("reminder left for the next sweep", extra={"integration_id": key.integration_id})
    return Reminder(key.integration_id, "conflict")


def send_due(services: Services) -> list[Reminder]:
    """Every reminder due now (the renewal sweep drains this beside its own messages)."""
    return [remind(services, key) for key in due(services)]

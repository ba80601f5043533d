"""Building the effects of a state change: the new version, its event and its history line."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from lifecycle.rules.model import (
    Actor,
    Decision,
    DetailType,
    DomainEvent,
    HistoryEntry,
    Integration,
)

_CAMEL_BOUNDARY = re.compile(r"(?<!^)(?=[A-Z])")


def history_type(detail_type: DetailType) -> str:
    """`FreezeScheduled` -> `freeze_scheduled`: history lines use the event's name."""
    return _CAMEL_BOUNDARY.sub("_", detail_type.value).lower()


def next_version(integration: Integration, **changes: Any) -> Integration:
    """The integration with `changes` applied and its version bumped (the store's condition)."""
    return replace(integration, version=integration.version + 1, **changes)


def integration_event(
    after: Integration, detail_type: DetailType, at: datetime, **data: Any
) -> DomainEvent:
    return DomainEvent(
        detail_type=detail_type,
        account_id=after.account_id,
        integration_id=after.id,
        sync_enabled=after.sync_enabled,
        at=at,
        data=data,
    )


def history_entry(
    kind: DetailType | str, actor: Actor, at: datetime, details: Mapping[str, Any] | None = None
) -> HistoryEntry:
    name = history_type(kind) if isinstance(kind, DetailType) else kind
    return HistoryEntry(at=at, type=name, actor=str(actor), details=dict(details or {}))


def recorded_change(
    before: Integration,
    after: Integration,
    detail_type: DetailType,
    actor: Actor,
    at: datetime,
    details: Mapping[str, Any],
    event: Mapping[str, Any] | None = None,
    writes_off: str | None = None,
) -> Decision:
    """A change with its one event and its history line, both named by `detail_type`: the line
    holds `details`, the event `event` (the same `details` unless given)."""
    return Decision(
        before=before,
        after=after,
        events=(
            integration_event(after, detail_type, at, **(details if event is None else event)),
        ),
        history=(history_entry(detail_type, actor, at, details),),
        writes_off=writes_off,
    )

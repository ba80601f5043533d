"""The EventBridge (Scheduler) scheduled event the sweeps receive, checked by hand.

A frozen dataclass rather than a Powertools parser model: the sweeps read two fields, and
`aws_lambda_powertools.utilities.parser` loads pydantic and the parser's models, a third of a
sweep's cold start. An event that is not a scheduled event is refused before any work.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lifecycle.rules.calendar import parse_instant


class InvalidScheduledEvent(ValueError):
    """The event is not the schedule's (a field is missing or of the wrong type)."""


@dataclass(frozen=True, slots=True)
class ScheduledEvent:
    """What the schedules' explicit `Input` sends (template.yaml). `sam local generate-event`
    and some tools omit `version`, so it is not required; `detail` carries the attempt number."""

    id: str
    time: datetime
    source: str
    detail_type: str
    detail: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, event: Any) -> ScheduledEvent:
        if not isinstance(event, Mapping):
            raise InvalidScheduledEvent("a scheduled event is a JSON object")
        text = {name: event.get(name) for name in ("id", "time", "source", "detail-type")}
        missing = sorted(name for name, value in text.items() if not isinstance(value, str))
        if missing:
            raise InvalidScheduledEvent(f"missing or not a string: {', '.join(missing)}")
        detail = event.get("detail", {})
        if not isinstance(detail, Mapping):
            raise InvalidScheduledEvent("detail must be an object")
        try:
            time = parse_instant(str(text["time"]))
        except ValueError as error:
            raise InvalidScheduledEvent(f"time is not an RFC 3339 instant: {error}") from None
        return cls(
            id=str(text["id"]),
            time=time,
            source=str(text["source"]),
            detail_type=str(text["detail-type"]),
            detail=dict(detail),
        )

"""The billing calendar: UTC instants to the second, RFC 3339 text, anchored months."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    """A UTC instant, to the second."""
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def normalize(moment: datetime) -> datetime:
    """The same instant in UTC, truncated to the whole second (the calendar's resolution)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetimes are ambiguous: pass a timezone-aware instant")
    return moment.astimezone(UTC).replace(microsecond=0)


def format_instant(moment: datetime) -> str:
    """RFC 3339 with a `Z`, to the second: `2027-01-31T10:00:00Z`."""
    return normalize(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_instant(text: str) -> datetime:
    """Parse RFC 3339 (any offset, optional fraction) into a normalized UTC instant."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    return normalize(moment)


def add_month(anchor: datetime, months: int) -> datetime:
    """`anchor` moved `months` calendar months, same day and time, clamped to the month's end.

    Always computed from the anchor, never from the previous period's end, so a period anchored
    on the 31st comes back to the 31st after a short month (Jan 31 -> Feb 28 -> Mar 31).
    """
    if months < 0:
        raise ValueError("months must not be negative")
    anchor = normalize(anchor)
    month_index = anchor.month - 1 + months
    year = anchor.year + month_index // 12
    month = month_index % 12 + 1
    day = min(anchor.day, calendar.monthrange(year, month)[1])
    return anchor.replace(year=year, month=month, day=day)


def whole_seconds(delta: timedelta) -> int:
    """A duration in whole seconds (the proration unit)."""
    return delta.days * 86_400 + delta.seconds

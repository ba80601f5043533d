"""The clock port: every use case reads time from one injected clock, always UTC."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol

from lifecycle.rules.calendar import normalize


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """Wall-clock time, UTC, to the second."""

    def now(self) -> datetime:
        return normalize(datetime.now(UTC))


class FixedClock:
    """A clock that moves only when told to (tests, and the local business clock)."""

    def __init__(self, start: datetime) -> None:
        self._now = normalize(start)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta) -> datetime:
        if delta < timedelta(0):
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._now = normalize(self._now + delta)
            return self._now

    def set(self, moment: datetime) -> datetime:
        moment = normalize(moment)
        with self._lock:
            if moment < self._now:
                raise ValueError("the clock only moves forward")
            self._now = moment
            return self._now

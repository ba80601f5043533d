"""The business clock of the local stack and the scheduler that fires template.yaml's schedules.

The clock is what the lifecycle rules see: it stands still until told to move, only forwards,
and it is kept in the data folder across restarts. Moving it runs every schedule slot that came
due on the way, in time order, with the payload EventBridge Scheduler would send (the
schedule's `Input` from the template, its placeholders filled in), the clock set to the slot.

Slots are the multiples of each schedule's rate since the Unix epoch (a `rate(15 minutes)`
fires at :00, :15, :30 and :45). A slot at which its sweep has nothing to do is skipped: the
sweep's next slot is the first one at or after the earliest entry of its kind in the table's
sparse `DueIndex`, so every due item is processed at the first slot after it falls due, as the
deployed schedule would process it, and a month with nothing due is one step.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from lifecycle.clock import FixedClock
from lifecycle.rules.calendar import format_instant, normalize, parse_instant
from lifecycle.rules.renewal import DueKind
from local.events import ACCOUNT_ID, REGION
from local.template import evaluate, folder_of, resources

SCHEDULE_EVENT_TYPES = ("ScheduleV2", "Schedule")
# The sweep each scheduled function is, by its folder: which DueIndex entries it works on.
SWEEP_KINDS: Mapping[str, DueKind] = {
    "renewal_sweep": DueKind.RENEWAL,
    "deletion_sweep": DueKind.DELETION,
}
# Entries a sweep also works on, beside its own: the renewal sweep sends the ledger lines that
# may hold money not yet applied or refunded to the worker (the reconciler). One left unsettled
# after a run (a payment still in flight) is not run for again in the same advance.
# The deletion reminders are the renewal sweep's too.
ALSO_SWEPT: Mapping[str, tuple[DueKind, ...]] = {
    "renewal_sweep": (DueKind.SETTLEMENT, DueKind.REMINDER)
}
# A sweep that leaves due items behind is run again at its next slots (as Scheduler would); after
# this many runs without progress the advance stops running it and says so.
MAX_RUNS_WITHOUT_PROGRESS = 3
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# ---------------------------------------------------------------- the clock


class BusinessClock(FixedClock):
    """A `FixedClock` kept in a JSON file: it starts at the wall-clock time of its first use."""

    def __init__(self, path: Path) -> None:
        self.path = path
        start = datetime.now(UTC)
        if path.exists():
            start = parse_instant(json.loads(path.read_text(encoding="utf-8"))["now"])
        super().__init__(start)
        self._write_lock = threading.Lock()
        if not path.exists():
            self._save(self.now())

    def advance(self, delta: timedelta) -> datetime:
        moment = super().advance(delta)
        self._save(moment)
        return moment

    def set(self, moment: datetime) -> datetime:
        moment = super().set(moment)
        self._save(moment)
        return moment

    def _save(self, moment: datetime) -> None:
        with self._write_lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            partial = self.path.with_suffix(".partial")
            partial.write_text(json.dumps({"now": format_instant(moment)}), encoding="utf-8")
            partial.replace(self.path)


# ---------------------------------------------------------------- schedules of the template


@dataclass(frozen=True, slots=True)
class Schedule:
    """One scheduled event of a function in template.yaml."""

    name: str  # the event's logical name, e.g. RenewalSchedule
    function: str  # the function's logical id
    folder: str  # functions/<folder>/app.py
    every: timedelta
    input: str | None  # the schedule's Input, `${...}` and `<aws.scheduler...>` unfilled
    kind: DueKind | None  # the DueIndex entries it sweeps; None: run at every slot
    also: tuple[DueKind, ...] = ()  # entries it works on beside its own (ALSO_SWEPT)


def parse_rate(expression: str) -> timedelta:
    """`rate(15 minutes)` -> 15 minutes. Cron expressions are not supported locally."""
    found = _RATE.match(expression.strip())
    if found is None:
        raise ValueError(f"unsupported schedule expression {expression!r}: use rate(N unit)")
    amount, unit = int(found.group(1)), found.group(2).rstrip("s")
    if amount <= 0:
        raise ValueError(f"a rate must be positive: {expression!r}")
    return timedelta(**{f"{unit}s": amount})


def schedules(document: dict[str, Any] | None = None) -> tuple[Schedule, ...]:
    """Every ScheduleV2 (or Schedule) event of every function, in template order."""
    found = []
    for logical_id, resource in resources("AWS::Serverless::Function", document).items():
        properties = resource["Properties"]
        folder = folder_of(properties)
        for name, event in (properties.get("Events") or {}).items():
            if event["Type"] not in SCHEDULE_EVENT_TYPES:
                continue
            event_properties = event["Properties"]
            # RenewalsEnabled, the incident switch, at its default.
            if evaluate(event_properties.get("State", "ENABLED")) == "DISABLED":
                continue
            raw_input = event_properties.get("Input")
            if isinstance(raw_input, dict):
                raw_input = raw_input.get("Fn::Sub")
            found.append(
                Schedule(
                    name=name,
                    function=logical_id,
                    folder=folder,
                    every=parse_rate(
                        event_properties.get("ScheduleExpression") or event_properties["Schedule"]
                    ),
                    input=raw_input if isinstance(raw_input, str) else None,
                    kind=SWEEP_KINDS.get(folder),
                    also=ALSO_SWEPT.get(folder, ()),
                )
            )
    return tuple(found)


def slot_at_or_after(every: timedelta, moment: datetime) -> datetime:
    """The first slot of a rate schedule at or after `moment`."""
    step = int(every.total_seconds())
    seconds = int((normalize(moment) - _EPOCH).total_seconds())
    return _EPOCH + timedelta(seconds=-(-seconds // step) * step)


def slot_after(every: timedelta, moment: datetime) -> datetime:
    """The first slot of a rate schedule strictly after `moment`."""
    return slot_at_or_after(every, normalize(moment) + timedelta(seconds=1))


def scheduled_event(schedule: Schedule, at: datetime) -> dict[str, Any]:
    """The event EventBridge Scheduler delivers for the slot `at`: the template's Input with
    Scheduler's context attributes filled in (the default scheduled-event shape without one)."""
    name = f"{schedule.function}-{schedule.name}"
    arn = f"arn:aws:scheduler:{REGION}:{ACCOUNT_ID}:schedule/default/{name}"
    if schedule.input is None:
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.scheduler",
            "account": ACCOUNT_ID,
            "time": format_instant(at),
            "region": REGION,
            "resources": [arn],
            "detail": {},
        }
    text = schedule.input
    for placeholder, value in {
        "${AWS::AccountId}": ACCOUNT_ID,
        "${AWS::Region}": REGION,
        "<aws.scheduler.execution-id>": str(uuid.uuid4()),
        "<aws.scheduler.scheduled-time>": format_instant(at),
        "<aws.scheduler.schedule-arn>": arn,
        "<aws.scheduler.attempt-number>": "1",
    }.items():
        text = text.replace(placeholder, value)
    event: dict[str, Any] = json.loads(text)
    return event


# ---------------------------------------------------------------- the scheduler


@dataclass(frozen=True, slots=True)
class Run:
    schedule: Schedule
    at: datetime
    result: Any
    seconds: float

    def view(self) -> dict[str, Any]:
        return {
            "schedule": f"{self.schedule.function}.{self.schedule.name}",
            "at": format_instant(self.at),
            "result": self.result,
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True, slots=True)
class Advance:
    now: datetime
    runs: tuple[Run, ...]
    stalled: Mapping[str, str]

    def view(self) -> dict[str, Any]:
        return {
            "now": format_instant(self.now),
            "runs": [run.view() for run in self.runs],
            "stalled": dict(self.stalled),
        }


class Scheduler:
    """Moves `clock` forward, running the schedules' slots that fall on the way.

    `fire(schedule, at)` runs one slot to completion (the function and whatever it causes) and
    returns the function's result; `earliest_due(kind)` reads the due index
    (`Store.earliest_due`).
    """

    def __init__(
        self,
        clock: FixedClock,
        plan: tuple[Schedule, ...],
        earliest_due: Callable[[DueKind], datetime | None],
        fire: Callable[[Schedule, datetime], Any],
    ) -> None:
        self.clock = clock
        self.plan = plan
        self.earliest_due = earliest_due
        self.fire = fire
        self._lock = threading.Lock()
        self._due: dict[DueKind, datetime | None] = {}
        self._left: set[DueKind] = set()

    def advance_to(self, target: datetime) -> Advance:
        target = normalize(target)
        with self._lock:
            if target < self.clock.now():
                raise ValueError("the business clock only moves forward")
            self._due.clear()  # the API may have changed what is due since the last advance
            runs: list[Run] = []
            stalled: dict[str, str] = {}
            without_progress: dict[str, int] = {}
            self._left.clear()
            while True:
                slots = self._next_slots(self.clock.now(), target, stalled)
                if not slots:
                    break
                at = slots[0][0]
                for slot_at, schedule in slots:
                    if slot_at != at:
                        break
                    self.clock.set(at)
                    began = time.monotonic()
                    result = self.fire(schedule, at)
                    self._due.clear()  # a run changes what is due
                    runs.append(Run(schedule, at, result, time.monotonic() - began))
                    for kind in schedule.also:
                        left = self._earliest(kind)
                        if left is not None and left <= at:
                            self._left.add(kind)
                    reason = self._stall_reason(schedule, at, result, without_progress)
                    if reason is not None:
                        stalled[schedule.name] = reason
            self.clock.set(target)
            return Advance(self.clock.now(), tuple(runs), stalled)

    def _earliest(self, kind: DueKind) -> datetime | None:
        """The due index's earliest entry of `kind`, read once between two runs."""
        if kind not in self._due:
            self._due[kind] = self.earliest_due(kind)
        return self._due[kind]

    def _next_slots(
        self, cursor: datetime, target: datetime, stalled: Mapping[str, str]
    ) -> list[tuple[datetime, Schedule]]:
        """The next slot of each schedule that has something to do by `target`, earliest first
        (template order among equals)."""
        slots = []
        for schedule in self.plan:
            if schedule.name in stalled:
                continue
            at = slot_after(schedule.every, cursor)
            if schedule.kind is not None:
                kinds = (schedule.kind, *(k for k in schedule.also if k not in self._left))
                found = [d for d in map(self._earliest, kinds) if d is not None]
                if not found:
                    continue
                at = max(at, slot_at_or_after(schedule.every, min(found)))
            if at <= target:
                slots.append((at, schedule))
        slots.sort(key=lambda slot: slot[0])  # stable: template order among equal slots
        return slots

    def _stall_reason(
        self, schedule: Schedule, at: datetime, result: Any, without_progress: dict[str, int]
    ) -> str | None:
        if schedule.kind is None:
            return None
        due = self._earliest(schedule.kind)
        if due is None or due > at:
            without_progress[schedule.name] = 0
            return None
        without_progress[schedule.name] = without_progress.get(schedule.name, 0) + 1
        if without_progress[schedule.name] < MAX_RUNS_WITHOUT_PROGRESS:
            return None
        return (
            f"{schedule.folder} left an item due at {format_instant(due)} unprocessed after"
            f" {MAX_RUNS_WITHOUT_PROGRESS} runs; not run again in this advance"
        )

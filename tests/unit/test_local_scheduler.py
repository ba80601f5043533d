"""The local stack's scheduler and event-source filter (local/clock.py, local/sources.py): which
slots run, in which order, with which payload; nothing started, no sockets."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from lifecycle.clock import FixedClock
from lifecycle.rules.calendar import format_instant, utc
from lifecycle.rules.renewal import DueKind
from local.clock import (
    MAX_RUNS_WITHOUT_PROGRESS,
    Schedule,
    Scheduler,
    parse_rate,
    scheduled_event,
    schedules,
    slot_after,
    slot_at_or_after,
)
from local.sources import event_sources, pattern_matches


def sweep(kind: DueKind, every: timedelta) -> Schedule:
    """The sweep of `kind`'s due entries every `every`, named as template.yaml names it."""
    title = kind.value.capitalize()
    return Schedule(
        name=f"{title}Schedule",
        function=f"{title}SweepFunction",
        folder=f"{kind.value}_sweep",
        every=every,
        input=None,
        kind=kind,
    )


RENEWAL = sweep(DueKind.RENEWAL, timedelta(minutes=15))
DELETION = sweep(DueKind.DELETION, timedelta(hours=1))


class Table:
    """Due entries by kind; a sweep run at `at` handles every entry due by then."""

    def __init__(self, **due: list[datetime]) -> None:
        self.due = {DueKind(kind): sorted(times) for kind, times in due.items()}
        self.runs: list[tuple[str, datetime, datetime]] = []  # (schedule, slot, clock)
        self.stuck = False

    def earliest(self, kind: DueKind) -> datetime | None:
        times = self.due.get(kind) or []
        return times[0] if times else None

    def fire(self, clock: FixedClock):
        def run(schedule: Schedule, at: datetime) -> dict[str, int]:
            self.runs.append((schedule.name, at, clock.now()))
            assert schedule.kind is not None
            handled = [t for t in self.due.get(schedule.kind, []) if t <= at]
            if not self.stuck:
                self.due[schedule.kind] = [t for t in self.due[schedule.kind] if t > at]
            return {"handled": len(handled)}

        return run


def scheduler(table: Table, start: datetime) -> tuple[Scheduler, FixedClock]:
    clock = FixedClock(start)
    return Scheduler(clock, (RENEWAL, DELETION), table.earliest, table.fire(clock)), clock


def test_rates_are_read_as_durations():
    assert parse_rate("rate(15 minutes)") == timedelta(minutes=15)
    assert parse_rate("rate(1 hour)") == timedelta(hours=1)
    assert parse_rate("rate(2 days)") == timedelta(days=2)
    with pytest.raises(ValueError):
        parse_rate("cron(0 12 * * ? *)")


def test_slots_are_multiples_of_the_rate():
    every = timedelta(minutes=15)

    assert slot_after(every, utc(2026, 12, 21, 10, 7, 30)) == utc(2026, 12, 21, 10, 15)
    assert slot_after(every, utc(2026, 12, 21, 10, 15)) == utc(2026, 12, 21, 10, 30)
    assert slot_at_or_after(every, utc(2026, 12, 21, 10, 15)) == utc(2026, 12, 21, 10, 15)
    assert slot_at_or_after(timedelta(hours=1), utc(2026, 12, 21, 10, 0, 1)) == utc(
        2026, 12, 21, 11
    )


def test_an_item_is_processed_at_the_first_slot_after_it_falls_due_and_nothing_else_runs():
    table = Table(renewal=[utc(2026, 12, 21, 10, 7)])
    moving, clock = scheduler(table, utc(2026, 11, 21, 10, 7))

    advance = moving.advance_to(utc(2027, 1, 21))

    assert [(name, at) for name, at, _ in table.runs] == [
        ("RenewalSchedule", utc(2026, 12, 21, 10, 15))
    ]
    assert table.runs[0][2] == utc(2026, 12, 21, 10, 15)  # the clock stood at the slot
    assert clock.now() == advance.now == utc(2027, 1, 21)


def test_slots_run_in_time_order_and_the_template_order_breaks_ties():
    table = Table(
        renewal=[utc(2026, 12, 21, 10, 50), utc(2026, 12, 21, 9, 1)],
        deletion=[utc(2026, 12, 21, 9, 59)],
    )
    moving, _ = scheduler(table, utc(2026, 12, 21, 8))

    moving.advance_to(utc(2026, 12, 22))

    assert [(name, at.strftime("%H:%M")) for name, at, _ in table.runs] == [
        ("RenewalSchedule", "09:15"),
        ("DeletionSchedule", "10:00"),
        ("RenewalSchedule", "11:00"),
    ]


def test_a_slot_where_both_schedules_are_due_runs_the_renewal_first():
    table = Table(renewal=[utc(2026, 12, 21, 9, 59)], deletion=[utc(2026, 12, 21, 9, 59)])
    moving, _ = scheduler(table, utc(2026, 12, 21, 8))

    moving.advance_to(utc(2026, 12, 21, 11))

    assert [name for name, _, _ in table.runs] == ["RenewalSchedule", "DeletionSchedule"]


def test_the_clock_never_moves_back():
    moving, clock = scheduler(Table(), utc(2026, 12, 21, 8))

    with pytest.raises(ValueError):
        moving.advance_to(utc(2026, 12, 21, 7))
    assert clock.now() == utc(2026, 12, 21, 8)


def test_a_sweep_that_leaves_its_item_due_runs_again_then_is_reported_stalled():
    table = Table(renewal=[utc(2026, 12, 21, 9)])
    table.stuck = True
    moving, _ = scheduler(table, utc(2026, 12, 21, 8))

    advance = moving.advance_to(utc(2026, 12, 22))

    assert len(table.runs) == MAX_RUNS_WITHOUT_PROGRESS
    assert [at.strftime("%H:%M") for _, at, _ in table.runs] == ["09:00", "09:15", "09:30"]
    assert "RenewalSchedule" in advance.stalled


def test_the_template_schedules_become_eventbridge_scheduled_events():
    found = {s.folder: s for s in schedules()}
    at = utc(2026, 12, 21, 10, 15)

    event = scheduled_event(found["renewal_sweep"], at)

    assert found["renewal_sweep"].every == timedelta(minutes=15)
    assert found["deletion_sweep"].every == timedelta(hours=1)
    assert (event["detail-type"], event["source"], event["version"]) == (
        "Scheduled Event",
        "aws.scheduler",
        "0",
    )
    assert event["time"] == format_instant(at)
    assert event["resources"][0].startswith("arn:aws:scheduler:")
    assert "<aws." not in json.dumps(event) and "${" not in json.dumps(event)


def test_only_new_outbox_rows_reach_the_publisher():
    (source,) = event_sources("DynamoDB")
    (pattern,) = [json.loads(f["Pattern"]) for f in source.properties["FilterCriteria"]["Filters"]]

    def record(name: str, sort_key: str) -> dict:
        image = {"PK": {"S": "ACCOUNT#a"}, "SK": {"S": sort_key}}
        return {"eventName": name, "dynamodb": {"Keys": image, "NewImage": image}}

    assert pattern_matches(pattern, record("INSERT", "OUTBOX#int_1:2:0"))
    assert not pattern_matches(pattern, record("MODIFY", "OUTBOX#int_1:2:0"))
    assert not pattern_matches(pattern, record("INSERT", "ACCOUNT#INTEGRATION#int_1"))
    assert not pattern_matches(pattern, {"eventName": "REMOVE", "dynamodb": {}})

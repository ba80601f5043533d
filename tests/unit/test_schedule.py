"""The sweeps' scheduled event is checked before any work, without pydantic."""

import pytest

from lifecycle.rules.calendar import utc
from lifecycle.schedule import InvalidScheduledEvent, ScheduledEvent
from local.clock import scheduled_event, schedules

EVENT = {
    "version": "0",
    "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
    "detail-type": "Scheduled Event",
    "source": "aws.scheduler",
    "account": "123456789012",
    "time": "2026-12-21T10:00:00Z",
    "region": "us-east-1",
    "resources": ["arn:aws:scheduler:us-east-1:123456789012:schedule/default/renewal-sweep"],
    "detail": {"attempt": "1"},
}


def test_a_scheduled_event_is_read_with_its_time_in_utc():
    scheduled = ScheduledEvent.parse(EVENT)
    assert scheduled.time == utc(2026, 12, 21, 10)
    assert scheduled.detail_type == "Scheduled Event"
    assert scheduled.detail == {"attempt": "1"}


def test_version_and_detail_may_be_left_out():
    event = {k: v for k, v in EVENT.items() if k not in ("version", "detail")}
    assert ScheduledEvent.parse(event).detail == {}


def test_an_offset_time_is_the_same_instant():
    assert ScheduledEvent.parse({**EVENT, "time": "2026-12-21T11:00:00+01:00"}).time == utc(
        2026, 12, 21, 10
    )


@pytest.mark.parametrize(
    "event",
    [
        None,
        [],
        {k: v for k, v in EVENT.items() if k != "time"},
        {**EVENT, "time": "yesterday"},
        {**EVENT, "time": "2026-12-21T10:00:00"},  # no offset: ambiguous
        {**EVENT, "id": 7},
        {**EVENT, "detail": "attempt 1"},
    ],
)
def test_anything_else_is_refused(event):
    with pytest.raises(InvalidScheduledEvent):
        ScheduledEvent.parse(event)


def test_every_schedule_of_the_template_sends_an_event_that_parses():
    # The local scheduler fills each schedule's Input as EventBridge Scheduler does.
    at = utc(2026, 12, 21, 10)
    assert schedules()
    for schedule in schedules():
        assert ScheduledEvent.parse(scheduled_event(schedule, at)).time == at

"""Deletion reminders: 3 days before a cancel_pending integration's period end (at once when the
cancel comes later), once per cancelled period (an un-cancel and a new cancel in the same period
send none), found through the reminder part of the due index, sent by the renewal sweep."""

from __future__ import annotations

from datetime import timedelta

import pytest

from functions.renewal_sweep.app import lambda_handler as renewal_sweep
from lifecycle.rules.calendar import format_instant
from lifecycle.rules.renewal import DueKind
from lifecycle.settings import settings
from lifecycle.usecases import reminders, renewals
from local.events import LambdaContext
from local.inprocess import invoke
from tests.factories import add_account
from tests.store_reads import outbox_events

pytestmark = pytest.mark.integration

BODY = {
    "name": "Acme Supply to Shopify",
    "supplier": "acme",
    "channel": "shopify",
    "plan": "standard",
}
SECOND = timedelta(seconds=1)


@pytest.fixture
def integration(services):
    add_account(services.store, "acc_1")
    status, body = invoke("POST", "/v1/integrations", body=BODY)
    assert status == 201, body
    return services.store.get_integration("acc_1", body["id"])


def cancel(integration_id: str) -> None:
    status, body = invoke(
        "POST", "/v1/integrations/{id}/cancel", {"id": integration_id}, body={"reason": "other"}
    )
    assert status == 200, body


def uncancel(integration_id: str) -> None:
    status, body = invoke(
        "POST", "/v1/integrations/{id}/reactivate", {"id": integration_id}, body={}
    )
    assert status == 200, body


def sent(services) -> list[dict]:
    return [
        e for e in outbox_events(services.store, "acc_1") if e["detail-type"] == "DeletionReminder"
    ]


def results(services) -> list[str]:
    return [r.result for r in reminders.send_due(services)]


def cancelled_and_reminded(services, clock, integration, before_end=timedelta(days=3)) -> None:
    """`integration` cancelled, then the reminders sent `before_end` before its period end: its
    own is sent."""
    cancel(integration.id)
    clock.set(integration.current_period_end - before_end)
    assert results(services) == ["sent"]


def test_the_reminder_is_sent_three_days_before_the_period_end_once(services, clock, integration):
    end = integration.current_period_end
    cancel(integration.id)

    clock.set(end - timedelta(days=3) - SECOND)
    assert results(services) == []
    clock.set(end - timedelta(days=3))
    assert results(services) == ["sent"]
    clock.set(end - timedelta(days=1))
    assert results(services) == []  # its entry left the index with the event

    (event,) = sent(services)
    assert event["detail"]["integration_id"] == integration.id
    assert event["detail"]["name"] == "Acme Supply to Shopify"
    assert event["detail"]["deletes_at"] == format_instant(end)
    assert event["detail"]["at"] == format_instant(end - timedelta(days=3))
    assert event["detail"]["event_id"] == f"{integration.id}:reminder:{format_instant(end)}:0"


def test_an_uncancel_and_a_new_cancel_in_the_same_period_send_no_second_reminder(
    services, clock, integration
):
    cancelled_and_reminded(services, clock, integration, timedelta(days=2))

    uncancel(integration.id)
    cancel(integration.id)

    assert results(services) == ["already"]
    assert results(services) == []
    settings.cache_clear()
    assert len(sent(services)) == 1


def test_an_uncancel_before_the_reminder_sends_none_and_a_new_cancel_sends_one(
    services, clock, integration
):
    end = integration.current_period_end
    cancel(integration.id)
    uncancel(integration.id)
    clock.set(end - timedelta(days=3))
    assert results(services) == ["dropped"]
    assert sent(services) == []

    cancel(integration.id)
    assert results(services) == ["sent"]
    settings.cache_clear()
    assert len(sent(services)) == 1


def test_a_cancel_later_than_three_days_before_the_end_is_reminded_at_the_next_sweep(
    services, clock, integration
):
    end = integration.current_period_end
    clock.set(end - timedelta(hours=20))
    cancel(integration.id)

    clock.advance(timedelta(minutes=15))
    assert results(services) == ["sent"]
    assert sent(services)[0]["detail"]["at"] == format_instant(clock.now())


def test_a_cancelled_period_renewed_later_is_reminded_again_for_its_next_period(
    services, clock, integration
):
    end = integration.current_period_end
    cancelled_and_reminded(services, clock, integration)
    uncancel(integration.id)
    clock.set(end)
    for key in services.store.due(DueKind.RENEWAL, clock.now()):
        renewals.renew(services, key.account_id, key.integration_id)
    renewed = services.store.get_integration("acc_1", integration.id)
    assert renewed.current_period_start == end

    cancel(integration.id)
    clock.set(renewed.current_period_end - timedelta(days=3))
    assert results(services) == ["sent"]
    assert [e["detail"]["deletes_at"] for e in sent(services)] == [
        format_instant(end),
        format_instant(renewed.current_period_end),
    ]


def test_the_sweep_reads_only_the_reminders_that_are_due_and_sends_them(
    services, clock, integration
):
    others = []
    for n in range(5):
        status, body = invoke("POST", "/v1/integrations", body={**BODY, "name": f"Feed {n}"})
        assert status == 201
        others.append(body["id"])
    for integration_id in [integration.id, *others[:2]]:
        cancel(integration_id)
    clock.set(integration.current_period_end - timedelta(days=3))
    services.store.counter.items_read = 0

    keys = list(reminders.due(services))

    assert sorted(k.integration_id for k in keys) == sorted([integration.id, *others[:2]])
    assert services.store.counter.items_read == 3  # the due entries, nothing else


def test_the_renewal_sweep_handler_sends_the_due_reminders(
    services, clock, integration, monkeypatch
):
    # Nothing is due for renewal here: the queue is never called.
    monkeypatch.setenv("RENEWAL_QUEUE_URL", "http://127.0.0.1:9/queue/unused")
    settings.cache_clear()
    cancel(integration.id)
    clock.set(integration.current_period_end - timedelta(days=3))
    scheduled = {
        "version": "0",
        "id": "1",
        "detail-type": "Scheduled Event",
        "source": "aws.scheduler",
        "account": "123456789012",
        "time": format_instant(clock.now()),
        "region": "us-east-1",
        "resources": ["arn:aws:scheduler:us-east-1:123456789012:schedule/default/x"],
        "detail": {},
    }

    renewal_sweep(scheduled, LambdaContext("renewal-sweep"))

    settings.cache_clear()
    assert len(sent(services)) == 1

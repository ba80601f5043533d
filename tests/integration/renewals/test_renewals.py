"""Renewals, dunning and deletions against DynamoDB Local and localstripe, clock injected."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta

import pytest

from lifecycle.rules.calendar import utc
from lifecycle.rules.errors import Conflict
from lifecycle.rules.integration import Action
from lifecycle.rules.ledger import ChargeStatus
from lifecycle.rules.model import (
    AccountStatus,
    BillingState,
    CancelReason,
    Status,
    SuspensionReason,
)
from lifecycle.rules.renewal import DueKind
from lifecycle.usecases import renewals
from local.localstripe import swap_card
from tests import factories
from tests.factories import T0

pytestmark = pytest.mark.integration

END = utc(2026, 12, 21, 10)
NEXT_END = utc(2027, 1, 21, 10)


def act(world, integration_id, action, **command):
    subject = world.store.get_integration("acc_1", integration_id)
    account = world.store.get_account("acc_1")
    decision = factories.act(subject, action, world.clock.now(), account.status, **command)
    world.store.commit(decision)
    return decision.after


def sweep_at(world, at, integration_id, *results):
    """The renewal sweep run at `at` answers `results`; `integration_id` as stored after it."""
    world.clock.set(at)
    assert [o.result for o in world.sweep()] == list(results)
    return world.store.get_integration("acc_1", integration_id)


def test_active_renews_for_the_monthly_fee_over_the_next_anchored_period(world):
    world.add("int_a")
    subject = sweep_at(world, END, "int_a", "renewed")
    assert (subject.status, subject.current_period_start, subject.current_period_end) == (
        Status.ACTIVE,
        END,
        NEXT_END,
    )
    renewal = world.ledger("int_a")[0]
    assert (renewal.amount, renewal.status, renewal.kind) == (
        4900,
        ChargeStatus.SUCCEEDED,
        "renewal",
    )
    assert world.payment_intents() == 2  # the creation and this renewal


def test_freeze_pending_becomes_frozen_at_renewal_for_the_frozen_fee(world):
    world.add("int_f")
    world.clock.set(T0 + timedelta(days=10))
    act(world, "int_f", Action.FREEZE)
    world.clock.set(END)
    world.sweep()
    subject = world.store.get_integration("acc_1", "int_f")
    assert (subject.status, subject.sync_enabled) == (Status.FROZEN, False)
    assert world.ledger("int_f")[0].amount == 900
    world.clock.set(NEXT_END)
    world.sweep()
    assert world.ledger("int_f")[0].amount == 900  # frozen stays frozen, 900 a month
    assert world.store.get_integration("acc_1", "int_f").current_period_end == utc(2027, 2, 21, 10)


def test_cancel_pending_is_not_charged_and_is_deleted_at_the_period_end(world):
    world.add("int_c")
    act(world, "int_c", Action.CANCEL, reason=CancelReason.TOO_EXPENSIVE)
    world.clock.set(END - timedelta(seconds=1))
    assert renewals.delete_due(world.services) == []  # nothing before the paid period ends
    world.clock.set(END)
    assert world.sweep() == []  # not in the renewal part of the index at all
    assert world.payment_intents() == 1
    assert [o.result for o in renewals.delete_due(world.services)] == ["deleted"]
    assert world.store.get_integration("acc_1", "int_c") is None
    assert world.store.history("acc_1", "int_c") == []
    assert [a.type for a in world.store.activity("acc_1")] == ["integration_deleted"]
    assert len(world.ledger("int_c")) == 1  # the ledger is kept
    assert renewals.delete_due(world.services) == []


def test_integrations_of_a_cancelled_account_are_suspended_and_it_becomes_disabled(world):
    from lifecycle.rules.account import AccountAction  # noqa: PLC0415

    world.add("int_1")
    world.add("int_2", plan="premium")
    act(world, "int_2", Action.FREEZE)
    world.add("int_3")
    act(world, "int_3", Action.CANCEL, reason=CancelReason.OTHER)
    account = world.store.get_account("acc_1")
    decision = factories.act_on_account(
        account,
        AccountAction.CANCEL,
        world.store.all_integrations("acc_1"),
        T0,
        reason=CancelReason.OTHER,
    )
    world.store.commit(account=decision)
    world.clock.set(END)
    assert sorted(o.result for o in world.sweep()) == ["suspended", "suspended"]
    assert [o.result for o in renewals.delete_due(world.services)] == ["deleted"]
    one, two = (world.store.get_integration("acc_1", i) for i in ("int_1", "int_2"))
    assert (one.status, one.suspension_reason, one.suspended_from) == (
        Status.SUSPENDED,
        SuspensionReason.ACCOUNT_CANCELLED,
        Status.ACTIVE,
    )
    assert two.suspended_from is Status.FROZEN
    assert world.store.get_account("acc_1").status is AccountStatus.DISABLED
    assert world.payment_intents() == 3  # the three creations; no renewal charged


def test_anchor_on_the_31st_renews_across_february(world):
    world.clock.set(utc(2027, 1, 31, 10))
    world.add("int_31")
    for end, next_end in [
        (utc(2027, 2, 28, 10), utc(2027, 3, 31, 10)),
        (utc(2027, 3, 31, 10), utc(2027, 4, 30, 10)),
    ]:
        world.clock.set(end)
        world.sweep()
        subject = world.store.get_integration("acc_1", "int_31")
        assert (subject.current_period_start, subject.current_period_end) == (end, next_end)


def test_every_15_minute_tick_around_the_period_end_charges_once(world):
    world.add("int_t")
    charges = []
    for minutes in range(-45, 91, 15):
        world.clock.set(max(world.clock.now(), END + timedelta(minutes=minutes)))
        world.sweep()
        charges.append(len([c for c in world.ledger("int_t") if c.kind == "renewal"]))
    assert charges == [0, 0, 0, 1, 1, 1, 1, 1, 1, 1]
    assert world.payment_intents() == 2


def due_at_end(world, count):
    """`count` integrations (int_0, int_1...) added now, the clock set to their period end: their
    ids and their renewals due."""
    ids = [f"int_{i}" for i in range(count)]
    for integration_id in ids:
        world.add(integration_id)
    world.clock.set(END)
    return ids, list(renewals.due(world.services, DueKind.RENEWAL))


def test_the_sweep_run_twice_at_once_charges_each_integration_once(world):
    ids, keys = due_at_end(world, 8)
    barrier = threading.Barrier(2)
    errors = []

    def run():
        barrier.wait()
        for key in keys:
            try:
                renewals.renew(world.services, key.account_id, key.integration_id)
            except Exception as error:
                errors.append(type(error).__name__)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Whatever lost a race is retried, as SQS would.
    world.sweep()
    assert set(errors) <= {"Conflict", "PaymentPending"}
    for integration_id in ids:
        renewal_lines = [c for c in world.ledger(integration_id) if c.kind == "renewal"]
        assert [(c.amount, c.status) for c in renewal_lines] == [(4900, ChargeStatus.SUCCEEDED)]
        assert world.store.get_integration("acc_1", integration_id).current_period_end == NEXT_END
    assert world.payment_intents() == 2 * len(ids)


def test_a_sweep_that_crashed_half_way_is_rerun_and_charges_each_once(world):
    ids, keys = due_at_end(world, 6)
    for key in keys[:3]:  # then the process dies
        renewals.renew(world.services, key.account_id, key.integration_id)
    assert sorted(o.result for o in world.sweep()) == ["renewed"] * 3
    assert world.sweep() == []
    assert world.payment_intents() == 2 * len(ids)


def test_dunning_past_due_still_syncing_then_retries_then_suspended_on_day_7(world):
    world.add("int_d")
    swap_card(world.stripe_base, world.customer, "declined")
    subject = sweep_at(world, END, "int_d", "past_due")
    assert (subject.status, subject.sync_enabled, subject.billing_state) == (
        Status.ACTIVE,
        True,
        BillingState.PAST_DUE,
    )
    assert subject.next_attempt_at == END + timedelta(days=1)
    attempts = []
    for day in (1, 3, 7):
        world.clock.set(END + timedelta(days=day) - timedelta(seconds=1))
        assert world.sweep() == []
        world.clock.set(END + timedelta(days=day))
        attempts.extend(o.result for o in world.sweep())
    assert attempts == ["past_due", "past_due", "suspended"]
    subject = world.store.get_integration("acc_1", "int_d")
    assert (subject.status, subject.suspension_reason, subject.sync_enabled) == (
        Status.SUSPENDED,
        SuspensionReason.NON_PAYMENT,
        False,
    )
    (line,) = [c for c in world.ledger("int_d") if c.kind == "renewal"]
    assert (line.status, line.attempt) == (ChargeStatus.WRITTEN_OFF, 4)
    assert world.payment_intents() == 1 + 4  # the creation, then four declined attempts


def test_a_successful_retry_clears_past_due(world):
    world.add("int_r")
    swap_card(world.stripe_base, world.customer, "declined")
    world.clock.set(END)
    world.sweep()
    swap_card(world.stripe_base, world.customer, "ok")
    subject = sweep_at(world, END + timedelta(days=1), "int_r", "renewed")
    assert (subject.billing_state, subject.current_period_end) == (BillingState.OK, NEXT_END)
    (line,) = [c for c in world.ledger("int_r") if c.kind == "renewal"]
    assert (line.status, line.attempt, line.amount) == (ChargeStatus.SUCCEEDED, 2, 4900)


def test_the_sweep_reads_what_is_due_not_the_table(world):
    """10,000 integrations of which 100 are due: the due query reads 100 index entries."""
    template = world.add("int_template")
    world.store.load_integrations(
        [
            replace(
                template,
                id=f"int_later_{i:05d}",
                current_period_end=END + timedelta(days=5),
                anchor=T0 + timedelta(days=5),
                current_period_start=T0 + timedelta(days=5),
            )
            for i in range(9_899)
        ]
        + [replace(template, id=f"int_due_{i:03d}") for i in range(100)]
    )
    world.clock.set(END)
    world.store.counter.items_read = 0
    found = list(renewals.due(world.services, DueKind.RENEWAL))
    assert len(found) == 101  # 100 + the template itself
    assert world.store.counter.items_read == 101


@pytest.mark.parametrize("round_", range(12))
def test_reactivate_racing_the_deletion_never_both_keeps_and_deletes(world, round_):
    integration_id = f"int_race_{round_}"
    world.add(integration_id)
    act(world, integration_id, Action.CANCEL, reason=CancelReason.OTHER)
    world.clock.set(END)
    pending = world.store.get_integration("acc_1", integration_id)
    barrier = threading.Barrier(2)
    results = {}

    def reactivate():
        barrier.wait()
        try:
            decision = factories.act(pending, Action.REACTIVATE, END)
            world.store.commit(decision)
            results["reactivate"] = "ok"
        except Conflict:
            results["reactivate"] = "conflict"

    def delete():
        barrier.wait()
        try:
            results["delete"] = renewals.delete(world.services, "acc_1", integration_id).result
        except Conflict:
            results["delete"] = "conflict"

    threads = [threading.Thread(target=reactivate), threading.Thread(target=delete)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    kept = world.store.get_integration("acc_1", integration_id)
    tombstones = [
        a
        for a in world.store.activity("acc_1")
        if a.details.get("integration_id") == integration_id
    ]
    if results["reactivate"] == "ok":
        assert results["delete"] in ("conflict", "not_due")
        assert kept is not None and kept.status is Status.ACTIVE
        assert tombstones == []
    else:
        assert results["delete"] == "deleted"
        assert kept is None
        assert len(tombstones) == 1

"""The store against DynamoDB Local: atomic transitions, races, the sparse due index."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta

import pytest

from lifecycle.rules.errors import Conflict
from lifecycle.rules.integration import Action, Command, NewIntegration, create, decide
from lifecycle.rules.model import AccountStatus, CancelReason, Status, user
from lifecycle.rules.renewal import DueKind, decide_deletion, decide_renewal
from lifecycle.store.repository import Store, due_shard
from tests.factories import CATALOG, T0, account
from tests.store_reads import outbox_events

pytestmark = pytest.mark.integration

ALICE = user("alice")


def created(store: Store, integration_id: str = "int_1", at=T0, account_id: str = "acc_1"):
    decision = create(
        integration_id,
        account(account_id),
        NewIntegration("Acme Supply to Shopify", "acme-supply", "shopify", "standard"),
        at,
        ALICE,
        CATALOG,
    )
    store.commit(decision, settings={"pricing_rules": {"markup": 1.25}})
    return decision.after


def act(subject, action, at, **command):
    return decide(
        subject,
        Command(action, ALICE, **command),
        at,
        account_status=AccountStatus.ACTIVE,
        catalog=CATALOG,
    )


def test_a_created_integration_reads_back_with_its_settings_verbatim(store):
    store.create_account(account())
    subject = created(store)
    loaded = store.load("acc_1", "int_1")
    assert loaded.integration == subject
    assert loaded.settings == {"pricing_rules": {"markup": 1.25}}
    assert [h.type for h in store.history("acc_1", "int_1")] == ["integration_created"]


def test_another_account_cannot_read_the_integration(store):
    created(store)
    assert store.get_integration("acc_2", "int_1") is None
    assert store.load("acc_2", "int_1").integration is None


def test_creating_the_same_integration_twice_is_a_conflict(store):
    created(store)
    with pytest.raises(Conflict):
        created(store)


def test_a_transition_writes_state_history_and_outbox_event_together(store):
    subject = created(store)
    decision = act(subject, Action.FREEZE, T0 + timedelta(days=2))
    store.commit(decision)
    assert store.get_integration("acc_1", "int_1").status is Status.FREEZE_PENDING
    assert [h.type for h in store.history("acc_1", "int_1")] == [
        "integration_created",
        "freeze_scheduled",
    ]
    assert [e["detail-type"] for e in outbox_events(store, "acc_1")] == [
        "IntegrationCreated",
        "FreezeScheduled",
    ]


def test_a_failed_transaction_writes_none_of_state_history_and_event(store, dynamodb_client):
    subject = created(store)
    decision = act(subject, Action.FREEZE, T0 + timedelta(days=2))
    # Inject a failure: the outbox row this transition would write already exists.
    dynamodb_client.put_item(
        TableName=store.table_name,
        Item={
            "PK": {"S": "ACCOUNT#acc_1"},
            "SK": {"S": f"OUTBOX#int_1:{decision.after.version}:0"},
            "event_id": {"S": "injected"},
            "detail_type": {"S": "Injected"},
            "account_id": {"S": "acc_1"},
            "at": {"S": "2026-11-23T10:00:00Z"},
        },
    )
    with pytest.raises(Conflict):
        store.commit(decision)
    assert store.get_integration("acc_1", "int_1").status is Status.ACTIVE
    assert [h.type for h in store.history("acc_1", "int_1")] == ["integration_created"]
    assert [e["detail-type"] for e in outbox_events(store, "acc_1")] == [
        "IntegrationCreated",
        "Injected",
    ]


def test_two_concurrent_transitions_from_the_same_version_exactly_one_succeeds(store):
    subject = created(store)
    at = T0 + timedelta(days=3)
    decisions = [
        act(subject, Action.FREEZE, at),
        act(subject, Action.CANCEL, at, reason=CancelReason.TOO_EXPENSIVE),
    ] * 4  # eight racers, two kinds of change, all read at the same version
    barrier = threading.Barrier(len(decisions))
    outcomes: list[str] = []

    def race(decision):
        barrier.wait()
        try:
            store.commit(decision)
            outcomes.append("ok")
        except Conflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=race, args=(d,)) for d in decisions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["conflict"] * 7 + ["ok"]
    final = store.get_integration("acc_1", "int_1")
    assert final.version == subject.version + 1
    history = [h.type for h in store.history("acc_1", "int_1")]
    assert len(history) == 2  # created + exactly one of the two changes
    assert len(outbox_events(store, "acc_1")) == 2


def test_a_stale_write_is_a_conflict_not_an_overwrite(store):
    subject = created(store)
    store.commit(act(subject, Action.FREEZE, T0 + timedelta(days=1)))
    with pytest.raises(Conflict):
        store.commit(act(subject, Action.CANCEL, T0 + timedelta(days=2), reason=CancelReason.OTHER))
    assert store.get_integration("acc_1", "int_1").status is Status.FREEZE_PENDING


def test_deletion_removes_integration_settings_and_keeps_a_tombstone(store):
    subject = created(store)
    pending = act(
        subject, Action.CANCEL, T0 + timedelta(days=1), reason=CancelReason.SWITCHED_PROVIDER
    )
    store.commit(pending)
    deletion = decide_deletion(pending.after, subject.current_period_end)
    store.commit(deletion)
    assert store.load("acc_1", "int_1").integration is None
    tombstones = [a for a in store.activity("acc_1") if a.type == "integration_deleted"]
    assert len(tombstones) == 1
    assert tombstones[0].details["reason"] == "switched_provider"
    assert tombstones[0].details["deleted_at"] == "2026-12-21T10:00:00Z"
    assert outbox_events(store, "acc_1")[-1]["detail-type"] == "IntegrationDeleted"
    assert outbox_events(store, "acc_1")[-1]["detail"]["sync_enabled"] is False


def test_list_pages_after_the_last_id_and_filters_by_status(store):
    subjects = [created(store, f"int_{i:02d}") for i in range(7)]
    store.commit(act(subjects[2], Action.FREEZE, T0 + timedelta(days=1)))
    first = store.list_integrations("acc_1", limit=3)
    assert [i.id for i in first.integrations] == ["int_00", "int_01", "int_02"]
    assert first.last_id == "int_02"
    second = store.list_integrations("acc_1", limit=3, after=first.last_id)
    assert [i.id for i in second.integrations] == ["int_03", "int_04", "int_05"]
    pending = store.list_integrations("acc_1", limit=3, status=Status.FREEZE_PENDING)
    assert [i.id for i in pending.integrations] == ["int_02"]


def test_the_due_query_reads_only_what_is_due(store):
    """2,000 integrations not due and 40 due: the sweep reads the 40 index entries only."""
    not_due_at = T0 + timedelta(days=20)  # their periods end 2027-01-10
    due_at = T0 - timedelta(days=31)  # their periods ended 2026-11-21
    later = created(store, "int_later_0000", at=not_due_at)
    store.load_integrations([replace(later, id=f"int_later_{i:04d}") for i in range(1, 2000)])
    due_ids = set()
    for i in range(40):
        subject = created(store, f"int_due_{i:02d}", at=due_at)
        due_ids.add(subject.id)
    # Some cancel_pending ones are due for deletion, not renewal.
    pending = created(store, "int_cancelled", at=due_at)
    store.commit(act(pending, Action.CANCEL, due_at + timedelta(days=1), reason=CancelReason.OTHER))
    store.counter.items_read = 0
    found = list(store.due(DueKind.RENEWAL, T0))
    assert {key.integration_id for key in found} == due_ids
    assert store.counter.items_read == 40
    deletions = list(store.due(DueKind.DELETION, T0))
    assert [key.integration_id for key in deletions] == ["int_cancelled"]


def test_due_entries_move_with_the_state(store):
    subject = created(store, at=T0)
    end = subject.current_period_end
    assert list(store.due(DueKind.RENEWAL, end - timedelta(seconds=1))) == []
    assert [k.integration_id for k in store.due(DueKind.RENEWAL, end)] == ["int_1"]
    renewal = decide_renewal(subject, end, account_status=AccountStatus.ACTIVE, catalog=CATALOG)
    store.commit(renewal.declined)
    # Past due: due again at the first retry, one day later.
    assert list(store.due(DueKind.RENEWAL, end + timedelta(hours=23))) == []
    assert [k.due_at for k in store.due(DueKind.RENEWAL, end + timedelta(days=1))] == [
        "2026-12-22T10:00:00Z"
    ]
    with pytest.raises(Conflict):  # the paid decision was read at the old version
        store.commit(renewal.paid)


def test_shards_spread_integrations():
    shards = {due_shard(f"int_{i}") for i in range(200)}
    assert len(shards) == 16


def test_a_single_row_change_is_one_conditional_write_and_still_refuses_a_second_writer(store):
    """One row needs no transaction: a conditional PutItem is as atomic at half the capacity.
    Racing writers of the same Stripe event: exactly one records it."""
    store.counter.by_operation.clear()
    results: list[bool] = []
    barrier = threading.Barrier(6)

    def record() -> None:
        barrier.wait()
        results.append(store.record_webhook_event("evt_1", "payment_intent.succeeded", T0))

    threads = [threading.Thread(target=record) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == [False] * 5 + [True]
    assert store.webhook_event_seen("evt_1")
    # Six writes, no transaction (the counter is not thread-safe: its keys are what count).
    assert set(store.counter.by_operation) == {"PutItem", "GetItem"}


def test_a_stale_single_row_write_is_a_conflict_not_an_overwrite(store):
    store.create_account(account())
    with pytest.raises(Conflict):
        store.create_account(replace(account(), status=AccountStatus.DISABLED))
    assert store.get_account("acc_1").status is AccountStatus.ACTIVE

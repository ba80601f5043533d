"""The renewal sweep leases what it sends: overlapping runs, later runs and a run cut short never
send a due integration twice while it is in flight (DynamoDB Local; payments fake; SQS moto)."""

from __future__ import annotations

import json
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from functions.renewal_sweep import app as renewal_sweep
from lifecycle.clock import FixedClock
from lifecycle.payments.fake import FakePayments
from lifecycle.rules.calendar import add_month
from lifecycle.rules.catalog import DEFAULT_CATALOG
from lifecycle.rules.model import AccountStatus, BillingState, Integration
from lifecycle.rules.renewal import DueKind
from lifecycle.settings import settings
from lifecycle.store.repository import due_shard
from lifecycle.usecases import renewals
from lifecycle.usecases.services import Services, use_services
from local.events import LambdaContext
from tests.factories import T0, add_account, integration
from tests.integration.renewals.test_schedule_handlers import scheduled_event

pytestmark = pytest.mark.integration

END = add_month(T0, 1)
ACCOUNTS = 20


def due_integration(n: int, anchor=T0) -> Integration:
    return integration(
        integration_id=f"int_{n:05d}",
        account_id=f"acc_{n % ACCOUNTS:02d}",
        anchor=anchor,
        version=1,
    )


def load(store, count: int) -> list[str]:
    """`count` integrations due at END, over ACCOUNTS accounts with a card each."""
    for a in range(ACCOUNTS):
        add_account(store, f"acc_{a:02d}", stripe_customer_id=f"cus_{a}")
    subjects = [due_integration(n) for n in range(count)]
    chunks = [subjects[i : i + 500] for i in range(0, count, 500)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(store.load_integrations, chunks))
    return [s.id for s in subjects]


@pytest.fixture
def sweeping(store):
    clock = FixedClock(END)
    payments = FakePayments()
    services = Services(store=store, payments=payments, clock=clock, catalog=DEFAULT_CATALOG)
    return services, clock, payments


def sent_ids(batches) -> list[str]:
    return [m.body["integration_id"] for batch in batches for m in batch]


def test_three_overlapping_sweeps_over_10000_due_send_each_exactly_once(store, sweeping):
    services, clock, _ = sweeping
    ids = load(store, 10_000)
    barrier = threading.Barrier(3)
    sent: list[list[str]] = [[], [], []]

    def run(n: int) -> None:
        barrier.wait()
        sent[n] = sent_ids(renewals.sweep_batches(services))

    threads = [threading.Thread(target=run, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counts = Counter(i for run_ in sent for i in run_)
    assert set(counts) == set(ids)
    assert counts.most_common(1)[0][1] == 1, counts.most_common(3)
    assert sum(len(run_) for run_ in sent) == 10_000
    # A fourth run while they are in flight sends nothing; they are all still due.
    assert sent_ids(renewals.sweep_batches(services)) == []
    assert {k.integration_id for k in services.store.due(DueKind.RENEWAL, clock.now())} == set()
    # No worker moved them on (their messages lost, say): they come back when the lease ends.
    clock.set(END + renewals.LEASE + timedelta(hours=1))
    assert sorted(sent_ids(renewals.sweep_batches(services))) == ids


def test_the_workers_decision_moves_a_leased_entry_on(store, sweeping):
    services, clock, payments = sweeping
    load(store, 3)
    batch = [m for sent in renewals.sweep_batches(services) for m in sent]
    assert [m.leased.due_at for m in batch] == [
        "2026-12-21T12:00:00Z",
        "2026-12-21T12:00:00Z",
        "2026-12-21T12:00:00Z",
    ]  # END + the two-hour lease (+ position / 25 per second: under a second here)
    payments.cards["cus_1"] = "declined"  # int_00001's account
    outcomes = sorted(
        renewals.renew(services, m.body["account_id"], m.body["integration_id"]).result
        for m in batch
    )
    assert outcomes == ["past_due", "renewed", "renewed"]
    later = services.store.due(DueKind.RENEWAL, END + timedelta(days=40))
    positions = sorted(k.due_at for k in later)
    # Renewed: due at the next period end; declined: at its first retry, a day after END.
    assert positions == ["2026-12-22T10:00:00Z", "2027-01-21T10:00:00Z", "2027-01-21T10:00:00Z"]
    clock.set(END + timedelta(days=1))
    (retry,) = renewals.sweep_batches(services)
    (message,) = retry
    subject = store.get_integration(message.body["account_id"], message.body["integration_id"])
    assert subject.billing_state is BillingState.PAST_DUE


def test_a_lease_is_conditional_on_the_position_read(store, sweeping):
    """A run that read the index before the worker moved the entry (the index is eventually
    consistent) cannot lease it: its condition names the old position."""
    services, _, _ = sweeping
    load(store, 1)
    (stale,) = list(store.due(DueKind.RENEWAL, END))
    (batch,) = renewals.sweep_batches(services)
    renewals.renew(services, batch[0].body["account_id"], batch[0].body["integration_id"])
    assert store.lease(stale, END + timedelta(hours=1)) is None
    assert store.lease(replace(stale, due_at=batch[0].leased.due_at), END) is None


def test_unsettled_ledger_lines_are_sent_at_every_sweep_while_unsettled(store, sweeping):
    from lifecycle.rules.paid import RenewalPaid  # noqa: PLC0415
    from lifecycle.rules.renewal import decide_renewal  # noqa: PLC0415
    from lifecycle.usecases.charging import Purchase, collect  # noqa: PLC0415

    services, _, payments = sweeping
    load(store, 1)
    subject = store.get_integration("acc_00", "int_00000")
    account = store.get_account("acc_00")
    renewal = decide_renewal(
        subject, END, account_status=AccountStatus.ACTIVE, catalog=DEFAULT_CATALOG
    )
    action = RenewalPaid(subject.id, subject.current_period_end)
    collected = collect(
        services, account, Purchase(renewal.charge, action, renewal.charge.ledger), END
    )
    assert collected.line.status.value == "pending"  # Stripe took it; the worker died here
    for _ in range(3):
        messages = list(renewals.sweep(services))
        assert {
            "account_id": "acc_00",
            "charge_id": collected.line.id,
            "ledger_key": renewal.charge.ledger,
        } in messages
    assert len(payments.succeeded) == 1


class Budget:
    """A Lambda context whose time runs out with the batches sent: `step_ms` per batch."""

    def __init__(self, timeout_ms: int, step_ms: float, sent: list[int]) -> None:
        self.timeout_ms, self.step_ms, self.sent = timeout_ms, step_ms, sent
        self.function_name = "renewal-sweep"
        self.invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:renewal-sweep"
        self.aws_request_id = "budget"
        self.memory_limit_in_mb = 256
        self.function_version = "$LATEST"
        self.log_group_name = "/aws/lambda/renewal-sweep"
        self.log_stream_name = "local"

    def get_remaining_time_in_millis(self) -> int:
        return int(self.timeout_ms - self.step_ms * self.sent[0])


class Queue:
    """The renewal queue as the sweep uses it (SendMessageBatch), counting the batches sent."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, str]] = []
        self.sent = [0]

    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, str]]) -> Any:
        self.sent[0] += 1
        self.bodies.extend(json.loads(e["MessageBody"]) for e in Entries)
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}

    def drain(self) -> list[str]:
        found, self.bodies = [b["integration_id"] for b in self.bodies], []
        return found


def test_a_sweep_cut_at_half_its_time_budget_leaves_the_rest_to_the_next_run_none_twice(
    store, sweeping, monkeypatch
):
    services, clock, _ = sweeping
    ids = load(store, 1_000)
    # A batch is at most ten entries of one shard: the whole sweep is this many batches.
    per_shard = Counter(due_shard(i) for i in ids)
    batches = sum(-(-n // renewals.BATCH) for n in per_shard.values())
    timeout_ms = 300_000
    reserve = renewal_sweep.RESERVE_SHARE * timeout_ms
    # Half the batches spend what the sweep may spend before it keeps its reserve.
    step_ms = (timeout_ms - reserve) / (batches / 2)
    queue = Queue()
    monkeypatch.setenv("RENEWAL_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/1/renewals")
    monkeypatch.setattr(renewal_sweep, "_sqs", lambda: queue)
    settings.cache_clear()
    use_services(services)
    try:
        first = renewal_sweep.lambda_handler(
            scheduled_event(END), Budget(timeout_ms, step_ms, queue.sent)
        )
        assert first["stopped_early"] == 1
        assert queue.sent[0] in (batches // 2, batches // 2 + 1)  # then it stopped
        assert 400 <= first["enqueued"] <= 600, first  # about half, in whole batches
        sent_first = queue.drain()
        assert len(sent_first) == first["enqueued"] == len(set(sent_first))

        # The next run (15 minutes later, a fresh budget) sends the rest, none twice.
        clock.set(END + timedelta(minutes=15))
        second = renewal_sweep.lambda_handler(
            scheduled_event(clock.now()), LambdaContext("renewal-sweep", 300)
        )
        sent_second = queue.drain()
        assert second == {"enqueued": len(sent_second)}
        assert sorted(sent_first + sent_second) == ids

        # Every one is in flight (leased): a third run sends nothing.
        third = renewal_sweep.lambda_handler(
            scheduled_event(clock.now()), LambdaContext("renewal-sweep", 300)
        )
        assert third == {"enqueued": 0}
    finally:
        use_services(None)
        settings.cache_clear()

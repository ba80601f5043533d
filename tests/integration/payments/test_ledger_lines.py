"""The ledger line is its own guard: keyed by the thing bought, written before Stripe with one
conditional PutItem, found by that key with one GetItem; a refunded line bought again moves
aside under its own id; the ledger index lists lines newest first (DynamoDB Local)."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta

import pytest

from lifecycle.ids import new_id
from lifecycle.rules.calendar import utc
from lifecycle.rules.errors import Conflict
from lifecycle.rules.ledger import ChargeRecord, ChargeStatus
from lifecycle.rules.paid import RenewalPaid
from lifecycle.store.repository import GuardTaken

pytestmark = pytest.mark.integration

T0 = utc(2026, 12, 21, 10)
KEY = "renewal:int_1:2026-12-21T10:00:00Z"


def line(ledger_key: str = KEY, **changes) -> ChargeRecord:
    return replace(
        ChargeRecord(
            id=new_id("ch"),
            account_id="acc_1",
            ledger_key=ledger_key,
            kind="renewal",
            amount=4900,
            currency="usd",
            description="renewal",
            integration_ids=("int_1",),
            status=ChargeStatus.PENDING,
            created_at=T0,
            updated_at=T0,
            action=RenewalPaid("int_1", T0),
            request_ref=ledger_key,
            customer_id="cus_1",
        ),
        **changes,
    )


def test_the_line_before_stripe_is_one_conditional_put_and_one_of_20_racers_wins(store):
    store.counter.by_operation.clear()
    first = line()
    store.begin_charge(first)
    assert dict(store.counter.by_operation) == {"PutItem": 1}  # no transaction, no guard item
    store.counter.by_operation.clear()
    assert store.charge_by_key("acc_1", KEY) == first
    assert dict(store.counter.by_operation) == {"GetItem": 1}

    other = "renewal:int_1:2027-01-21T10:00:00Z"
    barrier = threading.Barrier(20)
    won: list[str] = []
    lost: list[str] = []

    def attempt() -> None:
        mine = line(other)
        barrier.wait()
        try:
            store.begin_charge(mine)
            won.append(mine.id)
        except GuardTaken:
            lost.append(mine.id)

    threads = [threading.Thread(target=attempt) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (len(won), len(lost)) == (1, 19)
    assert store.charge_by_key("acc_1", other).id == won[0]


def test_a_refunded_line_bought_again_moves_aside_and_the_key_names_the_new_one(store):
    first = line()
    store.begin_charge(first)
    refunded = replace(
        first, status=ChargeStatus.REFUNDED, refund_reason="not_applied", updated_at=T0
    )
    store.save_charge(first, refunded)
    refunded = replace(refunded, revision=1)
    again = line(supersedes=first.id, created_at=T0 + timedelta(minutes=1))
    store.supersede_charge(refunded, again)

    assert store.charge_by_key("acc_1", KEY).id == again.id
    kept = store.get_charge("acc_1", first.id, KEY)
    assert (kept.status, kept.superseded_by, kept.revision) == (
        ChargeStatus.REFUNDED,
        again.id,
        2,
    )
    assert store.get_charge("acc_1", first.id) == kept  # by its id alone
    assert store.get_charge("acc_1", again.id).id == again.id  # through the ledger index
    lines, _ = store.list_charges("acc_1")
    assert [c.id for c in lines] == [again.id, first.id]

    # A second taker of the same refunded line loses; nothing is overwritten.
    with pytest.raises(GuardTaken):
        store.supersede_charge(refunded, line(supersedes=first.id))
    # A write decided from the old line (read before it moved) cannot land on the new one.
    with pytest.raises(Conflict):
        store.save_charge(refunded, replace(refunded, disputed=True))
    assert store.charge_by_key("acc_1", KEY).id == again.id
    # The moved line still takes its own later facts (a dispute reported by Stripe).
    store.save_charge(kept, replace(kept, disputed=True))
    assert store.get_charge("acc_1", first.id).disputed


def test_the_ledger_pages_newest_first_through_the_ledger_index(store):
    ids = []
    for n in range(7):
        record = line(f"renewal:int_{n}:2026-12-21T10:00:00Z")
        store.begin_charge(record)
        ids.append(record.id)
    pages, after = [], None
    while True:
        records, after = store.list_charges("acc_1", limit=3, after=after)
        pages.append([r.id for r in records])
        if after is None:
            break
    assert [i for page in pages for i in page] == sorted(ids, reverse=True)
    assert [len(page) for page in pages][:3] == [3, 3, 1]

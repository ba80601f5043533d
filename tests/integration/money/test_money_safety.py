"""Money safety under concurrency, against DynamoDB Local and a real localstripe (which, like the
tests' localstripe, ignores idempotency keys: only the ledger prevents a second charge).

Each race runs 20 trials with real threads released by a barrier. After every trial, counted in
both the ledger and localstripe: no line is left holding money unapplied, what localstripe kept
(succeeded PaymentIntents less refunds) equals the ledger's succeeded lines, and a change was
bought at most once.
"""

from __future__ import annotations

import os
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any

import pytest

from lifecycle.clock import FixedClock
from lifecycle.payments.stripe_adapter import StripePayments
from lifecycle.rules.catalog import DEFAULT_CATALOG
from lifecycle.rules.errors import DomainError
from lifecycle.rules.ledger import ChargeRecord, ChargeStatus
from lifecycle.rules.model import (
    Account,
    AccountStatus,
    CancelReason,
    Integration,
    Status,
    SuspensionReason,
)
from lifecycle.usecases import account as account_usecases
from lifecycle.usecases import integrations, leases, settling
from lifecycle.usecases.caller import Caller
from lifecycle.usecases.services import Services
from local.localstripe import SECRET_KEY, create_customer_with_card, payment_intents, refunds
from tests import factories
from tests.concurrency import race
from tests.store_reads import outbox_events

pytestmark = pytest.mark.integration

TRIALS = int(os.environ.get("MONEY_TRIALS", "20"))  # `make mutation` runs fewer
T0 = factories.ANCHOR
NOW = T0 + timedelta(days=10)  # inside the first period: an unfreeze costs a prorated amount


@dataclass
class Tally:
    """What the trials of one race did, for the closing note."""

    trials: int = 0
    charged: int = 0  # succeeded PaymentIntents at localstripe
    refunded: int = 0  # refunds at localstripe
    kept_ledger: int = 0  # succeeded (kept) ledger lines
    outcomes: Counter[str] = field(default_factory=Counter)

    def line(self, name: str) -> str:
        return (
            f"{name}: {self.trials} trials, {self.charged} charged and {self.refunded} refunded"
            f" at localstripe, {self.kept_ledger} kept in the ledger; {dict(self.outcomes)}"
        )


@dataclass
class Shop:
    services: Services
    base: str
    customer: str
    account: Account

    @property
    def store(self) -> Any:
        return self.services.store

    def caller(self, billing: bool = True, user: str | None = None) -> Caller:
        return Caller(self.account.id, user or f"usr_{uuid.uuid4().hex[:8]}", billing)

    def add(self, integration: Integration) -> Integration:
        self.store.load_integrations([integration])
        return integration

    def frozen(self) -> Integration:
        return self.add(
            factories.integration(
                Status.FROZEN, integration_id=_new("int"), account_id=self.account.id, anchor=T0
            )
        )

    def suspended(self, reason: SuspensionReason = SuspensionReason.NON_PAYMENT) -> Integration:
        return self.add(
            factories.integration(
                Status.SUSPENDED,
                integration_id=_new("int"),
                account_id=self.account.id,
                anchor=T0 - timedelta(days=40),
                suspension_reason=reason,
            )
        )

    def lines(self, integration_id: str) -> list[ChargeRecord]:
        lines, _ = self.store.list_charges(self.account.id, limit=100)
        return [line for line in lines if integration_id in line.integration_ids]

    def audit(self, integration_id: str, tally: Tally) -> list[ChargeRecord]:
        """The change's money, counted in the ledger and in localstripe, must agree."""
        lines = self.lines(integration_id)
        assert not [line for line in lines if line.unsettled], lines
        intents = [
            intent
            for intent in payment_intents(self.base, self.customer)
            if integration_id in (intent.get("metadata") or {}).get("integration_ids", "")
            and intent["status"] == "succeeded"
        ]
        paid = sum(int(intent["amount"]) for intent in intents)
        returned = [r for intent in intents for r in refunds(self.base, intent["id"])]
        kept = [line for line in lines if line.status is ChargeStatus.SUCCEEDED]
        assert paid - sum(int(r["amount"]) for r in returned) == sum(k.amount for k in kept)
        assert sum(int(r["amount"]) for r in returned) == sum(
            line.amount for line in lines if line.status is ChargeStatus.REFUNDED
        )
        assert len(kept) <= 1, "one change bought twice"
        assert all(line.applied for line in kept)
        tally.trials += 1
        tally.charged += len(intents)
        tally.refunded += len(returned)
        tally.kept_ledger += len(kept)
        return lines


def _new(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20].upper()}"


def _open(store, base: str, status: AccountStatus = AccountStatus.ACTIVE) -> tuple[str, Account]:
    """A new account with a Stripe customer whose card works."""
    customer = create_customer_with_card(base, "ok")
    account = Account(
        id=f"acc_{uuid.uuid4().hex[:12]}",
        status=status,
        created_at=T0,
        stripe_customer_id=customer,
        has_payment_method=True,
        # When a disabled account became disabled: what its paid reactivation changes from.
        status_changed_at=NOW - timedelta(days=1) if status is AccountStatus.DISABLED else None,
        version=1,
    )
    store.create_account(account)
    return customer, account


@pytest.fixture
def shop(store, localstripe_base) -> Shop:
    customer, account = _open(store, localstripe_base)
    services = Services(
        store=store,
        payments=StripePayments(SECRET_KEY, api_base=localstripe_base),
        clock=FixedClock(NOW),
        catalog=DEFAULT_CATALOG,
    )
    return Shop(services, localstripe_base, customer, account)


def _name(result: Any) -> str:
    if isinstance(result, DomainError):
        refunded = "+refunded" if result.extra.get("refunded") else ""
        return f"{result.code}{refunded}"
    return "ok"


def _allowed(result: Any, *also: str) -> None:
    """Every loser is told why, with a 4xx code: a conflict to retry, or a stale quote."""
    if isinstance(result, DomainError):
        assert result.code in ("conflict", "quote_stale", *also), result.detail


@dataclass
class Raced:
    """One trial of a payment racing a member's action, audited."""

    paid: Any  # the payment's result, or the DomainError it was refused with
    other: Any  # likewise for the member's action
    lines: list[ChargeRecord]
    after: Integration | None
    kept: list[ChargeRecord]  # the lines whose money was kept


def pay_while_a_member(
    shop: Shop, tally: Tally, subject: Integration, action: Any, *args: Any, also: tuple = ()
) -> Raced:
    """A billing user pays `subject`'s reactivation quote while a member does the use case
    `action` to it (with `args`), both at once; every loser told why (`also`: more refusals
    allowed to the payment), the outcomes tallied, the money audited."""
    billing, member = shop.caller(), shop.caller(billing=False)
    quote = integrations.reactivation_quote(shop.services, billing, subject.id)
    paid, other = race(
        partial(integrations.reactivate, shop.services, billing, subject.id, quote.id),
        partial(action, shop.services, member, subject.id, *args),
    )
    _allowed(paid, *also)
    tally.outcomes.update([f"pay:{_name(paid)}", f"{action.__name__}:{_name(other)}"])
    lines = shop.audit(subject.id, tally)
    after = shop.store.get_integration(shop.account.id, subject.id)
    kept = [line for line in lines if line.status is ChargeStatus.SUCCEEDED]
    return Raced(paid, other, lines, after, kept)


RESULTS: dict[str, Tally] = {}


@pytest.fixture(scope="module", autouse=True)
def _report() -> Any:
    yield
    for name, tally in RESULTS.items():
        print(tally.line(name))


# ------------------------------------------------------------------------------- the races


def test_two_quotes_for_one_unfreeze_paid_at_once_charge_at_most_once(shop):
    tally = RESULTS.setdefault("pay vs pay (unfreeze)", Tally())
    for _ in range(TRIALS):
        subject = shop.frozen()
        first, second = shop.caller(), shop.caller()
        quotes = [
            integrations.reactivation_quote(shop.services, who, subject.id)
            for who in (first, second)
        ]
        assert quotes[0].id != quotes[1].id and quotes[0].amount == quotes[1].amount > 0
        results = race(
            *(
                partial(integrations.reactivate, shop.services, who, subject.id, q.id)
                for who, q in zip((first, second), quotes, strict=True)
            )
        )
        for result in results:
            _allowed(result)
        tally.outcomes.update(_name(r) for r in results)
        lines = shop.audit(subject.id, tally)
        after = shop.store.get_integration(shop.account.id, subject.id)
        kept = [line for line in lines if line.status is ChargeStatus.SUCCEEDED]
        assert (after.status is Status.ACTIVE) == bool(kept)
        assert sum(1 for r in results if not isinstance(r, DomainError)) == len(kept)
        if kept:
            assert kept[0].amount == quotes[0].amount


def test_two_quotes_for_one_account_reactivation_paid_at_once_charge_at_most_once(shop, store):
    tally = RESULTS.setdefault("pay vs pay (account reactivation)", Tally())
    for _ in range(TRIALS):
        shop.customer, shop.account = _open(store, shop.base, AccountStatus.DISABLED)
        subjects = [
            shop.suspended(SuspensionReason.ACCOUNT_CANCELLED),
            shop.suspended(SuspensionReason.ACCOUNT_CANCELLED),
        ]
        first, second = shop.caller(), shop.caller()
        quotes = [
            account_usecases.account_reactivation_quote(shop.services, w) for w in (first, second)
        ]
        assert quotes[0].amount == 2 * 4900
        results = race(
            *(
                partial(account_usecases.reactivate_account, shop.services, who, q.id)
                for who, q in zip((first, second), quotes, strict=True)
            )
        )
        for result in results:
            _allowed(result)
        tally.outcomes.update(_name(r) for r in results)
        lines, _ = store.list_charges(shop.account.id, limit=100)
        mine = [line for line in lines if set(line.integration_ids) == {s.id for s in subjects}]
        assert not [line for line in mine if line.unsettled]
        kept = [line for line in mine if line.status is ChargeStatus.SUCCEEDED]
        assert len(kept) <= 1
        status = store.get_account(shop.account.id).status
        assert (status is AccountStatus.ACTIVE) == bool(kept)
        for subject in subjects:
            after = store.get_integration(shop.account.id, subject.id)
            assert (after.status is Status.ACTIVE) == bool(kept)
        intents = [
            i
            for i in payment_intents(shop.base, shop.customer)
            if i["status"] == "succeeded"
            and set(i["metadata"].get("integration_ids", "").split(",")) == {s.id for s in subjects}
        ]
        returned = [r for i in intents for r in refunds(shop.base, i["id"])]
        assert sum(int(i["amount"]) for i in intents) - sum(int(r["amount"]) for r in returned) == (
            sum(k.amount for k in kept)
        )
        tally.trials += 1
        tally.charged += len(intents)
        tally.refunded += len(returned)
        tally.kept_ledger += len(kept)


def test_paying_an_unfreeze_while_a_member_cancels_never_keeps_money_without_the_service(shop):
    tally = RESULTS.setdefault("pay vs cancel", Tally())
    for _ in range(TRIALS):
        subject = shop.frozen()
        raced = pay_while_a_member(
            shop, tally, subject, integrations.cancel, CancelReason.TOO_EXPENSIVE, None
        )
        # The cancel may lose the race to the unfreeze's commit: a retryable 409, and the
        # integration is then active and paid for.
        _allowed(raced.other)
        after = raced.after
        assert after is not None
        if isinstance(raced.other, DomainError):
            assert (after.status, bool(raced.kept)) == (Status.ACTIVE, True)
        else:
            assert after.status is Status.CANCEL_PENDING
            # Kept money means the unfreeze happened (and the cancel came after it).
            assert after.cancelled_from is (Status.ACTIVE if raced.kept else Status.FROZEN)
        if isinstance(raced.paid, DomainError) and any(
            line.status is ChargeStatus.REFUNDED for line in raced.lines
        ):
            assert raced.paid.extra.get("refunded") is True and "refunded" in raced.paid.detail


def test_paying_to_reinstate_while_a_member_cancels_it_never_keeps_money_for_a_deleted_one(
    shop,
):
    tally = RESULTS.setdefault("pay vs delete", Tally())
    for _ in range(TRIALS):
        subject = shop.suspended()
        # The payment may also find it deleted already: not_found.
        raced = pay_while_a_member(
            shop, tally, subject, integrations.cancel, CancelReason.OTHER, None, also=("not_found",)
        )
        if raced.kept:
            # Reinstated first; the cancel then scheduled its end at the new period's end.
            after = raced.after
            assert after is not None and after.status in (Status.ACTIVE, Status.CANCEL_PENDING)
        else:
            assert raced.after is None  # deleted at once; any charge was refunded


def test_paying_an_unfreeze_while_a_member_freezes_is_applied_once(shop):
    tally = RESULTS.setdefault("pay vs freeze", Tally())
    for _ in range(TRIALS):
        subject = shop.frozen()
        raced = pay_while_a_member(shop, tally, subject, integrations.freeze)
        after = raced.after
        assert after is not None
        if raced.kept:
            assert after.status in (Status.ACTIVE, Status.FREEZE_PENDING)
            reactivated = [
                h
                for h in shop.store.history(shop.account.id, subject.id)
                if h.type == "integration_reactivated"
            ]
            assert len(reactivated) == 1
        else:
            assert after.status is Status.FROZEN


# ------------------------------------------------------------------------------- stale quotes


def test_an_unfreeze_quote_paid_after_a_cancel_is_stale_and_charges_nothing(shop):
    subject = shop.frozen()
    billing = shop.caller()
    quote = integrations.reactivation_quote(shop.services, billing, subject.id)
    integrations.cancel(shop.services, billing, subject.id, CancelReason.OTHER, None)
    with pytest.raises(DomainError) as refused:
        integrations.reactivate(shop.services, billing, subject.id, quote.id)
    assert refused.value.code == "quote_stale"
    after = shop.store.get_integration(shop.account.id, subject.id)
    assert (after.status, after.cancelled_from) == (Status.CANCEL_PENDING, Status.FROZEN)
    assert shop.lines(subject.id) == []
    assert payment_intents(shop.base, shop.customer) == []


def test_an_account_quote_whose_only_suspended_integration_was_deleted_is_stale(shop, store):
    shop.customer, shop.account = _open(store, shop.base, AccountStatus.DISABLED)
    subject = shop.suspended(SuspensionReason.ACCOUNT_CANCELLED)
    billing = shop.caller()
    quote = account_usecases.account_reactivation_quote(shop.services, billing)
    assert quote.amount == 4900
    integrations.cancel(shop.services, billing, subject.id, CancelReason.OTHER, None)
    assert store.get_integration(shop.account.id, subject.id) is None  # deleted at once
    with pytest.raises(DomainError) as refused:
        account_usecases.reactivate_account(shop.services, billing, quote.id)
    assert refused.value.code == "quote_stale"
    assert store.get_account(shop.account.id).status is AccountStatus.DISABLED
    assert payment_intents(shop.base, shop.customer) == []


def test_a_quote_paid_twice_in_a_row_charges_once_and_answers_the_same(shop):
    subject = shop.frozen()
    billing = shop.caller()
    quote = integrations.reactivation_quote(shop.services, billing, subject.id)
    first = integrations.reactivate(shop.services, billing, subject.id, quote.id)
    again = integrations.reactivate(shop.services, billing, subject.id, quote.id)
    assert first.status == again.status == "active"
    assert len(payment_intents(shop.base, shop.customer)) == 1


# ------------------------------------------------------------------------------- crashes


class Crash(Exception):
    """The process dies at this point."""


def _crash(*args: Any, **kwargs: Any) -> Any:
    raise Crash


def sweep(shop: Shop) -> list[str]:
    """The renewal sweep and its workers, in-process: every message once (the reconciler's)."""
    from lifecycle.usecases import renewals  # noqa: PLC0415

    return [
        renewals.reconcile(shop.services, message["account_id"], message["charge_id"])
        for message in renewals.sweep(shop.services)
        if "charge_id" in message
    ]


@pytest.fixture
def leases_expired(monkeypatch):
    """Moves the wall clock past every lease taken so far (the crashed process's included)."""
    real = leases.wall_clock
    offset = [0]
    monkeypatch.setattr(leases, "wall_clock", lambda: real() + offset[0])

    def expire() -> None:
        offset[0] += leases.LEASE_SECONDS + 1

    return expire


def _paid_then_crashed(shop: Shop, monkeypatch) -> tuple[Integration, Caller]:
    subject = shop.frozen()
    billing = shop.caller()
    quote = integrations.reactivation_quote(shop.services, billing, subject.id)
    from lifecycle.usecases import charging  # noqa: PLC0415

    with monkeypatch.context() as crashing:
        crashing.setattr(charging, "settle", _crash)  # dies after Stripe answered
        with pytest.raises(Crash):
            integrations.reactivate(shop.services, billing, subject.id, quote.id)
    (line,) = shop.lines(subject.id)
    assert line.status is ChargeStatus.PENDING  # the ledger never heard back
    assert len(payment_intents(shop.base, shop.customer)) == 1  # but Stripe took the money
    return subject, billing


def test_a_payment_whose_request_died_after_stripe_is_applied_by_the_next_sweep_once(
    shop, monkeypatch, leases_expired
):
    subject, _ = _paid_then_crashed(shop, monkeypatch)
    assert sweep(shop) == ["in_flight"]  # its lease: the request might still be alive
    leases_expired()
    assert sweep(shop) == ["applied"]
    assert sweep(shop) == []  # settled: nothing left for the reconciler
    after = shop.store.get_integration(shop.account.id, subject.id)
    assert after.status is Status.ACTIVE
    (line,) = shop.audit(subject.id, Tally())
    assert (line.status, line.applied) == (ChargeStatus.SUCCEEDED, True)
    history = [h.type for h in shop.store.history(shop.account.id, subject.id)]
    assert history.count("integration_reactivated") == 1
    outbox = [e["detail-type"] for e in outbox_events(shop.store, shop.account.id)]
    assert outbox.count("IntegrationReactivated") == 1


def test_a_payment_whose_request_died_then_the_state_moved_is_refunded_by_the_sweep_once(
    shop, monkeypatch, leases_expired
):
    subject, billing = _paid_then_crashed(shop, monkeypatch)
    integrations.cancel(shop.services, billing, subject.id, CancelReason.OTHER, None)
    leases_expired()
    assert sweep(shop) == ["refunded"]
    assert sweep(shop) == []
    (line,) = shop.audit(subject.id, Tally())
    assert (line.status, line.refund_reason, line.applied) == (
        ChargeStatus.REFUNDED,
        "not_applied",
        False,
    )
    intents = payment_intents(shop.base, shop.customer)
    assert [len(refunds(shop.base, i["id"])) for i in intents] == [1]
    after = shop.store.get_integration(shop.account.id, subject.id)
    assert (after.status, after.cancelled_from) == (Status.CANCEL_PENDING, Status.FROZEN)
    history = list(shop.store.history(shop.account.id, subject.id))
    refunded = [h for h in history if h.type == "charge_refunded"]
    assert [h.details["reason"] for h in refunded] == ["not_applied"]
    activity = [h for h in shop.store.activity(shop.account.id) if h.type == "charge_refunded"]
    assert [(h.details["charge_id"], h.details["amount"]) for h in activity] == [
        (line.id, line.amount)
    ]
    outbox = [
        e
        for e in outbox_events(shop.store, shop.account.id)
        if e["detail-type"] == "ChargeRefunded"
    ]
    assert [(e["detail"]["charge_id"], e["detail"]["reason"]) for e in outbox] == [
        (line.id, "not_applied")
    ]


@pytest.mark.parametrize("dies", ["before_stripe_refunds", "after_stripe_refunded"])
def test_a_refund_cut_short_is_finished_by_the_next_sweep_exactly_once(
    shop, monkeypatch, leases_expired, dies
):
    subject, billing = _paid_then_crashed(shop, monkeypatch)
    integrations.cancel(shop.services, billing, subject.id, CancelReason.OTHER, None)
    leases_expired()
    with monkeypatch.context() as crashing:
        if dies == "before_stripe_refunds":
            crashing.setattr(shop.services.payments, "refund", _crash)
        else:
            crashing.setattr(settling, "record_refund", _crash)
        with pytest.raises(Crash):
            sweep(shop)
    (line,) = shop.lines(subject.id)
    assert (line.status, line.refund_reason) == (ChargeStatus.SUCCEEDED, "not_applied")
    assert sweep(shop) == ["in_flight"]  # the refund's own lease
    leases_expired()
    assert sweep(shop) == ["refunded"]
    assert sweep(shop) == []
    (line,) = shop.audit(subject.id, Tally())
    assert line.status is ChargeStatus.REFUNDED
    (intent,) = payment_intents(shop.base, shop.customer)
    assert len(refunds(shop.base, intent["id"])) == 1

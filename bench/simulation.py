"""`make simulate`: a discrete-event model (SimPy) of 1,000,000 integrations over 10,000 accounts
renewing for 13 months, at Stripe budgets of 25 and 100 charges per second.

What is modelled, and how:

- Population (numpy, vectorised): account sizes log-normal (median 49, sigma 1.2, scaled to
  1,000,000 in all); each account signed its integrations up in a few sessions (a merchant
  adds a batch of feeds at once: anchors a few seconds apart), sessions on calendar days drawn
  uniformly over three years (so the 29th to 31st are rarer, as on a real calendar) at a time
  of day that is 70% the merchants' afternoon (normal around 17:00 UTC, 3 h) and 30% any time.
  The month-end clamping is the real `add_month` (a table of the day it gives, per anchor day
  and month): the 28th to 31st all renew on February 28, and the 31st on the 30th.
  5% frozen (the frozen fee), 3% of integrations cancel each month (deleted at the period end,
  never charged again) and as many new ones sign up, so the population stays near 1,000,000.
  2% of renewal charges are declined; each retry (the rulebook's +1, +3, +7 days, the real
  `DUNNING_RETRY_OFFSETS`) succeeds half the time, and the last failure suspends.
- The sweep every 15 minutes (a SimPy process; the model's clock): reads the due index, leases
  what is due (1,000 leases a second, ten side by side, the real `Lease` policy) and sends it
  in batches of ten. SQS hands the messages to at most `RenewalWorkerConcurrency` workers
  (Lambda's MaximumConcurrency), first come first served; each message is a load, the ledger
  line, the Stripe call (each worker paces its calls at budget / concurrency, the real
  `RateLimiter`'s rule), the commit: DynamoDB round trips of 4 to 8 ms; Stripe's latency
  log-normal (median 450 ms, p99 about 1.45 s: an assumption, localstripe answers in
  milliseconds); 0.1% of calls time out (the adapter's 10 s), the message fails and SQS
  delivers it again after the visibility timeout (24 minutes), when the worker reconciles.
  The worker pool of each run is a c-server FIFO queue computed in closed form (numpy): a
  message is done when the work queued before it has been done by the c workers, and not
  before its arrival plus its own service; work left from a run is carried to the next.
  That keeps all 13,000,000 renewals in the model (per-message events would take an hour in
  Python on two cores) without sampling the population: its time, per run, is the events'.
- DynamoDB partitions: the units of each lease and renewal are counted per partition and per
  second (the account's partition: its integrations and its ledger; the due index's 16
  shards) against 1,000 write and 3,000 read units per partition per second.
- The real code decides: a sample of accounts (SAMPLE_INTEGRATIONS integrations, whole
  accounts) lives in the real `Store` over an in-memory DynamoDB (`bench.memory_dynamodb`):
  the real `renewals.sweep_batches` leases and sends them and the real `renewals.renew`
  (decide_renewal, collect, settle, commit) renews them at their simulated time, against a
  payments fake whose outcome is the model's draw (the ledger's wall-clock leases read the
  model's clock). Their ledger and the fake's PaymentIntents give the charges per renewal,
  and the units their DynamoDB calls consume are what every renewal is charged in the
  partitions and in the cost. The rest of the population takes the same path in time.

Per day it reports due, renewed, lateness after due (p50, p99, max), enqueues and charges per
renewal, the hottest partition's share of its limit, and the month's AWS cost; it checks its
prediction of `make bench-month` (300 renewals on the local stack) against that measurement;
it writes bench/simulation.json and bench/simulation-worst-day.png.
"""

from __future__ import annotations

import heapq
import json
import math
import multiprocessing
import os
import sys
import time
from array import array
from collections import Counter, defaultdict, deque
from collections.abc import Generator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import simpy

from bench.cost import PRICES, _lambda
from bench.harness import RESULTS, card_account, table
from bench.memory_dynamodb import MemoryDynamoDB
from lifecycle.payments.port import (
    PaymentOutcome,
    PaymentRequest,
    PaymentResult,
    RefundRequest,
    RefundResult,
)
from lifecycle.rules.calendar import add_month, utc
from lifecycle.rules.catalog import DEFAULT_CATALOG
from lifecycle.rules.ledger import ChargeStatus
from lifecycle.rules.model import DUNNING_RETRY_OFFSETS, Integration, Status
from lifecycle.rules.renewal import DueKind
from lifecycle.store import keys
from lifecycle.store.repository import Store
from lifecycle.usecases import renewals
from lifecycle.usecases.services import Services
from local.template import evaluate, resources, template

OUT = Path(__file__).with_name("simulation.json")
PLOT = Path(__file__).with_name("simulation-worst-day.png")
START = utc(2027, 1, 1)  # 13 months: January 2027 to January 2028 (February has 28 days)
MONTHS = int(os.environ.get("SIM_MONTHS", "13"))
INTEGRATIONS = int(os.environ.get("SIM_INTEGRATIONS", "1000000"))
ACCOUNTS = int(os.environ.get("SIM_ACCOUNTS", "10000"))
SAMPLE_INTEGRATIONS = int(os.environ.get("SIM_SAMPLE_INTEGRATIONS", "800"))
SEED = int(os.environ.get("SIM_SEED", "17"))
DAY = 86_400
SLOT = 900  # the renewal sweep's rate (template.yaml: rate(15 minutes))
POOL = 1_000_000


@dataclass(frozen=True)
class Assumptions:
    frozen_share: float = 0.05
    cancel_per_month: float = 0.03
    declined: float = 0.02
    retry_recovers: float = 0.5
    stripe_median_s: float = 0.45
    stripe_sigma: float = 0.5  # log-normal: p99 = median * e^(2.33 sigma), about 1.45 s
    stripe_timeout: float = 0.001
    adapter_timeout_s: float = 10.0
    db_round_trip_s: tuple[float, float] = (0.004, 0.008)
    sweep_leases_per_second: float = 1000.0
    visibility_timeout_s: float = 1440.0
    partition_wcu: float = 1000.0
    partition_rcu: float = 3000.0
    worker_memory_mb: int = 512


@dataclass(frozen=True)
class Scenario:
    name: str
    stripe_per_second: float
    concurrency: int


def template_concurrency() -> int:
    """RenewalWorkerConcurrency as deployed by default (MaximumConcurrency of the queue)."""
    worker = resources("AWS::Serverless::Function")["RenewalWorkerFunction"]["Properties"]
    scaling = worker["Events"]["RenewalMessages"]["Properties"]["ScalingConfig"]
    return int(evaluate(scaling["MaximumConcurrency"]))


def scenarios() -> list[Scenario]:
    default = template_concurrency()
    rate = float(template()["Parameters"]["StripeRatePerSecond"]["Default"])
    # 100/s: the runbook raises the budget and the concurrency together (5 charges/s each).
    return [
        Scenario(f"{rate:.0f}/s", rate, default),
        Scenario("100/s", 100.0, round(default * 100 / rate)),
    ]


# ---------------------------------------------------------------------------- the population


@dataclass
class Population:
    account: np.ndarray  # int32 per integration
    day: np.ndarray  # anchor day of month 1..31
    second: np.ndarray  # anchor time of day, seconds
    frozen: np.ndarray  # bool
    sizes: np.ndarray  # integrations per account


def _anchors(rng: np.random.Generator, sessions: int) -> tuple[np.ndarray, np.ndarray]:
    """Sign-up instants: a calendar day over three years (day of month as it falls), and a
    time of day, 70% around the merchants' afternoon, 30% any time."""
    days = rng.integers(0, 3 * 365, sessions)
    base = datetime(2024, 1, 1, tzinfo=UTC)
    day_of_month = np.array([(base + timedelta(days=int(d))).day for d in days], dtype=np.int8)
    afternoon = rng.normal(17 * 3600, 3 * 3600, sessions)
    anytime = rng.uniform(0, DAY, sessions)
    tod = np.where(rng.random(sessions) < 0.7, afternoon, anytime) % DAY
    return day_of_month, tod


def population(rng: np.random.Generator, integrations: int, accounts: int) -> Population:
    raw = rng.lognormal(math.log(49), 1.2, accounts)
    sizes = np.maximum(1, np.round(raw / raw.sum() * integrations)).astype(np.int64)
    sizes[np.argmax(sizes)] += integrations - sizes.sum()
    account = np.repeat(np.arange(accounts, dtype=np.int32), sizes)
    # Sessions: one per 25 integrations on average, at least one per account.
    per_account = 1 + rng.poisson(sizes / 25)
    session_of = np.concatenate(
        [
            rng.integers(0, n, s) + offset
            for n, s, offset in zip(
                per_account, sizes, np.concatenate([[0], np.cumsum(per_account)[:-1]]), strict=True
            )
        ]
    )
    day, tod = _anchors(rng, int(per_account.sum()))
    # A session's integrations a few seconds apart (the merchant adds them one after another).
    spread = rng.exponential(20, integrations)
    second = (tod[session_of] + spread) % DAY
    return Population(
        account=account,
        day=day[session_of],
        second=second,
        frozen=rng.random(integrations) < Assumptions().frozen_share,
        sizes=sizes,
    )


def clamped_days(months: int) -> np.ndarray:
    """[month, anchor day] -> the day of that month a period anchored on that day ends on,
    from the real `add_month` (month 0 is START's)."""
    found = np.zeros((months + 1, 32), dtype=np.int8)
    for day in range(1, 32):
        anchor = utc(2026, 12, 31) if day == 31 else utc(2026, 12, day)  # a month with 31 days
        for month in range(months + 1):
            found[month, day] = add_month(anchor, month + 1).day
    return found


def month_start(month: int) -> float:
    moment = add_month(START, month)
    return (moment - START).total_seconds()


# ---------------------------------------------------------------------------- the real code


class Clock:
    def __init__(self) -> None:
        self.moment = START

    def now(self) -> datetime:
        return self.moment


class ModelPayments:
    """The payments port with the model's outcome for the next charge (the sample's renewals)."""

    def __init__(self) -> None:
        self.outcome = PaymentOutcome.SUCCEEDED
        self.taken = True  # a timed-out charge that went through at Stripe
        self.intents: dict[str, tuple[str, PaymentOutcome]] = {}  # charge id -> (pi, outcome)
        self.succeeded_by_key: Counter[str] = Counter()
        self._n = 0

    def charge(self, request: PaymentRequest) -> PaymentResult:
        metadata = request.metadata
        self._n += 1
        intent = f"pi_sim_{self._n}"
        outcome = self.outcome
        if outcome is PaymentOutcome.PENDING:
            if self.taken:
                self.intents[metadata["charge_id"]] = (intent, PaymentOutcome.SUCCEEDED)
                self.succeeded_by_key[metadata["ledger_key"]] += 1
            return PaymentResult(PaymentOutcome.PENDING)
        self.intents[metadata["charge_id"]] = (intent, outcome)
        if outcome is PaymentOutcome.SUCCEEDED:
            self.succeeded_by_key[metadata["ledger_key"]] += 1
            return PaymentResult(outcome, intent)
        return PaymentResult(outcome, intent, "Your card was declined.", "card_declined")

    def find(self, *, customer_id: str, charge_id: str) -> PaymentResult | None:
        found = self.intents.get(charge_id)
        return PaymentResult(found[1], found[0]) if found else None

    def payment_metadata(self, payment_intent_id: str) -> None:
        return None

    def refund(self, _: RefundRequest) -> RefundResult:
        raise AssertionError("the simulation refunds nothing")

    def find_refund(self, **_: Any) -> None:
        return None


@dataclass
class Sample:
    """The accounts that go through the real code."""

    store: Store
    client: MemoryDynamoDB
    services: Services
    clock: Clock
    payments: ModelPayments
    accounts: set[int]
    units_by_outcome: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    results: Counter[str] = field(default_factory=Counter)


def build_sample(people: Population, rng: np.random.Generator, months: int) -> Sample:
    order = rng.permutation(len(people.sizes)).tolist()
    chosen, total = [], 0
    for a in order:
        if total >= SAMPLE_INTEGRATIONS:
            break
        if people.sizes[a] > SAMPLE_INTEGRATIONS // 4:
            continue  # keep the sample to many accounts
        chosen.append(int(a))
        total += int(people.sizes[a])
    client = MemoryDynamoDB()
    store = Store("integrations", client=client)
    clock = Clock()
    payments = ModelPayments()
    services = Services(store=store, payments=payments, clock=clock, catalog=DEFAULT_CATALOG)  # type: ignore[arg-type]
    members = np.isin(people.account, chosen)
    loaded = []
    for n in np.flatnonzero(members):
        day, second = int(people.day[n]), int(people.second[n])
        # The period that ends in START's month: anchored on `day` of the month before.
        anchor_month = utc(2026, 12, 31) if day == 31 else utc(2026, 12, min(day, 31))
        anchor = anchor_month.replace(day=day) + timedelta(seconds=second)
        loaded.append(
            Integration(
                id=f"int_{n:07d}",
                account_id=f"acc_{people.account[n]:05d}",
                name=f"Feed {n}",
                supplier="acme",
                channel="shopify",
                plan="standard",
                status=Status.FROZEN if people.frozen[n] else Status.ACTIVE,
                current_period_start=anchor,
                current_period_end=add_month(anchor, 1),
                anchor=anchor,
                created_at=anchor,
                version=1,
            )
        )
    for a in chosen:
        store.create_account(card_account(f"acc_{a:05d}", START, f"cus_{a}"))
    store.load_integrations(loaded)
    client.units.reset()
    return Sample(store, client, services, clock, payments, set(chosen))


# ---------------------------------------------------------------------------- the model


@dataclass
class Message:
    due: float
    account: int
    attempt: int  # 1: the renewal; 2..4: dunning retries; 0: a ledger line to reconcile
    real: tuple[str, str] | None = None  # (account id, integration id) for the sample
    index: int = -1  # the integration, in the population
    receives: int = 0
    done: bool = False  # the due entry was moved on by a worker (its lease no longer matters)
    original: Message | None = None  # a second send of the same due entry (its lease ended)


@dataclass
class Day:
    due: int = 0
    renewed: int = 0
    declined: int = 0
    suspended: int = 0
    enqueued: int = 0
    handled: int = 0
    lateness: array[float] = field(default_factory=lambda: array("d"))
    hottest_write: float = 0.0
    hottest_read: float = 0.0
    hottest_partition: str = ""
    depth: list[tuple[float, int]] = field(default_factory=list)
    late: list[tuple[float, float]] = field(default_factory=list)
    worker_seconds: float = 0.0


class Model:
    def __init__(
        self,
        scenario: Scenario,
        people: Population,
        sample: Sample,
        rng: np.random.Generator,
        assumptions: Assumptions,
        months: int,
    ) -> None:
        self.s, self.p, self.sample, self.rng, self.a = scenario, people, sample, rng, assumptions
        self.months = months
        self.env = simpy.Environment()
        self.days: dict[int, Day] = defaultdict(Day)
        self.clamp = clamped_days(months)
        self.alive = ~np.isin(people.account, list(sample.accounts))
        self.retries: list[tuple[float, int, int, int, int]] = []  # due, seq, account, attempt, i
        self._seq = 0
        self.interval = scenario.concurrency / scenario.stripe_per_second
        self.lease = renewals.Lease(per_second=scenario.stripe_per_second)
        self.units_write = 16.0  # per renewal, refined from the sample as it runs
        self.units_read = 2.0
        self._pointer = 0
        self.pool_free = 0.0
        self.recent: list[np.ndarray] = []
        self._month = -1
        self.sent_real = 0
        self.horizon = month_start(months)

    # -- the population's due entries, a month at a time (vectorised bookkeeping) -----------

    def _next_month(self) -> None:
        self._month += 1
        m = self._month
        if m >= self.months:
            self.due_times = np.array([], dtype=np.float64)
            self.due_accounts = np.array([], dtype=np.int32)
            self.due_index = np.array([], dtype=np.int64)
            self._pointer = 0
            return
        alive = np.flatnonzero(self.alive)
        cancelling = alive[self.rng.random(alive.size) < self.a.cancel_per_month]
        self.alive[cancelling] = False  # deleted at this period's end: never charged again
        renewing = np.flatnonzero(self.alive)
        days = self.clamp[m, self.p.day[renewing]]
        due = month_start(m) + (days.astype(np.float64) - 1) * DAY + self.p.second[renewing]
        # New sign-ups this month replace the cancelled: they renew from the next month on.
        order = np.argsort(due, kind="stable")
        self.due_times = due[order]
        self.due_accounts = self.p.account[renewing][order]
        self.due_index = renewing[order]
        self._pointer = 0
        self._reborn(cancelling)

    def _reborn(self, cancelled: np.ndarray) -> None:
        """As many new integrations as were cancelled, in the same accounts (a shop replaces a
        feed), anchored this month: they come alive for the next month's renewals."""
        if cancelled.size == 0:
            return
        day, tod = _anchors(self.rng, cancelled.size)
        self.p.day[cancelled] = day
        self.p.second[cancelled] = tod
        self.alive[cancelled] = True

    def _take_due(self, now: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Everything due at `now` not yet handed out (due, account, integration, attempt):
        this month's renewals and the dunning retries, by due time."""
        parts = []
        while True:
            end = int(np.searchsorted(self.due_times, now, side="right"))
            parts.append(
                (
                    self.due_times[self._pointer : end],
                    self.due_accounts[self._pointer : end],
                    self.due_index[self._pointer : end],
                    np.ones(end - self._pointer, dtype=np.int8),
                )
            )
            self._pointer = end
            if end < self.due_times.size or self._month + 1 >= self.months:
                break
            if month_start(self._month + 1) > now:
                break
            self._next_month()
        retries = []
        while self.retries and self.retries[0][0] <= now:
            due, _, account, attempt, index = heapq.heappop(self.retries)
            retries.append((due, account, index, attempt))
        if retries:
            columns = list(zip(*retries, strict=True))
            parts.append(
                (
                    np.array(columns[0], dtype=np.float64),
                    np.array(columns[1], dtype=np.int32),
                    np.array(columns[2], dtype=np.int64),
                    np.array(columns[3], dtype=np.int8),
                )
            )
        dues, accounts, indexes, attempts = zip(*parts, strict=True)
        return (
            np.concatenate(dues),
            np.concatenate(accounts),
            np.concatenate(indexes),
            np.concatenate(attempts),
        )

    def sweep(self) -> Generator[Any, Any]:
        """Every 15 minutes: the sweep leases and sends what is due, and the worker pool
        renews it (`_pool`); the sample's messages go through the real code."""
        self._next_month()
        while self.env.now < self.horizon + 8 * DAY:
            now = self.env.now
            due, account, index, attempt = self._take_due(now)
            real = self._real_sweep(now)
            self._pool(now, due, account, index, attempt, real)
            yield self.env.timeout(SLOT)

    def _pool(
        self,
        now: float,
        due: np.ndarray,
        account: np.ndarray,
        index: np.ndarray,
        attempt: np.ndarray,
        real: list[Message],
    ) -> None:
        """One sweep run's messages through SQS and the workers.

        The sweep leases and sends them at its lease rate, in batches of ten; the pool of
        `concurrency` workers takes them first come first served, each message a load, the
        ledger line, the Stripe call (paced at budget / concurrency per worker), the commit.
        The pool is a c-server FIFO queue computed in closed form for the run (numpy): a
        message finishes when its share of the work queued before it is done by c workers,
        and never before its own arrival plus its own service; work left from earlier runs
        is carried over. A timed-out call (0.1%) keeps a worker for the adapter's timeout and
        comes back after SQS's visibility timeout, handled then without the queue."""
        a, rng = self.a, self.rng
        ghosts = due.size
        n = ghosts + len(real)
        if n == 0:
            self.days[int(now // DAY)].depth.append((now, 0))
            return
        lease_rate = a.sweep_leases_per_second
        arrival = now + np.ceil((np.arange(n) + 1) / 10) * 10 / lease_rate
        latency = rng.lognormal(math.log(a.stripe_median_s), a.stripe_sigma, n)
        trips = rng.uniform(*a.db_round_trip_s, (n, 3))
        draws = rng.random((n, 2))
        timed_out = draws[:, 0] < a.stripe_timeout
        stripe = np.where(timed_out, a.adapter_timeout_s, latency)
        service = trips[:, 0] + np.maximum(self.interval, trips[:, 1] + stripe) + trips[:, 2]
        service += 0.002  # the invocation's share of a batch of ten
        c = self.s.concurrency
        start = max(float(arrival[0]), self.pool_free)
        finish = np.maximum(start + np.cumsum(service) / c, arrival + service)
        self.pool_free = float(finish[-1])
        finish = np.where(timed_out, finish + a.visibility_timeout_s + service, finish)
        self.recent.append(finish)
        self.recent = self.recent[-16:]
        # Queue depth through the run (sent and not yet done), for the worst day's plot.
        for minute in range(0, SLOT, 60):
            moment = now + minute
            waiting = sum(int(np.count_nonzero(f > moment)) for f in self.recent)
            self.days[int(moment // DAY)].depth.append((moment, waiting))

        # The population: lateness by the day it fell due, outcomes, dunning retries.
        g_finish = finish[:ghosts]
        declined = np.where(
            attempt <= 1, draws[:ghosts, 1] < a.declined, draws[:ghosts, 1] >= a.retry_recovers
        )
        due_day = (due // DAY).astype(np.int64)
        for d in np.unique(due_day):
            mine = due_day == d
            target = self.days[int(d)]
            target.lateness.extend((g_finish[mine] - due[mine]).tolist())
            count = int(np.count_nonzero(mine))
            target.due += count
            target.enqueued += count
            target.handled += count
        finish_day = (g_finish // DAY).astype(np.int64)
        days, counts = np.unique(finish_day[~declined], return_counts=True)
        for d, count in zip(days.tolist(), counts.tolist(), strict=True):
            self.days[d].renewed += count
        for k in np.flatnonzero(declined).tolist():
            self.days[int(finish_day[k])].declined += 1
            tried = int(attempt[k])
            if tried > len(DUNNING_RETRY_OFFSETS):
                self.alive[index[k]] = False  # suspended: no further renewals
                continue
            end = float(due[k]) - (
                DUNNING_RETRY_OFFSETS[tried - 2].total_seconds() if tried > 1 else 0.0
            )
            retry = end + DUNNING_RETRY_OFFSETS[tried - 1].total_seconds()
            self._seq += 1
            heapq.heappush(
                self.retries, (retry, self._seq, int(account[k]), tried + 1, int(index[k]))
            )

        # The sample, through the real code at the moment its message is handled.
        for k, message in enumerate(real):
            at = ghosts + k
            if timed_out[at]:
                # The charge's answer is lost (it went through half the time); SQS delivers
                # the message again after its visibility timeout: the worker reconciles.
                first = float(finish[at]) - a.visibility_timeout_s - float(service[at])
                self._real(message, first, PaymentOutcome.PENDING, taken=draws[at, 0] < 0.5)
            self._real(message, float(finish[at]), None, taken=True, draw=float(draws[at, 1]))
            if message.attempt:
                self.days[int(message.due // DAY)].enqueued += 1

        # Partitions, per second: the lease (a unit on the account's partition, two on its
        # index shard) at the lease rate, the renewal's units when it is done.
        accounts = np.concatenate([account, np.array([m.account for m in real], dtype=np.int64)])
        shards = np.concatenate([index % 16, accounts[ghosts:] % 16])
        lease_second = (now + np.arange(n) / lease_rate).astype(np.int64)
        done_second = finish.astype(np.int64)
        self._hottest(accounts, lease_second, 1.0, a.partition_wcu, "account")
        self._hottest(accounts, done_second, self.units_write, a.partition_wcu, "account")
        self._hottest(accounts, done_second, self.units_read, a.partition_rcu, "account")
        self._hottest(shards, lease_second, 2.0, a.partition_wcu, "DueIndex shard")
        self._hottest(shards, done_second, 2.0, a.partition_wcu, "DueIndex shard")
        self.days[int(now // DAY)].worker_seconds += float(service.sum())

    def _hottest(
        self, partition: np.ndarray, second: np.ndarray, units: float, limit: float, kind: str
    ) -> None:
        """The busiest (partition, second) of these writes or reads against the limit, kept
        for the day of that second (each kind of unit apart)."""
        if partition.size == 0:
            return
        key = partition.astype(np.int64) * 10_000_000_000 + second
        keys, counts = np.unique(key, return_counts=True)
        top = int(np.argmax(counts))
        share = float(counts[top]) * units / limit
        day = self.days[int(keys[top] % 10_000_000_000) // DAY]
        if share > day.hottest_write:
            day.hottest_write = share
            day.hottest_partition = f"{kind} {int(keys[top] // 10_000_000_000)}"

    def _real_sweep(self, now: float) -> list[Message]:
        # The in-memory table's own look-up (not `Store.earliest_due`): it costs no units.
        earliest = self.sample.client.earliest(keys.due_partition(DueKind.RENEWAL, ""))
        settling = self.sample.client.earliest(keys.due_partition(DueKind.SETTLEMENT, ""))
        bound = self._iso(now)
        if (earliest is None or earliest > bound) and (settling is None or settling > bound):
            return []
        self.sample.clock.moment = START + timedelta(seconds=now)
        found = []
        for batch in renewals.sweep_batches(self.sample.services, lease=self.lease):
            for m in batch:
                body = m.body
                account = int(body["account_id"].removeprefix("acc_"))
                if "charge_id" in body:
                    found.append(Message(now, account, 0, (body["account_id"], body["charge_id"])))
                    continue
                due = (
                    datetime.fromisoformat(body["due_at"].replace("Z", "+00:00")) - START
                ).total_seconds()
                found.append(Message(due, account, 1, (body["account_id"], body["integration_id"])))
        self.sent_real += len(found)
        return found

    @staticmethod
    def _iso(seconds: float) -> str:
        return (START + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ$")

    def _declined(self, message: Message, draw: float) -> bool:
        if message.attempt <= 1:
            return draw < self.a.declined
        return draw >= self.a.retry_recovers

    def _real(
        self,
        message: Message,
        t: float,
        outcome: PaymentOutcome | None,
        *,
        taken: bool,
        draw: float = 1.0,
    ) -> None:
        sample = self.sample
        sample.clock.moment = START + timedelta(seconds=math.ceil(t))
        account_id, subject = message.real  # type: ignore[misc]
        before_w = sum(sample.client.units.write.values())
        before_r = sum(sample.client.units.read.values())
        if message.attempt == 0:
            result = renewals.reconcile(sample.services, account_id, subject)
            sample.results[f"reconciled:{result}"] += 1
            return
        integration = sample.store.get_integration(account_id, subject)
        attempt = integration.dunning_attempts + 1 if integration else 1
        if outcome is None:
            declined = draw < self.a.declined if attempt == 1 else draw >= self.a.retry_recovers
            outcome = PaymentOutcome.FAILED if declined else PaymentOutcome.SUCCEEDED
        sample.payments.outcome, sample.payments.taken = outcome, taken
        try:
            result = renewals.renew(sample.services, account_id, subject).result
        except Exception as error:  # PaymentPending: SQS delivers it again
            result = type(error).__name__
        sample.results[result] += 1
        spent_w = sum(sample.client.units.write.values()) - before_w
        spent_r = sum(sample.client.units.read.values()) - before_r
        sample.units_by_outcome[result].append(spent_w)
        if result == "renewed":
            self.units_write = float(np.mean(sample.units_by_outcome["renewed"][-500:]))
            self.units_read = max(self.units_read, spent_r) if spent_r else self.units_read
        day = self.days[int(message.due // DAY)]
        if result in ("renewed", "past_due", "suspended"):
            day.handled += 1
            day.lateness.append(t - message.due)
            if result == "renewed":
                self.days[int(t // DAY)].renewed += 1
            else:
                self.days[int(t // DAY)].declined += 1

    def run(self) -> None:
        self.env.process(self.sweep())
        self.env.run(until=self.horizon + 8 * DAY)


def _percentile(values: array[float], q: float) -> float:
    return float(np.percentile(np.frombuffer(values, dtype=np.float64), q)) if len(values) else 0.0


def cost(days: dict[int, Day], model: Model, scenario: Scenario) -> dict[str, Any]:
    """The month's AWS cost per 1,000,000 renewals, from what the model counted: DynamoDB units
    (the sample's real calls), the worker's busy time and requests, the sweep, SQS, events."""
    sample = model.sample
    renewed = sum(d.renewed for d in days.values())
    handled = sum(d.handled for d in days.values())
    writes = (
        float(np.mean(sample.units_by_outcome["renewed"]))
        if sample.units_by_outcome["renewed"]
        else model.units_write
    )
    lease_writes = 3.0  # the sweep's UpdateItem: the item, and its index entry moved
    worker_seconds = sum(d.worker_seconds for d in days.values())
    gb = model.a.worker_memory_mb / 1024
    per_message = {
        "DynamoDB writes (the real code's units, in memory)": (writes + lease_writes)
        * PRICES["dynamodb_write_request_unit"],
        "DynamoDB reads": model.units_read * PRICES["dynamodb_read_request_unit"],
        "renewal worker Lambda (modelled busy time)": (worker_seconds / max(handled, 1))
        * gb
        * PRICES["lambda_arm64_gb_second"]
        + PRICES["lambda_request"] / 10,
        "renewal sweep Lambda": _lambda("RenewalSweepFunction", 5, 1 / 1000),
        "SQS (send, receive, delete in batches)": 0.3 * PRICES["sqs_standard_request"],
        "EventBridge events (1.02 per renewal)": 1.02 * PRICES["eventbridge_custom_event"],
        "event publisher (1 RRU + 1 WRU per event)": 1.02
        * (PRICES["dynamodb_read_request_unit"] + PRICES["dynamodb_write_request_unit"]),
    }
    per_million = {k: round(v * 1e6, 3) for k, v in per_message.items()}
    return {
        "per_1m_renewals_usd": round(sum(per_message.values()) * 1e6, 2),
        "per_1m_renewals_breakdown_usd": per_million,
        # A month of the whole population: about one renewal per integration.
        "month_usd": round(sum(per_message.values()) * INTEGRATIONS * renewed / max(handled, 1), 2),
        "renewals_in_window_simulated": renewed,
    }


def summarise(model: Model, scenario: Scenario) -> dict[str, Any]:
    sample = model.sample
    per_day = []
    for index in sorted(model.days):
        d = model.days[index]
        if not d.due and not d.renewed and not d.handled:
            continue
        per_day.append(
            {
                "day": (START + timedelta(days=index)).date().isoformat(),
                "due": d.due,
                "renewed": d.renewed,
                "declined": d.declined,
                "lateness_p50_s": round(_percentile(d.lateness, 50), 1),
                "lateness_p99_s": round(_percentile(d.lateness, 99), 1),
                "lateness_max_s": round(max(d.lateness) if d.lateness else 0.0, 1),
                "enqueues_per_renewal": round(d.enqueued / d.due, 3) if d.due else None,
                "hottest_partition_share": round(max(d.hottest_write, d.hottest_read), 3),
                "hottest_partition": d.hottest_partition,
                "queue_depth_max": max((q for _, q in d.depth), default=0),
            }
        )
    # The worst day: the most due (the month-end pile-up); the latest p99 is reported beside.
    worst = max(per_day, key=lambda r: (r["due"], r["lateness_p99_s"]))
    latest = max(per_day, key=lambda r: (r["lateness_p99_s"], r["lateness_max_s"]))
    # The sample's money: one succeeded charge per (integration, period) renewed.
    charges = sample.payments.succeeded_by_key
    lines = [
        line
        for account in sorted(sample.accounts)
        for line in sample.store.list_charges(f"acc_{account:05d}", limit=100_000)[0]
        if line.kind == "renewal" and line.status is ChargeStatus.SUCCEEDED
    ]
    per_line = Counter(charges[line.ledger_key] for line in lines)
    unsettled = [
        line
        for account in sorted(sample.accounts)
        for line in sample.store.list_charges(f"acc_{account:05d}", limit=100_000)[0]
        if line.unsettled
    ]
    return {
        "scenario": {
            "stripe_per_second": scenario.stripe_per_second,
            "concurrency": scenario.concurrency,
        },
        "worst_day": worst,
        "latest_day": latest,
        "charges_per_renewal": {
            "measure": "the sample's renewed periods (real code): succeeded charges at the "
            "payments fake per succeeded renewal ledger line",
            "renewed_periods": len(lines),
            "distribution": {str(k): v for k, v in sorted(per_line.items())},
            "value": round(sum(k * v for k, v in per_line.items()) / max(len(lines), 1), 4),
            "unsettled_lines_left": len(unsettled),
        },
        "sample_outcomes": dict(model.sample.results),
        "sample_enqueues": model.sent_real,
        "write_units_per_renewal_measured": round(model.units_write, 2),
        "cost": cost(model.days, model, scenario),
        "per_day": per_day,
        "worst_day_trace": {
            "queue_depth": [(t, q) for t, q in model.days[_day_index(str(worst["day"]))].depth][
                :20000
            ],
        },
    }


def _day_index(day: str) -> int:
    return (datetime.fromisoformat(day) - START.replace(tzinfo=None)).days


def run_scenario(scenario: Scenario) -> dict[str, Any]:
    began = time.perf_counter()
    rng = np.random.default_rng(SEED)
    people = population(rng, INTEGRATIONS, ACCOUNTS)
    sample = build_sample(people, rng, MONTHS)
    model = Model(scenario, people, sample, rng, Assumptions(), MONTHS)
    model.run()
    result = summarise(model, scenario)
    worst = _day_index(result["worst_day"]["day"])
    result["worst_day_trace"]["lateness"] = [
        (round(t, 1), round(v, 1)) for t, v in _lateness_trace(model, worst)
    ]
    result["seconds"] = round(time.perf_counter() - began, 1)
    return result


def _lateness_trace(model: Model, day: int) -> list[tuple[float, float]]:
    values = model.days[day].lateness
    return [(float(i), v) for i, v in enumerate(values)][:: max(1, len(values) // 5000)]


# ---------------------------------------------------------------------------- bench-month check


def bench_month_check() -> dict[str, Any]:
    """The model's prediction of `make bench-month` (300 integrations due at once on the local
    stack) against what bench-month measured, on the same input.

    The local stack shares two cores between every process (DynamoDB Local, the functions,
    localstripe, moto): it is CPU-bound, and a DynamoDB Local request is its unit of work. Its
    cost is bench.renewals' measurement (8 workers saturating the cores at renewals_per_second,
    each renewal making dynamodb_round_trips_per_renewal requests); a renewal on the stack makes
    its own requests, the sweep's lease, the webhook's (was the event seen, the line, the event
    recorded) and the event publisher's (the row marked published). The model: the stack's
    worker concurrency, one sweep, batches of ten, each message taking its requests' CPU on one
    of the two cores."""
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    month = results.get("month")
    local = results.get("renewals")
    if not month or not local:
        return {"skipped": "bench/results.json has no month or renewals section"}
    from local.runtime import MAX_LOCAL_CONCURRENCY  # noqa: PLC0415

    cores = os.cpu_count() or 2
    workers = min(template_concurrency(), MAX_LOCAL_CONCURRENCY)
    trips = local["dynamodb_round_trips_per_renewal"]
    cpu_per_request = cores / (local["renewals_per_second"] * trips)
    requests = trips + LEASE_REQUESTS + WEBHOOK_REQUESTS + PUBLISHER_REQUESTS
    service = requests * cpu_per_request * max(1.0, workers / cores)
    n = month["integrations"]
    env = simpy.Environment()
    queue = deque(range(n))

    def worker() -> Generator[Any, Any]:
        while queue:
            batch = [queue.popleft() for _ in range(min(10, len(queue)))]
            yield env.timeout(len(batch) * service)

    for _ in range(workers):
        env.process(worker())
    env.run()
    predicted = n / env.now
    measured = month["renewed"] / month["month_seconds"]
    return {
        "input": f"{n} integrations due at once, {workers} workers, {cores} cores",
        "dynamodb_local_requests_per_renewal_on_the_stack": round(requests, 2),
        "cpu_seconds_per_request": round(cpu_per_request, 4),
        "predicted_renewals_per_second": round(predicted, 1),
        "measured_renewals_per_second": round(measured, 1),
        "ratio": round(predicted / measured, 2),
        "within_20_percent": abs(predicted / measured - 1) <= 0.2,
    }


LEASE_REQUESTS = 1  # the sweep's UpdateItem
WEBHOOK_REQUESTS = 3  # event seen?, the line, the event recorded
PUBLISHER_REQUESTS = 1.5  # the outbox row marked published (1 or 2 events a renewal)


# ---------------------------------------------------------------------------- report


def plot(results: dict[str, Any]) -> None:
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, axes = plt.subplots(2, len(results), figsize=(6 * len(results), 7), squeeze=False)
    for column, (name, result) in enumerate(results.items()):
        worst = result["worst_day"]
        trace = result["worst_day_trace"]
        start = _day_index(worst["day"]) * DAY
        depth = sorted(trace["queue_depth"])
        axes[0][column].step(
            [(t - start) / 3600 for t, _ in depth], [q for _, q in depth], where="post"
        )
        axes[0][column].set_title(f"{name}: queue depth, {worst['day']}")
        axes[0][column].set_xlabel("hour of the day (UTC)")
        axes[0][column].set_ylabel("messages")
        late = trace["lateness"]
        axes[1][column].plot([i for i, _ in late], [v / 60 for _, v in late], ".", markersize=1)
        axes[1][column].set_title(
            f"lateness after due (p99 {worst['lateness_p99_s'] / 60:.1f} min, "
            f"max {worst['lateness_max_s'] / 60:.1f} min)"
        )
        axes[1][column].set_xlabel("renewals due that day, in the order handled")
        axes[1][column].set_ylabel("minutes")
    fig.tight_layout()
    fig.savefig(PLOT, dpi=90)


def main() -> dict[str, Any]:
    began = time.perf_counter()
    chosen = scenarios()
    with multiprocessing.get_context("fork").Pool(len(chosen)) as pool:
        outcomes = pool.map(run_scenario, chosen)
    results = {s.name: r for s, r in zip(chosen, outcomes, strict=True)}
    check = bench_month_check()
    document = {
        "assumptions": {
            **dict(Assumptions().__dict__.items()),
            "integrations": INTEGRATIONS,
            "accounts": ACCOUNTS,
            "months": MONTHS,
            "start": START.date().isoformat(),
            "sample_integrations_target": SAMPLE_INTEGRATIONS,
            "seed": SEED,
        },
        "scenarios": results,
        "bench_month_check": check,
        "seconds": round(time.perf_counter() - began, 1),
    }
    OUT.write_text(json.dumps(document, indent=1) + "\n")
    plot(results)
    rows = []
    for name, r in results.items():
        w = r["worst_day"]
        rows.append(
            [
                name,
                r["scenario"]["concurrency"],
                w["day"],
                w["due"],
                f"{w['lateness_p50_s'] / 60:.1f}",
                f"{w['lateness_p99_s'] / 60:.1f}",
                f"{w['lateness_max_s'] / 60:.1f}",
                w["enqueues_per_renewal"],
                r["charges_per_renewal"]["value"],
                f"{w['hottest_partition_share']:.0%} ({w['hottest_partition']})",
                r["cost"]["per_1m_renewals_usd"],
                r["cost"]["month_usd"],
            ]
        )
    table(
        f"Simulation: {INTEGRATIONS:,} integrations, {ACCOUNTS:,} accounts, {MONTHS} months "
        f"(the worst day: the most due)",
        [
            "budget",
            "workers",
            "worst day",
            "due",
            "p50 min",
            "p99 min",
            "max min",
            "enqueues/renewal",
            "charges/renewal",
            "hottest partition",
            "$ per 1M",
            "$ a month",
        ],
        rows,
    )
    print(f"\nbench-month check: {check}")
    print(f"wrote {OUT.name} and {PLOT.name} in {document['seconds']} s")
    return document


if __name__ == "__main__":
    sys.exit(0 if main() else 1)

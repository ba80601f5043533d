"""Renewal tests: DynamoDB Local, a real localstripe, and the business clock injected."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from lifecycle.clock import FixedClock
from lifecycle.payments.stripe_adapter import StripePayments
from lifecycle.rules.catalog import DEFAULT_CATALOG
from lifecycle.rules.model import Account, Integration
from lifecycle.rules.renewal import DueKind
from lifecycle.usecases import renewals
from lifecycle.usecases.services import Services
from local.localstripe import SECRET_KEY, count_payment_intents, create_customer_with_card
from tests.factories import T0, add_account, create_paid


@dataclass
class World:
    services: Services
    clock: FixedClock
    stripe_base: str
    customer: str
    account: Account

    @property
    def store(self):
        return self.services.store

    def add(self, integration_id: str, plan: str = "standard", at=None) -> Integration:
        """An integration created (and charged) the way the API does it."""
        return create_paid(
            self.services, self.account, integration_id, plan, at or self.clock.now()
        )

    def sweep(self) -> list[renewals.Outcome]:
        """The renewal sweep and its workers, in-process: every due integration once."""
        return [
            renewals.renew(self.services, key.account_id, key.integration_id)
            for key in renewals.due(self.services, DueKind.RENEWAL)
        ]

    def payment_intents(self) -> int:
        return count_payment_intents(self.stripe_base, self.customer)

    def ledger(self, integration_id: str | None = None):
        lines, _ = self.store.list_charges(self.account.id, limit=100)
        return [c for c in lines if integration_id is None or integration_id in c.integration_ids]


@pytest.fixture
def world(store, localstripe_base) -> World:
    customer = create_customer_with_card(localstripe_base, "ok")
    account = add_account(store, "acc_1", stripe_customer_id=customer)
    clock = FixedClock(T0)
    services = Services(
        store=store,
        payments=StripePayments(SECRET_KEY, api_base=localstripe_base),
        clock=clock,
        catalog=DEFAULT_CATALOG,
    )
    return World(services, clock, localstripe_base, customer, account)

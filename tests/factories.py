"""Builders of domain objects with real dates and cents, for tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from lifecycle.rules.account import AccountAction, AccountCommand, decide_account
from lifecycle.rules.calendar import add_month, utc
from lifecycle.rules.catalog import DEFAULT_CATALOG, Catalog
from lifecycle.rules.integration import Action, Command, NewIntegration, create, decide
from lifecycle.rules.model import (
    Account,
    AccountDecision,
    AccountStatus,
    BillingState,
    Cancellation,
    CancelReason,
    Decision,
    Integration,
    Status,
    SuspensionReason,
    user,
)

CATALOG = DEFAULT_CATALOG
# The tests' clock starts here (the fixed clock of the `services` fixture); an integration
# created then has its anchor here.
T0 = utc(2026, 11, 21, 10)
ANCHOR = T0
MID = utc(2026, 12, 6, 10)  # 15 of the 30 days of [2026-11-21T10, 2026-12-21T10) are left
END = utc(2026, 12, 21, 10)  # the end of the first period from ANCHOR
# The day after the first period's end: a declined first renewal's retry.
FIRST_RETRY = END + timedelta(days=1)
ALICE = user("alice")
# The body of a `POST /v1/integrations` (a starter plan: the smallest charge).
NEW_INTEGRATION = {
    "name": "Acme to Shopify",
    "supplier": "acme",
    "channel": "shopify",
    "plan": "starter",
}


def act(
    subject: Integration,
    action: Action,
    at: datetime = MID,
    account_status: AccountStatus = AccountStatus.ACTIVE,
    catalog: Catalog = CATALOG,
    **command: Any,
) -> Decision:
    """What Alice doing `action` to `subject` at `at` decides (the rules, nothing stored)."""
    return decide(
        subject,
        Command(action, ALICE, **command),
        at,
        account_status=account_status,
        catalog=catalog,
    )


def create_new(
    subject: Account, plan: str = "starter", at: datetime = MID, catalog: Catalog = CATALOG
) -> Decision:
    """What Alice creating `int_9` (NEW_INTEGRATION on `plan`) in the account `subject` at `at`
    decides."""
    return create(
        "int_9", subject, NewIntegration(**{**NEW_INTEGRATION, "plan": plan}), at, ALICE, catalog
    )


def act_on_account(
    subject: Account,
    action: AccountAction,
    integrations: Sequence[Integration] = (),
    at: datetime = MID,
    **command: Any,
) -> AccountDecision:
    """What Alice doing `action` to the account `subject` at `at` decides."""
    alices = AccountCommand(action, ALICE, **command)
    return decide_account(subject, alices, at, integrations=integrations, catalog=CATALOG)


def account(
    account_id: str = "acc_1", status: AccountStatus = AccountStatus.ACTIVE, **changes: Any
) -> Account:
    return replace(
        Account(
            id=account_id,
            status=status,
            created_at=utc(2026, 1, 1),
            stripe_customer_id="cus_1",
            has_payment_method=True,
            version=1,
        ),
        **changes,
    )


def add_account(
    store: Any, account_id: str = "acc_1", *, card: bool = True, **changes: Any
) -> Account:
    """An account stored as a sign-up and Checkout leave it, created at T0: active, with a
    Stripe customer and a card on file unless `card` is False."""
    fields = {
        "created_at": T0,
        "stripe_customer_id": f"cus_{account_id}" if card else None,
        "has_payment_method": card,
        **changes,
    }
    stored = account(account_id, fields.pop("status", AccountStatus.ACTIVE), **fields)
    store.create_account(stored)
    return stored


def integration(
    status: Status = Status.ACTIVE,
    *,
    integration_id: str = "int_1",
    account_id: str = "acc_1",
    plan: str = "standard",
    anchor: datetime = ANCHOR,
    period_index: int = 0,
    **changes: Any,
) -> Integration:
    """An integration in `status` in its period `period_index` from `anchor`, with the fields
    that status implies (cancellation for cancel_pending, reason for suspended)."""
    implied: dict[str, Any] = {}
    if status is Status.CANCEL_PENDING:
        implied = {
            "cancellation": Cancellation(CancelReason.TOO_EXPENSIVE, None, anchor),
            "cancelled_from": Status.ACTIVE,
        }
    if status is Status.SUSPENDED:
        implied = {
            "suspension_reason": SuspensionReason.ACCOUNT_CANCELLED,
            "suspended_from": Status.ACTIVE,
            "suspended_at": add_month(anchor, period_index + 1),
        }
    base = Integration(
        id=integration_id,
        account_id=account_id,
        name="Acme Supply to Shopify",
        supplier="acme-supply",
        channel="shopify",
        plan=plan,
        status=status,
        current_period_start=add_month(anchor, period_index),
        current_period_end=add_month(anchor, period_index + 1),
        anchor=anchor,
        period_index=period_index,
        created_at=anchor,
        version=3,
    )
    return replace(base, **{**implied, **changes})


def past_due(
    status: Status = Status.ACTIVE,
    *,
    attempts: int = 1,
    retry_at: datetime = FIRST_RETRY,
    **changes: Any,
) -> Integration:
    """An integration in `status` whose renewal was declined `attempts` times, retried at
    `retry_at` (by default: its first renewal failed once)."""
    return integration(
        status,
        billing_state=BillingState.PAST_DUE,
        dunning_attempts=attempts,
        next_attempt_at=retry_at,
        **changes,
    )


def post_integration(name: str, plan: str = "standard") -> tuple[int, Any]:
    """`POST /v1/integrations` of NEW_INTEGRATION named `name` on `plan`, through the real
    handler in process (as invoke's default caller): its status and body."""
    from local.inprocess import invoke  # noqa: PLC0415

    return invoke("POST", "/v1/integrations", body={**NEW_INTEGRATION, "name": name, "plan": plan})


def create_paid(
    services: Any, account: Account, integration_id: str, plan: str, at: datetime
) -> Integration:
    """An integration created and charged up front the way the API does it (the ledger line
    first, the provider, then the state with the line applied)."""
    from lifecycle.rules.paid import CreatePaid  # noqa: PLC0415
    from lifecycle.usecases.charging import Purchase, collect, settle  # noqa: PLC0415

    name = f"Feed {integration_id}"
    decision = create(
        integration_id,
        services.store.get_account(account.id) or account,
        NewIntegration(name, "acme", "shopify", plan),
        at,
        user("u"),
        services.catalog,
    )
    assert decision.charge is not None and decision.after is not None
    action = CreatePaid(integration_id, name, "acme", "shopify", plan)
    purchase = Purchase(decision.charge, action, request_ref=decision.charge.ledger)
    collected = collect(services, account, purchase, at)
    settle(services, collected.line, collected.payment_intent, user("u")).raise_if_refunded()
    return decision.after

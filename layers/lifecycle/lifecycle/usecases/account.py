"""Account use cases: the account page, cancel and reactivate the subscription, the ledger."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta

from lifecycle.ids import new_id
from lifecycle.observability import record_events
from lifecycle.rules.account import AccountAction, AccountCommand, decide_account
from lifecycle.rules.calendar import add_month, format_instant
from lifecycle.rules.errors import NotFound, QuoteExpired, QuoteRequired, QuoteStale, TooLarge
from lifecycle.rules.integration import QuoteRef
from lifecycle.rules.model import (
    Account,
    AccountStatus,
    BillingState,
    CancelReason,
    Integration,
    Status,
    renewal_fee,
)
from lifecycle.rules.paid import AccountReactivationPaid, ledger_key
from lifecycle.rules.quotes import (
    ACCOUNT_VERSION_KEY,
    account_reactivation_lines,
    build_quote,
    check_quote,
)
from lifecycle.store.repository import ACCOUNT_SUBJECT, TRANSACTION_LIMIT, Expect
from lifecycle.usecases import cursors
from lifecycle.usecases.caller import Caller
from lifecycle.usecases.charging import Purchase, buy, paid_through, write_offs
from lifecycle.usecases.services import Services
from lifecycle.usecases.views import (
    AccountView,
    ActivityView,
    ChargePage,
    ChargeView,
    PortalView,
    QuoteView,
    UpcomingCharge,
    UpcomingCharges,
    free_quote,
    history_items,
    quote_view,
)

# Writes per resumed integration in the reactivation transaction: state, history, event.
_WRITES_PER_INTEGRATION = 3


def _account(services: Services, caller: Caller) -> Account:
    found = services.store.get_account(caller.account_id)
    return found or Account(
        id=caller.account_id, status=AccountStatus.ACTIVE, created_at=services.clock.now()
    )


def get_account(services: Services, caller: Caller) -> AccountView:
    account = _account(services, caller)
    integrations = services.store.all_integrations(account.id)
    counts = Counter(i.status.value for i in integrations)
    renewals = [i.current_period_end for i in integrations if i.billable]
    return AccountView(
        id=account.id,
        status=account.status.value,
        currency=account.currency,
        billing_access=caller.billing_access,
        counts={status.value: counts.get(status.value, 0) for status in Status},
        next_renewal_at=format_instant(min(renewals))
        if renewals and account.status is AccountStatus.ACTIVE
        else None,
        has_payment_method=account.has_payment_method,
    )


def _projected(
    integration: Integration, services: Services, until: datetime
) -> list[UpcomingCharge]:
    """The renewals of one integration that fall before `until`, with the fee each will charge."""
    catalog = services.catalog
    monthly, frozen = catalog.monthly_fee(integration.plan), catalog.frozen_fee
    status, k = integration.status, integration.period_index
    at = integration.current_period_end
    if integration.billing_state is BillingState.PAST_DUE and integration.next_attempt_at:
        at = integration.next_attempt_at
    charges = []
    while at <= until:
        fee = renewal_fee(status, monthly, frozen)
        if not fee:
            break
        label = "frozen fee" if status is not Status.ACTIVE else "monthly fee"
        charges.append(
            UpcomingCharge(
                integration_id=integration.id,
                at=format_instant(at),
                amount=fee,
                description=f"{integration.name}: {label}",
            )
        )
        status = Status.FROZEN if status is Status.FREEZE_PENDING else status
        k += 1
        at = add_month(integration.anchor, k + 1)
    return charges


def upcoming_charges(services: Services, caller: Caller, days: int) -> UpcomingCharges:
    account = _account(services, caller)
    if account.status is not AccountStatus.ACTIVE:
        return UpcomingCharges(items=[], total=0)
    now = services.clock.now()
    until = now + timedelta(days=days)
    items = [
        c
        for i in services.store.all_integrations(account.id)
        for c in _projected(i, services, until)
    ]
    items.sort(key=lambda c: (c.at, c.integration_id))
    return UpcomingCharges(items=items, total=sum(c.amount for c in items))


def _view(services: Services, caller: Caller) -> AccountView:
    return get_account(services, caller)


def cancel_account(
    services: Services, caller: Caller, reason: CancelReason, comment: str | None
) -> AccountView:
    caller.require_billing()
    now = services.clock.now()
    account = services.store.get_account(caller.account_id)
    if account is None:
        raise NotFound("This account has no subscription to cancel.")
    decision = decide_account(
        account,
        AccountCommand(AccountAction.CANCEL, caller.actor, reason=reason, comment=comment),
        now,
        integrations=services.store.all_integrations(account.id),
        catalog=services.catalog,
    )
    if not decision.noop:
        services.store.commit(
            account=decision, extra=write_offs(services, decision.integrations, now)
        )
        record_events((*decision.events, *(e for d in decision.integrations for e in d.events)))
    return _view(services, caller)


def _reactivation(
    services: Services, account: Account, now: datetime
) -> tuple[list[Integration], dict[str, int]]:
    integrations = services.store.all_integrations(account.id)
    lines = account_reactivation_lines(integrations, now, services.catalog)
    resumed = {line.integration_id for line in lines}
    versions = {i.id: i.version for i in integrations if i.id in resumed}
    versions[ACCOUNT_VERSION_KEY] = account.version
    if len(resumed) * _WRITES_PER_INTEGRATION + 10 > TRANSACTION_LIMIT:
        raise TooLarge(
            "Too many integrations to reactivate at once: reactivate some one by one first.",
            limit=(TRANSACTION_LIMIT - 10) // _WRITES_PER_INTEGRATION,
        )
    return integrations, versions


def account_reactivation_quote(services: Services, caller: Caller) -> QuoteView:
    caller.require_billing()
    now = services.clock.now()
    account = _account(services, caller)
    if account.status is not AccountStatus.DISABLED:
        return free_quote(account.currency)
    integrations, versions = _reactivation(services, account, now)
    lines = account_reactivation_lines(integrations, now, services.catalog)
    if not lines:
        return free_quote(account.currency)
    quote = build_quote(
        new_id("quo"), account.id, "account", lines, versions, now, services.catalog
    )
    services.store.put_quote(quote)
    return quote_view(quote)


def reactivate_account(services: Services, caller: Caller, quote_id: str | None) -> AccountView:
    """Take the subscription back: free from cancel_pending; from disabled, every integration
    the account cancellation suspended comes back against one quote, charged first. A request
    with a `quote_id` pays that quote or is refused, never does something else."""
    caller.require_billing()
    now = services.clock.now()
    account = _account(services, caller)
    if quote_id is not None and paid_through(services, account.id, quote_id):
        return _view(services, caller)  # a retry of a paid quote
    integrations, versions = _reactivation(services, account, now)
    lines = account_reactivation_lines(integrations, now, services.catalog)
    if account.status is not AccountStatus.DISABLED or not lines:
        if quote_id is not None:
            quote = services.store.get_quote(account.id, quote_id)
            if quote is None:
                raise QuoteExpired("This quote is unknown or has expired. Nothing was charged.")
            raise QuoteStale(
                f"This quote no longer applies: the account is {account.status.value} and"
                " reactivating it costs nothing now, or is not possible. Nothing was charged;"
                " reload to see what you can do.",
                account_status=account.status.value,
            )
        decision = decide_account(
            account,
            AccountCommand(AccountAction.REACTIVATE, caller.actor),
            now,
            integrations=integrations,
            catalog=services.catalog,
        )
        services.store.commit(account=decision)
        record_events((*decision.events, *(e for d in decision.integrations for e in d.events)))
        return _view(services, caller)
    if quote_id is None:
        quote_view_ = account_reactivation_quote(services, caller)
        raise QuoteRequired(
            "Reactivating this account charges the coming month up front: review the quote"
            " and present its id to pay.",
            quote=quote_view_.model_dump(),
        )
    quote = services.store.get_quote(account.id, quote_id)
    if quote is None:
        raise QuoteExpired("This quote is unknown or has expired. Ask for a new one.")
    if quote.scope != "account":
        raise QuoteStale("This quote is not an account reactivation quote. Ask for a new one.")
    check_quote(quote, now, versions)
    decision = decide_account(
        account,
        AccountCommand(
            AccountAction.REACTIVATE, caller.actor, quote=QuoteRef(quote.id, quote.amount)
        ),
        now,
        integrations=integrations,
        catalog=services.catalog,
    )
    assert decision.charge is not None
    action = AccountReactivationPaid(
        disabled_at=account.status_changed_at,
        integration_ids=tuple(sorted(line.integration_id for line in lines)),
        quote_id=quote.id,
    )
    purchase = Purchase(
        replace(decision.charge, ledger_key=ledger_key(account.id, action)),
        action,
        request_ref=quote.id,
        expect=(
            Expect(ACCOUNT_SUBJECT, version=account.version),
            *(
                Expect(subject, version=version)
                for subject, version in versions.items()
                if subject != ACCOUNT_VERSION_KEY
            ),
        ),
    )
    buy(services, account, purchase, caller.actor, now, (account, {i.id: i for i in integrations}))
    return _view(services, caller)


def activity(services: Services, caller: Caller) -> ActivityView:
    return ActivityView(items=history_items(services.store.activity(caller.account_id)))


def charges(services: Services, caller: Caller, limit: int, cursor: str | None) -> ChargePage:
    caller.require_billing()
    after = cursors.resume_after(cursors.CHARGES, caller.account_id, cursor)
    records, last_id = services.store.list_charges(caller.account_id, limit=limit, after=after)
    return ChargePage(
        items=[
            ChargeView(
                id=r.id,
                amount=r.amount,
                currency=r.currency,
                status=r.status.value,
                description=r.description,
                integration_ids=list(r.integration_ids),
                created_at=format_instant(r.created_at),
                stripe_payment_intent=r.stripe_payment_intent,
                receipt_number=r.receipt_number,
            )
            for r in records
        ],
        next_cursor=cursors.issue(cursors.CHARGES, caller.account_id, last_id),
    )


def billing_portal(services: Services, caller: Caller, return_url: str) -> PortalView:
    caller.require_billing()
    account = services.store.get_account(caller.account_id)
    if account is None or not account.stripe_customer_id:
        raise NotFound(
            "This account has no billing profile yet: add a payment method first (Account, Add"
            " payment method)."
        )
    return PortalView(
        url=services.payments.billing_portal_url(
            customer_id=account.stripe_customer_id, return_url=return_url
        )
    )

"""Use cases of one integration (and the bulk page): each is load, decide, charge, commit once."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from typing import Any

from lifecycle.ids import is_issued, new_id
from lifecycle.observability import record_events
from lifecycle.rules.account import reopen_for_create
from lifecycle.rules.errors import (
    Conflict,
    DomainError,
    InvalidTransition,
    NotFound,
    QuoteExpired,
    QuoteRequired,
    QuoteStale,
    TooLarge,
)
from lifecycle.rules.integration import (
    PAID_OUTCOMES,
    Action,
    Command,
    NewIntegration,
    QuoteRef,
    create,
    decide,
    outcome_of,
)
from lifecycle.rules.model import (
    Account,
    AccountStatus,
    CancelReason,
    ChargeKind,
    ChargeRequest,
    Decision,
    Integration,
    Status,
)
from lifecycle.rules.paid import CreatePaid, PaidAction, ReinstatePaid, UnfreezePaid, ledger_key
from lifecycle.rules.quotes import Quote, QuoteLine, build_quote, check_quote, reactivation_line
from lifecycle.store.repository import ACCOUNT_SUBJECT, Expect
from lifecycle.usecases import cursors
from lifecycle.usecases.caller import Caller
from lifecycle.usecases.charging import Purchase, buy, paid_through, write_offs
from lifecycle.usecases.requests import Bulk, CreateIntegration, Settings
from lifecycle.usecases.services import Services
from lifecycle.usecases.settlement import account_settlement
from lifecycle.usecases.views import (
    HistoryView,
    IntegrationPage,
    IntegrationView,
    QuoteView,
    free_quote,
    history_items,
    integration_view,
    quote_view,
)

SETTINGS_MAX_BYTES = 64 * 1024
BULK_MAX_IDS = 100
DELETED = "deleted"


def _free_account(account_id: str, now: datetime) -> Account:
    """An account the table has no item for yet: free, active, nothing on file."""
    return Account(id=account_id, status=AccountStatus.ACTIVE, created_at=now)


def _load(
    services: Services, caller: Caller, integration_id: str, quote_id: str | None = None
) -> tuple[Account, Integration, dict[str, Any], Quote | None]:
    _check_id(integration_id)
    loaded = services.store.load(caller.account_id, integration_id, quote_id)
    if loaded.integration is None:
        # The same answer for an unknown id and for another tenant's: the key is the caller's.
        raise _not_found(integration_id)
    account = loaded.account or _free_account(caller.account_id, services.clock.now())
    return account, loaded.integration, loaded.settings or {}, loaded.quote


def _check_id(integration_id: str) -> None:
    """An id not of the form the system issues is unknown (api.md, Input limits), and is never
    made into a key: a kilobyte of id would break DynamoDB's key limits."""
    if not is_issued(integration_id, "int"):
        raise _not_found(integration_id)


def _not_found(integration_id: str) -> NotFound:
    # The id is said back only when it has the issued form (64 characters, no odd ones).
    named = repr(integration_id) if is_issued(integration_id, "int") else "with that id"
    return NotFound(f"No integration {named} in this account.")


def _view(
    services: Services, account: Account, integration: Integration, settings: Any
) -> IntegrationView:
    return integration_view(integration, account.status, services.catalog, settings)


def _commit(
    services: Services, caller: Caller, account: Account, decision: Decision, now: datetime
) -> None:
    if decision.noop:
        return
    services.store.commit(
        decision,
        account=account_settlement(services, account, decision, now, caller.actor),
        extra=write_offs(services, [decision], now),
    )
    record_events(decision.events)


def _result_view(
    services: Services, account: Account, decision: Decision, settings: dict[str, Any]
) -> IntegrationView:
    if decision.after is not None:
        return _view(services, account, decision.after, settings)
    assert decision.before is not None
    gone = _view(services, account, decision.before, settings)
    return gone.model_copy(
        update={
            "status": DELETED,
            "sync_enabled": False,
            "next_charge": None,
            "scheduled_change": None,
        }
    )


def transition(
    services: Services,
    caller: Caller,
    integration_id: str,
    action: Action,
    *,
    reason: CancelReason | None = None,
    comment: str | None = None,
) -> IntegrationView:
    """A free action on one integration: freeze, cancel, or a free reactivation."""
    account, integration, settings, _ = _load(services, caller, integration_id)
    return _apply_free(
        services,
        caller,
        account,
        integration,
        settings,
        Command(action, caller.actor, reason=reason, comment=comment),
    )


def _apply_free(
    services: Services,
    caller: Caller,
    account: Account,
    integration: Integration,
    settings: dict[str, Any],
    command: Command[Action],
) -> IntegrationView:
    now = services.clock.now()
    decision = decide(
        integration, command, now, account_status=account.status, catalog=services.catalog
    )
    _commit(services, caller, account, decision, now)
    return _result_view(services, account, decision, settings)


def freeze(services: Services, caller: Caller, integration_id: str) -> IntegrationView:
    return transition(services, caller, integration_id, Action.FREEZE)


def cancel(
    services: Services,
    caller: Caller,
    integration_id: str,
    reason: CancelReason,
    comment: str | None,
) -> IntegrationView:
    return transition(
        services, caller, integration_id, Action.CANCEL, reason=reason, comment=comment
    )


def _new_quote(
    services: Services, account: Account, integration: Integration, line: QuoteLine
) -> Quote:
    quote = build_quote(
        new_id("quo"),
        account.id,
        "integration",
        (line,),
        {integration.id: integration.version},
        services.clock.now(),
        services.catalog,
    )
    services.store.put_quote(quote)
    return quote


def reactivation_quote(services: Services, caller: Caller, integration_id: str) -> QuoteView:
    account, integration, _, _ = _load(services, caller, integration_id)
    outcome_of(integration, Action.REACTIVATE)  # invalid_transition when nothing to reactivate
    line = reactivation_line(integration, services.clock.now(), services.catalog)
    if line is None:
        return free_quote(services.catalog.currency)
    return quote_view(_new_quote(services, account, integration, line))


def reactivate(
    services: Services, caller: Caller, integration_id: str, quote_id: str | None
) -> IntegrationView:
    """The refresh icon: free reactivations at once; paid ones against a quote, charged first.

    A request with a `quote_id` pays that quote or is refused: it never silently does something
    else (a free un-cancel instead of the paid unfreeze it was for)."""
    now = services.clock.now()
    account, integration, settings, quote = _load(services, caller, integration_id, quote_id)
    if quote_id is not None:
        caller.require_billing()
        if paid_through(services, account.id, quote_id):
            return _view(services, account, integration, settings)  # a retry of a paid quote
    try:
        outcome = outcome_of(integration, Action.REACTIVATE)
    except InvalidTransition:
        if quote_id is None:
            raise
        # The quote was for a state the integration is no longer in (another request paid or
        # changed it first): stale, and nothing is charged.
        raise _stale_quote(quote, integration.status.value) from None
    line = reactivation_line(integration, now, services.catalog)
    paid = outcome in PAID_OUTCOMES and line is not None
    if not paid:
        if quote_id is not None:
            raise _stale_quote(quote, integration.status.value)
        command = Command(Action.REACTIVATE, caller.actor)
        return _apply_free(services, caller, account, integration, settings, command)
    assert line is not None
    caller.require_billing()
    # The rules refuse a paid reactivation on a cancelling or disabled account before any quote.
    probe = Command(Action.REACTIVATE, caller.actor, quote=QuoteRef("probe", 0))
    decide(integration, probe, now, account_status=account.status, catalog=services.catalog)
    if quote_id is None:
        raise QuoteRequired(
            "This reactivation costs money: review the quote and present its id to pay.",
            quote=quote_view(_new_quote(services, account, integration, line)).model_dump(),
        )
    return _pay_quote(services, caller, account, integration, settings, quote, line, now)


def _pay_quote(
    services: Services,
    caller: Caller,
    account: Account,
    integration: Integration,
    settings: dict[str, Any],
    quote: Quote | None,
    line: QuoteLine,
    now: datetime,
) -> IntegrationView:
    """A paid reactivation against its quote: checked, charged once, applied or refunded."""
    if quote is None:
        raise QuoteExpired("This quote is unknown or has expired. Ask for a new one.")
    if quote.scope != "integration" or set(quote.versions) != {integration.id}:
        raise QuoteStale("This quote is for something else. Ask for a new quote for it.")
    check_quote(quote, now, {integration.id: integration.version})
    action: PaidAction
    if integration.status is Status.FROZEN:
        action = UnfreezePaid(integration.id, integration.current_period_start, quote.id)
    else:
        assert integration.suspended_at is not None
        action = ReinstatePaid(integration.id, integration.suspended_at, quote.id)
    charge = ChargeRequest(
        kind=ChargeKind.QUOTE,
        amount=quote.amount,
        currency=quote.currency,
        description=line.description,
        integration_ids=(integration.id,),
        idempotency_key=f"quote:{quote.id}",
        period_start=line.period_start,
        period_end=line.period_end,
        ledger_key=ledger_key(account.id, action),
    )
    purchase = Purchase(
        charge,
        action,
        request_ref=quote.id,
        expect=(
            Expect(integration.id, version=integration.version),
            Expect(ACCOUNT_SUBJECT, status=AccountStatus.ACTIVE.value),
        ),
    )
    applied = buy(
        services, account, purchase, caller.actor, now, (account, {integration.id: integration})
    )
    if applied is not None and applied.integration and applied.integration.after:
        return _view(services, account, applied.integration.after, settings)
    current = services.store.get_integration(account.id, integration.id) or integration
    return _view(services, account, current, settings)


def _stale_quote(quote: Quote | None, status: str) -> DomainError:
    if quote is None:
        return QuoteExpired("This quote is unknown or has expired. Nothing was charged.")
    return QuoteStale(
        f"This quote no longer applies: the integration is {status} now and reactivating it"
        " costs nothing, or is not possible. Nothing was charged; reload to see what you can do.",
        current_status=status,
    )


def create_integration(
    services: Services, caller: Caller, body: CreateIntegration, idempotency_key: str | None
) -> IntegrationView:
    """Create an integration, its first month charged up front; a declined card creates nothing."""
    caller.require_billing()
    now = services.clock.now()
    services.catalog.monthly_fee(body.plan)  # unknown plan: 422 before anything else
    account = services.store.get_account(caller.account_id) or _free_account(caller.account_id, now)
    request = NewIntegration(body.name, body.supplier, body.channel, body.plan)
    decision = create(new_id("int"), account, request, now, caller.actor, services.catalog)
    assert decision.after is not None
    charge = decision.charge
    if charge is None:
        reopened = reopen_for_create(account, now, caller.actor)
        services.store.commit(decision, account=reopened, settings={})
        record_events((*reopened.events, *decision.events))
        return _view(services, reopened.after, decision.after, {})
    action = CreatePaid(decision.after.id, body.name, body.supplier, body.channel, body.plan)
    # With an Idempotency-Key a retry lands on the same ledger line, whatever happened (keys
    # belong to a user: two users' equal keys are two purchases).
    ledger = (
        f"create:{account.id}:{caller.user_id}:{idempotency_key}"
        if idempotency_key
        else ledger_key(account.id, action)
    )
    purchase = Purchase(replace(charge, ledger_key=ledger), action, request_ref=ledger)
    applied = buy(services, account, purchase, caller.actor, now, (account, {}))
    if applied is not None and applied.integration and applied.integration.after:
        after = applied.account.after if applied.account else account
        return _view(services, after, applied.integration.after, {})
    # Applied by an earlier attempt with this key (a retry): its line names the integration.
    line = services.store.charge_by_key(account.id, ledger)
    first = line.action if line is not None else None
    integration_id = (
        first.integration_id if isinstance(first, CreatePaid) else action.integration_id
    )
    found = services.store.load(account.id, integration_id)
    if found.integration is None:
        raise Conflict("The integration is being created. Reload in a moment.")
    return _view(services, found.account or account, found.integration, found.settings)


def get_integration(services: Services, caller: Caller, integration_id: str) -> IntegrationView:
    account, integration, settings, _ = _load(services, caller, integration_id)
    return _view(services, account, integration, settings)


def list_integrations(
    services: Services, caller: Caller, *, status: Status | None, limit: int, cursor: str | None
) -> IntegrationPage:
    after = cursors.resume_after(cursors.INTEGRATIONS, caller.account_id, cursor)
    page = services.store.list_integrations(
        caller.account_id, limit=limit, after=after, status=status
    )
    account = page.account or _free_account(caller.account_id, services.clock.now())
    return IntegrationPage(
        items=[_view(services, account, i, None) for i in page.integrations],
        next_cursor=cursors.issue(cursors.INTEGRATIONS, caller.account_id, page.last_id),
    )


def update_settings(
    services: Services, caller: Caller, integration_id: str, body: Settings
) -> IntegrationView:
    document = body.model_dump()
    if len(json.dumps(document, separators=(",", ":")).encode()) > SETTINGS_MAX_BYTES:
        raise TooLarge("Settings are limited to 64 KiB in all.", limit_bytes=SETTINGS_MAX_BYTES)
    now = services.clock.now()
    account, integration, _, _ = _load(services, caller, integration_id)
    decision = decide(
        integration,
        Command(Action.UPDATE_SETTINGS, caller.actor),
        now,
        account_status=account.status,
        catalog=services.catalog,
    )
    services.store.commit(decision, settings=document)
    assert decision.after is not None
    return _view(services, account, decision.after, document)


def history(services: Services, caller: Caller, integration_id: str) -> HistoryView:
    _check_id(integration_id)
    if services.store.get_integration(caller.account_id, integration_id) is None:
        raise _not_found(integration_id)
    return HistoryView(
        items=history_items(services.store.history(caller.account_id, integration_id))
    )


BulkOutcome = tuple[str, IntegrationView | DomainError]


def bulk(services: Services, caller: Caller, body: Bulk) -> list[BulkOutcome]:
    """Each id is its own transition: one failing item never fails the others. Each id's
    outcome is its integration's view or the domain error that refused it (`lifecycle.http`
    makes those problem documents)."""
    ids = list(dict.fromkeys(body.ids))
    if len(ids) > BULK_MAX_IDS:
        raise TooLarge(f"At most {BULK_MAX_IDS} integrations per request.", limit=BULK_MAX_IDS)
    results: list[BulkOutcome] = []
    for integration_id in ids:
        try:
            if body.action == "freeze":
                view = freeze(services, caller, integration_id)
            elif body.action == "cancel":
                view = transition(
                    services,
                    caller,
                    integration_id,
                    Action.CANCEL,
                    reason=body.reason,
                    comment=body.comment,
                )
            else:
                view = reactivate(services, caller, integration_id, None)
            results.append((integration_id, view))
        except DomainError as error:
            results.append((integration_id, error))
    return results

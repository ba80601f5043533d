"""Quotes for paid reactivations: lines, total, a 15-minute expiry, and the checks at payment."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from lifecycle.rules.calendar import add_month, format_instant, normalize
from lifecycle.rules.catalog import Catalog
from lifecycle.rules.errors import QuoteExpired, QuoteStale
from lifecycle.rules.model import Integration, Status, SuspensionReason
from lifecycle.rules.money import format_amount, prorate

QUOTE_TTL = timedelta(minutes=15)
ACCOUNT_VERSION_KEY = "account"


@dataclass(frozen=True, slots=True)
class QuoteLine:
    integration_id: str
    description: str
    amount: int
    period_start: datetime
    period_end: datetime


@dataclass(frozen=True, slots=True)
class Quote:
    """A priced offer. `versions` holds the version of every integration (and, for an account
    reactivation, of the account) it was priced from: any change since makes it stale."""

    id: str
    account_id: str
    scope: str  # "integration" or "account"
    lines: tuple[QuoteLine, ...]
    currency: str
    created_at: datetime
    expires_at: datetime
    versions: Mapping[str, int] = field(default_factory=dict)

    @property
    def amount(self) -> int:
        return sum(line.amount for line in self.lines)


def reactivation_line(
    integration: Integration, now: datetime, catalog: Catalog
) -> QuoteLine | None:
    """What reactivating this integration costs now; None when it is free or not possible.

    Unfreezing a frozen integration costs the difference between the monthly and the frozen
    fee for what is left of the period, prorated and floored at 0. A suspended integration
    starts a new period now and pays its prior status's full fee.
    """
    now = normalize(now)
    monthly, frozen = catalog.monthly_fee(integration.plan), catalog.frozen_fee
    if integration.status is Status.FROZEN:
        amount = prorate(
            max(monthly - frozen, 0),
            now,
            integration.current_period_start,
            integration.current_period_end,
        )
        if amount == 0:
            return None
        return QuoteLine(
            integration_id=integration.id,
            description=(
                f"Unfreeze {integration.name}: {format_amount(monthly, catalog.currency)} monthly"
                f" less {format_amount(frozen, catalog.currency)} frozen fee, prorated to"
                f" {format_instant(integration.current_period_end)}"
            ),
            amount=amount,
            period_start=max(now, integration.current_period_start),
            period_end=integration.current_period_end,
        )
    if integration.status is Status.SUSPENDED:
        resumes_as = integration.suspended_from or Status.ACTIVE
        fee = frozen if resumes_as is Status.FROZEN else monthly
        if fee == 0:
            return None
        return QuoteLine(
            integration_id=integration.id,
            description=(f"Reactivate {integration.name} ({resumes_as.value}): one month up front"),
            amount=fee,
            period_start=now,
            period_end=add_month(now, 1),
        )
    return None


def account_reactivation_lines(
    integrations: Iterable[Integration], now: datetime, catalog: Catalog
) -> tuple[QuoteLine, ...]:
    """Lines for reactivating a disabled account: every integration the account cancellation
    suspended comes back with a new period, each paid up front."""
    lines = []
    for integration in integrations:
        if (
            integration.status is Status.SUSPENDED
            and integration.suspension_reason is SuspensionReason.ACCOUNT_CANCELLED
        ):
            line = reactivation_line(integration, now, catalog)
            if line is not None:
                lines.append(line)
    return tuple(lines)


def build_quote(
    quote_id: str,
    account_id: str,
    scope: str,
    lines: tuple[QuoteLine, ...],
    versions: Mapping[str, int],
    now: datetime,
    catalog: Catalog,
) -> Quote:
    now = normalize(now)
    return Quote(
        id=quote_id,
        account_id=account_id,
        scope=scope,
        lines=lines,
        currency=catalog.currency,
        created_at=now,
        expires_at=now + QUOTE_TTL,
        versions=dict(versions),
    )


def check_quote(quote: Quote, now: datetime, current_versions: Mapping[str, int]) -> None:
    """Refuse a quote that expired or whose integrations or account changed since it was made."""
    if normalize(now) >= quote.expires_at:
        raise QuoteExpired(
            "This quote has expired (quotes are valid for 15 minutes). Ask for a new one.",
            expires_at=format_instant(quote.expires_at),
        )
    if dict(current_versions) != dict(quote.versions):
        raise QuoteStale(
            "Something this quote was priced from has changed since. Ask for a new quote."
        )

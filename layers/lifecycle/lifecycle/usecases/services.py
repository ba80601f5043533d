"""What a use case needs (store, payments, clock, catalog, the user directory), built lazily once
per container."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from lifecycle.clock import Clock, SystemClock
from lifecycle.directory.port import Directory
from lifecycle.payments.port import Payments
from lifecycle.rules.catalog import Catalog
from lifecycle.settings import settings
from lifecycle.store.repository import Store


def _cognito() -> Directory:
    from lifecycle.directory.cognito import CognitoDirectory  # noqa: PLC0415 - lazy

    return CognitoDirectory()


@dataclass
class Services:
    store: Store
    payments: Payments
    clock: Clock
    catalog: Catalog
    # Only the users use cases and sign-up call it (Cognito's admin API, built on first use).
    directory: Directory = field(default_factory=_cognito)


class _LazyStripe:
    """The Stripe adapter, imported and built at the first charge only: functions that never
    charge never import the Stripe SDK."""

    @functools.cached_property
    def _adapter(self) -> Payments:
        from lifecycle.payments.stripe_adapter import StripePayments  # noqa: PLC0415

        return StripePayments()

    def __getattr__(self, name: str) -> object:
        return getattr(self._adapter, name)


_override: Services | None = None


@functools.cache
def _default() -> Services:
    config = settings()
    return Services(
        store=Store(config.table_name),
        payments=_LazyStripe(),  # type: ignore[arg-type]
        clock=SystemClock(),
        catalog=config.catalog,
    )


def services() -> Services:
    return _override if _override is not None else _default()


def use_services(replacement: Services | None) -> None:
    """Tests and the local stack inject their own (fakes, a business clock)."""
    global _override  # noqa: PLW0603 - the one seam for injection
    _override = replacement

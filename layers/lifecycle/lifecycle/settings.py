"""Typed configuration, read once from the environment the template sets (no scattered getenv)."""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass, field

from lifecycle.rules.catalog import DEFAULT_CATALOG, Catalog


@dataclass(frozen=True, slots=True)
class Settings:
    table_name: str
    idempotency_table_name: str
    event_bus_name: str = "integrations"
    renewal_queue_url: str | None = None
    stripe_rate_per_second: float = 25.0
    renewal_worker_concurrency: int = 5
    catalog: Catalog = field(default_factory=lambda: DEFAULT_CATALOG)
    # The notifier's verified SES sender and the dashboard its links point to.
    email_sender: str = "billing@example.com"
    dashboard_url: str = "http://localhost:3000/"
    # Who the receipts name as the seller.
    receipt_seller: str = "Supplier Feeds"

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        return cls(
            table_name=env.get("TABLE_NAME", "integrations"),
            idempotency_table_name=env.get("IDEMPOTENCY_TABLE_NAME", "idempotency"),
            event_bus_name=env.get("EVENT_BUS_NAME", "integrations"),
            renewal_queue_url=env.get("RENEWAL_QUEUE_URL") or None,
            stripe_rate_per_second=float(env.get("STRIPE_RATE_PER_SECOND", "25")),
            renewal_worker_concurrency=int(env.get("RENEWAL_WORKER_CONCURRENCY", "5")),
            catalog=_catalog(env.get("PRICE_CATALOG")),
            email_sender=env.get("EMAIL_SENDER") or "billing@example.com",
            dashboard_url=env.get("DASHBOARD_URL") or "http://localhost:3000/",
            receipt_seller=env.get("RECEIPT_SELLER") or "Supplier Feeds",
        )


def _catalog(text: str | None) -> Catalog:
    """`PRICE_CATALOG` = `{"monthly_fees": {"starter": 2900, ...}, "frozen_fee": 900}` (cents)."""
    if not text:
        return DEFAULT_CATALOG
    data = json.loads(text)
    return Catalog(
        monthly_fees={str(k): int(v) for k, v in data["monthly_fees"].items()},
        frozen_fee=int(data.get("frozen_fee", DEFAULT_CATALOG.frozen_fee)),
        currency=str(data.get("currency", DEFAULT_CATALOG.currency)),
    )


@functools.cache
def settings() -> Settings:
    return Settings.from_env()


SECRET_MAX_AGE_SECONDS = 300


def secure_parameter(name: str) -> str:
    """The SSM SecureString `name`, through Powertools' cache for five minutes, so that a
    rotated secret reaches every warm function without a deploy."""
    from aws_lambda_powertools.utilities import parameters  # noqa: PLC0415 - lazy

    return str(parameters.get_parameter(name, decrypt=True, max_age=SECRET_MAX_AGE_SECONDS))


def secret_list(variable: str) -> list[str]:
    """A comma-separated list of secrets (more than one during a rotation, the current first):
    env `variable` (the local stack, tests), else the SSM SecureString named by env
    `<variable>_PARAM` (deployed). Never a default: a missing secret is a RuntimeError."""
    text = os.environ.get(variable)
    if not text:
        name = os.environ.get(f"{variable}_PARAM")
        if not name:
            raise RuntimeError(f"no secret: set {variable}_PARAM (or {variable})")
        text = secure_parameter(name)
    found = [secret.strip() for secret in text.split(",") if secret.strip()]
    if not found:
        raise RuntimeError(f"the secret {variable} is empty")
    return found

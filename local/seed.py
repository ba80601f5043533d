"""The demo a newcomer finds on the first start of `make dev`: one account, a few integrations.

| integration | plan | how it got there | status |
| --- | --- | --- | --- |
| Acme Supply to Shopify | standard | created (4900 up front) | `active` |
| Globex Wholesale to Amazon | starter | created, then frozen | `freeze_pending` |
| Initech Parts to eBay | premium | created, then cancelled | `cancel_pending` |
| Umbrella Goods to WooCommerce | standard | written as frozen, 10 days into its month | `frozen` |

The first three go through the real API (the local gateway, the handlers, localstripe); the
frozen one is written straight to the table (the business clock cannot go back a month to
freeze it for real), so that a paid unfreeze can be quoted at once.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from lifecycle.clock import Clock
from lifecycle.ids import new_id
from lifecycle.rules.calendar import add_month
from lifecycle.rules.model import Integration, Status
from local.accounts import Accounts, call_api

DEMO_ACCOUNT = "acc_demo"
DEMO_EMAIL = "demo@example.com"


def seed_demo(accounts: Accounts, clock: Clock) -> bool:
    """Create the demo unless its account exists already (a restart); whether it was created."""
    if accounts.services.store.get_account(DEMO_ACCOUNT) is not None:
        return False
    accounts.create_account(DEMO_ACCOUNT, DEMO_EMAIL, "ok")
    token, _ = accounts.issuer.mint(DEMO_ACCOUNT, billing_access=True)

    def call(method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            return call_api(accounts.api_url, method, path, body, token)
        except RuntimeError as error:
            raise RuntimeError(f"seeding: {error}") from error

    def create(name: str, supplier: str, channel: str, plan: str) -> str:
        body = {"name": name, "supplier": supplier, "channel": channel, "plan": plan}
        return str(call("POST", "/v1/integrations", body)["id"])

    create("Acme Supply to Shopify", "acme-supply", "shopify", "standard")
    globex = create("Globex Wholesale to Amazon", "globex-wholesale", "amazon", "starter")
    call("POST", f"/v1/integrations/{globex}/freeze")
    initech = create("Initech Parts to eBay", "initech-parts", "ebay", "premium")
    call(
        "POST",
        f"/v1/integrations/{initech}/cancel",
        {"reason": "too_expensive", "comment": "Seeded demo: cancelled at the period end."},
    )
    accounts.services.store.load_integrations([_frozen_for_ten_days(clock.now())])
    return True


def _frozen_for_ten_days(now: datetime) -> Integration:
    """An integration in its second month, frozen at its renewal about ten days ago."""
    anchor = now - timedelta(days=41)
    return Integration(
        id=new_id("int"),
        account_id=DEMO_ACCOUNT,
        name="Umbrella Goods to WooCommerce",
        supplier="umbrella-goods",
        channel="woocommerce",
        plan="standard",
        status=Status.FROZEN,
        current_period_start=add_month(anchor, 1),
        current_period_end=add_month(anchor, 2),
        anchor=anchor,
        created_at=anchor,
        period_index=1,
        version=3,
    )

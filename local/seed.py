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

import json
import urllib.error
import urllib.request
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from lifecycle.ids import new_id
from lifecycle.rules.calendar import add_month
from lifecycle.rules.model import Integration, Status

if TYPE_CHECKING:
    from local.stack import Stack

DEMO_ACCOUNT = "acc_demo"
DEMO_EMAIL = "demo@example.com"


def seed_demo(stack: Stack) -> bool:
    """Create the demo unless its account exists already (a restart); whether it was created."""
    if stack.store.get_account(DEMO_ACCOUNT) is not None:
        return False
    stack.create_account(DEMO_ACCOUNT, DEMO_EMAIL, "ok")
    token, _ = stack.issuer.mint(DEMO_ACCOUNT, billing_access=True)

    def call(method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        request = urllib.request.Request(  # noqa: S310 - our own local API
            f"{stack.config.api_url}{path}",
            data=json.dumps(body).encode() if body is not None else None,
            method=method,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                answer: dict[str, Any] = json.load(response)
                return answer
        except urllib.error.HTTPError as error:
            raise RuntimeError(
                f"seeding: {method} {path}: {error.code} {error.read()!r}"
            ) from error

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
    stack.store.load_integrations([_frozen_for_ten_days(stack)])
    return True


def _frozen_for_ten_days(stack: Stack) -> Integration:
    """An integration in its second month, frozen at its renewal about ten days ago."""
    now = stack.clock.now()
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

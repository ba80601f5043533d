"""Billing: the charges ledger and the Stripe customer portal (billing access only)."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query

from lifecycle.http.handler import api, current_caller, resolver
from lifecycle.http.models import BillingPortal, ChargePage, PortalView
from lifecycle.usecases import account
from lifecycle.usecases.services import services

app = resolver()


@app.get("/v1/account/charges")
def charges(
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> ChargePage:
    return account.charges(services(), current_caller(app), limit, cursor)


@app.post("/v1/account/billing-portal")
def billing_portal(body: BillingPortal) -> PortalView:
    return account.billing_portal(services(), current_caller(app), body.return_url)


lambda_handler = api(app)

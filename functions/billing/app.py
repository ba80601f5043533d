"""Billing: the charges ledger, the Stripe customer portal and adding a payment method through
Stripe Checkout (billing access only)."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query

from lifecycle.http.handler import api, current_caller, resolver
from lifecycle.http.models import (
    BillingPortal,
    ChargePage,
    CheckoutView,
    PaymentMethodSetup,
    PortalView,
)
from lifecycle.usecases import account, payment_method
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


@app.post("/v1/account/payment-method")
def add_payment_method(body: PaymentMethodSetup) -> CheckoutView:
    return payment_method.add_payment_method(services(), current_caller(app), body.return_url)


lambda_handler = api(app)

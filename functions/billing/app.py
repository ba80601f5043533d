"""Billing: the charges ledger, receipts, the Stripe customer portal and adding a payment
method through Stripe Checkout (billing access only)."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from lifecycle.http.handler import api, current_caller, resolver
from lifecycle.usecases import account, payment_method, receipts
from lifecycle.usecases.requests import BillingPortal, PaymentMethodSetup
from lifecycle.usecases.services import services
from lifecycle.usecases.views import ChargePage, CheckoutView, PortalView

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


@app.get(
    "/v1/account/charges/<charge_id>/receipt",
    responses={
        200: {
            "description": "The receipt of a succeeded or refunded charge: PDF, or HTML when"
            " the request's Accept prefers text/html.",
            "content": {
                "application/pdf": {"schema": {"type": "string", "format": "binary"}},
                "text/html": {"schema": {"type": "string"}},
            },
        }
    },
)
# No return annotation on purpose: Powertools validates an annotated response body with
# pydantic, which reads bytes as UTF-8 text; a PDF is binary (the resolver base64-encodes it).
def receipt(charge_id: str):  # type: ignore[no-untyped-def]
    document = receipts.receipt(
        services(), current_caller(app), charge_id, app.current_event.headers.get("accept")
    )
    headers = {"Cache-Control": "private, no-store", "Vary": "Accept"}
    if document.filename:
        headers["Content-Disposition"] = f'inline; filename="{document.filename}"'
    return Response(
        status_code=200, content_type=document.content_type, body=document.body, headers=headers
    )


lambda_handler = api(app)

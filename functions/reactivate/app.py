"""Reactivate (the refresh icon): its quote, and the reactivation itself, paid against the quote."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body

from lifecycle.http.handler import api, current_caller, resolver
from lifecycle.http.models import IntegrationView, QuoteView, Reactivate
from lifecycle.usecases import integrations
from lifecycle.usecases.services import services

app = resolver()


@app.get("/v1/integrations/<integration_id>/reactivation-quote")
def reactivation_quote(integration_id: str) -> QuoteView:
    return integrations.reactivation_quote(services(), current_caller(app), integration_id)


@app.post("/v1/integrations/<integration_id>/reactivate")
def reactivate(
    integration_id: str, body: Annotated[Reactivate | None, Body()] = None
) -> IntegrationView:
    quote_id = body.quote_id if body else None
    return integrations.reactivate(services(), current_caller(app), integration_id, quote_id)


lambda_handler = api(app)

"""Reactivate (the refresh icon): its quote, and the reactivation itself, paid against the quote."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body

from lifecycle.http.handler import api, current_caller, resolver
from lifecycle.usecases import integrations
from lifecycle.usecases.requests import Reactivate
from lifecycle.usecases.services import services
from lifecycle.usecases.views import IntegrationView, QuoteView

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

"""Integrations: list, create (charged up front), read, settings and history."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from lifecycle.http.handler import api, current_caller, idempotency_key, resolver
from lifecycle.rules.model import Status
from lifecycle.usecases import integrations
from lifecycle.usecases.requests import CreateIntegration, Settings
from lifecycle.usecases.services import services
from lifecycle.usecases.views import HistoryView, IntegrationPage, IntegrationView

app = resolver()


@app.get("/v1/integrations")
def list_integrations(
    status: Annotated[Status | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> IntegrationPage:
    return integrations.list_integrations(
        services(), current_caller(app), status=status, limit=limit, cursor=cursor
    )


@app.post("/v1/integrations")
def create_integration(body: CreateIntegration) -> Response[IntegrationView]:
    created = integrations.create_integration(
        services(), current_caller(app), body, idempotency_key(app)
    )
    return Response(status_code=201, body=created, content_type="application/json")


@app.get("/v1/integrations/<integration_id>")
def get_integration(integration_id: str) -> IntegrationView:
    return integrations.get_integration(services(), current_caller(app), integration_id)


@app.put("/v1/integrations/<integration_id>/settings")
def update_settings(integration_id: str, body: Settings) -> IntegrationView:
    return integrations.update_settings(services(), current_caller(app), integration_id, body)


@app.get("/v1/integrations/<integration_id>/history")
def history(integration_id: str) -> HistoryView:
    return integrations.history(services(), current_caller(app), integration_id)


lambda_handler = api(app)

"""Freeze: POST /v1/integrations/{id}/freeze (the orange button). Takes effect at the period end."""

from lifecycle.http.handler import api, current_caller, resolver
from lifecycle.usecases import integrations
from lifecycle.usecases.services import services
from lifecycle.usecases.views import IntegrationView

app = resolver()


@app.post("/v1/integrations/<integration_id>/freeze")
def freeze(integration_id: str) -> IntegrationView:
    return integrations.freeze(services(), current_caller(app), integration_id)


lambda_handler = api(app)

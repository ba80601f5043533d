"""Cancel: POST /v1/integrations/{id}/cancel (the red button, a reason required)."""

from lifecycle.http.handler import api, current_caller, resolver
from lifecycle.usecases import integrations
from lifecycle.usecases.requests import Cancel
from lifecycle.usecases.services import services
from lifecycle.usecases.views import IntegrationView

app = resolver()


@app.post("/v1/integrations/<integration_id>/cancel")
def cancel(integration_id: str, body: Cancel) -> IntegrationView:
    return integrations.cancel(
        services(), current_caller(app), integration_id, body.reason, body.comment
    )


lambda_handler = api(app)

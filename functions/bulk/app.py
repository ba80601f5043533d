"""Bulk: POST /v1/integrations/bulk, up to 100 ids, a result per id (one failure fails no other)."""

from lifecycle.http.handler import api, current_caller, resolver
from lifecycle.http.models import Bulk, BulkResult
from lifecycle.usecases import integrations
from lifecycle.usecases.services import services

app = resolver()


@app.post("/v1/integrations/bulk")
def bulk(body: Bulk) -> BulkResult:
    return integrations.bulk(services(), current_caller(app), body)


lambda_handler = api(app)

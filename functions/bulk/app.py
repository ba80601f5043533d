"""Bulk: POST /v1/integrations/bulk, up to 100 ids, a result per id (one failure fails no other)."""

from lifecycle.http.handler import api, current_caller, resolver
from lifecycle.http.problems import bulk_result
from lifecycle.usecases import integrations
from lifecycle.usecases.requests import Bulk
from lifecycle.usecases.services import services
from lifecycle.usecases.views import BulkResult

app = resolver()


@app.post("/v1/integrations/bulk")
def bulk(body: Bulk) -> BulkResult:
    return bulk_result(integrations.bulk(services(), current_caller(app), body))


lambda_handler = api(app)

"""schemathesis against docs/openapi.json, through the local gateway (WSGI) and the real
handlers in-process: no input yields a 5xx, and every 4xx is a problem document."""

from __future__ import annotations

import json

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from local.gateway import Gateway
from local.openapi import OUTPUT
from tests.api_events import claims

pytestmark = pytest.mark.integration

schema = schemathesis.openapi.from_dict(json.loads(OUTPUT.read_text(encoding="utf-8")))
schema.app = Gateway(authenticate=lambda headers: claims())


def problem_documents(ctx, response, case):
    """Every 4xx is `application/problem+json` with status, code, title and detail."""
    if 400 <= response.status_code < 500:
        headers = {name.lower(): values for name, values in response.headers.items()}
        assert headers["content-type"][0].startswith("application/problem+json"), response.text
        body = json.loads(response.text)
        assert {"status", "code", "title", "detail"} <= set(body), body
        assert body["status"] == response.status_code


@pytest.fixture(autouse=True)
def _seeded(services):
    from tests.integration.api.conftest import add_account  # noqa: PLC0415 - fixture helper

    add_account(services.store, "acc_1")


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_produces_a_server_error_and_every_4xx_is_a_problem(case):
    case.call_and_validate(
        checks=[
            not_a_server_error,
            content_type_conformance,
            response_schema_conformance,
            problem_documents,
        ]
    )

"""schemathesis against docs/openapi.json, through the local gateway (WSGI) and the real
handlers in-process: no input yields a 5xx, and every 4xx is a problem document.

Two runs over every operation: data generated in both modes (the responses checked against
their schemas), then negative mode only, with a fixed budget of examples per operation:
bodies and headers that break the document, each also sent with a media type a careless client
uses and, on routes with an id, with an id no system issues. A refused request changes nothing
in the table."""

from __future__ import annotations

import json

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core import NOT_SET
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from local.gateway import Gateway
from local.inprocess import claims
from local.openapi import OUTPUT
from local.runtime import InProcess
from tests import bad_inputs
from tests.factories import add_account
from tests.store_reads import table_items

pytestmark = pytest.mark.integration

DOCUMENT = json.loads(OUTPUT.read_text(encoding="utf-8"))
# Per operation; 18 operations. Large enough that every operation meets each media type and
# each kind of id below several times (the strategies draw them independently).
NEGATIVE_EXAMPLES = 40

schema = schemathesis.openapi.from_dict(DOCUMENT)
schema.app = Gateway(authenticate=lambda headers: claims(), invoke=InProcess().invoke)
# Plain pytest parametrization over the operations, each running its own Hypothesis test: with
# `schema.parametrize()` every operation's item has the same node id, and `make test`'s
# `--dist loadfile` then ran the first operation only.
OPERATIONS = [result.ok() for result in schema.get_all_operations()]
FUZZ = settings(deadline=None, suppress_health_check=list(HealthCheck))

MEDIA_TYPES = [
    "text/plain",
    "application/xml",
    "text/json",
    "application/vnd.api+json",
    "APPLICATION/JSON",
    "application/json; charset=utf-8",
    "application/x-www-form-urlencoded",
    "",
]
odd_ids = st.sampled_from(
    [
        "x",
        "int_" + "A" * 61,
        "int_" + "A" * 1096,
        "int_%00",
        "..",
        "int_é",
        "int_1;x",
        "int 1",
        "int_1\n",
        "int_\uffff",
    ]
) | st.text(min_size=1, max_size=1500).filter(lambda text: not set(text) & set("/?#"))


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
    add_account(services.store, "acc_1")


def test_every_operation_of_the_document_is_tested():
    assert len(OPERATIONS) == len(
        [op for operations in DOCUMENT["paths"].values() for op in operations]
    )


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda operation: operation.label)
def test_no_request_produces_a_server_error_and_every_4xx_is_a_problem(operation):
    @settings(FUZZ, max_examples=25)
    @given(
        case=operation.as_strategy(GenerationMode.POSITIVE)
        | operation.as_strategy(GenerationMode.NEGATIVE)
    )
    def run(case):
        response = case.call_and_validate(
            checks=[
                not_a_server_error,
                content_type_conformance,
                response_schema_conformance,
                problem_documents,
            ]
        )
        if response.status_code >= 400:
            key = f"schemathesis|{operation.label}|both modes|{bad_inputs.digest(repr(case))}"
            bad_inputs.record(key, response.status_code)

    run()


def _sent(services, case, label: str, **kwargs) -> None:
    """Send `case` (with `kwargs` for the call): never a 5xx; a 4xx is a problem document and
    leaves the table as it was."""
    before = table_items(services.store)
    response = case.call(**kwargs)
    status = response.status_code
    key = f"{case.operation.label}|{label}|{bad_inputs.digest(repr(case))}"
    bad_inputs.record(f"schemathesis|{key}|{bad_inputs.digest(repr(kwargs))}", status)
    assert status < 500, (key, status, response.text)
    if 400 <= status < 500:
        problem_documents(None, response, case)
        assert table_items(services.store) == before, key


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda operation: operation.label)
def test_invalid_bodies_and_headers_get_a_4xx_problem_and_change_nothing(operation, services):
    # A fixed budget, the same examples on every run.
    @settings(FUZZ, max_examples=NEGATIVE_EXAMPLES, derandomize=True, database=None)
    @given(
        case=operation.as_strategy(GenerationMode.NEGATIVE),
        media_type=st.sampled_from(MEDIA_TYPES),
        odd_id=odd_ids,
    )
    def run(case, media_type, odd_id):
        _sent(services, case, "negative")
        if case.body is not NOT_SET:
            headers = {"Content-Type": media_type}
            _sent(services, case, f"body as {media_type!r}", headers=headers)
        if "integration_id" in case.path_parameters:
            case.path_parameters = {**case.path_parameters, "integration_id": odd_id}
            _sent(services, case, "odd id")

    run()

"""Bad input never gets a 5xx (api.md, Errors and Input limits), generated from docs/openapi.json:
every route with every media type of a careless client, every route with an id with ids no
system issues, JSON over the limits on every body route. Each answer is a 4xx problem document
(or, for an accepted spelling of application/json, anything but a 5xx), and a refused request
leaves the table exactly as it was."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from local.inprocess import invoke
from local.openapi import OUTPUT
from local.template import route_table
from tests import bad_inputs
from tests.factories import add_account
from tests.store_reads import table_items

pytestmark = pytest.mark.integration

DOCUMENT = json.loads(OUTPUT.read_text(encoding="utf-8"))
SCHEMAS = DOCUMENT["components"]["schemas"]


def _template_route(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{id}", path)


ROUTES = [
    (method.upper(), _template_route(path), operation)
    for path, operations in DOCUMENT["paths"].items()
    for method, operation in operations.items()
]
ROUTE_IDS = [f"{method} {route}" for method, route, _ in ROUTES]


def _label(value: Any) -> str:
    return "" if isinstance(value, dict) else str(value)


ID_ROUTES = [(method, route, operation) for method, route, operation in ROUTES if "{id}" in route]

# What a careless client or an attacker sends as Content-Type (the issue's list and more).
REFUSED_MEDIA_TYPES = [
    "text/plain",
    "text/plain; charset=utf-8",
    "application/xml",
    "text/json",
    "application/vnd.api+json",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/json-patch+json",
    "application/jsonx",
    "application/json garbage",
    "*/*",
    "",
]
ACCEPTED_MEDIA_TYPES = [
    "APPLICATION/JSON",
    "application/json; charset=utf-8",
    "Application/Json;charset=UTF-8",
    " application/json ",
]
# Path ids of every size and shape that no system issues (the issued form: ids.is_issued).
BAD_IDS = {
    "1 byte": "x",
    "65 bytes": "int_" + "A" * 61,
    "1100 bytes": "int_" + "A" * 1096,
    "1100 bytes, no prefix": "z" * 1100,
    "1100 bytes of 4-byte characters": "int_" + "\U0001f4a5" * 274,
    "percent-encoded NUL": "int_%00",
    "NUL": "int_\x00",
    "dot dot": "..",
    "dot dot slash": "int_1%2F..%2F..",
    "hash": "int_1#x",
    "space": "int 1",
    "leading space": " int_1",
    "trailing space": "int_1 ",
    "trailing newline": "int_1\n",
    "unicode letters": "int_é",
    "fullwidth": "int_\uff11",
    "emoji": "\U0001f4a5",
    "quote": "int_1'",
    "html": "<script>",
    "another prefix": "quo_01J0000000000000000000000",
    "charge id": "ch_01J0000000000000000000000",
    "no id after the prefix": "int_",
    "upper-case prefix": "INT_1",
    "sort key": "ACCOUNT#INTEGRATION#int_1",
    "max sort key": "int_\uffff",
    "lone surrogate": "int_\ud800",
}
ISSUED_FORM_BUT_UNKNOWN = "int_" + "Z" * 60  # 64 characters: the longest issued form


# ---- the document's own bodies: a minimal valid one per route, from its schema --------------


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = SCHEMAS[schema["$ref"].rsplit("/", 1)[1]]
    return schema


def minimal_example(schema: dict[str, Any]) -> Any:
    """The smallest value `schema` accepts (the shapes docs/openapi.json uses)."""
    schema = _resolve(schema)
    if "anyOf" in schema:
        choices = [_resolve(s) for s in schema["anyOf"] if _resolve(s).get("type") != "null"]
        return minimal_example(choices[0])
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        return {
            name: minimal_example(schema["properties"][name]) for name in schema.get("required", [])
        }
    if kind == "array":
        return [minimal_example(schema["items"])] * max(1, schema.get("minItems", 0))
    if kind == "string":
        if schema.get("pattern") == "^https?://":
            return "https://example.com/back"
        return "x" * max(1, schema.get("minLength", 1))
    if kind in ("integer", "number"):
        return schema.get("minimum", 1)
    if kind == "boolean":
        return True
    raise AssertionError(f"no example for {schema}")


def valid_body(operation: dict[str, Any]) -> Any:
    body = operation.get("requestBody")
    if body is None:
        return None
    return minimal_example(body["content"]["application/json"]["schema"])


# ---- the probe ------------------------------------------------------------------------------


def problems_of(status: int, body: Any) -> list[str]:
    """What is wrong with a 4xx answer as a problem document (empty when nothing is)."""
    if not isinstance(body, dict):
        return [f"not a problem document: {body!r}"[:200]]
    wrong = [f"no {name}" for name in ("status", "code", "title", "detail") if name not in body]
    if body.get("status") != status:
        wrong.append(f"status {body.get('status')} in a {status} answer")
    return wrong


class Probe:
    """Sends bad inputs, checks each answer, counts them (tests.bad_inputs)."""

    def __init__(self, services) -> None:
        self.services = services
        self.failures: list[str] = []

    def send(
        self,
        label: str,
        method: str,
        route: str,
        params: dict[str, str] | None = None,
        *,
        expect: tuple[int, str] | None = None,
        refused: bool = True,
        **kwargs: Any,
    ) -> tuple[int, Any]:
        before = table_items(self.services.store)
        status, body = invoke(method, route, params, **kwargs)
        bad_inputs.record(f"api|{method} {route}|{label}", status)
        where = f"{method} {route} [{label}]: {status}"
        if status >= 500:
            self.failures.append(f"{where} {body}")
        elif refused:
            if not 400 <= status < 500:
                self.failures.append(f"{where}, not refused")
            elif problems := problems_of(status, body):
                self.failures.append(f"{where} {problems}")
            elif expect is not None and (status, body.get("code")) != expect:
                self.failures.append(f"{where} {body.get('code')}, expected {expect}")
            if table_items(self.services.store) != before:
                self.failures.append(f"{where}, and the table changed")
        return status, body

    def check(self) -> None:
        assert not self.failures, "\n".join(self.failures)


@pytest.fixture
def world(services) -> Iterator[dict[str, str]]:
    """An account with a billing user and one active integration (what a bad input could
    change if it were accepted)."""
    add_account(services.store)
    status, created = invoke(
        "POST",
        "/v1/integrations",
        body={
            "name": "Acme Supply to Shopify",
            "supplier": "acme",
            "channel": "shop",
            "plan": "standard",
        },
    )
    assert status == 201, created
    yield {"id": created["id"]}


def test_the_tables_are_generated_from_the_document_and_match_the_template():
    assert {(method, route) for method, route, _ in ROUTES} == set(route_table())
    assert len(ID_ROUTES) == 10
    assert len(ROUTES) == 24


@pytest.mark.parametrize(("method", "route", "operation"), ROUTES, ids=ROUTE_IDS)
def test_a_body_that_is_not_application_json_is_415_on_every_route(
    services, world, method, route, operation
):
    probe = Probe(services)
    params = {"id": world["id"]} if "{id}" in route else None
    text = json.dumps(valid_body(operation) if operation.get("requestBody") else {"a": 1})
    refused = [(f"Content-Type {m!r}", m) for m in REFUSED_MEDIA_TYPES]
    for label, media_type in [*refused, ("no Content-Type", None)]:
        probe.send(
            label,
            method,
            route,
            params,
            raw_body=text,
            headers={"content-type": media_type},
            expect=(415, "unsupported_media_type"),
        )
    for media_type in ACCEPTED_MEDIA_TYPES:
        status, body = probe.send(
            f"Content-Type {media_type!r}",
            method,
            route,
            params,
            raw_body=text,
            headers={"content-type": media_type},
            refused=False,
        )
        if status == 415:
            probe.failures.append(f"{method} {route}: {media_type!r} refused as {body}")
    probe.check()


@pytest.mark.parametrize(("method", "route", "operation"), ID_ROUTES, ids=_label)
def test_an_id_not_of_the_issued_form_is_404_on_every_route_with_an_id(
    services, world, method, route, operation
):
    probe = Probe(services)
    body = valid_body(operation)
    # The body is valid: the id alone is what is wrong, and it is answered as an unknown one.
    status, unknown = invoke(method, route, {"id": ISSUED_FORM_BUT_UNKNOWN}, body=body)
    assert (status, unknown["code"]) == (404, "not_found"), unknown
    for label, bad_id in BAD_IDS.items():
        probe.send(
            f"id {label}", method, route, {"id": bad_id}, body=body, expect=(404, "not_found")
        )
    # The real integration's id with something around it is not that integration.
    real = world["id"]
    for label, near in {
        "newline": f"{real}\n",
        "space": f"{real} ",
        "NUL": f"{real}\x00",
        "lower-cased": real.lower() + "\u0130",
        "repeated": real * 3,
    }.items():
        probe.send(
            f"the real id with a {label}",
            method,
            route,
            {"id": near},
            body=body,
            expect=(404, "not_found"),
        )
    probe.check()


@pytest.mark.parametrize(
    ("method", "route", "operation"),
    [r for r in ROUTES if r[2].get("requestBody")],
    ids=_label,
)
def test_json_outside_the_limits_is_400_malformed_json_on_every_body_route(
    services, world, method, route, operation
):
    probe = Probe(services)
    params = {"id": world["id"]} if "{id}" in route else None
    deep = "[" * 33 + "]" * 33
    texts = {
        "not JSON": "{not json",
        "truncated": '{"a": [1, 2',
        "33 levels": deep,
        "33 levels in an object": '{"a": ' + deep + "}",
        "500 levels": '{"a": ' + "[" * 500 + "]" * 500 + "}",
        "3,000 levels": '{"a": ' + '{"b": ' * 3000 + "1" + "}" * 3000 + "}",
        "10,000 levels": "[" * 10_000 + "]" * 10_000,
        "100,000 open brackets": "[" * 100_000,
        "NaN": '{"a": NaN}',
        "Infinity": '{"a": Infinity}',
        "-Infinity": '{"a": -Infinity}',
        "1e400": '{"a": 1e400}',
        "-1e400": '{"a": -1e400}',
        "an integer over a double's range": '{"a": 1' + "0" * 400 + "}",
        "5,000 digits": '{"a": ' + "9" * 5000 + "}",
        "a lone surrogate escape": '{"a": "\\ud800"}',
        "a lone low surrogate in a key": '{"\\udc00x": 1}',
        "a reversed surrogate pair": '{"a": "\\udc00\\ud800"}',
        "a raw lone surrogate": '{"a": "\ud800"}',
        "trailing garbage": "{} x",
        "two documents": "{}{}",
        "single quotes": "{'a': 1}",
        "a comment": '{"a": 1 /* no */}',
        "invalid UTF-8 escape": '{"a": "\\x41"}',
    }
    for label, text in texts.items():
        probe.send(
            f"body {label}", method, route, params, raw_body=text, expect=(400, "malformed_json")
        )
    probe.check()


def test_settings_at_the_limit_are_stored_and_read_back_verbatim(services, world):
    """32 levels and extreme finite numbers are accepted and read back identical."""
    nested: Any = {"leaf": [1.7976931348623157e308, -5e-324, 2**53 + 1, "é\u2028", None]}
    for _ in range(29):  # settings -> pricing_rules -> 29 levels -> the leaf's list: 32
        nested = {"n": nested}
    settings = {"pricing_rules": nested, "category_mapping": {}, "catalog_rules": {}}
    route = "/v1/integrations/{id}/settings"
    status, body = invoke("PUT", route, world, body=settings)
    assert status == 200, body
    status, read = invoke("GET", "/v1/integrations/{id}", world)
    assert status == 200
    assert read["settings"] == settings
    assert json.dumps(read["settings"], sort_keys=True) == json.dumps(settings, sort_keys=True)


def test_a_body_over_a_mebibyte_is_413_before_it_is_parsed(services, world):
    probe = Probe(services)
    huge = json.dumps({"pricing_rules": {"x": "y" * (1024 * 1024)}})
    probe.send(
        "body over 1 MiB",
        "PUT",
        "/v1/integrations/{id}/settings",
        world,
        raw_body=huge,
        expect=(413, "too_large"),
    )
    probe.check()

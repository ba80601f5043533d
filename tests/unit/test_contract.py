"""The contract's single definitions agree: template.yaml routes, handlers, docs/openapi.json."""

import json
import re

from local.openapi import OUTPUT, render
from local.template import route_table


def test_committed_openapi_document_matches_the_code():
    assert OUTPUT.read_text(encoding="utf-8") == render(), (
        "docs/openapi.json drifted: run `make openapi`"
    )


def test_every_template_route_is_documented_and_nothing_else():
    documented = {
        (method.upper(), re.sub(r"\{[^}]+\}", "{id}", path))
        for path, operations in json.loads(OUTPUT.read_text())["paths"].items()
        for method in operations
    }
    assert documented == set(route_table())


def test_the_api_routes_of_api_md_are_all_in_the_template():
    expected = {
        ("GET", "/v1/integrations"),
        ("POST", "/v1/integrations"),
        ("GET", "/v1/integrations/{id}"),
        ("PUT", "/v1/integrations/{id}/settings"),
        ("POST", "/v1/integrations/{id}/freeze"),
        ("POST", "/v1/integrations/{id}/cancel"),
        ("GET", "/v1/integrations/{id}/reactivation-quote"),
        ("POST", "/v1/integrations/{id}/reactivate"),
        ("POST", "/v1/integrations/bulk"),
        ("GET", "/v1/integrations/{id}/history"),
        ("GET", "/v1/account"),
        ("GET", "/v1/account/upcoming-charges"),
        ("POST", "/v1/account/cancel"),
        ("GET", "/v1/account/reactivation-quote"),
        ("POST", "/v1/account/reactivate"),
        ("POST", "/v1/account/billing-portal"),
        ("GET", "/v1/account/charges"),
        ("GET", "/v1/account/charges/{id}/receipt"),
        ("GET", "/v1/account/activity"),
        ("POST", "/v1/account/payment-method"),
        ("GET", "/v1/account/users"),
        ("POST", "/v1/account/users"),
        ("PUT", "/v1/account/users/{id}"),
        ("DELETE", "/v1/account/users/{id}"),
    }
    assert set(route_table()) == expected

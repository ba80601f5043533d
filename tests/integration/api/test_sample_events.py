"""events/api/*.json (also for `sam local invoke`): one per route, each answered without a 5xx."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

from local.events import LambdaContext
from local.template import route_table
from tests.factories import add_account

pytestmark = pytest.mark.integration

SAMPLES = sorted((Path(__file__).parents[3] / "events" / "api").glob("*.json"))


def test_every_route_has_a_sample_event():
    covered = {
        (
            json.loads(p.read_text())["routeKey"].split(" ", 1)[0],
            json.loads(p.read_text())["routeKey"].split(" ", 1)[1],
        )
        for p in SAMPLES
    }
    assert covered == set(route_table())


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.stem)
def test_sample_event_is_answered_by_its_function_without_a_server_error(services, sample):
    add_account(services.store, "acc_1")
    event = json.loads(sample.read_text())
    method, route = event["routeKey"].split(" ", 1)
    handler = importlib.import_module(
        f"functions.{route_table()[(method, route)]}.app"
    ).lambda_handler
    response = handler(event, LambdaContext())
    assert response["statusCode"] < 500, response
    if response["statusCode"] >= 400:
        assert response["headers"]["Content-Type"] == "application/problem+json"

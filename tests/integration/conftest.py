"""Integration fixtures: one DynamoDB Local per session, fresh template.yaml tables per test."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import boto3
import pytest
from botocore.config import Config

from lifecycle.store.repository import Store
from local.dynamodb_local import DynamoDBLocal
from local.localstripe_server import LocalStripe
from local.tables import create_tables

_counter = itertools.count()


@pytest.fixture(scope="session")
def dynamodb_endpoint() -> Iterator[str]:
    """`AWS_ENDPOINT_URL_DYNAMODB` when set; otherwise a DynamoDB Local started for the session."""
    existing = os.environ.get("AWS_ENDPOINT_URL_DYNAMODB")
    if existing:
        yield existing
        return
    server = DynamoDBLocal().start()
    print(f"\nDynamoDB Local answered {server.started_in:.2f} s after start")
    os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = server.endpoint
    try:
        yield server.endpoint
    finally:
        os.environ.pop("AWS_ENDPOINT_URL_DYNAMODB", None)
        server.stop()


@pytest.fixture(scope="session")
def dynamodb_client(dynamodb_endpoint: str):
    return boto3.client(
        "dynamodb",
        endpoint_url=dynamodb_endpoint,
        config=Config(retries={"mode": "standard", "max_attempts": 3}, max_pool_connections=64),
    )


@pytest.fixture
def table_names(dynamodb_client) -> dict[str, str]:
    """Fresh tables for one test, named after the template's logical ids."""
    suffix = f"{os.getpid()}-{next(_counter)}"
    names = {
        "IntegrationsTable": f"integrations-{suffix}",
        "IdempotencyTable": f"idempotency-{suffix}",
    }
    create_tables(dynamodb_client, names)
    return names


@pytest.fixture
def store(dynamodb_client, table_names) -> Store:
    return Store(table_names["IntegrationsTable"], client=dynamodb_client)


@pytest.fixture(scope="session")
def localstripe_base() -> Iterator[str]:
    """`STRIPE_API_BASE` when set; otherwise a localstripe started for the session."""
    existing = os.environ.get("STRIPE_API_BASE")
    if existing:
        yield existing
        return
    server = LocalStripe().start()
    print(f"\nlocalstripe answered {server.started_in:.2f} s after start")
    os.environ["STRIPE_API_BASE"] = server.api_base
    try:
        yield server.api_base
    finally:
        os.environ.pop("STRIPE_API_BASE", None)
        server.stop()

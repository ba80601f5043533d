"""What the local stack is configured with (the variables of the README), and the environment its
functions run with (template.yaml's Globals, the local endpoints, the stack's secrets)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config as BotoConfig

from lifecycle.usecases import webhooks
from local.localstripe import SECRET_KEY
from local.template import ROOT, template

# What the webhook endpoint is subscribed to (api.md, Stripe webhook): the types it handles.
WEBHOOK_EVENTS = webhooks.HANDLED
REGION = "us-east-1"
# Nothing local checks credentials; these keep any real ones out of reach.
CREDENTIALS = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}
_RETRIES = BotoConfig(retries={"mode": "standard", "max_attempts": 3}, max_pool_connections=32)


def aws_client(service: str, endpoint: str) -> Any:
    """A client of a local stand-in (moto, DynamoDB Local): its endpoint, region and
    credentials named, none taken from this process's environment."""
    return boto3.client(
        service, endpoint_url=endpoint, region_name=REGION, config=_RETRIES, **CREDENTIALS
    )


@dataclass(frozen=True, slots=True)
class Config:
    """Where everything runs; `from_env` reads the variables of the README."""

    data_dir: Path
    api_port: int = 3000
    webhook_port: int = 3001
    dynamodb_port: int = 8000
    stripe_port: int = 8420
    moto_port: int = 0  # a free one
    host: str = "127.0.0.1"
    dynamodb_endpoint: str | None = None  # an existing DynamoDB: none started
    stripe_api_base: str | None = None  # an existing (local) Stripe: none started
    table_name: str = "integrations"
    idempotency_table_name: str = "idempotency"
    bus_name: str = "integrations-local"
    seed: bool = True
    # Whether the functions invoked by rules on the bus (the notifier) run (`LOCAL_RULES=0`:
    # not; `make bench-month` measures what they add).
    rules: bool = True

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        env = dict(os.environ if env is None else env)
        return cls(
            data_dir=Path(env.get("LOCAL_DATA_DIR") or ROOT / ".local").resolve(),
            api_port=int(env.get("API_PORT") or 3000),
            webhook_port=int(env.get("WEBHOOK_PORT") or 3001),
            dynamodb_port=int(env.get("DYNAMODB_PORT") or 8000),
            stripe_port=int(env.get("STRIPE_PORT") or 8420),
            moto_port=int(env.get("MOTO_PORT") or 0),
            dynamodb_endpoint=env.get("AWS_ENDPOINT_URL_DYNAMODB")
            or env.get("AWS_ENDPOINT_URL")
            or None,
            stripe_api_base=env.get("STRIPE_API_BASE") or None,
            table_name=env.get("TABLE_NAME") or "integrations",
            idempotency_table_name=env.get("IDEMPOTENCY_TABLE_NAME") or "idempotency",
            bus_name=env.get("EVENT_BUS_NAME") or "integrations-local",
            seed=(env.get("LOCAL_SEED") or "1") not in ("0", "false", "no"),
            rules=(env.get("LOCAL_RULES") or "1") not in ("0", "false", "no"),
        )

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.api_port}"

    @property
    def webhook_url(self) -> str:
        return f"http://{self.host}:{self.webhook_port}/"


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Where the stand-ins of the managed services answer."""

    dynamodb: str
    stripe: str
    moto: str
    ses: str


@dataclass(frozen=True, slots=True)
class Secrets:
    """The stack's secrets, kept in its data folder (`local.keyfiles`)."""

    webhook: str
    cursor: str


def function_environment(
    config: Config,
    endpoints: Endpoints,
    secrets: Secrets,
    *,
    user_pool_id: str,
    email_sender: str,
    queues: Mapping[str, str],
    inherited: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The variables every function's execution environment gets: what template.yaml's Globals
    give the functions (unless `inherited`, this process's environment, sets them), the local
    settings, every client's endpoint (boto3 reads these when a client is built), the secrets
    and the queue URLs (`queues`: variable -> URL)."""
    inherited = dict(os.environ if inherited is None else inherited)
    env = dict(inherited)
    globals_: dict[str, Any] = template()["Globals"]["Function"]["Environment"]["Variables"]
    for name, value in globals_.items():
        if isinstance(value, str):
            env.setdefault(name, value)
    env.update(
        {
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": CREDENTIALS["aws_secret_access_key"],
            "TABLE_NAME": config.table_name,
            "IDEMPOTENCY_TABLE_NAME": config.idempotency_table_name,
            "EVENT_BUS_NAME": config.bus_name,
            "STRIPE_SECRET_KEY": SECRET_KEY,
            "STRIPE_WEBHOOK_SECRETS": secrets.webhook,
            "CURSOR_SECRETS": secrets.cursor,
            "ENVIRONMENT": "local",
            "AWS_ENDPOINT_URL_DYNAMODB": endpoints.dynamodb,
            "AWS_ENDPOINT_URL_DYNAMODB_STREAMS": endpoints.dynamodb,
            "AWS_ENDPOINT_URL_SQS": endpoints.moto,
            # botocore names the variable after the service id, "EventBridge"; _EVENTS is set
            # as well for code that reads it itself.
            "AWS_ENDPOINT_URL_EVENTBRIDGE": endpoints.moto,
            "AWS_ENDPOINT_URL_EVENTS": endpoints.moto,
            # botocore's name for cognito-idp (its service id, "Cognito Identity Provider").
            "AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER": endpoints.moto,
            # The users function's (template: !Ref AccountUserPool); the trigger reads the pool
            # from its event, as on AWS.
            "USER_POOL_ID": user_pool_id,
            "STRIPE_API_BASE": endpoints.stripe,
            # The notifier's SES v2 client: the capture in front of moto.
            "AWS_ENDPOINT_URL_SESV2": endpoints.ses,
            "EMAIL_SENDER": email_sender,
            # The emails' links: the dashboard this stack serves.
            "DASHBOARD_URL": f"{config.api_url}/",
            **queues,
        }
    )
    env.pop("AWS_SESSION_TOKEN", None)
    env.pop("AWS_PROFILE", None)
    # localstripe has no rate limit; the deployed budget would only slow renewals down.
    env.setdefault("STRIPE_RATE_PER_SECOND", "1000")
    env.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    return env

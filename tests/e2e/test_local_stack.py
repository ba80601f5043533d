"""The local stack itself (shared/spec/local.md): health, the JWT authorizer, the business clock,
the local routes, the seeded demo, Swagger UI, and a restart that keeps the data and leaves no
process behind."""

from __future__ import annotations

import signal
import tempfile
from datetime import timedelta
from pathlib import Path

import boto3

from lifecycle.rules.calendar import format_instant, parse_instant
from local.auth import Issuer
from local.client import LocalStack, Tenant, group_members, now
from local.dynamodb_local import DynamoDBLocal
from local.localstripe import payment_intents
from local.localstripe_server import LocalStripe


def test_health_reports_every_part_up(stack: LocalStack):
    answer = stack.api.get("/_local/health")

    assert answer.status == 200
    assert answer.body["status"] == "ok"
    assert set(answer.body["parts"]) >= {"dynamodb", "stripe", "moto", "stack"}


def test_a_local_token_is_accepted_with_the_claims_of_the_api_contract(tenant: Tenant):
    minted = tenant.api.post(
        "/_local/tokens",
        {"account_id": tenant.account_id, "user_id": "user-42", "billing_access": True},
    ).body

    claims = minted["claims"]
    assert claims["sub"] == "user-42"
    assert claims["custom:account_id"] == tenant.account_id
    assert claims["cognito:groups"] == ["billing"]
    assert claims["iss"].startswith("https://cognito-idp.")
    assert claims["aud"] and claims["token_use"] == "id" and claims["exp"] > claims["iat"]
    assert tenant.api.get("/v1/account", token=minted["token"]).status == 200


def test_a_request_without_a_valid_token_is_refused_before_any_function_runs(
    stack: LocalStack, tenant: Tenant
):
    key_file = stack.data_dir / "issuer-key.json"
    stranger = Issuer(Path(tempfile.mkdtemp()) / "key.json")
    tokens = {
        "missing": None,
        "garbage": "not-a-jwt",
        "expired": Issuer(key_file).mint(tenant.account_id, expires_in=-60)[0],
        "another issuer's key": stranger.mint(tenant.account_id)[0],
        "another issuer": Issuer(key_file, issuer="https://issuer.example").mint(tenant.account_id)[
            0
        ],
        "another audience": Issuer(key_file, audience="another-client").mint(tenant.account_id)[0],
    }

    for case, token in tokens.items():
        answer = stack.api.get("/v1/integrations", token=token)
        assert (case, answer.status, answer.body["code"]) == (case, 401, "unauthorized")


def test_a_user_without_billing_access_cannot_create_an_integration(tenant: Tenant):
    member = tenant.new_token(billing=False)

    answer = tenant.api.post(
        "/v1/integrations",
        {"name": "Acme to Shopify", "supplier": "acme", "channel": "shopify", "plan": "starter"},
        token=member,
    )

    assert answer.status == 403
    assert answer.body["code"] == "billing_access_required"


def test_the_business_clock_moves_only_forward(stack: LocalStack):
    start = now(stack)

    moved = stack.api.post("/_local/clock", {"advance_seconds": 90})
    back = stack.api.post("/_local/clock", {"to": format_instant(start)})
    both = stack.api.post("/_local/clock", {"advance_seconds": 1, "to": format_instant(start)})

    assert moved.status == 200
    assert parse_instant(moved.body["now"]) == start + timedelta(seconds=90)
    assert stack.api.get("/_local/clock").body == {"now": moved.body["now"]}
    assert back.status == 400
    assert both.status == 422
    assert now(stack) == start + timedelta(seconds=90)


def test_local_accounts_refuse_a_taken_id_and_an_unknown_card_swap(stack: LocalStack):
    first = stack.api.post("/_local/accounts", {"account_id": "acc_e2e_taken", "card": "ok"})
    again = stack.api.post("/_local/accounts", {"account_id": "acc_e2e_taken", "card": "ok"})
    unknown = stack.api.put("/_local/accounts/acc_e2e_nobody/card", {"card": "ok"})
    bad_card = stack.api.post("/_local/accounts", {"card": "amex"})

    assert first.status == 201
    assert first.body["account_id"] == "acc_e2e_taken"
    assert first.body["stripe_customer_id"].startswith("cus_")
    assert again.status == 409
    assert unknown.status == 404
    assert bad_card.status == 422


def test_the_demo_is_seeded_with_integrations_in_different_states(stack: LocalStack):
    token = stack.api.post(
        "/_local/tokens", {"account_id": "acc_demo", "billing_access": True}
    ).body["token"]

    items = stack.api.get("/v1/integrations", token=token).body["items"]

    by_name = {item["name"]: item for item in items}
    assert by_name["Acme Supply to Shopify"]["plan"] == "standard"
    assert by_name["Globex Wholesale to Amazon"]["status"] in ("freeze_pending", "frozen")
    frozen = by_name["Umbrella Goods to WooCommerce"]
    if frozen["status"] == "frozen":
        quote = stack.api.get(
            f"/v1/integrations/{frozen['id']}/reactivation-quote", token=token
        ).body
        assert quote["amount"] > 0


def test_swagger_ui_serves_the_openapi_document(stack: LocalStack):
    page = stack.api.get("/docs")
    bundle = stack.api.get("/docs/swagger-ui-bundle.js")
    document = stack.api.get("/openapi.json")

    assert page.status == 200
    assert "swagger-ui-bundle.js" in page.body
    assert bundle.status == 200
    assert document.status == 200
    assert "/v1/integrations/{integration_id}/freeze" in document.body["paths"]
    assert stack.api.get("/docs/..%2F..%2Fpackage.json").status == 404


def test_a_restart_keeps_the_data_and_the_clock_and_a_signal_leaves_nothing_running(
    tmp_path: Path,
):
    first = LocalStack(tmp_path / "local").start()
    try:
        tenant = Tenant(first)
        created = tenant.create()
        moved = first.api.post("/_local/clock", {"advance_seconds": 3600}).body["now"]
    finally:
        group = first.process.pid if first.process else 0
        code = first.stop(signal.SIGINT)  # Ctrl-C
    assert code == 0, first.tail()
    assert group_members(group) == []

    second = LocalStack(tmp_path / "local").start()
    try:
        assert second.api.get("/_local/clock").body["now"] == moved
        token = second.api.post(
            "/_local/tokens", {"account_id": tenant.account_id, "billing_access": True}
        ).body["token"]
        kept = second.api.get(f"/v1/integrations/{created['id']}", token=token)
        assert kept.status == 200
        assert kept.body["status"] == "active"
        demo = second.api.post("/_local/tokens", {"account_id": "acc_demo"}).body["token"]
        assert len(second.api.get("/v1/integrations", token=demo).body["items"]) == 4
    finally:
        group = second.process.pid if second.process else 0
        code = second.stop(signal.SIGTERM)
    assert code == 0, second.tail()
    assert group_members(group) == []


def test_cors_preflight_is_answered_before_the_authorizer(stack: LocalStack):
    preflight = stack.api.request(
        "OPTIONS",
        "/v1/integrations",
        headers={
            "Origin": "http://localhost:5173",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    refused = stack.api.get("/v1/integrations", headers={"Origin": "http://localhost:5173"})

    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert refused.status == 401
    assert refused.headers["Access-Control-Allow-Origin"] == "*"


def test_existing_dynamodb_and_stripe_endpoints_are_used_instead_of_starting_them(
    tmp_path: Path,
):
    dynamodb = DynamoDBLocal().start()
    stripe = LocalStripe().start()
    stack = LocalStack(
        tmp_path / "local",
        AWS_ENDPOINT_URL_DYNAMODB=dynamodb.endpoint,
        STRIPE_API_BASE=stripe.api_base,
        TABLE_NAME="integrations-existing",
        IDEMPOTENCY_TABLE_NAME="idempotency-existing",
        LOCAL_SEED="0",
    )
    try:
        stack.start()
        children = [
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            for pid in group_members(stack.process.pid if stack.process else 0)
        ]
        tenant = Tenant(stack)
        created = tenant.create()

        assert not [c for c in children if "DynamoDBLocal" in c or "local.localstripe" in c]
        tables = boto3.client(
            "dynamodb",
            endpoint_url=dynamodb.endpoint,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        ).list_tables()["TableNames"]
        assert {"integrations-existing", "idempotency-existing"} <= set(tables)
        (charge,) = tenant.charges()
        assert charge["integration_ids"] == [created["id"]]
        intents = payment_intents(stripe.api_base, tenant.customer_id)
        assert charge["stripe_payment_intent"] in {intent["id"] for intent in intents}
    finally:
        stack.stop()
        stripe.stop()
        dynamodb.stop()

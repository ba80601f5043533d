"""The dashboard's static files as the local gateway serves them (by plain file name only), and
the API words the page hard-codes, checked against the committed OpenAPI document."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from local.server import DASHBOARD, dashboard

OPENAPI = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def test_the_root_is_the_dashboard_page_with_a_strict_content_security_policy() -> None:
    answer = dashboard("/")

    assert answer is not None
    status, headers, body = answer
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert body == (DASHBOARD / "index.html").read_bytes()


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/index.html", "text/html; charset=utf-8"),
        ("/app.js", "text/javascript; charset=utf-8"),
        ("/config.js", "text/javascript; charset=utf-8"),
        ("/styles.css", "text/css; charset=utf-8"),
    ],
)
def test_each_asset_is_served_with_its_content_type(path: str, content_type: str) -> None:
    answer = dashboard(path)

    assert answer is not None
    assert answer[1]["Content-Type"] == content_type


@pytest.mark.parametrize(
    "path",
    [
        "/../pyproject.toml",
        "/..",
        "/%2e%2e/Makefile",
        "/dashboard/app.js",
        "/.gitignore",
        "/app.js/",
        "//etc/passwd",
        "/missing.js",
        "/v1/integrations",
        "/_local/health",
        "/docs",
        "/openapi.json",
        "/README.md",
    ],
)
def test_anything_but_a_dashboard_file_is_left_to_the_other_routes(path: str) -> None:
    assert dashboard(path) is None


def test_a_file_outside_the_folder_cannot_be_named(tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    (tmp_path / "secret.js").write_text("no")
    (tmp_path / "site" / "app.js").write_text("yes")

    assert dashboard("/app.js", tmp_path / "site") is not None
    assert dashboard("/../secret.js", tmp_path / "site") is None


def test_the_page_loads_nothing_from_another_origin() -> None:
    for file in DASHBOARD.iterdir():
        text = file.read_text()
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", text), file.name
        assert not re.search(r"""import[^;]*from\s+["']https?:""", text), file.name


def _keys(name: str, source: str) -> list[str]:
    block = re.search(rf"{name} = [\[{{](.*?)\n[\]}}];", source, re.S)
    assert block, name
    return re.findall(r'^\s*\[?"?([a-z_]+)"?[:,]', block.group(1), re.M)


def test_the_cancel_reasons_and_statuses_are_the_apis() -> None:
    schemas = json.loads(OPENAPI.read_text())["components"]["schemas"]
    ui = (DASHBOARD / "ui.js").read_text()

    assert _keys("CANCEL_REASONS", ui) == schemas["CancelReason"]["enum"]
    assert _keys("STATUS_LABELS", ui) == schemas["Status"]["enum"]


def test_the_app_client_lets_the_dashboard_sign_in_as_its_cognito_config_asks() -> None:
    """config.js's `auth: "cognito"` needs the template's app client to allow its flow and
    scopes, with the dashboard's URL to come back to."""
    from local.template import resources  # noqa: PLC0415

    client = resources("AWS::Cognito::UserPoolClient")["UserPoolClient"]["Properties"]
    config = (DASHBOARD / "config.js").read_text(encoding="utf-8")
    scope = re.search(r'scope: "([^"]+)"', config)
    assert scope is not None
    assert client["AllowedOAuthFlowsUserPoolClient"] is True
    # The authorization code flow (with PKCE, dashboard/api.js), never the implicit grant.
    assert client["AllowedOAuthFlows"] == ["code"]
    assert 'code_challenge_method: "S256"' in (DASHBOARD / "api.js").read_text(encoding="utf-8")
    assert set(scope.group(1).split()) <= set(client["AllowedOAuthScopes"])
    assert client["CallbackURLs"] == client["LogoutURLs"] == [{"Ref": "DashboardUrl"}]
    assert resources("AWS::Cognito::UserPoolDomain")


def test_the_plans_and_their_fees_are_the_catalogs() -> None:
    """The New integration dialog shows the plans with their fees; the API charges from the
    catalog (never from the page), and this keeps what the page says in step with it."""
    from lifecycle.rules.catalog import DEFAULT_CATALOG  # noqa: PLC0415

    ui = (DASHBOARD / "ui.js").read_text()
    block = re.search(r"PLANS = \[(.*?)\n\];", ui, re.S)
    assert block
    plans = re.findall(r'\["([a-z]+)", "[^"]+", (\d+)\]', block.group(1))

    assert {plan: int(fee) for plan, fee in plans} == dict(DEFAULT_CATALOG.monthly_fees)

"""`make smoke`, the read-only smoke test of a deployed stack (ops/smoke.py), run against the
local stack so that it cannot rot: it passes with a user's token, and fails when the API refuses
the token it was given."""

from __future__ import annotations

import subprocess

from local.client import LocalStack, Tenant
from local.template import ROOT


def make_smoke(stack: LocalStack, token: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "make",
            "--no-print-directory",
            "smoke",
            f"API_URL={stack.api.base}",
            f"TOKEN={token}",
            f"WEBHOOK_URL={stack.webhook.base}/",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_smoke_test_passes_against_the_local_stack(stack: LocalStack, tenant: Tenant):
    done = make_smoke(stack, tenant.token)

    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("ok  ") == 4
    assert "smoke test passed" in done.stdout
    assert tenant.token not in done.stdout + done.stderr


def test_the_smoke_test_fails_when_the_api_refuses_its_token(stack: LocalStack):
    done = make_smoke(stack, "not-a-token")

    assert done.returncode != 0
    assert "FAIL GET /v1/account with the token" in done.stdout

"""Peak memory (RSS) of an API handler process after serving 500 requests (DynamoDB Local).

Goal (issue #7): a function fits a 256 MB Lambda with room to spare. 500 requests, 125 per
route (BENCH_MEMORY_REQUESTS): RSS levels off after the first request (1,000 requests measured
the same 63 MB, within 0.5 MB of the first request's), so more only take longer.

One fresh process, the clean interpreter of `bench.imports` (the layer's requirements and
boto3, nothing else), serves a mix through the real `lambda_handler`s with API Gateway HTTP API
events: list, read one, freeze, reactivate (free: the freeze is still pending), POSTs with an
Idempotency-Key so the idempotency layer runs too. The default services are used as deployed,
pointed at DynamoDB Local by `AWS_ENDPOINT_URL_DYNAMODB`. One process holds three functions'
code (integrations, freeze, reactivate) where Lambda holds one: the figure is an upper bound.
The Lambda runtime's own client (a few MB in the same process) is not in it.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.harness import active_integration, dynamodb, record, table
from bench.imports import LAYER_SOURCE, bench_python
from lifecycle.rules.model import Account, AccountStatus
from lifecycle.store.repository import Store
from local.template import ROOT

REQUESTS = int(os.environ.get("BENCH_MEMORY_REQUESTS", "500"))
INTEGRATIONS = 50
LIMIT_MB = 256
ACCOUNT = "acc_memory"
TABLES = {"IntegrationsTable": "bench-memory", "IdempotencyTable": "bench-memory-idempotency"}

_CHILD = """
import collections, importlib, json, resource, sys, uuid
from local.events import LambdaContext, http_api_event

def rss_kb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))

out, account, ids, requests = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), int(sys.argv[4])
started_kb = rss_kb()
handlers = {
    name: importlib.import_module(f"functions.{name}.app").lambda_handler
    for name in ("integrations", "freeze", "reactivate")
}
imported_kb = rss_kb()
claims = {"sub": "bench", "custom:account_id": account, "cognito:groups": "[billing]"}
ID = "/v1/integrations/{id}"
statuses = collections.Counter()
for n in range(requests):
    subject = ids[(n // 4) % len(ids)]
    function, method, route = [
        ("integrations", "GET", "/v1/integrations"),
        ("integrations", "GET", ID),
        ("freeze", "POST", ID + "/freeze"),
        ("reactivate", "POST", ID + "/reactivate"),
    ][n % 4]
    params = {"id": subject} if "{id}" in route else None
    headers = {"content-type": "application/json", "user-agent": "bench"}
    if method == "POST":
        headers["idempotency-key"] = str(uuid.uuid4())
    event = http_api_event(
        method, route, route.replace("{id}", subject), path_params=params, headers=headers,
        claims=claims,
    )
    response = handlers[function](event, LambdaContext(function))
    statuses[f"{method} {route} {response['statusCode']}"] += 1
    if n == 0:
        first_kb = rss_kb()
with open(out, "w") as handle:
    json.dump({
        "started_kb": started_kb,
        "imported_kb": imported_kb,
        "after_first_kb": first_kb,
        "final_kb": rss_kb(),
        "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "statuses": statuses,
    }, handle)
"""


def _seed(store: Store, now: datetime) -> list[str]:
    store.create_account(
        Account(
            id=ACCOUNT,
            status=AccountStatus.ACTIVE,
            created_at=now,
            stripe_customer_id="cus_memory",
            has_payment_method=True,
            version=1,
        )
    )
    integrations = [
        active_integration(f"int_memory_{n:03d}", ACCOUNT, now) for n in range(INTEGRATIONS)
    ]
    store.load_integrations(integrations)
    return [i.id for i in integrations]


def main() -> dict[str, Any]:
    python = bench_python()
    now = datetime.now(UTC).replace(microsecond=0)
    with dynamodb(TABLES) as client, tempfile.TemporaryDirectory() as scratch:
        ids = _seed(Store(TABLES["IntegrationsTable"], client=client), now)
        out = Path(scratch) / "memory.json"
        environment = {
            "PATH": "/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "PYTHONPATH": f"{ROOT}:{LAYER_SOURCE}",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_ENDPOINT_URL_DYNAMODB": client.meta.endpoint_url,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(LIMIT_MB),
            "TABLE_NAME": TABLES["IntegrationsTable"],
            "IDEMPOTENCY_TABLE_NAME": TABLES["IdempotencyTable"],
            "POWERTOOLS_SERVICE_NAME": "integrations",
            "POWERTOOLS_METRICS_NAMESPACE": "Integrations",
            "LOG_LEVEL": "INFO",
            "ENVIRONMENT": "dev",
        }
        done = subprocess.run(
            [str(python), "-c", _CHILD, str(out), ACCOUNT, json.dumps(ids), str(REQUESTS)],
            cwd=ROOT,
            env=environment,
            # Logs and metrics go to stdout, as in Lambda; not worth keeping here.
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
        if done.returncode:
            raise RuntimeError(f"the handler process failed:\n{done.stderr}")
        measured = json.loads(out.read_text())
    failed = {k: v for k, v in measured["statuses"].items() if not k.endswith(" 200")}
    assert not failed, failed
    # ru_maxrss is the kernel's high-water mark, updated lazily: never below the last reading.
    peak_mb = max(measured["peak_kb"], measured["final_kb"]) / 1024
    figures = {
        "requests": REQUESTS,
        "functions_loaded": ["integrations", "freeze", "reactivate"],
        "interpreter": str(python.relative_to(ROOT)),
        "rss_at_start_mb": round(measured["started_kb"] / 1024, 1),
        "rss_after_import_mb": round(measured["imported_kb"] / 1024, 1),
        "rss_after_first_request_mb": round(measured["after_first_kb"] / 1024, 1),
        "rss_after_all_requests_mb": round(measured["final_kb"] / 1024, 1),
        "peak_rss_mb": round(peak_mb, 1),
        "limit_mb": LIMIT_MB,
        "peak_share_of_limit": round(peak_mb / LIMIT_MB, 3),
        "requests_by_route": measured["statuses"],
    }
    table(
        f"Handler process memory, {REQUESTS} requests (list, get, freeze, reactivate; "
        "three API functions in one process: an upper bound)",
        ["figure", "MB"],
        [
            ["RSS at interpreter start", figures["rss_at_start_mb"]],
            ["RSS after importing the handlers", figures["rss_after_import_mb"]],
            ["RSS after the first request", figures["rss_after_first_request_mb"]],
            [f"RSS after {REQUESTS} requests", figures["rss_after_all_requests_mb"]],
            [
                "peak RSS (ru_maxrss)",
                f"{figures['peak_rss_mb']} of {LIMIT_MB} ({peak_mb / LIMIT_MB:.0%})",
            ],
        ],
    )
    record("memory", figures)
    return figures


if __name__ == "__main__":
    main()

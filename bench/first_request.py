"""The first request as a user feels it, for every function of template.yaml: a fresh process
imports the function, handles one representative event against DynamoDB Local (and localstripe,
and moto's SQS and EventBridge where the function calls them) and answers; against the same
baseline, a fresh process that imports boto3, makes a DynamoDB client and one DynamoDB call.

Measured like bench.imports: the clean interpreter of `.tools/bench-venv` (the layer's
requirements and boto3 only), the function folder as the working directory (Lambda's /var/task),
the layer's source on PYTHONPATH, timing inside the child from its first line to the answer
(the interpreter's own start-up, the same for every process, left out); each round runs the
baseline before and after the functions, and a ratio is taken to its own round's baseline.

For the API functions it also measures the first request after a SnapStart restore, emulated:
the same fresh process runs the hooks Lambda would run before the snapshot
(`lifecycle.http.snapstart`: imports, the resolver through one request, the DynamoDB client loaded
and connected, the idempotency layer) and after the restore (fresh randomness, connection pools
dropped), and only then the request is timed. Lambda's own restore of the snapshot is not in it:
`SNAPSTART_RESTORE_MS` (an assumption: Lambda reports it as Restore Duration) is added.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import time
from collections import defaultdict
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.harness import active_integration, card_account, dynamodb, median, record, table
from bench.imports import LAYER_SOURCE, bench_python, functions
from lifecycle.rules.calendar import format_instant, utc
from lifecycle.rules.catalog import DEFAULT_CATALOG
from lifecycle.rules.integration import Action, Command, decide
from lifecycle.rules.model import AccountStatus, CancelReason, user
from lifecycle.store.repository import Store
from local.config import aws_client
from local.events import http_api_event, sqs_record
from local.localstripe import SECRET_KEY, create_customer_with_card
from local.localstripe_server import LocalStripe

RUNS = int(os.environ.get("BENCH_FIRST_REQUEST_RUNS", "3"))
ACCOUNT = "acc_first"
TABLES = {"IntegrationsTable": "bench-first", "IdempotencyTable": "bench-first-idempotency"}
WEBHOOK_SECRET = "whsec_bench_first_request"
# Lambda's restore of a snapshot before the after-restore hooks run (not measurable here):
# an assumption from AWS's descriptions and published Python measurements (a few hundred ms).
SNAPSTART_RESTORE_MS = 250.0

_CHILD = """
import json, sys, time
began = time.perf_counter()
kind, event = sys.argv[1], json.loads(sys.argv[2])

class Context:
    function_name = "bench"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    aws_request_id = "bench"
    log_group_name = "/aws/lambda/bench"
    log_stream_name = "bench"
    function_version = "1"
    def get_remaining_time_in_millis(self):
        return 30000

if kind == "baseline":
    import boto3
    client = boto3.client("dynamodb")
    key = {"PK": {"S": "ACCOUNT#x"}, "SK": {"S": "ACCOUNT"}}
    client.get_item(TableName=event["table"], Key=key)
    answer = "ok"
    restored = began
else:
    import app
    restored = began
    if kind == "snapstart":
        from lifecycle.http import snapstart
        for warm in snapstart.registered:
            snapstart.before_snapshot(warm)
        snapstart.refresh()
        restored = time.perf_counter()
    result = app.lambda_handler(event, Context())
    answer = result.get("statusCode") if isinstance(result, dict) else str(result)[:80]
answered = time.perf_counter()
print(json.dumps({"ms": (answered - began) * 1000, "request_ms": (answered - restored) * 1000,
                  "answer": answer}))
"""


def _environment(variables: dict[str, str], endpoints: dict[str, str]) -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(LAYER_SOURCE),
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_LAMBDA_FUNCTION_NAME": "bench",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "POWERTOOLS_METRICS_DISABLED": "true",
        **variables,
        "TABLE_NAME": TABLES["IntegrationsTable"],
        "IDEMPOTENCY_TABLE_NAME": TABLES["IdempotencyTable"],
        "STRIPE_SECRET_KEY": SECRET_KEY,
        "STRIPE_WEBHOOK_SECRETS": WEBHOOK_SECRET,
        "CURSOR_SECRETS": "bench-first-request-cursor-secret-0123456789",
        "STRIPE_RATE_PER_SECOND": "1000",
        **endpoints,
    }


def _run(
    python: Path, folder: Path | None, environment: dict[str, str], kind: str, event: dict[str, Any]
) -> dict[str, Any]:
    done = subprocess.run(
        [str(python), "-c", _CHILD, kind, json.dumps(event)],
        cwd=folder or LAYER_SOURCE,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith('{"ms"')]
    if done.returncode or not lines:
        raise RuntimeError(f"{folder} {kind} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


class World:
    """The data each representative event needs: an account with a card at localstripe, and a
    fresh subject per run for the requests that change it."""

    def __init__(self, store: Store, stripe_base: str) -> None:
        self.store = store
        customer = create_customer_with_card(stripe_base, "ok")
        self.now = utc(2026, 11, 21, 10)
        store.create_account(card_account(ACCOUNT, self.now, customer))
        self.n = 0

    def integration(
        self, *, due: bool = False, cancelled: bool = False, frozen_pending: bool = False
    ) -> str:
        self.n += 1
        anchor = self.now - timedelta(days=40) if due or cancelled else self.now
        subject = active_integration(f"int_first{self.n:05d}", ACCOUNT, anchor)
        self.store.load_integrations([subject])
        if cancelled or frozen_pending:
            action = Action.CANCEL if cancelled else Action.FREEZE
            decision = decide(
                subject,
                Command(action, user("bench"), reason=CancelReason.OTHER if cancelled else None),
                anchor + timedelta(days=1),
                account_status=AccountStatus.ACTIVE,
                catalog=DEFAULT_CATALOG,
            )
            self.store.commit(decision)
        return subject.id


def _api(
    method: str, route: str, path: str, body: Any = None, **path_params: str
) -> dict[str, Any]:
    return http_api_event(
        method,
        route,
        path,
        path_params=path_params or None,
        raw_query="",
        headers={"content-type": "application/json", "user-agent": "bench"},
        body=None if body is None else json.dumps(body),
        claims={"sub": "user_bench", "custom:account_id": ACCOUNT, "cognito:groups": "[billing]"},
    )


def _scheduled() -> dict[str, Any]:
    return {
        "version": "0",
        "id": "bench",
        "detail-type": "Scheduled Event",
        "source": "aws.scheduler",
        "account": "123456789012",
        "time": format_instant(utc(2030, 1, 1)),
        "region": "us-east-1",
        "resources": ["arn:aws:scheduler:us-east-1:123456789012:schedule/default/bench"],
        "detail": {},
    }


def _signed(event: dict[str, Any]) -> dict[str, Any]:
    payload = json.dumps(event)
    stamp = int(time.time())
    signature = hmac.new(WEBHOOK_SECRET.encode(), f"{stamp}.{payload}".encode(), hashlib.sha256)
    return {
        "version": "2.0",
        "rawPath": "/",
        "rawQueryString": "",
        "headers": {
            "content-type": "application/json",
            "stripe-signature": f"t={stamp},v1={signature.hexdigest()}",
        },
        "requestContext": {"http": {"method": "POST", "path": "/"}},
        "body": payload,
        "isBase64Encoded": False,
    }


def event_for(name: str, world: World, run: int) -> dict[str, Any]:
    """A representative first request of each function."""
    root = Path(__file__).resolve().parents[1]
    if name == "AccountFunction":
        return _api("GET", "/v1/account", "/v1/account")
    if name == "BillingFunction":
        return _api("GET", "/v1/account/charges", "/v1/account/charges")
    if name == "IntegrationsFunction":
        return _api("GET", "/v1/integrations", "/v1/integrations")
    if name == "FreezeFunction":
        i = world.integration()
        return _api("POST", "/v1/integrations/{id}/freeze", f"/v1/integrations/{i}/freeze", id=i)
    if name == "CancelFunction":
        i = world.integration()
        return _api(
            "POST",
            "/v1/integrations/{id}/cancel",
            f"/v1/integrations/{i}/cancel",
            {"reason": "too_expensive"},
            id=i,
        )
    if name == "ReactivateFunction":
        i = world.integration(frozen_pending=True)
        return _api(
            "POST", "/v1/integrations/{id}/reactivate", f"/v1/integrations/{i}/reactivate", {}, id=i
        )
    if name == "BulkFunction":
        ids = [world.integration(), world.integration()]
        return _api(
            "POST",
            "/v1/integrations/bulk",
            "/v1/integrations/bulk",
            {"action": "freeze", "ids": ids},
        )
    if name == "StripeWebhookFunction":
        event = json.loads((root / "events/stripe/payment_intent.succeeded.json").read_text())
        event["id"] = f"evt_bench_first_{run}_{time.time_ns()}"
        return _signed(event)
    if name == "RenewalSweepFunction":
        world.integration(due=True)  # one due: leased and sent to the queue
        return _scheduled()
    if name == "DeletionSweepFunction":
        world.integration(cancelled=True)  # one cancelled whose period ended: deleted
        return _scheduled()
    if name == "RenewalWorkerFunction":
        i = world.integration(due=True)  # charged at localstripe and renewed
        return {"Records": [_sqs_record({"account_id": ACCOUNT, "integration_id": i})]}
    if name == "EventPublisherFunction":
        published: dict[str, Any] = json.loads(
            (root / "events/dynamodb/outbox-insert.json").read_text()
        )
        return published
    if name == "UsersFunction":
        return _api("GET", "/v1/account/users", "/v1/account/users")
    if name == "NotifierFunction":
        # A receipt of an account without users: rendered for nobody, so no SES call (the
        # first request's imports, client and DynamoDB reads are what is measured).
        return dict(json.loads((root / "events/eventbridge/charge-succeeded.json").read_text()))
    if name == "PostConfirmationFunction":
        # A password reset's confirmation: the trigger's imports and answer, no Cognito call
        # (a sign-up's would need the user pool, which the benchmark does not stand up).
        return dict(
            json.loads((root / "events/cognito/post-confirmation-forgot-password.json").read_text())
        )
    raise KeyError(name)


def _sqs_record(body: dict[str, str]) -> dict[str, Any]:
    return sqs_record(
        f"m{time.time_ns()}", "r", json.dumps(body), "arn:aws:sqs:us-east-1:123456789012:renewals"
    )


def main() -> dict[str, Any]:
    from moto.server import ThreadedMotoServer  # noqa: PLC0415

    python = bench_python()
    targets = functions()
    samples: dict[str, list[dict[str, Any]]] = defaultdict(list)
    ratios: dict[str, list[float]] = defaultdict(list)
    snap: dict[str, list[float]] = defaultdict(list)
    with ExitStack() as stack, dynamodb(TABLES) as raw:
        stripe = LocalStripe().start()
        stack.callback(stripe.stop)
        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
        moto.start()
        stack.callback(moto.stop)
        host, port = moto.get_host_and_port()
        moto_url = f"http://{host}:{port}"
        sqs = aws_client("sqs", moto_url)
        queue = sqs.create_queue(QueueName="renewals")["QueueUrl"]
        events = aws_client("events", moto_url)
        events.create_event_bus(Name="bench-first-bus")
        endpoints = {
            "AWS_ENDPOINT_URL_DYNAMODB": raw.meta.endpoint_url,
            "AWS_ENDPOINT_URL_SQS": moto_url,
            "AWS_ENDPOINT_URL_EVENTBRIDGE": moto_url,
            "STRIPE_API_BASE": stripe.api_base,
            "RENEWAL_QUEUE_URL": queue,
            "EVENT_BUS_NAME": "bench-first-bus",
        }
        world = World(Store(TABLES["IntegrationsTable"], client=raw), stripe.api_base)
        baseline_env = _environment({}, endpoints)
        baseline_event = {"table": TABLES["IntegrationsTable"]}
        _run(python, None, baseline_env, "baseline", baseline_event)  # page cache warmed
        for run in range(RUNS):
            before = _run(python, None, baseline_env, "baseline", baseline_event)
            results = {}
            for name in sorted(targets):
                env = _environment(
                    {
                        k: v
                        for k, v in targets[name]["environment"].items()
                        if not v.startswith("bench-")
                    },
                    endpoints,
                )
                results[name] = _run(
                    python, targets[name]["folder"], env, "cold", event_for(name, world, run)
                )
                if targets[name]["snapstart"]:
                    restored = _run(
                        python,
                        targets[name]["folder"],
                        env,
                        "snapstart",
                        event_for(name, world, run),
                    )
                    snap[name].append(restored["request_ms"])
            after = _run(python, None, baseline_env, "baseline", baseline_event)
            base = (before["ms"] + after["ms"]) / 2
            samples["baseline"] += [before, after]
            for name, result in results.items():
                samples[name].append(result)
                ratios[name].append(result["ms"] / base)
    baseline_ms = median([s["ms"] for s in samples["baseline"]])
    figures: dict[str, Any] = {
        "measure": "fresh process: import the function, handle one representative event against "
        "DynamoDB Local (localstripe, moto's SQS and EventBridge where called), answer; baseline: "
        "import boto3, a DynamoDB client, one GetItem; ratio = median over rounds of function / "
        "round baseline; interpreter start-up left out of both",
        "runs": RUNS,
        "baseline_ms": round(baseline_ms, 1),
        "snapstart_restore_ms_assumed": SNAPSTART_RESTORE_MS,
        "functions": {},
    }
    rows = [["baseline: boto3, client, one GetItem", f"{baseline_ms:.0f}", "1.00", "", "", ""]]
    for name in sorted(targets):
        ms = median([s["ms"] for s in samples[name]])
        entry: dict[str, Any] = {
            "first_request_ms": round(ms, 1),
            "ratio": round(median(ratios[name]), 2),
            "answer": samples[name][-1]["answer"],
        }
        if snap[name]:
            after_restore = median(snap[name])
            entry["snapstart_request_ms"] = round(after_restore, 1)
            entry["snapstart_first_request_ms"] = round(after_restore + SNAPSTART_RESTORE_MS, 1)
            entry["snapstart_ratio"] = round(
                (after_restore + SNAPSTART_RESTORE_MS) / baseline_ms, 2
            )
        figures["functions"][name] = entry
        rows.append(
            [
                name,
                f"{ms:.0f}",
                f"{entry['ratio']:.2f}",
                entry["answer"],
                f"{entry.get('snapstart_request_ms', '')}",
                f"{entry.get('snapstart_ratio', '')}",
            ]
        )
    table(
        f"First request as a user feels it, median of {RUNS} fresh processes (DynamoDB Local)",
        [
            "function",
            "first request ms",
            "ratio to baseline",
            "answer",
            "after a SnapStart restore: request ms",
            f"ratio (+{SNAPSTART_RESTORE_MS:.0f} ms restore)",
        ],
        rows,
    )
    record("first_request", figures)
    return figures


if __name__ == "__main__":
    main()

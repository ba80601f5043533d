"""`make dev`'s business clock: a month advanced with a few hundred integrations.

The local stack (`python -m local.dev`, as `make dev` and the end-to-end tests start it) on free
ports with a fresh data folder; accounts created through `/_local/accounts` (a localstripe
customer with a good card each), then `MONTH_INTEGRATIONS` active integrations loaded into its
table as the demo seed loads them, all renewing at the same anchor. Two advances are timed:

- to 20 days later: nothing falls due, so every schedule tick on the way is skipped;
- past the renewal date: every integration renews, each a charge on localstripe, its webhook
  delivered to the function URL and handled, and its domain event published, all awaited.

Also the CPU seconds each process of the stack spent on the second advance: on 2 cores the
total of these, not the stack's design, bounds the wall time.

Each account has a billing user with an address, so every renewal sends its receipt. The month
is run twice, on two fresh stacks: without the functions invoked by rules on the bus
(`LOCAL_RULES=0`: no notifier), then with them; the difference is the time the notifier adds,
and the second run counts the emails sent (`GET /_local/emails`).
"""

from __future__ import annotations

import os
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3

from bench.harness import active_integration, record, table
from lifecycle.rules.calendar import add_month, format_instant, parse_instant
from lifecycle.store.repository import Store
from local.client import LocalStack, Tenant, group_members

INTEGRATIONS = int(os.environ.get("MONTH_INTEGRATIONS", "300"))
PER_ACCOUNT = 50
RENEWAL_SLOT = timedelta(minutes=15)


def _cpu_seconds(stack: LocalStack) -> dict[str, float]:
    """CPU seconds (user + system) of every process of the stack, by what it is."""
    assert stack.process is not None
    ticks = os.sysconf("SC_CLK_TCK")
    found: dict[str, float] = {}
    for pid in group_members(stack.process.pid):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        name = _process_name(command)
        found[name] = found.get(name, 0.0) + (int(stat[11]) + int(stat[12])) / ticks
    return found


def _process_name(command: str) -> str:
    if "local.runtime" in command and " NotifierFunction " in command:
        return "notifier (execution environments)"
    for marker, name in (
        ("DynamoDBLocal", "DynamoDB Local (java)"),
        ("local.localstripe_server", "localstripe"),
        ("local.devmoto", "moto (SQS, EventBridge, SES)"),
        ("local.runtime", "other functions (execution environments)"),
        ("local.dev", "stack (gateway, sources, clock)"),
    ):
        if marker in command:
            return name
    return command.split(" ", 1)[0]


def _load(stack: LocalStack, tenants: list[Tenant], now: Any) -> None:
    client = boto3.client(
        "dynamodb",
        endpoint_url=f"http://127.0.0.1:{stack.env['DYNAMODB_PORT']}",
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",  # DynamoDB Local takes any
    )
    store = Store(stack.env.get("TABLE_NAME") or "integrations", client=client)
    store.load_integrations(
        [
            active_integration(f"int_month_{n:04d}", tenants[n % len(tenants)].account_id, now)
            for n in range(INTEGRATIONS)
        ]
    )


def _advance(stack: LocalStack, to: Any) -> tuple[float, dict[str, Any]]:
    began = time.perf_counter()
    answer = stack.api.post("/_local/clock", {"to": format_instant(to)})
    seconds = time.perf_counter() - began
    assert answer.status == 200, answer.body
    return seconds, dict(answer.body)


def _renewed(tenants: list[Tenant], period_start: Any) -> int:
    count = 0
    for tenant in tenants:
        page = tenant.get("/v1/integrations?limit=100")
        assert page.status == 200, page.body
        count += sum(
            1
            for item in page.body["items"]
            if item["id"].startswith("int_month_")
            and parse_instant(item["current_period_start"]) == period_start
        )
    return count


def _tenant(stack: LocalStack, n: int) -> Tenant:
    """An account with a good card and a billing user with an address (it gets the receipts)."""
    created = stack.api.post(
        "/_local/accounts", {"card": "ok", "email": f"billing-{n}@merchant.example"}
    )
    assert created.status == 201, created.body
    tenant = Tenant.__new__(Tenant)
    tenant.stack, tenant.api = stack, stack.api
    tenant.account_id = created.body["account_id"]
    tenant.customer_id = created.body["stripe_customer_id"]
    tenant.token = tenant.new_token(True)
    return tenant


def _emails(stack: LocalStack) -> int:
    answer = stack.api.get("/_local/emails")
    assert answer.status == 200, answer.body
    return len(answer.body["items"])


def _month(**env: str) -> dict[str, Any]:
    """One fresh stack: the 20 quiet days, then the month with its renewals."""
    with tempfile.TemporaryDirectory(prefix="bench-month-") as folder:
        stack = LocalStack(Path(folder) / "local", LOCAL_SEED="0", **env)
        try:
            stack.start()
            tenants = [_tenant(stack, n) for n in range(-(-INTEGRATIONS // PER_ACCOUNT))]
            now = parse_instant(stack.api.get("/_local/clock").body["now"])
            _load(stack, tenants, now)
            quiet_seconds, quiet = _advance(stack, now + timedelta(days=20))
            emails_before = _emails(stack)
            before = _cpu_seconds(stack)
            renewal_at = add_month(now, 1)
            month_seconds, month = _advance(stack, renewal_at + RENEWAL_SLOT)
            after = _cpu_seconds(stack)
            emails = _emails(stack) - emails_before
            renewed = _renewed(tenants, renewal_at)
        finally:
            stack.stop()
    return {
        "stack": stack,
        "tenants": tenants,
        "quiet_seconds": quiet_seconds,
        "quiet": quiet,
        "month_seconds": month_seconds,
        "month": month,
        "renewed": renewed,
        "emails": emails,
        "cpu": {name: round(after[name] - before.get(name, 0.0), 1) for name in after},
    }


# Runs of each kind, alternated (without, with, without, with): the machine is shared, and the
# fastest run of each kind is the one least disturbed by whatever else ran meanwhile.
RUNS = int(os.environ.get("MONTH_RUNS", "2"))


def main() -> dict[str, Any]:
    without: list[dict[str, Any]] = []
    with_notifier: list[dict[str, Any]] = []
    for _ in range(RUNS):
        without.append(_month(LOCAL_RULES="0"))
        with_notifier.append(_month())
    baseline = min(without, key=lambda run: run["month_seconds"])
    measured = min(with_notifier, key=lambda run: run["month_seconds"])
    stack, tenants = measured["stack"], measured["tenants"]
    quiet_seconds, quiet = measured["quiet_seconds"], measured["quiet"]
    month_seconds, month = measured["month_seconds"], measured["month"]
    renewed, cpu = measured["renewed"], measured["cpu"]
    added = month_seconds - baseline["month_seconds"]
    figures = {
        "integrations": INTEGRATIONS,
        "accounts": len(tenants),
        "stack_started_seconds": round(stack.started_in or 0.0, 1),
        "quiet_20_days_seconds": round(quiet_seconds, 2),
        "quiet_20_days_runs": len(quiet["runs"]),
        "month_seconds": round(month_seconds, 1),
        "month_runs": len(month["runs"]),
        "renewed": renewed,
        "ms_per_renewal": round(1000 * month_seconds / max(renewed, 1), 1),
        "cpu_seconds_during_month": cpu,
        "cpu_seconds_total": round(sum(cpu.values()), 1),
        # The notifier: one receipt per renewal to the account's billing user.
        "emails_sent": measured["emails"],
        "month_seconds_without_notifier": round(baseline["month_seconds"], 1),
        "notifier_added_seconds": round(added, 1),
        "notifier_added_ms_per_email": round(1000 * added / max(measured["emails"], 1), 1),
        "cpu_seconds_during_month_without_notifier": baseline["cpu"],
        "notifier_cpu_seconds": cpu.get("notifier (execution environments)", 0.0),
        "month_runs_seconds": {
            "without_notifier": [round(run["month_seconds"], 1) for run in without],
            "with_notifier": [round(run["month_seconds"], 1) for run in with_notifier],
        },
    }
    record("month", figures)
    table(
        f"make dev: business clock with {INTEGRATIONS} integrations ({len(tenants)} accounts)",
        ["advance", "seconds", "schedule runs", "renewed"],
        [
            ["20 days, nothing due", figures["quiet_20_days_seconds"], len(quiet["runs"]), 0],
            ["past the renewal date", figures["month_seconds"], len(month["runs"]), renewed],
        ],
    )
    table(
        "the notifier during the month",
        ["emails sent", "month without it, s", "with it, s", "added, s", "added per email, ms"],
        [
            [
                figures["emails_sent"],
                figures["month_seconds_without_notifier"],
                figures["month_seconds"],
                figures["notifier_added_seconds"],
                figures["notifier_added_ms_per_email"],
            ]
        ],
    )
    table(
        "CPU seconds during the month's advance, by process",
        ["process", "CPU s"],
        [[name, seconds] for name, seconds in sorted(cpu.items(), key=lambda x: -x[1])],
    )
    return figures


if __name__ == "__main__":
    main()

"""AWS cost per 1,000 lifecycle actions and per 1,000,000 renewals, from measured figures.

Goals (issue #7): under $0.01 per 1,000 lifecycle actions, under $20 per 1,000,000 renewals.

Reads bench/results.json (run after bench.api, bench.renewals and bench.memory): DynamoDB
capacity units and handler time per command, capacity and throughput per renewal, and the share
of a request's time that is CPU (bench.memory), which Lambda stretches below 1,769 MB. The rest
comes from the template (memory, batch sizes) and from the rulebook (one domain event per
action). What is assumed and not measured is marked as such in the table. Free tiers are left
out; Stripe's fees are not AWS costs and are excluded (2.9% + 30 cents per card charge at
Stripe's list price).
"""

from __future__ import annotations

import json
import math
from typing import Any

from bench.harness import RESULTS, record, table
from local.template import resources, template

# On-demand list prices, us-east-1, in dollars per unit; free tiers not applied. Sources, the
# AWS pricing pages: https://aws.amazon.com/dynamodb/pricing/on-demand/ (prices since the
# 1 November 2024 cut), https://aws.amazon.com/lambda/pricing/ (arm64, first tier),
# https://aws.amazon.com/api-gateway/pricing/ (HTTP APIs, first 300 million),
# https://aws.amazon.com/sqs/pricing/ (standard queue, first 100 billion requests),
# https://aws.amazon.com/eventbridge/pricing/ (custom events). Read 2026-11-22 (from copies of
# those pages and summaries dated 2025-2026; AWS's own pages are not reachable from here).
PRICES_REGION = "us-east-1"
PRICES_AS_OF = "2026-11-22"
PRICES: dict[str, float] = {
    "dynamodb_write_request_unit": 0.625 / 1e6,
    "dynamodb_read_request_unit": 0.125 / 1e6,
    "lambda_request": 0.20 / 1e6,
    "lambda_arm64_gb_second": 0.0000133334,
    "http_api_request": 1.00 / 1e6,
    "sqs_standard_request": 0.40 / 1e6,
    "eventbridge_custom_event": 1.00 / 1e6,
}
FULL_CPU_MB = 1769
GOAL_PER_1000_ACTIONS = 0.01
GOAL_PER_1M_RENEWALS = 20.0
LIFECYCLE_ACTIONS = ("freeze", "cancel", "free reactivate", "paid reactivate")

# Assumed, not measured (each is a line of its own in the table).
EVENTS_PER_ACTION = 1  # rules/integration.py and rules/renewal.py: one event per decision
PUBLISHER_MS_PER_EVENT = 50  # event publisher: read the row, PutEvents, mark it published
PUBLISHER_RECORDS_PER_INVOCATION = {"actions": 1, "renewals": 10}  # quiet hours vs a sweep
IDEMPOTENCY_WRU = 3  # with an Idempotency-Key: in-progress put + stored response (1-2 KB)
STRIPE_WAIT_MS = 600  # a renewal worker waiting on one PaymentIntent (Stripe's API latency)
SQS_REQUESTS_PER_MESSAGE = 3 / 10  # send, receive and delete, each in batches of 10
INDEX_KEY_BYTES = 150  # one DueIndex entry (KEYS_ONLY), read eventually consistent


def _function(logical_id: str) -> dict[str, Any]:
    properties: dict[str, Any] = resources("AWS::Serverless::Function")[logical_id]["Properties"]
    return properties


def _memory_gb(logical_id: str) -> float:
    default = template()["Globals"]["Function"]["MemorySize"]
    return float(_function(logical_id).get("MemorySize", default)) / 1024


def _lambda(
    logical_id: str, milliseconds: float, invocations: float = 1.0, cpu_fraction: float = 0.0
) -> float:
    """One invocation's share: requests and GB-s, duration billed in whole milliseconds.
    `milliseconds` was measured with a whole CPU; Lambda gives a function CPU in proportion to
    its memory (all of one vCPU at 1,769 MB), so below that its `cpu_fraction` stretches and
    the waiting does not. (The CPU part then costs the same GB-s at any size up to 1,769 MB.)"""
    stretch = max(1.0, FULL_CPU_MB / (_memory_gb(logical_id) * 1024))
    billed = milliseconds * (cpu_fraction * stretch + 1 - cpu_fraction)
    gb_seconds = _memory_gb(logical_id) * math.ceil(billed) / 1000
    return invocations * PRICES["lambda_request"] + gb_seconds * PRICES["lambda_arm64_gb_second"]


def _publisher(events: float, records_per_invocation: int) -> dict[str, float]:
    """Publishing `events` outbox rows: the stream read is free for a Lambda trigger; one
    consistent read and one conditional write per row; one PutEvents entry per event."""
    return {
        "EventBridge events (custom bus)": events * PRICES["eventbridge_custom_event"],
        "event publisher Lambda (assumed time)": events
        * _lambda("EventPublisherFunction", PUBLISHER_MS_PER_EVENT, 1 / records_per_invocation),
        "event publisher DynamoDB (1 RRU + 1 WRU per event)": events
        * (PRICES["dynamodb_read_request_unit"] + PRICES["dynamodb_write_request_unit"]),
    }


def _dynamodb(figures: dict[str, Any], total: str, reads: str, writes: str) -> dict[str, float]:
    """Measured capacity in dollars. DynamoDB Local reports `CapacityUnits` only, and the harness
    sums reads and writes together: without a split, every unit is priced as a write (the
    dearer), an upper bound. A split recorded by the harness is used when present."""
    if reads in figures and writes in figures:
        return {
            "DynamoDB (measured RRU + WRU)": figures[reads] * PRICES["dynamodb_read_request_unit"]
            + figures[writes] * PRICES["dynamodb_write_request_unit"]
        }
    return {
        "DynamoDB (measured units, priced as writes)": figures[total]
        * PRICES["dynamodb_write_request_unit"]
    }


def action_cost(figures: dict[str, Any], logical_id: str, cpu_fraction: float) -> dict[str, float]:
    """Dollars per action."""
    return {
        **_dynamodb(
            figures, "consumed_capacity_units", "read_capacity_units", "write_capacity_units"
        ),
        "DynamoDB idempotency record (assumed)": IDEMPOTENCY_WRU
        * PRICES["dynamodb_write_request_unit"],
        "Lambda requests + GB-s (measured time)": _lambda(
            logical_id, figures["median_ms"], cpu_fraction=cpu_fraction
        ),
        "API Gateway HTTP API request": PRICES["http_api_request"],
        **_publisher(EVENTS_PER_ACTION, PUBLISHER_RECORDS_PER_INVOCATION["actions"]),
    }


def renewal_cost(figures: dict[str, Any], cpu_fraction: float) -> dict[str, float]:
    """Dollars per renewal (payments faked in the benchmark: Stripe's latency is assumed)."""
    worker = _function("RenewalWorkerFunction")
    batch = worker["Events"]["RenewalMessages"]["Properties"].get("BatchSize", 10)
    # Each worker thread took workers / (renewals per second) seconds per renewal.
    handler_ms = 1000 * figures["workers"] / figures["renewals_per_second"]
    sweep_ms = 1000 * figures["sweep_query_seconds_due_of_total"] / figures["due"]
    index_rru = INDEX_KEY_BYTES / 4096 / 2
    return {
        **_dynamodb(
            figures,
            "capacity_units_per_renewal",
            "read_capacity_units_per_renewal",
            "write_capacity_units_per_renewal",
        ),
        "DynamoDB due-index read (sweep)": index_rru * PRICES["dynamodb_read_request_unit"],
        "renewal sweep Lambda GB-s (measured)": _lambda("RenewalSweepFunction", sweep_ms, 0),
        "renewal worker Lambda (measured time, batches)": _lambda(
            "RenewalWorkerFunction", handler_ms, 1 / batch, cpu_fraction
        ),
        "renewal worker waiting on Stripe (assumed)": _lambda(
            "RenewalWorkerFunction", STRIPE_WAIT_MS, 0
        ),
        "SQS (send, receive, delete in batches)": SQS_REQUESTS_PER_MESSAGE
        * PRICES["sqs_standard_request"],
        **_publisher(EVENTS_PER_ACTION, PUBLISHER_RECORDS_PER_INVOCATION["renewals"]),
    }


def cpu_share_of_request(memory: dict[str, Any]) -> float:
    """The CPU part of a warm request (bench.memory): its median CPU seconds over its median
    time, both with a whole CPU."""
    cpu = float(memory["cpu_seconds"]["warm_request_median"])
    return min(1.0, cpu * 1000 / float(memory["full_speed"]["warm_p50_ms"]))


def main() -> dict[str, Any]:
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    missing = [s for s in ("api", "renewals", "memory") if s not in results]
    if missing:
        raise SystemExit(
            f"bench/results.json has no {missing}: run bench.{', bench.'.join(missing)}"
        )
    api, renewals = results["api"], results["renewals"]
    cpu_fraction = cpu_share_of_request(results["memory"])
    routes = {
        "freeze": "FreezeFunction",
        "cancel": "CancelFunction",
        "free reactivate": "ReactivateFunction",
        "paid reactivate": "ReactivateFunction",
    }
    per_action = {
        name: action_cost(api[name], routes[name], cpu_fraction) for name in LIFECYCLE_ACTIONS
    }
    lines = list(dict.fromkeys(line for cost in per_action.values() for line in cost))
    mix = {
        line: sum(cost.get(line, 0.0) for cost in per_action.values()) / len(per_action)
        for line in lines
    }
    per_1000 = {name: 1000 * sum(c.values()) for name, c in per_action.items()}
    mix_1000 = 1000 * sum(mix.values())
    renewal = renewal_cost(renewals, cpu_fraction)
    per_1m_renewals = 1e6 * sum(renewal.values())

    figures = {
        "prices": {"region": PRICES_REGION, "as_of": PRICES_AS_OF, **PRICES},
        "assumed": {
            "events_per_action": EVENTS_PER_ACTION,
            "publisher_ms_per_event": PUBLISHER_MS_PER_EVENT,
            "publisher_records_per_invocation": PUBLISHER_RECORDS_PER_INVOCATION,
            "idempotency_wru": IDEMPOTENCY_WRU,
            "stripe_wait_ms": STRIPE_WAIT_MS,
            "sqs_requests_per_message": SQS_REQUESTS_PER_MESSAGE,
        },
        "measured_cpu_share_of_a_request": round(cpu_fraction, 3),
        "excluded": "free tiers; Stripe fees; storage, PITR, logs, data transfer",
        "per_1000_lifecycle_actions_usd": round(mix_1000, 5),
        "per_1000_by_action_usd": {k: round(v, 5) for k, v in per_1000.items()},
        "per_1000_breakdown_usd": {k: round(1000 * v, 6) for k, v in mix.items()},
        "goal_per_1000_actions_usd": GOAL_PER_1000_ACTIONS,
        "per_1m_renewals_usd": round(per_1m_renewals, 3),
        "per_1m_renewals_breakdown_usd": {k: round(1e6 * v, 4) for k, v in renewal.items()},
        "goal_per_1m_renewals_usd": GOAL_PER_1M_RENEWALS,
    }
    table(
        f"AWS cost per 1,000 lifecycle actions (equal mix of {', '.join(LIFECYCLE_ACTIONS)}; "
        f"{PRICES_REGION} on-demand list prices of {PRICES_AS_OF}; Stripe fees excluded)",
        ["line", "$ per 1,000"],
        [
            *[[line, f"{1000 * dollars:.5f}"] for line, dollars in mix.items()],
            ["total (goal < $0.01)", f"{mix_1000:.5f}"],
            *[[f"  {name} alone", f"{dollars:.5f}"] for name, dollars in per_1000.items()],
        ],
    )
    table(
        "AWS cost per 1,000,000 renewals (Stripe fees excluded: 2.9% + $0.30 per charge)",
        ["line", "$ per 1,000,000"],
        [
            *[[line, f"{1e6 * dollars:.2f}"] for line, dollars in renewal.items()],
            ["total (goal < $20)", f"{per_1m_renewals:.2f}"],
        ],
    )
    record("cost", figures)
    return figures


if __name__ == "__main__":
    main()

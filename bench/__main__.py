"""`make bench`: every benchmark in one run, then one summary table (bench/results.json).

Each section runs in a process of its own, one after the other (never side by side: these
machines are noisy enough), and records its own section of results.json; `cost` reads what
`api` and `renewals` measured, so it runs last. `packages` needs `make build` first.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

from bench.harness import RESULTS, record, table
from local.template import ROOT

SECTIONS = ("packages", "imports", "first_request", "memory", "api", "renewals", "cost")


def _run(section: str) -> float:
    began = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-W", "ignore", "-m", f"bench.{section}"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:
        # Powertools flushes its metrics (EMF) to stdout after every use case: noise here.
        if not line.startswith('{"_aws"'):
            print(line, end="", flush=True)
    if process.wait():
        raise SystemExit(f"bench.{section} failed (exit {process.returncode})")
    return time.perf_counter() - began


# The functions behind the HTTP API: Powertools' resolver with request validation in each.
_API = {
    "AccountFunction",
    "BillingFunction",
    "BulkFunction",
    "CancelFunction",
    "FreezeFunction",
    "IntegrationsFunction",
    "ReactivateFunction",
}


def _mark(met: bool) -> str:
    return "yes" if met else "NO"


def summary(results: dict[str, Any]) -> list[list[Any]]:
    rows: list[list[Any]] = []
    imports = results["imports"]
    functions = imports["functions"]
    worst = max(functions, key=lambda name: functions[name]["ratio"])
    over = [name for name, entry in functions.items() if entry["ratio"] > imports["goal_ratio"]]
    rows.append(
        [
            "cold import + DynamoDB client / boto3 baseline (worst)",
            f"{functions[worst]['ratio']:.2f} ({worst})",
            f"<= {imports['goal_ratio']}",
            _mark(not over),
        ]
    )
    rows.append(
        [
            "  functions over the goal",
            ", ".join(sorted(over)) or "none",
            "none",
            _mark(not over),
        ]
    )
    counted = {
        n: e["instructions_ratio"] for n, e in functions.items() if "instructions_ratio" in e
    }
    if counted:
        most = max(counted, key=lambda name: counted[name])
        rows.append(
            [
                "  the same counted in instructions (perf; steady under load), worst",
                f"{counted[most]:.2f} ({most}); sweeps, worker, webhook, publisher "
                f"{max(v for n, v in counted.items() if n not in _API):.2f} at most",
                f"<= {imports['goal_ratio']}",
                "",
            ]
        )
    floor = imports.get("api_framework_floor")
    if floor:
        counted_floor = floor.get("instructions_ratio")
        rows.append(
            [
                "  floor: Powertools resolver with validation + Logger + Metrics, no project code",
                f"{floor['ratio']:.2f}"
                + (f" ({counted_floor:.2f} in instructions)" if counted_floor else ""),
                "(what an API function cannot go below)",
                "",
            ]
        )
    unexpected = {n: e["unexpected"] for n, e in functions.items() if e["unexpected"]}
    rows.append(
        [
            "  Stripe / X-Ray / aiohttp imported where not needed",
            json.dumps(unexpected) if unexpected else "none",
            "none",
            _mark(not unexpected),
        ]
    )
    shipped = [e["as_shipped_ratio"] for e in functions.values() if "as_shipped_ratio" in e]
    if shipped:
        bytecode = "with" if imports.get("built_layer_has_bytecode") else "without"
        rows.append(
            [
                f"  the same, the layer as `sam build` ships it ({bytecode} .pyc; worst)",
                f"{max(shipped):.2f}",
                "(not a goal)",
                "",
            ]
        )
    first = results.get("first_request")
    if first:
        entries = first["functions"]
        worst_first = max(entries, key=lambda name: entries[name]["ratio"])
        rows.append(
            [
                "first request as felt (import, one event, answer) / boto3 + one call (worst)",
                f"{entries[worst_first]['ratio']:.2f} ({worst_first}); "
                + ", ".join(
                    f"{n.removesuffix('Function')} {e['ratio']:.2f}"
                    for n, e in sorted(entries.items())
                ),
                "(measured)",
                "",
            ]
        )
        snap = {n: e for n, e in entries.items() if "snapstart_ratio" in e}
        if snap:
            rows.append(
                [
                    "  API functions after a SnapStart restore (emulated + assumed restore), worst",
                    f"{max(e['snapstart_ratio'] for e in snap.values()):.2f} "
                    f"(+{first['snapstart_restore_ms_assumed']:.0f} ms restore assumed)",
                    "(ApiSnapStart)",
                    "",
                ]
            )
    memory = results["memory"]
    rows.append(
        [
            f"peak RSS after {memory['requests']} requests (MB)",
            f"{memory['peak_rss_mb']} ({memory['peak_share_of_limit']:.0%})",
            f"fits {memory['limit_mb']} MB with room",
            _mark(memory["peak_share_of_limit"] < 0.5),
        ]
    )
    sized = memory.get("sizes_mb", {}).get(str(memory["limit_mb"]))
    if sized:
        cold = sized.get("measured", sized["estimated"])["cold_start_ms"]
        how = "under its CPU share" if "measured" in sized else "estimated from CPU seconds"
        rows.append(
            [
                f"  API cold start at {memory['limit_mb']} MB, {how} (ms)",
                cold,
                "(not a goal: docs/operations.md#memory-and-timeouts)",
                "",
            ]
        )
    api = results["api"]
    single = {k: v for k, v in api.items() if not k.startswith("list")}
    trips = {k: v["dynamodb_round_trips"] for k, v in single.items()}
    rows.append(
        [
            "DynamoDB round trips per command (bench.api)",
            ", ".join(f"{k} {v}" for k, v in trips.items()),
            "<= 2; a paid one 3 (its ledger line is written before Stripe is called)",
            _mark(all(v <= (3 if k.startswith("paid") else 2) for k, v in trips.items())),
        ]
    )
    rows.append(
        [
            "DynamoDB capacity units per command (min-max)",
            f"{min(v['consumed_capacity_units'] for v in single.values())}"
            f"-{max(v['consumed_capacity_units'] for v in single.values())}",
            "",
            "",
        ]
    )
    cost = results["cost"]
    rows.append(
        [
            "AWS $ per 1,000 lifecycle actions",
            f"{cost['per_1000_lifecycle_actions_usd']:.4f}",
            f"< {cost['goal_per_1000_actions_usd']}",
            _mark(cost["per_1000_lifecycle_actions_usd"] < cost["goal_per_1000_actions_usd"]),
        ]
    )
    rows.append(
        [
            "AWS $ per 1,000,000 renewals",
            f"{cost['per_1m_renewals_usd']:.2f}",
            f"< {cost['goal_per_1m_renewals_usd']:.0f}",
            _mark(cost["per_1m_renewals_usd"] < cost["goal_per_1m_renewals_usd"]),
        ]
    )
    renewals = results["renewals"]
    rows.append(
        [
            f"renewals per second ({renewals['workers']} workers)",
            renewals["renewals_per_second"],
            ">= 200",
            _mark(renewals["renewals_per_second"] >= 200),
        ]
    )
    ceiling = renewals.get("dynamodb_local_ceiling")
    if ceiling:
        rows.append(
            [
                "  DynamoDB Local's ceiling for the renewal's requests (replayed raw, same run)",
                f"{ceiling['renewals_per_second_ceiling']} renewals/s "
                f"(measured {ceiling['renewals_share_of_ceiling']:.0%} of it)",
                ">= 90% of it",
                _mark(ceiling["renewals_share_of_ceiling"] >= 0.9),
            ]
        )
    before = renewals.get("before_issue_17_shape_replayed")
    if before:
        old = renewals["before_issue_17"]
        rows.append(
            [
                "  the write path before issue 17: its ceiling replayed now; measured then",
                f"{before['renewals_per_second_ceiling']} renewals/s (new/before "
                f"{before['new_over_before']}); {old['renewals_per_second']} renewals/s, "
                f"{old['renewals_share_of_ceiling']:.0%} of {old['renewals_per_second_ceiling']}",
                "(comparison)",
                "",
            ]
        )
    rows.append(
        [
            f"sweep, {renewals['due']} due of {renewals['total']} vs of {renewals['due']}",
            renewals["sweep_ratio_total_vs_due_only"],
            "<= 1.2",
            _mark(renewals["sweep_ratio_total_vs_due_only"] <= 1.2),
        ]
    )
    month = results.get("month")  # `make bench-month`, when it has been run
    if month:
        rows.append(
            [
                f"make dev: a month with {month['renewed']} renewals (s; bench-month)",
                month["month_seconds"],
                "seconds, not minutes",
                _mark(month["month_seconds"] < 60 and month["quiet_20_days_seconds"] < 2),
            ]
        )
    sizes = results["packages"]
    packages, limits = sizes["packages"], sizes["limits_mb"]
    layer = next(e for e in packages.values() if e["kind"] == "layer")
    biggest_mb = round(
        max(e["zipped_bytes"] for e in packages.values() if e["kind"] == "function") / 2**20, 3
    )
    largest_total = max(e["unzipped_with_layers_mb"] for e in packages.values())
    for figure, value, limit in (
        ("layer zipped (MB)", layer["zipped_mb"], limits["zipped"]),
        ("largest function zipped (MB)", biggest_mb, limits["zipped"]),
        ("function + layer unzipped (MB)", largest_total, limits["unzipped_with_layers"]),
    ):
        rows.append([figure, value, f"< {limit}", _mark(value < limit)])
    return rows


def main() -> None:
    began = time.perf_counter()
    seconds = {section: round(_run(section), 1) for section in SECTIONS}
    total = round(time.perf_counter() - began, 1)
    record("run", {"section_seconds": seconds, "total_seconds": total})
    results = json.loads(RESULTS.read_text())
    rows = summary(results)
    rows.append(["bench wall time (s)", total, "", ""])
    table("Summary (bench/results.json)", ["figure", "value", "goal", "met"], rows)


if __name__ == "__main__":
    main()

"""The generated parts of README.md and docs/architecture.md: no figure or key is quoted by hand.

A part sits between two markers, `<!-- NAME -->` and `<!-- /NAME -->` on lines of their own:
`keys:data-model` is the table of `lifecycle.store.keys`; `bench:*` blocks are written from
bench/results.json (`make bench`, `make bench-month`) and bench/simulation.json
(`make simulate`). `python -m local.docs` (`make docs`) rewrites them in place; a test fails
when a committed one differs from what this module writes.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from lifecycle.store.keys import data_model_table
from local.template import ROOT

DOCUMENTS = (ROOT / "README.md", ROOT / "docs" / "architecture.md")
RESULTS = ROOT / "bench" / "results.json"
SIMULATION = ROOT / "bench" / "simulation.json"
_BLOCK = re.compile(
    r"(?P<open><!-- (?P<name>[a-z-]+:[a-z-]+) -->\n)(?P<body>.*?)(?P<close><!-- /(?P=name) -->)",
    re.DOTALL,
)
Figures = Mapping[str, Any]


def _n(value: float, digits: int = 1) -> str:
    """A figure as the docs print it: thousands separated, `digits` after the point."""
    return f"{value:,.{digits}f}"


def _api_round_trips(api: Figures) -> str:
    trips = {name: figures["dynamodb_round_trips"] for name, figures in api.items()}
    return (
        f"Measured round trips (`make bench`, `api`): freeze {trips['freeze']}, cancel"
        f" {trips['cancel']}, free reactivation {trips['free reactivate']} (one BatchGetItem,"
        f" one transaction); list {trips['list (50)']}; paid reactivation"
        f" {trips['paid reactivate']} (the read; the quote's charge reference; the ledger line;"
        " the receipt counter; the apply).\n"
    )


def _due_index(renewals: Figures) -> str:
    return (
        f"(measured, `make bench`, `renewals`: {renewals['index_items_read_big']:,} index"
        f" entries read for {renewals['due']:,} due among {renewals['total']:,}; the query time"
        f" ratio against {renewals['due']:,} among {renewals['due']:,} is"
        f" {renewals['sweep_ratio_total_vs_due_only']}).\n"
    )


def _renewals(r: Figures) -> str:
    ceiling = r["dynamodb_local_ceiling"]
    before = r["before_issue_17"]
    replayed = r["before_issue_17_shape_replayed"]
    operations = ", ".join(
        f"{name} {count}" for name, count in r["dynamodb_calls_per_renewal_by_operation"].items()
    )
    return (
        f"{r['renewals_per_second']} renewals/s with {r['workers']} workers and the payments"
        f" fake, against DynamoDB Local's ceiling for the same requests replayed raw in the same"
        f" run ({ceiling['renewals_per_second_ceiling']} renewals/s: one BatchGetItem of the"
        f" account, its receipt counter, the integration and its settings, the ledger line's"
        f" PutItem, one {r['commit_items_per_transaction']}-item TransactWriteItems each; medians"
        f" of {r['rounds']} rounds side by side): {ceiling['renewals_share_of_ceiling']:.0%} of"
        " it. The shape"
        f" before issue 17 (the line and its guard as a two-item transaction), replayed in the"
        f" same run: {replayed['renewals_per_second_ceiling']} renewals/s (the new shape"
        f" {replayed['new_over_before']}x). Before issue 17 `make bench` measured"
        f" {before['renewals_per_second']} renewals/s,"
        f" {before['renewals_share_of_ceiling']:.0%} of that run's ceiling"
        f" ({before['renewals_per_second_ceiling']}). Round trips per renewal"
        f" {r['dynamodb_round_trips_per_renewal']} ({operations}); the sweep leases"
        f" {r['sweep_leases_per_second']:.0f} due entries a second on DynamoDB Local (ten"
        " UpdateItems side by side).\n"
    )


def _table(rows: Sequence[Mapping[str, object]]) -> str:
    """A Markdown table of `rows`, each a column -> cell mapping (the columns of the first):
    its header, the line under it, a line a row."""
    columns = list(rows[0])
    lines: list[Iterable[object]] = [columns, ["---"] * len(columns), *(r.values() for r in rows)]
    return "".join(f"| {' | '.join(str(cell) for cell in line)} |\n" for line in lines)


def _first_request(first: Figures) -> str:
    restore = first["snapstart_restore_ms_assumed"]
    rows = []
    for logical_id, figures in sorted(first["functions"].items()):
        restored = ""
        if "snapstart_request_ms" in figures:
            restored = f"{figures['snapstart_request_ms']:.0f} + {restore:.0f}"
        rows.append(
            {
                "function": logical_id.removesuffix("Function"),
                "first request (ms)": f"{figures['first_request_ms']:.0f}",
                "ratio to baseline": figures["ratio"],
                "after a SnapStart restore: request + restore (ms)": restored,
                "ratio": figures.get("snapstart_ratio", ""),
            }
        )
    return (
        f"Baseline (a fresh process that imports boto3, makes a DynamoDB client and does one"
        f" GetItem): {first['baseline_ms']:.0f} ms; a SnapStart restore is assumed to take"
        f" {restore:.0f} ms.\n\n"
    ) + _table(rows)


def _memory(memory: Figures) -> str:
    sizes = memory["sizes_mb"]
    return (
        f"(about {sizes['1024']['measured']['cold_start_ms'] / 1000:.1f} s at 1,024 MB,"
        f" {sizes['256']['measured']['cold_start_ms'] / 1000:.1f} s at 256: `make bench`,"
        " `memory`)\n"
    )


def _simulation_check(check: Figures) -> str:
    return (
        f"Checked against `make bench-month` on its input ({check['input']}): predicted"
        f" {check['predicted_renewals_per_second']} renewals/s, measured"
        f" {check['measured_renewals_per_second']} (ratio {check['ratio']}; within 20%:"
        f" {check['within_20_percent']}).\n"
    )


def _simulation(scenarios: Figures) -> str:
    rows = []
    for name, scenario in scenarios.items():
        day = scenario["worst_day"]
        charges = scenario["charges_per_renewal"]
        lateness = (f"{day[f'lateness_{p}_s'] / 60:.1f}" for p in ("p50", "p99", "max"))
        rows.append(
            {
                "budget": f"{name} ({scenario['scenario']['concurrency']} workers)",
                "worst day": day["day"],
                "due": f"{day['due']:,}",
                "lateness p50 / p99 / max (min)": " / ".join(lateness),
                "enqueues per renewal": day["enqueues_per_renewal"],
                "charges per renewal (sample)": (
                    f"{charges['value']} ({charges['renewed_periods']:,} periods)"
                ),
                "hottest partition": (
                    f"{day['hottest_partition_share']:.0%} ({day['hottest_partition']})"
                ),
                "$ per 1M renewals": scenario["cost"]["per_1m_renewals_usd"],
                "$ a month": scenario["cost"]["month_usd"],
            }
        )
    return _table(rows)


def _month(m: Figures) -> str:
    cpu = m["cpu_seconds_during_month"]
    return (
        f"How long it takes (`make bench-month`, `month` in bench/results.json): 20 days with"
        f" nothing due, {m['quiet_20_days_seconds']} s; a month in which {m['integrations']}"
        f" integrations renew ({m['renewed']} charges on localstripe, their webhooks and"
        f" events), {m['month_seconds_without_notifier']} s without the notifier"
        f" (`LOCAL_RULES=0`) and {m['month_seconds']} s with it ({m['emails_sent']} emails"
        f" sent: each account has a billing user, so each renewal sends its receipt), the"
        f" fastest of alternated runs of each kind. The notifier adds"
        f" {m['notifier_added_seconds']} s, {m['notifier_added_ms_per_email']:.0f} ms per"
        f" email: {m['notifier_cpu_seconds']} CPU seconds in the notifier's environments. CPU"
        f" seconds during the month by process: "
        + ", ".join(f"{name} {seconds}" for name, seconds in cpu.items())
        + ". On two cores the total of these, not the stack's design, bounds the wall time;"
        " the figures are the machine's at the time of the run (other suites may share it).\n"
    )


# Each `bench:*` block: the file and the section of it that its renderer writes from.
RENDERERS: Mapping[str, tuple[Path, str, Callable[[Figures], str]]] = {
    "bench:api-round-trips": (RESULTS, "api", _api_round_trips),
    "bench:due-index": (RESULTS, "renewals", _due_index),
    "bench:renewals": (RESULTS, "renewals", _renewals),
    "bench:first-request": (RESULTS, "first_request", _first_request),
    "bench:memory": (RESULTS, "memory", _memory),
    "bench:simulation": (SIMULATION, "scenarios", _simulation),
    "bench:simulation-check": (SIMULATION, "bench_month_check", _simulation_check),
    "bench:month": (RESULTS, "month", _month),
}


def render(name: str) -> str:
    if name == "keys:data-model":
        return data_model_table()
    source, section, write = RENDERERS[name]
    return write(json.loads(source.read_text(encoding="utf-8"))[section])


def rewrite(text: str) -> str:
    """`text` with every marked part written anew."""

    def part(found: re.Match[str]) -> str:
        return f"{found['open']}{render(found['name'])}{found['close']}"

    return _BLOCK.sub(part, text)


def blocks(text: str) -> list[str]:
    """The names of the marked parts of `text`, in order."""
    return [found["name"] for found in _BLOCK.finditer(text)]


def main() -> int:
    for path in DOCUMENTS:
        text = path.read_text(encoding="utf-8")
        written = rewrite(text)
        if written != text:
            path.write_text(written, encoding="utf-8")
            print(f"rewrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Memory size of the functions: peak RSS, and the cold start and request times at the CPU share
Lambda gives each memory size (DynamoDB Local).

Lambda gives a function CPU in proportion to its memory, a full vCPU at 1,769 MB; the handlers'
cold start (pydantic, Powertools' resolver, boto3) is CPU-bound, so the memory size is chosen by
CPU, not by RSS (which stays under 70 MB). Two measurements:

1. RSS: one fresh process, the clean interpreter of `bench.imports` (the layer's requirements and
   boto3, nothing else), serves 500 requests (BENCH_MEMORY_REQUESTS), 125 per route, through the
   real `lambda_handler`s with API Gateway HTTP API events: list, read one, freeze, reactivate
   (free: the freeze is still pending), POSTs with an Idempotency-Key so the idempotency layer
   runs too. RSS levels off after the first request. It also records the process's CPU seconds
   at each step (interpreter, imports, first request, each further request).
2. Sizing: the same process, fewer requests (SIZING_REQUESTS), in a cgroup whose CPU quota is
   the share Lambda gives each size in SIZES_MB (memory / 1,769 MB of one CPU), when this
   machine lets us make one (root, cgroup v1 `cpu` or v2 `cpu.max`), best of SIZING_RUNS; and
   always estimated from the CPU seconds of (1) (CPU time stretches by 1 / share, waiting does
   not), side by side.

One process holds three functions' code (integrations, freeze, reactivate) where Lambda holds
one: the figures are an upper bound. Not in them: Lambda's own start (fetching the code, the
runtime's bootstrap, about 100-200 ms whatever the size) and the SSM read of the Stripe key.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.harness import active_integration, card_account, dynamodb, record, table
from bench.imports import LAYER_SOURCE, bench_python
from lifecycle.store.repository import Store
from local.template import ROOT, template

REQUESTS = int(os.environ.get("BENCH_MEMORY_REQUESTS", "500"))
SIZING_REQUESTS = int(os.environ.get("BENCH_SIZING_REQUESTS", "60"))
# These two cores are shared (other runs, DynamoDB Local): each size runs this many times and
# the least disturbed run, the fastest cold start, is kept.
SIZING_RUNS = int(os.environ.get("BENCH_SIZING_RUNS", "3"))
INTEGRATIONS = 50
SIZES_MB = (256, 512, 1024, 1769)
FULL_CPU_MB = 1769  # Lambda: one full vCPU at 1,769 MB, in proportion below
CFS_PERIOD_US = 100_000
ACCOUNT = "acc_memory"
TABLES = {"IntegrationsTable": "bench-memory", "IdempotencyTable": "bench-memory-idempotency"}

_CHILD = """
import time
began = time.perf_counter()
import collections, importlib, json, resource, sys, uuid

def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime

def rss_kb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))

from local.events import LambdaContext, http_api_event

out, account, ids, requests = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), int(sys.argv[4])
started_kb, started_cpu, started_at = rss_kb(), cpu(), time.perf_counter()
handlers = {
    name: importlib.import_module(f"functions.{name}.app").lambda_handler
    for name in ("integrations", "freeze", "reactivate")
}
imported_kb, imported_cpu, imported_at = rss_kb(), cpu(), time.perf_counter()
claims = {"sub": "bench", "custom:account_id": account, "cognito:groups": "[billing]"}
ID = "/v1/integrations/{id}"
statuses = collections.Counter()
walls, cpus = [], []
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
    wall, used = time.perf_counter(), cpu()
    response = handlers[function](event, LambdaContext(function))
    walls.append(time.perf_counter() - wall)
    cpus.append(cpu() - used)
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
        "interpreter_cpu_s": started_cpu,
        "import_cpu_s": imported_cpu - started_cpu,
        "import_wall_s": imported_at - started_at,
        "interpreter_wall_s": started_at - began,
        "request_wall_s": walls,
        "request_cpu_s": cpus,
        "statuses": statuses,
    }, handle)
"""


def _seed(store: Store, now: datetime) -> list[str]:
    store.create_account(card_account(ACCOUNT, now, "cus_memory"))
    integrations = [
        active_integration(f"int_memory_{n:03d}", ACCOUNT, now) for n in range(INTEGRATIONS)
    ]
    store.load_integrations(integrations)
    return [i.id for i in integrations]


def memory_size_mb() -> int:
    """The API functions' memory size in template.yaml (Globals)."""
    return int(template()["Globals"]["Function"]["MemorySize"])


# ---------------------------------------------------------------- a CPU quota (cgroup)


def _cgroup_root() -> tuple[Path, str] | None:
    """Where a CPU-limited cgroup can be made here, and its version; None when it cannot."""
    v2 = Path("/sys/fs/cgroup")
    if (v2 / "cgroup.controllers").exists() and "cpu" in (v2 / "cgroup.controllers").read_text():
        return (v2, "v2") if os.access(v2, os.W_OK) else None
    v1 = Path("/sys/fs/cgroup/cpu")
    if (v1 / "cpu.cfs_quota_us").exists() and os.access(v1, os.W_OK):
        return v1, "v1"
    return None


@contextlib.contextmanager
def cpu_share(share: float) -> Iterator[Callable[[], None]]:
    """A cgroup limited to `share` of one CPU; yields what a child runs to join it
    (subprocess's preexec_fn)."""
    found = _cgroup_root()
    assert found is not None
    root, version = found
    group = root / f"bench-memory-{os.getpid()}"
    group.mkdir()
    quota = max(1000, int(CFS_PERIOD_US * share))
    if version == "v2":
        (group / "cpu.max").write_text(f"{quota} {CFS_PERIOD_US}")
        tasks = group / "cgroup.procs"
    else:
        (group / "cpu.cfs_period_us").write_text(str(CFS_PERIOD_US))
        (group / "cpu.cfs_quota_us").write_text(str(quota))
        tasks = group / "tasks"

    def join() -> None:
        tasks.write_text(str(os.getpid()))

    try:
        yield join
    finally:
        group.rmdir()  # empty again once the child has exited


# ---------------------------------------------------------------- the runs


def _run_child(
    python: Path, environment: dict[str, str], ids: list[str], requests: int, join: Any = None
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "memory.json"
        done = subprocess.run(
            [str(python), "-c", _CHILD, str(out), ACCOUNT, json.dumps(ids), str(requests)],
            cwd=ROOT,
            env=environment,
            # Logs and metrics go to stdout, as in Lambda; not worth keeping here.
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
            # Only writes the child's pid to its cgroup (no lock or thread is touched).
            preexec_fn=join,
        )
        if done.returncode:
            raise RuntimeError(f"the handler process failed:\n{done.stderr}")
        measured: dict[str, Any] = json.loads(out.read_text())
    failed = {k: v for k, v in measured["statuses"].items() if not k.endswith(" 200")}
    assert not failed, failed
    return measured


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _times(measured: dict[str, Any]) -> dict[str, float]:
    """Milliseconds: the cold start (imports, then the first request) and warm requests."""
    warm = measured["request_wall_s"][1:]
    return {
        "import_ms": round(measured["import_wall_s"] * 1000),
        "first_request_ms": round(measured["request_wall_s"][0] * 1000),
        "cold_start_ms": round((measured["import_wall_s"] + measured["request_wall_s"][0]) * 1000),
        "warm_p50_ms": round(_percentile(warm, 0.5) * 1000, 1),
        "warm_p99_ms": round(_percentile(warm, 0.99) * 1000, 1),
    }


def _estimate(measured: dict[str, Any], share: float) -> dict[str, float]:
    """The times at `share` of a CPU, from the CPU seconds at full speed: CPU time stretches by
    1/share, waiting (DynamoDB) does not."""

    def stretched(cpu: float, wall: float) -> float:
        return cpu / share + max(0.0, wall - cpu)

    walls, cpus = measured["request_wall_s"], measured["request_cpu_s"]
    warm = [stretched(c, w) for c, w in zip(cpus[1:], walls[1:], strict=True)]
    imported = stretched(measured["import_cpu_s"], measured["import_wall_s"])
    first = stretched(cpus[0], walls[0])
    return {
        "import_ms": round(imported * 1000),
        "first_request_ms": round(first * 1000),
        "cold_start_ms": round((imported + first) * 1000),
        "warm_p50_ms": round(_percentile(warm, 0.5) * 1000, 1),
        "warm_p99_ms": round(_percentile(warm, 0.99) * 1000, 1),
    }


def main() -> dict[str, Any]:
    python = bench_python()
    now = datetime.now(UTC).replace(microsecond=0)
    chosen = memory_size_mb()
    with dynamodb(TABLES) as client:
        ids = _seed(Store(TABLES["IntegrationsTable"], client=client), now)
        environment = {
            "PATH": "/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "PYTHONPATH": f"{ROOT}:{LAYER_SOURCE}",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_ENDPOINT_URL_DYNAMODB": client.meta.endpoint_url,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(chosen),
            "TABLE_NAME": TABLES["IntegrationsTable"],
            # A page with more to come carries a signed cursor (lifecycle/http/cursors.py).
            "CURSOR_SECRETS": "bench-memory-cursor-secret-0123456789abcdef",
            "IDEMPOTENCY_TABLE_NAME": TABLES["IdempotencyTable"],
            "POWERTOOLS_SERVICE_NAME": "integrations",
            "POWERTOOLS_METRICS_NAMESPACE": "Integrations",
            "LOG_LEVEL": "INFO",
            "ENVIRONMENT": "dev",
        }
        measured = _run_child(python, environment, ids, REQUESTS)
        sizes: dict[str, Any] = {}
        limited = _cgroup_root() is not None
        for size in SIZES_MB:
            share = min(1.0, size / FULL_CPU_MB)
            entry: dict[str, Any] = {"cpu_share": round(share, 3)}
            entry["estimated"] = _estimate(measured, share)
            if limited:
                runs = []
                for _ in range(SIZING_RUNS):
                    with cpu_share(share) as join:
                        runs.append(
                            _times(_run_child(python, environment, ids, SIZING_REQUESTS, join))
                        )
                entry["measured"] = min(runs, key=lambda run: run["cold_start_ms"])
                entry["measured_cold_starts_ms"] = [run["cold_start_ms"] for run in runs]
            sizes[str(size)] = entry
    # ru_maxrss is the kernel's high-water mark, updated lazily: never below the last reading.
    peak_mb = max(measured["peak_kb"], measured["final_kb"]) / 1024
    cpus = measured["request_cpu_s"]
    figures = {
        "requests": REQUESTS,
        "functions_loaded": ["integrations", "freeze", "reactivate"],
        "interpreter": str(python.relative_to(ROOT)),
        "rss_at_start_mb": round(measured["started_kb"] / 1024, 1),
        "rss_after_import_mb": round(measured["imported_kb"] / 1024, 1),
        "rss_after_first_request_mb": round(measured["after_first_kb"] / 1024, 1),
        "rss_after_all_requests_mb": round(measured["final_kb"] / 1024, 1),
        "peak_rss_mb": round(peak_mb, 1),
        "limit_mb": chosen,
        "peak_share_of_limit": round(peak_mb / chosen, 3),
        "requests_by_route": measured["statuses"],
        "cpu_seconds": {
            "interpreter": round(measured["interpreter_cpu_s"], 3),
            "imports": round(measured["import_cpu_s"], 3),
            "first_request": round(cpus[0], 3),
            "warm_request_median": round(_percentile(cpus[1:], 0.5), 4),
        },
        "full_speed": _times(measured),
        "sizing_measured_under_cpu_quota": limited,
        "sizing_requests": SIZING_REQUESTS,
        "sizing_runs_per_size": SIZING_RUNS,
        "sizes_mb": sizes,
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
                f"{figures['peak_rss_mb']} of {chosen} ({peak_mb / chosen:.0%})",
            ],
        ],
    )
    how = "measured under a CPU quota" if limited else "estimated from CPU seconds"
    table(
        f"Times by memory size (Lambda's CPU share; {how}; estimate beside it), ms",
        ["MB", "CPU share", "cold start (imports + 1st request)", "warm p50", "warm p99"],
        [
            [
                size + (" (template)" if int(size) == chosen else ""),
                entry["cpu_share"],
                _both(entry, "cold_start_ms"),
                _both(entry, "warm_p50_ms"),
                _both(entry, "warm_p99_ms"),
            ]
            for size, entry in sizes.items()
        ],
    )
    record("memory", figures)
    return figures


def _both(entry: dict[str, Any], key: str) -> str:
    estimated = entry["estimated"][key]
    if "measured" not in entry:
        return f"~{estimated}"
    return f"{entry['measured'][key]} (~{estimated})"


if __name__ == "__main__":
    main()

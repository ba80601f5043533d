"""Cold import of every function of template.yaml, in fresh processes, against a boto3 baseline.

Goal (issue #7): importing a function and creating its DynamoDB client costs at most 1.5x a
process that only imports boto3 and creates a DynamoDB client; the Stripe SDK, X-Ray and what
only one route needs are not imported by functions that do not use them.

Measured the way Lambda loads a function: the function folder first on `sys.path` (it is
`/var/task`), the layer's source importable (`/opt/python`), and only the layer's runtime
requirements plus boto3 installed: a throwaway virtual environment under `.tools/bench-venv`,
built on first run and kept while `layers/lifecycle/requirements.txt` and the boto3 pin stay
the same. The project's `.venv` is not used: it also holds dev tools (aiohttp for localstripe)
that `stripe` imports when they are present, and Lambda has none of them.

Timing is inside the child (interpreter start-up is the same for every process and is left
out); each round runs the baseline before and after the functions, in a shuffled order, and
each function's ratio is taken to its own round's baseline: these machines are shared and
noisy, so the figures are medians of per-round ratios.

Each round also measures the API framework floor: a process that loads only what every API
function must (Powertools' resolver with request validation, which brings pydantic, Logger and
Metrics) and the DynamoDB client, no project code. An API function's ratio cannot go below it.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench.harness import median, record, table
from local.template import ROOT, resources, template

RUNS = int(os.environ.get("BENCH_IMPORT_RUNS", "5"))
GOAL = 1.5
VENV = ROOT / ".tools" / "bench-venv"
REQUIREMENTS = ROOT / "layers" / "lifecycle" / "requirements.txt"
LAYER_SOURCE = ROOT / "layers" / "lifecycle"
BUILT_LAYER = ROOT / ".aws-sam" / "build" / "LifecycleLayer" / "python"
SHIPPED = ROOT / ".tools" / "bench-layer-shipped"
SHIPPED_RUNS = int(os.environ.get("BENCH_IMPORT_SHIPPED_RUNS", "3"))
PROFILE_RUNS = int(os.environ.get("BENCH_IMPORT_PROFILE_RUNS", "1"))

# Modules whose presence after `import app` is worth a column: heavy, or needed by few routes.
WATCHED = (
    "stripe",
    "aws_xray_sdk",
    "jmespath",
    "pydantic",
    "boto3",
    "aws_lambda_powertools.event_handler",
    "aws_lambda_powertools.utilities.idempotency",
    "aws_lambda_powertools.utilities.parser",
    "aws_lambda_powertools.utilities.batch",
    "aws_lambda_powertools.utilities.parameters",
    "lifecycle.payments.stripe_adapter",
    "aiohttp",
    "requests",
)
# Who may import what at import time: stripe only where a webhook is verified on every request.
EXPECTED = {"stripe": {"StripeWebhookFunction"}, "aws_xray_sdk": set(), "aiohttp": set()}

_CHILD = """
import json, sys, time
began = time.perf_counter()
watched = []
if {kind!r} == "baseline":
    import boto3
    boto3.client("dynamodb", region_name="us-east-1")
    imported = time.perf_counter()
    ready = imported
elif {kind!r} == "floor":
    from aws_lambda_powertools import Logger, Metrics
    from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
    Logger(), Metrics(), APIGatewayHttpResolver(enable_validation=True)
    imported = time.perf_counter()
    import boto3
    boto3.client("dynamodb", region_name="us-east-1")
    ready = time.perf_counter()
else:
    import app
    imported = time.perf_counter()
    watched = [m for m in {watched!r} if m in sys.modules]
    from lifecycle.store.repository import default_client
    default_client()
    ready = time.perf_counter()
json.dump({{
    "import_ms": (imported - began) * 1000,
    "ready_ms": (ready - began) * 1000,
    "modules": len(sys.modules),
    "watched": watched,
}}, sys.stdout)
"""
# What every API function loads whatever its own code: the Powertools resolver with request
# validation (pydantic with it), Logger and Metrics, and the DynamoDB client. Measured like a
# function, it is the lowest ratio an API function can reach while it keeps them.
FLOOR = "API framework floor"


def boto3_pin() -> str:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return str(next(d for d in project["dependencies"] if d.replace(" ", "").startswith("boto3==")))


def bench_python() -> Path:
    """The clean interpreter: built once, rebuilt when the layer's requirements change."""
    pin = boto3_pin()
    wanted = hashlib.sha256(REQUIREMENTS.read_bytes() + pin.encode()).hexdigest()
    stamp = VENV / ".installed"
    python = VENV / "bin" / "python"
    if stamp.exists() and stamp.read_text().strip() == wanted and python.exists():
        return python
    print(f"building {VENV.relative_to(ROOT)} (layer requirements + {pin}) ...", flush=True)
    # The venv's interpreter resolves to the base Python 3.13 that made the project's venv.
    base = str(Path(sys.executable).resolve())
    subprocess.run([base, "-m", "venv", "--clear", str(VENV)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "-r", str(REQUIREMENTS), pin], check=True)
    stamp.write_text(wanted + "\n")
    return python


def functions() -> dict[str, dict[str, Any]]:
    """Logical id -> {folder, environment, snapstart} for every function of the template
    (`snapstart`: the function has a SnapStart setting, behind `ApiSnapStart`)."""
    document = template()
    common = document.get("Globals", {}).get("Function", {}).get("Environment", {})
    found = {}
    for logical_id, resource in sorted(resources("AWS::Serverless::Function").items()):
        properties = resource["Properties"]
        folder = ROOT / str(properties["CodeUri"]).rstrip("/")
        handler = properties.get("Handler", "app.lambda_handler")
        assert handler == "app.lambda_handler", (logical_id, handler)
        variables = {
            **common.get("Variables", {}),
            **properties.get("Environment", {}).get("Variables", {}),
        }
        # Values of !Ref and !GetAtt do not matter at import; their names do.
        environment = {
            k: v if isinstance(v, str) else f"bench-{k.lower()}" for k, v in variables.items()
        }
        found[logical_id] = {
            "folder": folder,
            "environment": environment,
            "snapstart": "SnapStart" in properties,
        }
    return found


def _environment(
    logical_id: str | None, variables: dict[str, str], layer: Path = LAYER_SOURCE
) -> dict[str, str]:
    """What the Lambda runtime sets, plus the function's variables; nothing of this shell."""
    return {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(layer),
        **({} if layer == LAYER_SOURCE else {"PYTHONDONTWRITEBYTECODE": "1"}),
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        # Lambda hands credentials in the environment; without them botocore would probe IMDS.
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_SESSION_TOKEN": "bench",
        "AWS_LAMBDA_FUNCTION_NAME": logical_id or "baseline",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        **variables,
    }


def _perf() -> list[str]:
    """`perf stat` counting the child's user-space instructions, when this machine has a
    working perf (none: the instruction figures are left out). Instructions do not depend on
    what else runs on the machine, as time does: a steadier view of the same work."""
    perf = shutil.which("perf")
    if perf is None:
        return []
    command = [perf, "stat", "-x,", "-e", "instructions:u"]
    probe = subprocess.run([*command, "true"], capture_output=True, text=True, check=False)
    return command if probe.returncode == 0 and probe.stderr.split(",")[0].isdigit() else []


PERF = _perf()


def _run(
    python: Path, folder: Path | None, environment: dict[str, str], kind: str = ""
) -> dict[str, Any]:
    kind = kind or ("baseline" if folder is None else "function")
    code = _CHILD.format(kind=kind, watched=WATCHED)
    with tempfile.NamedTemporaryFile("r", suffix=".perf") as counted:
        counter = [*PERF, "-o", counted.name] if PERF else []
        # `python -c` puts the working directory first on sys.path, as /var/task is in Lambda.
        done = subprocess.run(
            [*counter, str(python), "-c", code],
            cwd=folder or ROOT,
            env=environment,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode:
            raise RuntimeError(f"import failed in {folder}:\n{done.stderr}")
        result: dict[str, Any] = json.loads(done.stdout)
        lines = [line for line in counted.read().splitlines() if "instructions" in line]
        if lines and lines[-1].split(",")[0].isdigit():
            result["instructions"] = int(lines[-1].split(",")[0])
    return result


def _interpreter_instructions(python: Path) -> int:
    """The instructions of an interpreter that imports nothing (start-up and shut-down), taken
    off every count: the time figures leave start-up out too."""
    if not PERF:
        return 0
    counts = []
    for _ in range(3):
        with tempfile.NamedTemporaryFile("r", suffix=".perf") as counted:
            subprocess.run(
                [*PERF, "-o", counted.name, str(python), "-c", "pass"],
                env=_environment(None, {}),
                check=True,
            )
            line = [x for x in counted.read().splitlines() if "instructions" in x][-1]
            counts.append(int(line.split(",")[0]))
    return int(median(counts))


def _import_profile(python: Path, folder: Path, environment: dict[str, str]) -> dict[str, Any]:
    """Where `import app` spends its time, from `python -X importtime` (median of PROFILE_RUNS):
    self time summed per top-level package (the standard library as one), and the largest
    imports our own code makes (`app` or `lifecycle.*` importing something else), cumulative."""
    packages: dict[str, list[float]] = defaultdict(list)
    edges: dict[str, list[float]] = defaultdict(list)
    line = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)")
    for _ in range(PROFILE_RUNS):
        done = subprocess.run(
            [str(python), "-X", "importtime", "-c", "import app"],
            cwd=folder,
            env=environment,
            capture_output=True,
            text=True,
            check=True,
        )
        totals: dict[str, float] = defaultdict(float)
        # Children are listed before their parent, one indentation level deeper.
        pending: dict[int, list[tuple[str, float]]] = defaultdict(list)
        for match in line.finditer(done.stderr):
            self_us, cumulative_us, indent, name = match.groups()
            depth = len(indent) // 2
            root = name.split(".")[0]
            totals["stdlib" if root in sys.stdlib_module_names else root] += int(self_us) / 1000
            ours = name == "app" or root == "lifecycle"
            for child, child_ms in pending.pop(depth + 1, []):
                if ours and child.split(".")[0] not in ("app", "lifecycle"):
                    edges[f"{name} -> {child}"].append(child_ms)
            pending[depth].append((name, int(cumulative_us) / 1000))
        for name, ms in totals.items():
            packages[name].append(ms)
    by_package = sorted(((median(v), k) for k, v in packages.items()), reverse=True)[:5]
    by_edge = sorted(((median(v), k) for k, v in edges.items()), reverse=True)[:6]
    return {
        "self_ms_by_package": {k: round(ms, 1) for ms, k in by_package},
        "largest_imports_by_our_code_ms": {k: round(ms, 1) for ms, k in by_edge},
    }


def shipped_layer() -> tuple[Path | None, bool]:
    """The layer as `sam build` ships it, and whether the build holds byte-code.

    Lambda's /opt is read-only: Python compiles every layer module it imports, at each cold
    start, unless the build shipped its .pyc (layers/lifecycle/Makefile compiles them). Emulated
    here: the built layer copied as it is, except the packages with native code (the build holds
    arm64 binaries), taken from this machine's wheels in the bench venv; no byte-code at all when
    the build has none; imported with PYTHONDONTWRITEBYTECODE. None when `sam build` has not run.
    """
    if not BUILT_LAYER.is_dir():
        return None, False
    has_bytecode = any(BUILT_LAYER.rglob("*.pyc"))
    site = next((VENV / "lib").glob("python3.*/site-packages"))
    shutil.rmtree(SHIPPED, ignore_errors=True)
    SHIPPED.mkdir(parents=True)
    skip = shutil.ignore_patterns("__pycache__") if not has_bytecode else None
    for entry in sorted(BUILT_LAYER.iterdir()):
        if entry.name.endswith((".dist-info", ".data")) or entry.suffix == ".txt":
            continue
        native = entry.is_dir() and any(entry.rglob("*.so"))
        source = site / entry.name if native else entry
        if source.is_dir():
            shutil.copytree(source, SHIPPED / entry.name, ignore=skip)
        else:
            shutil.copy2(source, SHIPPED / entry.name)
    return SHIPPED, has_bytecode


def main() -> dict[str, Any]:
    python = bench_python()
    shipped, built_with_bytecode = shipped_layer()
    targets = functions()
    baseline_env = _environment(None, {})

    def env(name: str, layer: Path = LAYER_SOURCE) -> dict[str, str]:
        return _environment(name, targets[name]["environment"], layer)

    samples: dict[str, list[dict[str, Any]]] = defaultdict(list)
    ratios: dict[str, list[float]] = defaultdict(list)
    import_ratios: dict[str, list[float]] = defaultdict(list)
    shipped_ms: dict[str, list[float]] = defaultdict(list)
    shipped_ratios: dict[str, list[float]] = defaultdict(list)
    # Byte-code caches written first, as a compiled install would have them (fresh clone).
    subprocess.run(
        [str(python), "-m", "compileall", "-q", str(LAYER_SOURCE / "lifecycle"), "functions"],
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    _run(python, None, baseline_env)  # and the page cache warmed
    startup = _interpreter_instructions(python)
    instruction_ratios: dict[str, list[float]] = defaultdict(list)
    shipped_instruction_ratios: dict[str, list[float]] = defaultdict(list)
    order = [*targets, FLOOR]
    for round_ in range(RUNS):
        random.shuffle(order)
        before = _run(python, None, baseline_env)
        results = {
            name: _run(python, None, baseline_env, "floor")
            if name == FLOOR
            else _run(python, targets[name]["folder"], env(name))
            for name in order
        }
        as_shipped = {
            name: _run(python, targets[name]["folder"], env(name, shipped))
            for name in order
            if shipped is not None and round_ < SHIPPED_RUNS and name != FLOOR
        }
        after = _run(python, None, baseline_env)
        base = (before["ready_ms"] + after["ready_ms"]) / 2
        samples["baseline"] += [before, after]
        for name, result in results.items():
            samples[name].append(result)
            ratios[name].append(result["ready_ms"] / base)
            import_ratios[name].append(result["import_ms"] / base)
            if "instructions" in result and "instructions" in before and "instructions" in after:
                base_instructions = (before["instructions"] + after["instructions"]) / 2 - startup
                instruction_ratios[name].append(
                    (result["instructions"] - startup) / base_instructions
                )
        for name, result in as_shipped.items():
            shipped_ms[name].append(result["ready_ms"])
            shipped_ratios[name].append(result["ready_ms"] / base)
            if "instructions" in result and "instructions" in before and "instructions" in after:
                base_instructions = (before["instructions"] + after["instructions"]) / 2 - startup
                shipped_instruction_ratios[name].append(
                    (result["instructions"] - startup) / base_instructions
                )

    baseline_ms = median([s["ready_ms"] for s in samples["baseline"]])
    figures: dict[str, Any] = {
        "interpreter": f"{python.relative_to(ROOT)} (Python {sys.version.split()[0]}; "
        f"{REQUIREMENTS.relative_to(ROOT)} + {boto3_pin()}; layer source on PYTHONPATH)",
        "measure": "in the child: import app, then the function's own DynamoDB client "
        "(lifecycle.store.repository.default_client); baseline: import boto3 and "
        'boto3.client("dynamodb"); ratio = median over rounds of function / round baseline',
        "runs": RUNS,
        "goal_ratio": GOAL,
        "baseline_ms": round(baseline_ms, 1),
        "baseline_modules": samples["baseline"][0]["modules"],
        "built_layer_has_bytecode": built_with_bytecode,
        "as_shipped_runs": SHIPPED_RUNS if shipped is not None else 0,
        "functions": {},
    }
    floor_ratio = median(ratios[FLOOR])
    figures["api_framework_floor"] = {
        "measure": "Powertools Logger, Metrics and APIGatewayHttpResolver(enable_validation=True) "
        "(which loads pydantic), then the DynamoDB client; no project code",
        "ready_ms": round(median([s["ready_ms"] for s in samples[FLOOR]]), 1),
        "ratio": round(floor_ratio, 2),
        "modules": samples[FLOOR][-1]["modules"],
    }
    if instruction_ratios[FLOOR]:
        figures["api_framework_floor"]["instructions_ratio"] = round(
            median(instruction_ratios[FLOOR]), 2
        )
    figures["instructions"] = (
        "user-space instructions (perf stat), interpreter start-up taken off; ratio = median "
        "over rounds of function / round baseline: the same work, counted rather than timed"
        if PERF
        else "perf not available: no instruction counts"
    )
    rows = [
        ["baseline: boto3 + DynamoDB client", f"{baseline_ms:.0f}", "", "1.00", "1.00", *[""] * 4],
        [
            f"{FLOOR}: Powertools resolver (validation), Logger, Metrics + client",
            f"{figures['api_framework_floor']['ready_ms']:.0f}",
            "",
            f"{floor_ratio:.2f}",
            figures["api_framework_floor"].get("instructions_ratio", ""),
            "",
            "",
            figures["api_framework_floor"]["modules"],
            "no project code: the least an API function can load",
        ],
    ]
    for name in sorted(targets):
        import_ms = median([s["import_ms"] for s in samples[name]])
        ready_ms = median([s["ready_ms"] for s in samples[name]])
        ratio = median(ratios[name])
        watched = samples[name][-1]["watched"]
        unexpected = [m for m, allowed in EXPECTED.items() if m in watched and name not in allowed]
        entry: dict[str, Any] = {
            "folder": str(targets[name]["folder"].relative_to(ROOT)),
            "import_ms": round(import_ms, 1),
            "import_and_client_ms": round(ready_ms, 1),
            "ratio": round(ratio, 2),
            "import_only_ratio": round(median(import_ratios[name]), 2),
            "modules": samples[name][-1]["modules"],
            "imported": watched,
            "unexpected": unexpected,
            "meets_goal": ratio <= GOAL and not unexpected,
        }
        if instruction_ratios[name]:
            entry["instructions_ratio"] = round(median(instruction_ratios[name]), 2)
        if shipped_ms[name]:
            entry["as_shipped_ms"] = round(median(shipped_ms[name]), 1)
            entry["as_shipped_ratio"] = round(median(shipped_ratios[name]), 2)
        if shipped_instruction_ratios[name]:
            entry["as_shipped_instructions_ratio"] = round(
                median(shipped_instruction_ratios[name]), 2
            )
        if ratio > GOAL:
            entry["import_profile_ms"] = _import_profile(python, targets[name]["folder"], env(name))
        figures["functions"][name] = entry
        short = [
            m.replace("aws_lambda_powertools.", "pt.").replace("utilities.", "") for m in watched
        ]
        rows.append(
            [
                name,
                f"{ready_ms:.0f}",
                f"{import_ms:.0f}",
                f"{ratio:.2f}",
                entry.get("instructions_ratio", ""),
                "ok" if entry["meets_goal"] else "OVER",
                f"{entry.get('as_shipped_ms', 0):.0f} ({entry.get('as_shipped_ratio', 0):.2f})",
                entry["modules"],
                ", ".join(short),
            ]
        )
    table(
        f"Cold import, median of {RUNS} fresh processes per function ({figures['interpreter']})",
        [
            "function",
            "import+client ms",
            "import ms",
            "ratio",
            "instr. ratio",
            f"<= {GOAL}",
            f"as shipped ms (ratio, {SHIPPED_RUNS} runs)",
            "modules",
            "imported at import time (pt. = Powertools)",
        ],
        rows,
    )
    if shipped is not None:
        print(
            "  as shipped: the layer as `sam build` ships it, "
            + (
                "with its byte-code (compiled at build time, unchecked-hash)"
                if built_with_bytecode
                else "without byte-code (Lambda's /opt is read-only, so every cold start "
                "compiles the layer modules it imports)"
            )
        )
    for name, entry in figures["functions"].items():
        if "import_profile_ms" in entry:
            profile = entry["import_profile_ms"]
            where = ", ".join(f"{k} {ms}" for k, ms in profile["self_ms_by_package"].items())
            print(f"  {name} (-X importtime, ms): self time by package: {where}")
            largest = ", ".join(
                f"{k} {ms}" for k, ms in profile["largest_imports_by_our_code_ms"].items()
            )
            print(f"    largest imports made by our code (cumulative): {largest}")
        if entry["unexpected"]:
            print(f"  {name}: imports {', '.join(entry['unexpected'])} at import time")
    record("imports", figures)
    return figures


if __name__ == "__main__":
    main()

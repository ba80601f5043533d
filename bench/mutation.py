"""`make mutation`: mutmut over the lifecycle rules and the charging use case; prints the score
and writes bench/mutation.json (counts per module and every surviving mutant, by kind).

mutmut imports the code it mutates by the module path of its files, so it runs in a workspace
(`.mutation/`, ignored by git) where the layer's package is at the top level, beside copies of
the tests and what they read. The charging use case is tested against DynamoDB Local and
localstripe: both are started once here and handed to every test run through the standard
variables (`AWS_ENDPOINT_URL_DYNAMODB`, `STRIPE_API_BASE`), so no mutant pays their start-up.

Not part of `make test` or CI: a full run takes tens of minutes on two cores.

    python -m bench.mutation [--only rules|charging] [--children N]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WORKSPACE = ROOT / ".mutation"
RESULTS = ROOT / "bench" / "mutation.json"
COPIED = ("tests", "local", "events", "functions", "docs", "template.yaml", "dashboard")
TARGETS = {
    "rules": {
        "mutate": ["lifecycle/rules/*"],
        "tests": ["tests/unit/rules"],
    },
    "charging": {
        "mutate": [
            "lifecycle/usecases/charging.py",
            "lifecycle/usecases/settling.py",
            "lifecycle/usecases/refunds.py",
            "lifecycle/usecases/reconciler.py",
            "lifecycle/usecases/purchase.py",
            "lifecycle/usecases/leases.py",
        ],
        "tests": [
            "tests/integration/money",
            "tests/integration/payments",
            "tests/integration/api/test_stripe_webhook.py",
        ],
    },
}
# A mutant of a literal inside a message (an error's detail, a description, a log line) changes
# what a person reads, not what the system does: reported apart from the others. It is one whose
# lines differ only in their string literals (or a string literal replaced by None).
_STRING = re.compile(r"""f?"(?:[^"\\]|\\.)*"|f?'(?:[^'\\]|\\.)*'|\bNone\b""")


def _is_message_mutant(changed: list[str]) -> bool:
    def shape(lines: list[str]) -> list[str]:
        return sorted(_STRING.sub("S", line[1:]).strip() for line in lines)

    removed = [line for line in changed if line.startswith("-")]
    added = [line for line in changed if line.startswith("+")]
    return (
        bool(changed)
        and _STRING.search(" ".join(changed)) is not None
        and (shape(removed) == shape(added))
    )


def _workspace(mutate: list[str], tests: list[str], children: int) -> None:
    shutil.rmtree(WORKSPACE, ignore_errors=True)
    WORKSPACE.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", "node_modules")
    shutil.copytree(
        ROOT / "layers" / "lifecycle" / "lifecycle", WORKSPACE / "lifecycle", ignore=ignore
    )
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, WORKSPACE / name, ignore=ignore)
        elif source.exists():
            shutil.copy2(source, WORKSPACE / name)
    lines = [
        "[tool.mutmut]",
        'source_paths = ["lifecycle"]',
        f"only_mutate = {json.dumps(mutate)}",
        f"pytest_add_cli_args_test_selection = {json.dumps(tests)}",
        f"also_copy = {json.dumps(list(COPIED))}",
        'pytest_add_cli_args = ["-p", "no:randomly", "-p", "no:cacheprovider", "-x", "-q"]',
        "",
        "[tool.pytest.ini_options]",
        'markers = ["integration", "e2e"]',
        'filterwarnings = ["ignore"]',
    ]
    (WORKSPACE / "pyproject.toml").write_text("\n".join(lines) + "\n")
    _ = children


def _servers() -> tuple[Any, Any]:
    from local.dynamodb_local import DynamoDBLocal  # noqa: PLC0415
    from local.localstripe_server import LocalStripe  # noqa: PLC0415

    return DynamoDBLocal().start(), LocalStripe().start()


def _mutmut(children: int, env: dict[str, str]) -> float:
    began = time.monotonic()
    mutmut = Path(sys.executable).with_name("mutmut")
    subprocess.run(
        [str(mutmut), "run", "--max-children", str(children)],
        cwd=WORKSPACE,
        env=env,
        check=False,
        stdout=subprocess.DEVNULL,
    )
    return time.monotonic() - began


def _results(env: dict[str, str]) -> dict[str, Any]:
    mutmut = str(Path(sys.executable).with_name("mutmut"))

    def run(*arguments: str) -> str:
        return subprocess.run(
            [mutmut, *arguments],
            cwd=WORKSPACE,
            env=env,
            check=False,
            capture_output=True,
            text=True,
        ).stdout

    listing = run("results", "--all", "true")
    by_module: dict[str, Counter[str]] = {}
    survived: list[str] = []
    for line in listing.splitlines():
        name, _, status = line.strip().partition(": ")
        if not name or not status:
            continue
        module = name.split(".x")[0].split(".xǁ")[0]
        by_module.setdefault(module, Counter())[status] += 1
        if status == "survived":
            survived.append(name)

    def show(name: str) -> dict[str, str]:
        diff = run("show", name)
        changed = [
            line
            for line in diff.splitlines()
            if line.startswith(("-", "+")) and not line.startswith(("---", "+++"))
        ]
        kind = "message" if _is_message_mutant(changed) else "other"
        return {"mutant": name, "kind": kind, "change": " | ".join(changed)[:300]}

    with ThreadPoolExecutor(max_workers=4) as pool:
        survivors = list(pool.map(show, survived))
    return {"by_module": {m: dict(c) for m, c in sorted(by_module.items())}, "survivors": survivors}


def _score(counts: Counter[str]) -> float:
    tested = sum(counts.values()) - counts.get("no tests", 0) - counts.get("skipped", 0)
    caught = counts.get("killed", 0) + counts.get("timeout", 0)
    return 100.0 * caught / tested if tested else 0.0


def run(only: str | None, children: int) -> dict[str, Any]:
    report: dict[str, Any] = {}
    servers = _servers()
    try:
        for name, target in TARGETS.items():
            if only and name != only:
                continue
            _workspace(target["mutate"], target["tests"], children)
            env = {
                **os.environ,
                "AWS_ENDPOINT_URL_DYNAMODB": servers[0].endpoint,
                "STRIPE_API_BASE": servers[1].api_base,
                "MONEY_TRIALS": "3",
                "PYTHONDONTWRITEBYTECODE": "1",
            }
            seconds = _mutmut(children, env)
            found = _results(env)
            total: Counter[str] = Counter()
            for counts in found["by_module"].values():
                total.update(counts)
            survivors = found["survivors"]
            report[name] = {
                "seconds": round(seconds),
                "counts": dict(total),
                "score_percent": round(_score(total), 1),
                "score_without_message_mutants_percent": round(
                    _score(
                        total
                        - Counter({"survived": sum(1 for s in survivors if s["kind"] == "message")})
                    ),
                    1,
                ),
                "by_module": found["by_module"],
                "survivors": survivors,
            }
    finally:
        for server in servers:
            server.stop()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--only", choices=sorted(TARGETS), default=None)
    parser.add_argument("--children", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args(argv)
    report = run(args.only, args.children)
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    previous.update(report)
    RESULTS.write_text(json.dumps(previous, indent=2, ensure_ascii=False) + "\n")
    print(
        f"{'target':10} {'mutants':>8} {'killed':>7} {'survived':>9} {'no tests':>9} {'score':>7}"
    )
    for name, figures in report.items():
        counts = figures["counts"]
        print(
            f"{name:10} {sum(counts.values()):>8} {counts.get('killed', 0):>7}"
            f" {counts.get('survived', 0):>9} {counts.get('no tests', 0):>9}"
            f" {figures['score_percent']:>6}%  ({figures['score_without_message_mutants_percent']}%"
            f" without message mutants; {figures['seconds']} s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The bad inputs the suite sends and what they got back (issue 12: how many distinct bad inputs,
how many 5xx answers; the second must be 0).

Every test that sends a bad input on purpose records it with `record(key, status)`; `key` names
the input (route, what is wrong with it), so the same input sent twice counts once. Each test
process writes what it saw to `test-results/bad-inputs-<worker>.jsonl`; the session's end sums
them up (tests/conftest.py), prints the figures and fails the run on any 5xx.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

_seen: Counter[tuple[str, int]] = Counter()


def record(key: str, status: int) -> None:
    """One bad input (named by `key`) was sent and answered `status`."""
    _seen[(key, status)] += 1


def digest(value: Any) -> str:
    """A short stable name for a generated input (a fuzzed body, a schemathesis case)."""
    text = value if isinstance(value, str) else repr(value)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def write(path: Path) -> None:
    path.write_text(
        "".join(
            json.dumps({"key": key, "status": status, "count": count}) + "\n"
            for (key, status), count in sorted(_seen.items())
        ),
        encoding="utf-8",
    )


def summary(paths: list[Path]) -> dict[str, Any]:
    """Distinct inputs, requests and the 5xx among them, over every process's file."""
    keys: set[str] = set()
    requests = 0
    server_errors: Counter[str] = Counter()
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line:
                continue
            entry = json.loads(line)
            keys.add(entry["key"])
            requests += entry["count"]
            if entry["status"] >= 500:
                server_errors[entry["key"]] += entry["count"]
    return {
        "distinct_bad_inputs": len(keys),
        "requests": requests,
        "server_errors": sum(server_errors.values()),
        "server_error_inputs": sorted(server_errors)[:50],
    }

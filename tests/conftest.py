"""Shared test set-up: fake AWS credentials and region, so nothing can reach a real account."""

import os
import secrets

for name, value in {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    # What template.yaml sets for every function; Powertools reads them at import.
    "POWERTOOLS_METRICS_NAMESPACE": "Integrations",
    "POWERTOOLS_SERVICE_NAME": "integrations",
    # The list cursors' key (lifecycle.usecases.cursors): generated per run, never a constant. The
    # end-to-end stack uses the one it keeps in its own data folder.
    "CURSOR_SECRETS": secrets.token_urlsafe(32),
}.items():
    os.environ.setdefault(name, value)
os.environ.pop("AWS_PROFILE", None)

from hypothesis import settings  # noqa: E402

# The shared fixtures: DynamoDB Local, localstripe and fresh tables; the use cases' services.
pytest_plugins = ["tests.fixtures.backends", "tests.fixtures.services"]

# Two shared cores running DynamoDB Local, localstripe and the tests: no per-example deadline
# (a slow example is not a wrong one); examples stay bounded by max_examples.
settings.register_profile("project", deadline=None)
settings.load_profile("project")


# ---- the log scan: nothing logged during the whole run may hold a secret or personal data ----

import json  # noqa: E402
import logging  # noqa: E402
from pathlib import Path  # noqa: E402

from tests import bad_inputs  # noqa: E402
from tests.log_scan import Collector, findings  # noqa: E402

_LOG_LINES: list[str] = []


def pytest_configure(config):
    from lifecycle.observability import logger  # noqa: PLC0415 - after the environment is set

    # Two collectors: Powertools filters its service's records out of the root's handlers,
    # and its own logger does not propagate. The service's lines are formatted as printed.
    logging.getLogger().addHandler(Collector(_LOG_LINES))
    service = Collector(_LOG_LINES)
    service.setFormatter(logger.registered_formatter)
    logging.getLogger(logger.name).addHandler(service)


RESULTS = Path(__file__).resolve().parent.parent / "test-results"


def pytest_sessionstart(session):
    if "PYTEST_XDIST_WORKER" not in os.environ:  # the controller clears the last run's logs
        RESULTS.mkdir(exist_ok=True)
        for old in [*RESULTS.glob("logs-*.jsonl"), *RESULTS.glob("bad-inputs-*.jsonl")]:
            old.unlink()


def pytest_sessionfinish(session, exitstatus):
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"logs-{worker or 'main'}.jsonl").write_text(
        "\n".join(_LOG_LINES) + "\n", encoding="utf-8"
    )
    bad_inputs.write(RESULTS / f"bad-inputs-{worker or 'main'}.jsonl")
    if worker:
        return  # the controller scans every worker's file once they are all done
    _report_bad_inputs(session)
    lines = [
        line
        for path in sorted(RESULTS.glob("logs-*.jsonl"))
        for line in path.read_text().splitlines()
        if line
    ]
    found = findings(lines)
    if found:
        (RESULTS / "log-scan.json").write_text(json.dumps(found, indent=2), encoding="utf-8")
        print(f"\nLOG SCAN FAILED: {len(found)} secret(s) or personal data in logs: test-results/")
        session.exitstatus = 1
    else:
        print(f"\nlog scan: {len(lines)} log lines, no secret or personal data")


def _report_bad_inputs(session):
    """Issue 12's figures: the distinct bad inputs the suite sent, and the 5xx they got (0)."""
    figures = bad_inputs.summary(sorted(RESULTS.glob("bad-inputs-*.jsonl")))
    (RESULTS / "bad-inputs.json").write_text(json.dumps(figures, indent=2), encoding="utf-8")
    print(
        f"\nbad inputs: {figures['distinct_bad_inputs']} distinct, sent in"
        f" {figures['requests']} requests; 5xx answers: {figures['server_errors']}"
    )
    if figures["server_errors"]:
        print(f"BAD INPUTS GOT 5xx: {figures['server_error_inputs']}")
        session.exitstatus = 1

"""Structured logs and one metric per lifecycle action (Powertools), shared by every function."""

from __future__ import annotations

import os
from collections.abc import Iterable

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from lifecycle.rules.model import DomainEvent

logger = Logger()
metrics = Metrics()
# Every metric carries `environment` beside Powertools' `service`, so dev and prod never add up
# in one series; the alarms on custom metrics (template.yaml) name both. Read at import, as
# Powertools reads its own POWERTOOLS_* variables; the template sets ENVIRONMENT.
metrics.set_default_dimensions(environment=os.environ.get("ENVIRONMENT") or "local")


def record_events(events: Iterable[DomainEvent]) -> None:
    """One `Count` metric per domain event committed (IntegrationFrozen, PaymentFailed, ...)."""
    for event in events:
        metrics.add_metric(name=event.detail_type.value, unit=MetricUnit.Count, value=1)

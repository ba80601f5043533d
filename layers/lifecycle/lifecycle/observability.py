"""Structured logs and one metric per lifecycle action (Powertools), shared by every function."""

from __future__ import annotations

from collections.abc import Iterable

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from lifecycle.rules.model import DomainEvent

logger = Logger()
metrics = Metrics()


def record_events(events: Iterable[DomainEvent]) -> None:
    """One `Count` metric per domain event committed (IntegrationFrozen, PaymentFailed, ...)."""
    for event in events:
        metrics.add_metric(name=event.detail_type.value, unit=MetricUnit.Count, value=1)

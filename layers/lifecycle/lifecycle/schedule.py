"""The EventBridge (Scheduler) scheduled event, parsed with a Powertools parser model."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import Field


class ScheduledEvent(EventBridgeModel):
    """What the schedules' explicit `Input` sends (template.yaml). `sam local generate-event`
    and some tools omit `version`, so it defaults; `detail` carries the attempt number."""

    version: str = "0"
    detail: dict[str, Any] = Field(default_factory=dict)

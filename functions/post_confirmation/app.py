"""Cognito's post-confirmation trigger: a confirmed self sign-up opens its free account and is
its first user, with billing access (api.md, Sign-up). Idempotent: Cognito may call it twice.
The event holds the user's email address: it is never logged."""

from typing import Any

from lifecycle.observability import logger, metrics
from lifecycle.usecases import signup
from lifecycle.usecases.services import services


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    result = signup.on_confirmation(services(), event)
    logger.info("post-confirmation", extra={"trigger": event.get("triggerSource"), "done": result})
    # Cognito expects the event back (its `response` is empty for this trigger).
    return event

"""Notifier tests: DynamoDB Local (the markers), a recording mailer instead of SES."""

from tests.integration.api.conftest import (  # noqa: F401 - fixtures
    clock,
    directory,
    idempotency_table,
    payments,
    services,
)

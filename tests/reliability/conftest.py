"""The reliability suite runs on the integration fixtures: DynamoDB Local, fakes, a clock."""

from tests.integration.api.conftest import (  # noqa: F401 - fixtures
    clock,
    directory,
    idempotency_table,
    payments,
    services,
)
from tests.integration.conftest import (  # noqa: F401 - fixtures
    dynamodb_client,
    dynamodb_endpoint,
    store,
    table_names,
)

"""A secret read from a mocked Parameter Store, as deployed functions read theirs."""

from collections.abc import Iterator
from contextlib import contextmanager

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from moto import mock_aws


@contextmanager
def secret_in_parameter_store(
    monkeypatch: pytest.MonkeyPatch, variable: str, name: str, value: str
) -> Iterator[None]:
    """Within: `variable` unset, `<variable>_PARAM` naming the SecureString `name` that a mocked
    Parameter Store holds as `value`; Powertools' parameter cache empty on the way in and out."""
    monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv(f"{variable}_PARAM", name)
    parameters.clear_caches()
    try:
        with mock_aws():
            boto3.client("ssm").put_parameter(Name=name, Value=value, Type="SecureString")
            yield
    finally:
        parameters.clear_caches()

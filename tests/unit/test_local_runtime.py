"""The local runtime's concurrency, read from template.yaml as Lambda would apply it."""

from __future__ import annotations

from local.runtime import MAX_LOCAL_CONCURRENCY, concurrency_limits
from local.template import functions, template


def test_functions_without_a_reservation_get_the_default_as_the_parameters_default_to_none() -> (
    None
):
    # SweepReservedConcurrency and WebhookReservedConcurrency are 0 by default: no reservation.
    limits = concurrency_limits()
    for unreserved in ("RenewalSweepFunction", "DeletionSweepFunction", "StripeWebhookFunction"):
        assert unreserved not in limits


def test_the_renewal_worker_gets_its_maximum_concurrency_up_to_the_local_cap() -> None:
    default = int(template()["Parameters"]["RenewalWorkerConcurrency"]["Default"])
    assert concurrency_limits()["RenewalWorkerFunction"] == min(default, MAX_LOCAL_CONCURRENCY)


def test_no_function_gets_more_than_the_local_cap_or_less_than_one() -> None:
    limits = concurrency_limits()
    assert set(limits) <= set(functions())
    assert all(1 <= limit <= MAX_LOCAL_CONCURRENCY for limit in limits.values())

"""The wall-clock leases of ledger lines: the one place the charging, settling, refund and
reconciler use cases read the time a lease is about (the tests move it here)."""

from __future__ import annotations

import time

# How long the worker that wrote a pending line owns the provider call (wall clock): longer
# than the adapter's worst case (three attempts of 10 s) so that two workers never both call.
LEASE_SECONDS = 60


def wall_clock() -> int:
    """Epoch seconds of the wall clock (leases are about real time, not the business clock)."""
    return int(time.time())


def lease_until() -> int:
    """When a lease taken now ends."""
    return wall_clock() + LEASE_SECONDS

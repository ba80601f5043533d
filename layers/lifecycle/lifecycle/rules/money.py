"""Money in integer minor units (cents) and the exact proration formula."""

from __future__ import annotations

from datetime import datetime

from lifecycle.rules.calendar import normalize, whole_seconds


def prorate(amount: int, at: datetime, start: datetime, end: datetime) -> int:
    """The part of `amount` left for `[at, end)` of the period `[start, end)`, rounded half up.

    Integer arithmetic on whole seconds, exactly as the rulebook states:
    `(2 * amount * (end - t) + (end - start)) // (2 * (end - start))`, `t` clamped to the period.
    Never negative.
    """
    if amount <= 0:
        return 0
    start, end, at = normalize(start), normalize(end), normalize(at)
    length = whole_seconds(end - start)
    if length <= 0:
        raise ValueError("a period must end after it starts")
    at = min(max(at, start), end)
    remaining = whole_seconds(end - at)
    return (2 * amount * remaining + length) // (2 * length)


def format_amount(amount: int, currency: str) -> str:
    """A human amount for descriptions: `49.00 USD` (display only; never parsed back)."""
    sign = "-" if amount < 0 else ""
    whole, cents = divmod(abs(amount), 100)
    return f"{sign}{whole}.{cents:02d} {currency.upper()}"

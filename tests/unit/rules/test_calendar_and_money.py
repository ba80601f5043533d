"""The Calendar, Prices and Proration sections of lifecycle.md, row by row."""

from datetime import datetime, timedelta, timezone

import pytest

from lifecycle.rules.calendar import add_month, format_instant, parse_instant, utc
from lifecycle.rules.catalog import DEFAULT_CATALOG, Catalog
from lifecycle.rules.errors import ValidationFailed
from lifecycle.rules.money import format_amount, prorate
from tests.factories import ANCHOR, CATALOG, END, MID


def test_anchor_on_the_31st_clamps_to_february_then_comes_back_to_the_31st():
    anchor = parse_instant("2027-01-31T10:00:00Z")
    assert format_instant(add_month(anchor, 1)) == "2027-02-28T10:00:00Z"
    assert format_instant(add_month(anchor, 2)) == "2027-03-31T10:00:00Z"
    assert format_instant(add_month(anchor, 3)) == "2027-04-30T10:00:00Z"


def test_leap_february_keeps_the_29th():
    assert add_month(utc(2028, 1, 30, 8, 15, 5), 1) == utc(2028, 2, 29, 8, 15, 5)


def test_year_rolls_over():
    assert add_month(utc(2026, 12, 15), 1) == utc(2027, 1, 15)
    assert add_month(utc(2026, 11, 21, 10), 14) == utc(2028, 1, 21, 10)


def test_instants_are_utc_to_the_second_with_z():
    moment = datetime(2026, 11, 21, 12, 0, 0, 999_999, tzinfo=timezone(timedelta(hours=2)))
    assert format_instant(moment) == "2026-11-21T10:00:00Z"
    assert parse_instant("2026-11-21T12:00:00.5+02:00") == utc(2026, 11, 21, 10)


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="naive"):
        format_instant(datetime(2026, 1, 1))


@pytest.mark.parametrize(
    ("plan", "fee"), [("starter", 2900), ("standard", 4900), ("premium", 9900)]
)
def test_catalog_monthly_fees_in_cents(plan, fee):
    assert DEFAULT_CATALOG.monthly_fee(plan) == fee


def test_frozen_fee_is_nine_dollars_and_currency_usd():
    assert DEFAULT_CATALOG.frozen_fee == 900
    assert DEFAULT_CATALOG.currency == "usd"


def test_unknown_plan_is_a_validation_error_naming_the_plans():
    with pytest.raises(ValidationFailed, match="starter, standard, premium"):
        DEFAULT_CATALOG.monthly_fee("enterprise")


def test_catalog_refuses_negative_fees():
    with pytest.raises(ValueError, match="negative"):
        Catalog(frozen_fee=-1)


NOV = utc(2026, 11, 1)
DEC = utc(2026, 12, 1)  # a 30-day period: 2,592,000 s


def test_prorate_half_of_a_thirty_day_period():
    assert prorate(4000, utc(2026, 11, 16), NOV, DEC) == 2000


def test_prorate_uses_the_exact_integer_formula():
    at = utc(2026, 11, 21, 10)
    length = int((DEC - NOV).total_seconds())
    remaining = int((DEC - at).total_seconds())
    assert prorate(4000, at, NOV, DEC) == (2 * 4000 * remaining + length) // (2 * length)
    # 9 days 14 hours of 30 days left: 4000 * 828000 / 2592000 = 1277.78 -> 1278
    assert prorate(4000, at, NOV, DEC) == 1278


def test_prorate_rounds_half_up():
    # 1 cent over [0, 2 s) with 1 s left is exactly half a cent: rounds up to 1.
    start = utc(2026, 1, 1)
    assert prorate(1, start + timedelta(seconds=1), start, start + timedelta(seconds=2)) == 1
    # 1 cent with 1 s of 3 left is a third: rounds down to 0.
    assert prorate(1, start + timedelta(seconds=2), start, start + timedelta(seconds=3)) == 0


def test_prorate_clamps_time_to_the_period():
    assert prorate(4000, utc(2026, 10, 1), NOV, DEC) == 4000
    assert prorate(4000, utc(2027, 1, 1), NOV, DEC) == 0


def test_prorate_is_never_negative():
    assert prorate(-500, utc(2026, 11, 10), NOV, DEC) == 0


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (ANCHOR - timedelta(days=1), 4900),  # before the period: all of it
        (ANCHOR, 4900),
        (MID, 2450),
        (MID + timedelta(seconds=1), 2450),  # rounded half up, not down
        (END - timedelta(seconds=1), 0),
        (END, 0),
        (END + timedelta(days=1), 0),
    ],
)
def test_prorate_at_the_edges_of_the_period(at, expected):
    assert prorate(4900, at, ANCHOR, END) == expected


def test_prorate_rounds_half_up_and_refuses_an_empty_period():
    start = utc(2027, 1, 1)
    assert prorate(1, start + timedelta(seconds=1), start, start + timedelta(seconds=2)) == 1
    assert prorate(3, start + timedelta(seconds=1), start, start + timedelta(seconds=2)) == 2
    assert prorate(0, start, start, start + timedelta(days=1)) == 0
    assert prorate(-5, start, start, start + timedelta(days=1)) == 0
    with pytest.raises(ValueError):
        prorate(100, start, start, start)


def test_amounts_read_as_money():
    assert format_amount(4900, "usd") == "49.00 USD"
    assert format_amount(5, "eur") == "0.05 EUR"
    assert format_amount(-1234, "usd") == "-12.34 USD"


def test_instants_parse_from_any_offset_to_utc_seconds():
    assert parse_instant("2027-01-31T10:00:00Z") == utc(2027, 1, 31, 10)
    assert parse_instant("2027-01-31T11:00:00.999+01:00") == utc(2027, 1, 31, 10)
    assert parse_instant("2027-01-31t10:00:00z") == utc(2027, 1, 31, 10)


def test_a_catalog_refuses_no_plans_and_negative_fees():
    with pytest.raises(ValueError):
        Catalog(monthly_fees={})
    with pytest.raises(ValueError):
        Catalog(monthly_fees={"a": -1})
    with pytest.raises(ValueError):
        Catalog(frozen_fee=-1)
    assert Catalog(monthly_fees={"a": 0}, frozen_fee=0).plans == ("a",)
    with pytest.raises(ValidationFailed) as unknown:
        CATALOG.monthly_fee("gold")
    assert unknown.value.extra == {"field": "plan"}

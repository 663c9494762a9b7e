"""Money is integer micros inside bidloop; every conversion at a platform edge is exact or rounds down."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from bidloop.core.actions import SetBudget
from bidloop.core.entities import EntityKind, EntityRef, Platform
from bidloop.core.errors import MoneyError
from bidloop.core.money import (
    MAX_MICROS,
    currency_minor_digits,
    format_money,
    major_to_micros,
    micros_to_major,
    micros_to_minor,
    minor_to_micros,
    round_down_to_currency_unit,
)

CURRENCIES = ["USD", "EUR", "JPY", "KRW", "KWD", "GBP"]
amounts = st.integers(min_value=0, max_value=MAX_MICROS)


@given(minor=st.integers(min_value=0, max_value=10**9), currency=st.sampled_from(CURRENCIES))
def test_minor_units_round_trip_exactly(minor: int, currency: str) -> None:
    assert micros_to_minor(minor_to_micros(minor, currency), currency) == minor


@given(micros=amounts, currency=st.sampled_from(CURRENCIES))
def test_micros_to_minor_never_exceeds_the_amount_decided(micros: int, currency: str) -> None:
    minor = micros_to_minor(micros, currency)
    back = minor_to_micros(minor, currency)
    assert back <= micros
    assert micros - back < 10 ** (6 - currency_minor_digits(currency))


@given(micros=amounts)
def test_major_units_round_trip_for_amounts_a_float_holds(micros: int) -> None:
    assert major_to_micros(micros_to_major(micros)) == micros


@given(micros=amounts, currency=st.sampled_from(CURRENCIES))
def test_rounding_to_currency_unit_is_down_and_a_multiple(micros: int, currency: str) -> None:
    rounded = round_down_to_currency_unit(micros, currency)
    assert rounded <= micros
    assert rounded % (10 ** (6 - currency_minor_digits(currency))) == 0


def test_yen_has_no_minor_unit() -> None:
    assert micros_to_minor(1_500_000_000, "JPY") == 1500
    assert micros_to_minor(12_345_678, "USD") == 1234


def test_major_to_micros_is_exact_for_decimal_text() -> None:
    assert major_to_micros("0.1") == 100_000
    assert major_to_micros(0.1) == 100_000
    assert major_to_micros(Decimal("12.345678")) == 12_345_678


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "abc", True])
def test_non_numbers_are_refused(bad: object) -> None:
    with pytest.raises(MoneyError):
        major_to_micros(bad)  # type: ignore[arg-type]


def test_amounts_beyond_a_billion_units_are_a_unit_mistake() -> None:
    with pytest.raises(MoneyError):
        micros_to_major(MAX_MICROS + 1)


def test_float_micros_are_refused_by_the_action_model() -> None:
    ref = EntityRef(platform=Platform.META, account_id="a", kind=EntityKind.AD_GROUP, entity_id="1")
    with pytest.raises(ValidationError):
        SetBudget(
            action_id="x",
            entity=ref,
            agent="bid_shifter",
            reason="r",
            old_daily_budget_micros=1_000_000,
            new_daily_budget_micros=1.5e6,  # type: ignore[arg-type]
        )


def test_format_money_shows_currency_digits() -> None:
    assert format_money(12_345_678, "USD") == "12.35 USD"
    assert format_money(1_500_000_000, "JPY") == "1,500 JPY"


def test_unknown_currency_code_is_refused() -> None:
    with pytest.raises(MoneyError, match="ISO 4217"):
        currency_minor_digits("dollars")

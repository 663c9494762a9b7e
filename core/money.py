"""Convert money between bidloop's integer micros and each platform's unit.

Inside bidloop every amount is an `int` number of micros of the account currency
(1 currency unit = 1,000,000 micros, Google's unit). Platforms differ at the edge:

* Google Ads: micros (no conversion; but budgets must be a multiple of the currency's minimum unit).
* Meta: its own offset table (`bidloop.tools.meta._currency`), not the ISO digits below.
* Amazon Ads: major units as floats (dollars).

Conversions towards a platform round *down* (toward zero) so that a rounded amount never exceeds
what the guardrails allowed. Conversions from a platform are exact.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Annotated

from pydantic import Field

from bidloop.core.errors import MoneyError

__all__ = [
    "MAX_MICROS",
    "MICROS_PER_UNIT",
    "Micros",
    "currency_minor_digits",
    "format_money",
    "major_to_micros",
    "micros_to_major",
    "micros_to_minor",
    "minor_to_micros",
    "round_down_to_currency_unit",
]

MICROS_PER_UNIT = 1_000_000
"""Micros in one unit of the account currency."""

MAX_MICROS = 10**15
"""Largest amount bidloop represents: one billion currency units. Anything above is a unit mistake."""

Micros = Annotated[int, Field(strict=True, ge=0, le=MAX_MICROS)]
"""A non-negative money amount in micros; floats (and bools) are refused, so a unit slip cannot sneak in."""

# ISO 4217 digits after the decimal point where they differ from 2. These are ISO's, for display and
# generic minor units; no platform's offsets are implied (Meta has its own table: HUF, TWD, IDR, COP,
# CRC and PYG take offset 1 there, BHD and JOD offset 100).
_MINOR_DIGITS_EXCEPTIONS: dict[str, int] = {
    "JPY": 0,
    "KRW": 0,
    "CLP": 0,
    "VND": 0,
    "ISK": 0,
    "PYG": 0,
    "HUF": 2,
    "TWD": 2,
    "IDR": 2,
    "COP": 2,
    "CRC": 2,
    "BHD": 3,
    "KWD": 3,
    "JOD": 3,
    "OMR": 3,
    "TND": 3,
}


def currency_minor_digits(currency: str) -> int:
    """Return the number of minor-unit digits of an ISO 4217 currency (2 for most).

    Raises:
        MoneyError: If the code is not three letters.
    """
    code = currency.upper()
    if len(code) != 3 or not code.isalpha():
        raise MoneyError(
            f"{currency!r} is not an ISO 4217 currency code", hint="use a three-letter code such as USD or EUR"
        )
    return _MINOR_DIGITS_EXCEPTIONS.get(code, 2)


def _check_micros(micros: int) -> int:
    if isinstance(micros, bool) or not isinstance(micros, int):
        raise MoneyError(
            f"money must be an integer number of micros, got {micros!r} ({type(micros).__name__})",
            hint="convert at the platform edge with bidloop.core.money",
        )
    if abs(micros) > MAX_MICROS:
        raise MoneyError(f"{micros} micros is beyond {MAX_MICROS} (one billion units): likely a unit mistake")
    return micros


def major_to_micros(amount: Decimal | int | float | str) -> int:
    """Convert an amount in major units (e.g. dollars) to micros, rounding half to even.

    Raises:
        MoneyError: If the amount is not a finite number or is out of range.
    """
    if isinstance(amount, bool):
        raise MoneyError(f"a bool is not money: {amount!r}")
    if isinstance(amount, float) and not math.isfinite(amount):
        raise MoneyError(f"money must be finite, got {amount!r}")
    try:
        # str() of a float gives its shortest round-tripping repr, so 0.1 becomes Decimal("0.1").
        value = Decimal(str(amount)) if isinstance(amount, float) else Decimal(amount)
    except (InvalidOperation, ValueError) as exc:
        raise MoneyError(f"{amount!r} is not a money amount") from exc
    if not value.is_finite():
        raise MoneyError(f"money must be finite, got {amount!r}")
    micros = int((value * MICROS_PER_UNIT).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
    return _check_micros(micros)


def micros_to_major(micros: int) -> float:
    """Convert micros to a float in major units (Amazon's unit). Exact for amounts below 2**53 micros."""
    return _check_micros(micros) / MICROS_PER_UNIT


def micros_to_minor(micros: int, currency: str) -> int:
    """Convert micros to the currency's ISO 4217 minor units, rounding down.

    Rounding down means the platform never receives more than the amount bidloop decided on.
    """
    digits = currency_minor_digits(currency)
    per_minor = MICROS_PER_UNIT // 10**digits
    return _check_micros(micros) // per_minor


def minor_to_micros(minor: int, currency: str) -> int:
    """Convert minor units (cents, or whole yen for JPY) to micros, exactly."""
    if isinstance(minor, bool) or not isinstance(minor, int):
        raise MoneyError(f"minor units must be an integer, got {minor!r}")
    digits = currency_minor_digits(currency)
    return _check_micros(minor * (MICROS_PER_UNIT // 10**digits))


def round_down_to_currency_unit(micros: int, currency: str) -> int:
    """Round micros down to a multiple of the currency's minimum unit (Google requires this for budgets)."""
    digits = currency_minor_digits(currency)
    per_minor = MICROS_PER_UNIT // 10**digits
    return (_check_micros(micros) // per_minor) * per_minor


def format_money(micros: int, currency: str = "USD") -> str:
    """Format micros for people, e.g. `format_money(12_345_678, "USD") == "12.35 USD"`."""
    digits = currency_minor_digits(currency)
    value = (Decimal(_check_micros(micros)) / MICROS_PER_UNIT).quantize(
        Decimal(1).scaleb(-digits), rounding=ROUND_HALF_EVEN
    )
    return f"{value:,.{digits}f} {currency.upper()}"

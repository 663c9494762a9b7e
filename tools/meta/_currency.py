"""Convert money between bidloop micros and Meta's budget and bid units, by Meta's own offset table.

Meta sends and takes budgets and bids as integers "at the ad account currency's minimum denomination
level": the amount in major units times the currency's offset. The offset is Meta's, not ISO 4217's:
HUF, TWD and IDR have two ISO decimals but offset 1 at Meta; BHD and JOD have three ISO decimals but
offset 100. Insights (`spend`) are decimal strings in major units and do not use this table.
"""

from __future__ import annotations

from bidloop.core.errors import MoneyError
from bidloop.core.money import MAX_MICROS, MICROS_PER_UNIT

__all__ = ["META_OFFSET_ONE_CURRENCIES", "meta_offset", "meta_units_to_micros", "micros_to_meta_units"]

META_OFFSET_ONE_CURRENCIES: frozenset[str] = frozenset(
    {"CLP", "COP", "CRC", "HUF", "ISK", "IDR", "JPY", "KRW", "PYG", "TWD", "VND"}
)
"""Currencies whose Meta offset is 1 (one unit = one major unit); every other currency has offset 100."""


def meta_offset(currency: str) -> int:
    """Return Meta's offset for a currency: 1 or 100.

    Raises:
        MoneyError: If the code is not three letters.
    """
    code = currency.upper()
    if len(code) != 3 or not code.isalpha():
        raise MoneyError(f"{currency!r} is not a currency code", hint="use a three-letter code such as USD or HUF")
    return 1 if code in META_OFFSET_ONE_CURRENCIES else 100


def _checked(micros: int) -> int:
    if isinstance(micros, bool) or not isinstance(micros, int):
        raise MoneyError(f"money must be an integer number of micros, got {micros!r}")
    if abs(micros) > MAX_MICROS:
        raise MoneyError(f"{micros} micros is beyond {MAX_MICROS} (one billion units): likely a unit mistake")
    return micros


def micros_to_meta_units(micros: int, currency: str) -> int:
    """Convert micros to Meta's budget/bid units (major units x offset), rounding down.

    Rounding down means Meta never receives more than the amount bidloop decided on.
    """
    return _checked(micros) // (MICROS_PER_UNIT // meta_offset(currency))


def meta_units_to_micros(units: int, currency: str) -> int:
    """Convert Meta's budget/bid units to micros, exactly."""
    if isinstance(units, bool) or not isinstance(units, int):
        raise MoneyError(f"Meta money units must be an integer, got {units!r}")
    return _checked(units * (MICROS_PER_UNIT // meta_offset(currency)))

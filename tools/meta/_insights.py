"""Turn Meta insights rows (strings in major currency units) into bidloop `Metrics` in micros.

Insights report money as decimal strings in major units (`"spend": "12.34"`), unlike budgets and
bids, which are integer minor units. Purchases come from `actions` / `action_values`; when the value
is missing, `purchase_roas` x spend stands in. There is no plain `roas` field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel, ConfigDict

from bidloop.core.errors import PlatformError
from bidloop.core.metrics import Metrics
from bidloop.core.money import major_to_micros

__all__ = ["INSIGHTS_FIELDS", "PURCHASE_ACTION_TYPES", "InsightsRow", "parse_row"]

INSIGHTS_FIELDS: tuple[str, ...] = (
    "campaign_id",
    "adset_id",
    "ad_id",
    "date_start",
    "spend",
    "impressions",
    "clicks",
    "cpc",
    "frequency",
    "actions",
    "action_values",
    "purchase_roas",
)
"""The insights fields bidloop asks for (one request per level, daily rows)."""

PURCHASE_ACTION_TYPES: tuple[str, ...] = ("omni_purchase", "purchase", "offsite_conversion.fb_pixel_purchase")
"""Action types counted as purchases, most inclusive first; the first one present is used."""


class InsightsRow(BaseModel):
    """One daily insights row of one entity, converted to bidloop units.

    Attributes:
        entity_id: The campaign, ad set or ad id the row is about (by the requested level).
        day: The row's date (account time zone).
        metrics: Counters in micros.
        cpc_micros: Meta's own CPC, in micros, when reported (a check on the derived one).
        frequency: Average impressions per person over the row's day, when reported.
        purchase_roas: Meta's purchase ROAS, when reported.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    entity_id: str
    day: date
    metrics: Metrics
    cpc_micros: int | None = None
    frequency: float | None = None
    purchase_roas: float | None = None


def _decimal(value: object, field: str) -> Decimal:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise PlatformError(f"insights field {field}={value!r} is not a number", platform="meta") from exc
    if not number.is_finite():
        raise PlatformError(f"insights field {field}={value!r} is not finite", platform="meta")
    return number


def _action_total(entries: object, field: str) -> Decimal | None:
    if not isinstance(entries, Sequence):
        return None
    by_type: dict[str, Decimal] = {}
    for entry in entries:
        if isinstance(entry, Mapping) and "action_type" in entry:
            by_type[str(entry["action_type"])] = _decimal(entry.get("value", 0), field)
    for action_type in PURCHASE_ACTION_TYPES:
        if action_type in by_type:
            return by_type[action_type]
    return None


def parse_row(row: Mapping[str, Any], level: str) -> InsightsRow:
    """Convert one insights row for `level` (`campaign`, `adset` or `ad`) to bidloop units.

    Raises:
        PlatformError: If a required field is missing or a number cannot be read.
    """
    id_field = {"campaign": "campaign_id", "adset": "adset_id", "ad": "ad_id"}[level]
    if id_field not in row or "date_start" not in row:
        raise PlatformError(f"insights row lacks {id_field} or date_start", platform="meta")
    spend = _decimal(row.get("spend", "0"), "spend")
    cost_micros = major_to_micros(spend)
    conversions = _action_total(row.get("actions"), "actions")
    value = _action_total(row.get("action_values"), "action_values")
    roas_decimal = _action_total(row.get("purchase_roas"), "purchase_roas")
    if value is None and roas_decimal is not None:
        value = roas_decimal * spend
    metrics = Metrics(
        impressions=int(_decimal(row.get("impressions", 0), "impressions")),
        clicks=int(_decimal(row.get("clicks", 0), "clicks")),
        cost_micros=cost_micros,
        conversions=float(conversions) if conversions is not None else 0.0,
        conversion_value_micros=major_to_micros(value) if value is not None else 0,
    )
    cpc = row.get("cpc")
    frequency = row.get("frequency")
    return InsightsRow(
        entity_id=str(row[id_field]),
        day=date.fromisoformat(str(row["date_start"])),
        metrics=metrics,
        cpc_micros=major_to_micros(_decimal(cpc, "cpc")) if cpc not in (None, "") else None,
        frequency=float(_decimal(frequency, "frequency")) if frequency not in (None, "") else None,
        purchase_roas=float(roas_decimal) if roas_decimal is not None else None,
    )

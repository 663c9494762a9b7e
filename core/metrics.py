"""Hold performance counters and the rates derived from them."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from bidloop.core.money import MICROS_PER_UNIT, Micros

__all__ = ["Metrics"]


class Metrics(BaseModel):
    """Performance over one period. Money in micros; conversions may be fractional (attribution).

    Rates are derived, never stored, so they cannot disagree with the counters.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    impressions: int = Field(default=0, ge=0)
    clicks: int = Field(default=0, ge=0)
    cost_micros: Micros = 0
    conversions: float = Field(default=0.0, ge=0.0, allow_inf_nan=False)
    conversion_value_micros: Micros = 0

    @property
    def roas(self) -> float | None:
        """Return conversion value / cost, or None when nothing was spent."""
        return self.conversion_value_micros / self.cost_micros if self.cost_micros else None

    @property
    def ctr(self) -> float | None:
        """Return clicks / impressions, or None without impressions."""
        return self.clicks / self.impressions if self.impressions else None

    @property
    def cpc_micros(self) -> float | None:
        """Return the average cost per click in micros, or None without clicks."""
        return self.cost_micros / self.clicks if self.clicks else None

    @property
    def cost(self) -> float:
        """Return cost in major units, for display only."""
        return self.cost_micros / MICROS_PER_UNIT

    def __add__(self, other: Metrics) -> Metrics:
        return Metrics(
            impressions=self.impressions + other.impressions,
            clicks=self.clicks + other.clicks,
            cost_micros=self.cost_micros + other.cost_micros,
            conversions=self.conversions + other.conversions,
            conversion_value_micros=self.conversion_value_micros + other.conversion_value_micros,
        )

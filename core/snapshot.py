"""Hold what bidloop observed of one account at one moment: every entity with its metrics."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from bidloop.core.entities import EntityKind, EntityState, Platform
from bidloop.core.metrics import Metrics
from bidloop.core.money import MICROS_PER_UNIT, Micros, currency_minor_digits

__all__ = ["Snapshot"]


class Snapshot(BaseModel):
    """Describe one account at one moment.

    Attributes:
        account_id: bidloop's id of the account.
        platform: The platform the account is on.
        currency: ISO 4217 code of the account currency (all micros are of this currency).
        as_of: When the snapshot was taken, in the account's time zone.
        expected_spend_fraction: Share of a day's budget that should be spent by `as_of` if
            delivery were on pace (from the platform's day-parting, or the clock).
        account_daily_budget_micros: Sum of the delivering holders' daily budgets (daily equivalents of
            lifetime budgets included).
        today_complete: False when the platform's numbers for today lag the clock (Amazon reports):
            `today_through` then says up to when they are known, and pace is judged at that moment.
        today_through: The moment up to which today's metrics are complete, in the account's zone;
            None means `as_of`.
        notes: What a person should know about this read (e.g. "the account reported no data").
        money_unit_micros: The smallest amount the platform stores for this account's money (Meta's
            currency offset, Google's `billable_unit_micros`); None means the currency's ISO minor unit.
            A value read back may sit up to one unit below what was sent.
        entities: Every entity, parents before children.
    """

    model_config = ConfigDict(extra="forbid")

    account_id: str
    platform: Platform
    currency: str = "USD"
    time_zone: str = "UTC"
    as_of: datetime
    daypart: int = Field(default=0, ge=0)
    dayparts_per_day: int = Field(default=1, ge=1)
    expected_spend_fraction: float = Field(default=1.0, ge=0.0, le=1.0)
    account_daily_budget_micros: Micros = 0
    today_complete: bool = True
    today_through: datetime | None = None
    notes: list[str] = Field(default_factory=list)
    money_unit_micros: int | None = Field(default=None, ge=1)
    entities: list[EntityState] = Field(default_factory=list)

    @property
    def money_unit(self) -> int:
        """Return the platform's money unit for this account in micros (the ISO minor unit if unknown)."""
        return self.money_unit_micros or MICROS_PER_UNIT // 10 ** currency_minor_digits(self.currency)

    def of_kind(self, kind: EntityKind) -> list[EntityState]:
        """Return the entities of one kind, in snapshot order."""
        return [e for e in self.entities if e.ref.kind is kind]

    def by_id(self, kind: EntityKind) -> dict[str, EntityState]:
        """Return the entities of one kind keyed by platform id."""
        return {e.ref.entity_id: e for e in self.entities if e.ref.kind is kind}

    def budget_holders(self) -> list[EntityState]:
        """Return the enabled entities that carry a daily budget (campaigns or ad sets)."""
        return [e for e in self.entities if e.daily_budget_micros is not None and e.ref.kind is not EntityKind.ACCOUNT]

    def totals_today(self) -> Metrics:
        """Return today's metrics summed over the budget holders."""
        total = Metrics()
        for e in self.budget_holders():
            total = total + e.today
        return total

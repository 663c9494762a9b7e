"""Describe the guardrail limits an operator configures; the filter in `bidloop.guardrails` enforces them.

Fail closed: every limit has a conservative default, so an empty configuration never means
"anything goes". Limits are set globally and may be overridden per platform, per account and per
campaign (the most specific scope wins; lists such as protected entities, freeze windows, banned
terms and claims add up across scopes). In `bidloop.yaml`:

    guardrails:
      max_change_pct: 20
      platforms:
        meta: {max_budget_changes_per_hour: 4}
      accounts:
        sim-meta:
          max_change_pct: 10
          account_daily_budget_cap_micros: 900000000
          protected_entity_ids: ["120210000000001"]
          campaigns:
            "120200000000007": {bid_ceiling_micros: 5000000, target_roas_floor_bps: 20000}
      portfolios:
        emea: {account_ids: [sim-google, sim-meta], daily_budget_cap_micros: 2000000000}
      freeze_windows:
        - {start: 2026-11-27T00:00:00Z, end: 2026-11-27T06:00:00Z, reason: "Black Friday launch"}
      banned_terms: ["casino"]
      min_clicks_to_act: 50

Targets (`SetTargetRoas`, `SetTargetCpa`) have limits of their own, because a target is not a bid: it
steers a Smart Bidding strategy (Google) or a cost cap / minimum ROAS (Meta) that re-learns after each
change. Google's help ("Duration of the learning period for campaigns and what affects it") says that
after a change to an automated bid strategy "it can take (up to 2–3 conversion cycles) for the bid
strategy to calibrate to the new objective", and Search Ads 360's help ("Evaluate Search Ads 360 bid
strategy performance") that a strategy enters learning when "the specified CPA, ERS, or ROAS target
changed by more than 30%" and that "it may take about a week for the bid strategy to recalibrate". So
by default a target moves at most 15 % per action and per day (half the change that restarts learning)
and not again for 7 days (`target_cooldown_days`, the learning period).

Evidence: no budget, bid or target action passes on an entity with fewer than `min_clicks_to_act`
clicks, `min_spend_to_act_micros` spend, or `min_days_of_data` days since its first recorded activity
(`bidloop.guardrails.rules.evidence_of` says exactly what is counted).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bidloop.core.entities import Platform
from bidloop.core.money import Micros

__all__ = [
    "DEFAULT_CLAIMS",
    "EffectiveLimits",
    "FreezeWindow",
    "GuardrailLimits",
    "LimitOverrides",
    "PortfolioLimits",
]

_DEFAULT_MIN_BUDGET: dict[Platform, int] = {
    Platform.GOOGLE_ADS: 1_000_000,
    Platform.META: 1_000_000,
    Platform.AMAZON_ADS: 1_000_000,
}

DEFAULT_CLAIMS: tuple[str, ...] = (
    "guaranteed",
    "guarantee",
    "risk free",
    "risk-free",
    "#1",
    "no. 1",
    "number one",
    "cure",
    "cures",
    "clinically proven",
    "100% effective",
    "miracle",
)
"""Claims that need substantiation: text containing one needs a person's approval."""

_ACCOUNT_LEVEL_FIELDS = (
    "account_daily_budget_cap_micros",
    "allow_total_budget_increase",
    "max_changes_per_run",
)


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


class FreezeWindow(BaseModel):
    """A period in which no action may change anything (e.g. a sale's first hours).

    Naive datetimes are read as UTC. `start` is inclusive, `end` exclusive.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: datetime
    end: datetime
    reason: str = "freeze window"

    @field_validator("start", "end")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return _as_utc(value)

    @model_validator(mode="after")
    def _ordered(self) -> FreezeWindow:
        if self.end <= self.start:
            raise ValueError(f"freeze window ends ({self.end.isoformat()}) before it starts ({self.start.isoformat()})")
        return self

    def covers(self, moment: datetime) -> bool:
        """Return True if `moment` (naive means UTC) falls inside the window."""
        return self.start <= _as_utc(moment) < self.end


class LimitOverrides(BaseModel):
    """Override some limits for one platform, account or campaign; None inherits the wider scope.

    Lists (`protected_entity_ids`, `freeze_windows`, `banned_terms`, `claims`) add to the wider
    scope's lists. On a campaign, `protected: true` protects the campaign and everything in it.
    Account-level limits (`account_daily_budget_cap_micros`, `allow_total_budget_increase`,
    `max_changes_per_run`) may not be set on a campaign.
    """

    model_config = ConfigDict(extra="forbid")

    max_change_pct: float | None = Field(default=None, gt=0, le=100, allow_inf_nan=False)
    max_change_micros: Micros | None = None
    max_daily_change_pct: float | None = Field(default=None, gt=0, le=1000, allow_inf_nan=False)
    max_daily_change_micros: Micros | None = None
    bid_floor_micros: Micros | None = None
    bid_ceiling_micros: Micros | None = None
    budget_floor_micros: Micros | None = None
    budget_ceiling_micros: Micros | None = None
    min_budget_micros: Micros | None = None
    approval_above_micros: Micros | None = None
    cooldown_minutes: float | None = Field(default=None, ge=0, le=10_080, allow_inf_nan=False)
    max_budget_changes_per_hour: int | None = Field(default=None, ge=0)
    bid_cap_floor_micros: Micros | None = None
    bid_cap_ceiling_micros: Micros | None = None
    target_max_change_pct: float | None = Field(default=None, gt=0, le=100, allow_inf_nan=False)
    target_max_daily_change_pct: float | None = Field(default=None, gt=0, le=1000, allow_inf_nan=False)
    target_roas_floor_bps: int | None = Field(default=None, ge=0)
    target_roas_ceiling_bps: int | None = Field(default=None, ge=0)
    target_cpa_floor_micros: Micros | None = None
    target_cpa_ceiling_micros: Micros | None = None
    target_cooldown_days: float | None = Field(default=None, ge=0, le=90, allow_inf_nan=False)
    target_approval_above_pct: float | None = Field(default=None, ge=0, le=100, allow_inf_nan=False)
    min_clicks_to_act: int | None = Field(default=None, ge=0)
    min_spend_to_act_micros: Micros | None = None
    min_days_of_data: int | None = Field(default=None, ge=0, le=366)
    account_daily_budget_cap_micros: Micros | None = None
    allow_total_budget_increase: bool | None = None
    max_changes_per_run: int | None = Field(default=None, ge=0)
    protected: bool = False
    protected_entity_ids: list[str] = Field(default_factory=list)
    freeze_windows: list[FreezeWindow] = Field(default_factory=list)
    banned_terms: list[str] = Field(default_factory=list)
    claims: list[str] = Field(default_factory=list)


class AccountOverrides(LimitOverrides):
    """Override limits for one account, and per campaign of that account (keyed by campaign id)."""

    campaigns: dict[str, LimitOverrides] = Field(default_factory=dict)

    @field_validator("campaigns")
    @classmethod
    def _no_account_fields_on_campaigns(cls, campaigns: dict[str, LimitOverrides]) -> dict[str, LimitOverrides]:
        for campaign_id, overrides in campaigns.items():
            for name in _ACCOUNT_LEVEL_FIELDS:
                if getattr(overrides, name) is not None:
                    raise ValueError(
                        f"campaign {campaign_id!r}: {name} is an account-level limit; set it on its account"
                    )
        return campaigns


class PortfolioLimits(BaseModel):
    """A cap on the summed daily budgets of several accounts (which must share one currency)."""

    model_config = ConfigDict(extra="forbid")

    account_ids: list[str] = Field(min_length=1)
    daily_budget_cap_micros: Micros


@dataclass(frozen=True, slots=True)
class EffectiveLimits:
    """The limits that apply to one entity after resolving every scope. Money in micros.

    `max_change_ppm` (and `max_daily_change_ppm`, `target_max_change_ppm`, `target_max_daily_change_ppm`)
    is the percentage in parts per million of the old value, rounded down, so integer arithmetic never
    allows more than the configured percentage.
    """

    max_change_pct: float
    max_change_ppm: int
    max_change_micros: int | None
    max_daily_change_pct: float
    max_daily_change_ppm: int
    max_daily_change_micros: int | None
    bid_floor_micros: int
    bid_ceiling_micros: int
    budget_floor_micros: int
    budget_ceiling_micros: int
    min_budget_micros: int
    approval_above_micros: int
    cooldown_minutes: float
    max_budget_changes_per_hour: int | None
    bid_cap_floor_micros: int
    bid_cap_ceiling_micros: int
    target_max_change_pct: float
    target_max_change_ppm: int
    target_max_daily_change_pct: float
    target_max_daily_change_ppm: int
    target_roas_floor_bps: int
    target_roas_ceiling_bps: int
    target_cpa_floor_micros: int
    target_cpa_ceiling_micros: int
    target_cooldown_days: float
    target_approval_above_pct: float
    min_clicks_to_act: int
    min_spend_to_act_micros: int
    min_days_of_data: int
    protected: bool
    protected_entity_ids: frozenset[str]
    freeze_windows: tuple[FreezeWindow, ...]
    banned_terms: tuple[str, ...]
    claims: tuple[str, ...]


class GuardrailLimits(BaseModel):
    """Limits on what any action may do. Percentages are of the current value; money is micros.

    The top-level fields are the global defaults; `platforms`, `accounts` (and their `campaigns`)
    override them, the most specific scope winning. See the module docstring for a YAML example.

    Attributes:
        max_change_pct: Largest change of a budget or bid in one action, in percent of its old value.
        max_change_micros: Largest change of a budget or bid in one action, absolute (None: no absolute limit).
        max_daily_change_pct: Largest summed change of one entity's budget or bid in one day, in percent.
        max_daily_change_micros: Largest summed change of one entity in one day, absolute (None: none).
        bid_floor_micros: Lowest bid any action may set.
        bid_ceiling_micros: Highest bid any action may set.
        budget_floor_micros: Lowest daily budget any action may set (on top of the platform minimum).
        budget_ceiling_micros: Highest daily budget any action may set on one entity.
        min_budget_micros: The platforms' minimum daily budgets; no budget may be set below.
        approval_above_micros: A budget or bid increase larger than this needs a person's approval.
        cooldown_minutes: Least time between two edits of one entity (protects the learning phase).
        max_budget_changes_per_hour: Most budget changes of one entity per rolling hour, per platform
            (Meta blocks a fifth budget change of an ad set within an hour).
        bid_cap_floor_micros: Lowest Meta bid cap (`BID_CAP` strategy: a cap per optimization event,
            not a CPC, so the CPC floor and ceiling do not apply to it).
        bid_cap_ceiling_micros: Highest Meta bid cap.
        target_max_change_pct: Largest change of a ROAS or CPA target in one action, in percent.
        target_max_daily_change_pct: Largest summed change of one entity's target in one day, in percent.
        target_roas_floor_bps: Lowest ROAS target any action may set, in basis points (10,000 = ROAS 1.0).
        target_roas_ceiling_bps: Highest ROAS target any action may set, in basis points.
        target_cpa_floor_micros: Lowest CPA target (or Meta cost cap) any action may set.
        target_cpa_ceiling_micros: Highest CPA target (or Meta cost cap) any action may set.
        target_cooldown_days: Least time between two target changes of one entity: the strategy's
            learning period (0 turns it off).
        target_approval_above_pct: A target change that loosens delivery (a CPA target raised, a ROAS
            target lowered) by more than this percentage needs a person's approval; a CPA target raised
            by more than `approval_above_micros` needs one too, as a bid does.
        min_clicks_to_act: Fewest clicks of an entity (its recorded days and today) before a budget, bid or
            target action on it may pass.
        min_spend_to_act_micros: Least spend of an entity (its recorded days and today) before such an action.
        min_days_of_data: Fewest days since the entity's first recorded activity before such an action.
        account_daily_budget_cap_micros: Highest total daily budget of an account after a run.
            None means the total may not grow above what it was when the run started.
        allow_total_budget_increase: Let a run raise an account's total budget up to its cap; without
            it (the default) a rebalance must conserve the total.
        max_changes_per_run: Most actions one run may apply to one account.
        protected_entity_ids: Entities never touched (platform ids, or full `EntityRef.key`s).
        freeze_windows: Periods in which nothing may change.
        banned_terms: Words or phrases no keyword or creative text may contain (blocked).
        claims: Claims that need substantiation (text containing one needs approval).
        portfolios: Named groups of accounts with a cap on their summed daily budgets.
    """

    model_config = ConfigDict(extra="forbid")

    max_change_pct: float = Field(default=20.0, gt=0, le=100, allow_inf_nan=False)
    max_change_micros: Micros | None = None
    max_daily_change_pct: float = Field(default=50.0, gt=0, le=1000, allow_inf_nan=False)
    max_daily_change_micros: Micros | None = None
    bid_floor_micros: Micros = 50_000
    bid_ceiling_micros: Micros = 20_000_000
    budget_floor_micros: Micros = 0
    budget_ceiling_micros: Micros = 10_000_000_000
    min_budget_micros: dict[Platform, Micros] = Field(default_factory=lambda: dict(_DEFAULT_MIN_BUDGET))
    approval_above_micros: Micros = 500_000_000
    cooldown_minutes: float = Field(default=60.0, ge=0, le=10_080, allow_inf_nan=False)
    max_budget_changes_per_hour: dict[Platform, int] = Field(default_factory=lambda: {Platform.META: 4})
    bid_cap_floor_micros: Micros = 10_000
    bid_cap_ceiling_micros: Micros = 1_000_000_000
    target_max_change_pct: float = Field(default=15.0, gt=0, le=100, allow_inf_nan=False)
    target_max_daily_change_pct: float = Field(default=15.0, gt=0, le=1000, allow_inf_nan=False)
    target_roas_floor_bps: int = Field(default=5_000, ge=0)
    target_roas_ceiling_bps: int = Field(default=500_000, ge=0)
    target_cpa_floor_micros: Micros = 100_000
    target_cpa_ceiling_micros: Micros = 1_000_000_000
    target_cooldown_days: float = Field(default=7.0, ge=0, le=90, allow_inf_nan=False)
    target_approval_above_pct: float = Field(default=100.0, ge=0, le=100, allow_inf_nan=False)
    min_clicks_to_act: int = Field(default=30, ge=0)
    min_spend_to_act_micros: Micros = 10_000_000
    min_days_of_data: int = Field(default=7, ge=0, le=366)
    account_daily_budget_cap_micros: Micros | None = None
    allow_total_budget_increase: bool = False
    max_changes_per_run: int = Field(default=200, ge=0)
    protected_entity_ids: list[str] = Field(default_factory=list)
    freeze_windows: list[FreezeWindow] = Field(default_factory=list)
    banned_terms: list[str] = Field(default_factory=list)
    claims: list[str] = Field(default_factory=lambda: list(DEFAULT_CLAIMS))
    platforms: dict[Platform, LimitOverrides] = Field(default_factory=dict)
    accounts: dict[str, AccountOverrides] = Field(default_factory=dict)
    portfolios: dict[str, PortfolioLimits] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _floors_below_ceilings(self) -> GuardrailLimits:
        if self.bid_floor_micros > self.bid_ceiling_micros:
            raise ValueError(
                f"bid_floor_micros ({self.bid_floor_micros}) is above bid_ceiling_micros ({self.bid_ceiling_micros})"
            )
        for floor, ceiling in (
            ("bid_cap_floor_micros", "bid_cap_ceiling_micros"),
            ("target_roas_floor_bps", "target_roas_ceiling_bps"),
            ("target_cpa_floor_micros", "target_cpa_ceiling_micros"),
        ):
            if getattr(self, floor) > getattr(self, ceiling):
                raise ValueError(f"{floor} ({getattr(self, floor)}) is above {ceiling} ({getattr(self, ceiling)})")
        if self.budget_floor_micros > self.budget_ceiling_micros:
            raise ValueError(
                f"budget_floor_micros ({self.budget_floor_micros}) is above budget_ceiling_micros "
                f"({self.budget_ceiling_micros})"
            )
        return self

    def _scopes(self, platform: Platform, account_id: str, campaign_id: str | None) -> list[LimitOverrides]:
        scopes: list[LimitOverrides] = []
        if platform in self.platforms:
            scopes.append(self.platforms[platform])
        account = self.accounts.get(account_id)
        if account is not None:
            scopes.append(account)
            if campaign_id is not None and campaign_id in account.campaigns:
                scopes.append(account.campaigns[campaign_id])
        return scopes

    def resolve(self, platform: Platform, account_id: str, campaign_id: str | None = None) -> EffectiveLimits:
        """Return the limits for an entity of one campaign (or for the account when `campaign_id` is None)."""
        scopes = self._scopes(platform, account_id, campaign_id)

        def pick(name: str, default: object) -> object:
            value = default
            for scope in scopes:
                scoped = getattr(scope, name)
                if scoped is not None:
                    value = scoped
            return value

        max_change_pct = float(pick("max_change_pct", self.max_change_pct))  # type: ignore[arg-type]
        max_daily_pct = float(pick("max_daily_change_pct", self.max_daily_change_pct))  # type: ignore[arg-type]
        protected_ids = set(self.protected_entity_ids)
        windows = list(self.freeze_windows)
        banned = list(self.banned_terms)
        claims = list(self.claims)
        for scope in scopes:
            protected_ids.update(scope.protected_entity_ids)
            windows.extend(scope.freeze_windows)
            banned.extend(scope.banned_terms)
            claims.extend(scope.claims)
        campaign_scope = self.accounts.get(account_id)
        protected = bool(
            campaign_scope is not None
            and campaign_id is not None
            and campaign_id in campaign_scope.campaigns
            and campaign_scope.campaigns[campaign_id].protected
        )
        bid_floor = int(pick("bid_floor_micros", self.bid_floor_micros))  # type: ignore[call-overload]
        bid_ceiling = int(pick("bid_ceiling_micros", self.bid_ceiling_micros))  # type: ignore[call-overload]
        budget_floor = int(pick("budget_floor_micros", self.budget_floor_micros))  # type: ignore[call-overload]
        budget_ceiling = int(pick("budget_ceiling_micros", self.budget_ceiling_micros))  # type: ignore[call-overload]
        target_pct = float(pick("target_max_change_pct", self.target_max_change_pct))  # type: ignore[arg-type]
        target_daily_pct = float(pick("target_max_daily_change_pct", self.target_max_daily_change_pct))  # type: ignore[arg-type]

        def pick_int(name: str) -> int:
            return int(pick(name, getattr(self, name)))  # type: ignore[call-overload]

        def pick_float(name: str) -> float:
            return float(pick(name, getattr(self, name)))  # type: ignore[arg-type]

        return EffectiveLimits(
            max_change_pct=max_change_pct,
            max_change_ppm=math.floor(Fraction(max_change_pct) * 10_000),
            max_change_micros=pick("max_change_micros", self.max_change_micros),  # type: ignore[arg-type]
            max_daily_change_pct=max_daily_pct,
            max_daily_change_ppm=math.floor(Fraction(max_daily_pct) * 10_000),
            max_daily_change_micros=pick("max_daily_change_micros", self.max_daily_change_micros),  # type: ignore[arg-type]
            # A floor above its ceiling (possible across scopes) leaves no valid value: every change is refused.
            bid_floor_micros=bid_floor,
            bid_ceiling_micros=bid_ceiling,
            budget_floor_micros=budget_floor,
            budget_ceiling_micros=budget_ceiling,
            min_budget_micros=int(
                pick("min_budget_micros", self.min_budget_micros.get(platform, _DEFAULT_MIN_BUDGET[platform]))  # type: ignore[call-overload]
            ),
            approval_above_micros=int(pick("approval_above_micros", self.approval_above_micros)),  # type: ignore[call-overload]
            cooldown_minutes=float(pick("cooldown_minutes", self.cooldown_minutes)),  # type: ignore[arg-type]
            max_budget_changes_per_hour=pick(  # type: ignore[arg-type]
                "max_budget_changes_per_hour", self.max_budget_changes_per_hour.get(platform)
            ),
            bid_cap_floor_micros=pick_int("bid_cap_floor_micros"),
            bid_cap_ceiling_micros=pick_int("bid_cap_ceiling_micros"),
            target_max_change_pct=target_pct,
            target_max_change_ppm=math.floor(Fraction(target_pct) * 10_000),
            target_max_daily_change_pct=target_daily_pct,
            target_max_daily_change_ppm=math.floor(Fraction(target_daily_pct) * 10_000),
            target_roas_floor_bps=pick_int("target_roas_floor_bps"),
            target_roas_ceiling_bps=pick_int("target_roas_ceiling_bps"),
            target_cpa_floor_micros=pick_int("target_cpa_floor_micros"),
            target_cpa_ceiling_micros=pick_int("target_cpa_ceiling_micros"),
            target_cooldown_days=pick_float("target_cooldown_days"),
            target_approval_above_pct=pick_float("target_approval_above_pct"),
            min_clicks_to_act=pick_int("min_clicks_to_act"),
            min_spend_to_act_micros=pick_int("min_spend_to_act_micros"),
            min_days_of_data=pick_int("min_days_of_data"),
            protected=protected,
            protected_entity_ids=frozenset(protected_ids),
            freeze_windows=tuple(windows),
            banned_terms=tuple(banned),
            claims=tuple(claims),
        )

    def account_cap(self, platform: Platform, account_id: str) -> tuple[int | None, bool, int]:
        """Return (daily budget cap in micros or None, whether the total may grow, max changes per run)."""
        scopes = self._scopes(platform, account_id, None)
        cap = self.account_daily_budget_cap_micros
        allow = self.allow_total_budget_increase
        max_changes = self.max_changes_per_run
        for scope in scopes:
            if scope.account_daily_budget_cap_micros is not None:
                cap = scope.account_daily_budget_cap_micros
            if scope.allow_total_budget_increase is not None:
                allow = scope.allow_total_budget_increase
            if scope.max_changes_per_run is not None:
                max_changes = scope.max_changes_per_run
        return cap, allow, max_changes

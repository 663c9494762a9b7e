"""Name the things bidloop optimizes: platforms, entity kinds and references, and per-entity state."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from bidloop.core.metrics import Metrics
from bidloop.core.money import Micros

__all__ = [
    "AccountInfo",
    "BiddingStrategy",
    "BudgetPeriod",
    "EntityKind",
    "EntityRef",
    "EntityState",
    "MatchType",
    "Platform",
    "Status",
]


class Platform(StrEnum):
    """The ad platforms bidloop speaks to. The simulated market mimics each of them."""

    GOOGLE_ADS = "google_ads"
    META = "meta"
    AMAZON_ADS = "amazon_ads"


class EntityKind(StrEnum):
    """What an entity is. Meta's ad sets are `ad_group`s; ads on every platform are `creative`s."""

    ACCOUNT = "account"
    CAMPAIGN = "campaign"
    AD_GROUP = "ad_group"
    KEYWORD = "keyword"
    CREATIVE = "creative"
    SEARCH_TERM = "search_term"
    BIDDING_STRATEGY = "bidding_strategy"
    """A portfolio (shared) bidding strategy: Google's `BiddingStrategy` resource, whose target serves
    several campaigns."""


class BiddingStrategy(StrEnum):
    """How the platform sets the price of each auction for an entity, and so which lever moves it.

    Each client maps its platform's names (Google `campaign.bidding_strategy_type`, Meta `bid_strategy`,
    Amazon keyword bids). The lever a strategy listens to:

    * bids (`cpc_bid_micros`): `MANUAL_CPC` (a max CPC) and Meta's `BID_CAP` (a cap per optimization event);
    * a ROAS target (`target_roas_bps`): `TARGET_ROAS`, `MAXIMIZE_CONVERSION_VALUE` (where a target is set)
      and Meta's `MIN_ROAS` (`roas_average_floor`);
    * a CPA target (`target_cpa_micros`): `TARGET_CPA`, `MAXIMIZE_CONVERSIONS` (where a target is set) and
      Meta's `COST_CAP` (its `bid_amount` is a cost per result);
    * nothing but the budget: `LOWEST_COST` (Meta), `MAXIMIZE_*` without a target, `OTHER`.
    """

    MANUAL_CPC = "manual_cpc"
    TARGET_ROAS = "target_roas"
    TARGET_CPA = "target_cpa"
    MAXIMIZE_CONVERSIONS = "maximize_conversions"
    MAXIMIZE_CONVERSION_VALUE = "maximize_conversion_value"
    LOWEST_COST = "lowest_cost"
    COST_CAP = "cost_cap"
    BID_CAP = "bid_cap"
    MIN_ROAS = "min_roas"
    OTHER = "other"

    @property
    def uses_bids(self) -> bool:
        """Return True if the platform acts on an entity's bid under this strategy."""
        return self in (BiddingStrategy.MANUAL_CPC, BiddingStrategy.BID_CAP)

    @property
    def uses_target_roas(self) -> bool:
        """Return True if a ROAS target steers this strategy (when one is set, for maximize value)."""
        return self in (
            BiddingStrategy.TARGET_ROAS,
            BiddingStrategy.MAXIMIZE_CONVERSION_VALUE,
            BiddingStrategy.MIN_ROAS,
        )

    @property
    def uses_target_cpa(self) -> bool:
        """Return True if a CPA target steers this strategy (when one is set, for maximize conversions)."""
        return self in (
            BiddingStrategy.TARGET_CPA,
            BiddingStrategy.MAXIMIZE_CONVERSIONS,
            BiddingStrategy.COST_CAP,
        )

    @property
    def is_smart_bidding(self) -> bool:
        """Return True if the platform sets each auction's bid itself (the entity's bid is ignored)."""
        return not self.uses_bids


class BudgetPeriod(StrEnum):
    """The period a budget covers: a day, or a whole flight (Meta lifetime, Google CUSTOM_PERIOD total)."""

    DAILY = "daily"
    LIFETIME = "lifetime"


class Status(StrEnum):
    """Delivery status as bidloop sees it (each client maps its platform's names)."""

    ENABLED = "enabled"
    PAUSED = "paused"
    REMOVED = "removed"


class MatchType(StrEnum):
    """Keyword match type (Meta has none)."""

    EXACT = "exact"
    PHRASE = "phrase"
    BROAD = "broad"


class EntityRef(BaseModel):
    """Point at one entity on one platform account.

    Attributes:
        platform: The platform the entity lives on.
        account_id: bidloop's id of the account (as configured in bidloop.yaml).
        kind: What the entity is.
        entity_id: The platform's id of the entity (for a search term, its text).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    platform: Platform
    account_id: str = Field(min_length=1)
    kind: EntityKind
    entity_id: str = Field(min_length=1)

    @property
    def key(self) -> str:
        """Return a stable string key, unique across platforms and accounts."""
        return f"{self.platform.value}:{self.account_id}:{self.kind.value}:{self.entity_id}"

    def __str__(self) -> str:
        return self.key


class EntityState(BaseModel):
    """Describe one entity as read from a platform: structure, settings and performance.

    Money is integer micros of the account currency. `today` is the current day so far,
    `trailing_7d` the seven full days before today, `daily_history` one `Metrics` per past day
    (oldest first, at most 14) where the platform reports it.
    """

    model_config = ConfigDict(extra="forbid")

    ref: EntityRef
    name: str
    parent_id: str | None = None
    """The platform id of the parent entity (campaign of an ad group, ad group of a keyword, ...)."""
    campaign_id: str | None = None
    """The platform id of the campaign this entity belongs to (itself for a campaign)."""
    status: Status = Status.ENABLED
    """The entity's own configured status (what Pause/Enable actions change)."""
    delivery_blocked_by: str | None = None
    """Why an entity whose own status is enabled does not deliver, in the platform's words (Meta
    `effective_status` such as `CAMPAIGN_PAUSED` or `DISAPPROVED`, an ended flight, ...); None when it
    delivers or when its own status already says it does not."""
    daily_budget_micros: Micros | None = None
    """Set on the entity that holds the budget: a campaign (Google, Amazon, Meta CBO) or an ad set (Meta).
    For a lifetime budget, the daily equivalent of what remains: `budget_remaining_micros` over the days
    left in the flight (today included)."""
    budget_period: BudgetPeriod = BudgetPeriod.DAILY
    lifetime_budget_micros: Micros | None = None
    """The whole flight's budget, for a lifetime (or Google total) budget."""
    budget_remaining_micros: Micros | None = None
    """What is left of a lifetime budget (Meta `budget_remaining`)."""
    flight_start: datetime | None = None
    flight_end: datetime | None = None
    """The flight of a lifetime budget (Meta `start_time` and `end_time`/`stop_time`), zone-aware."""
    min_daily_budget_micros: Micros | None = None
    """The platform's minimum daily budget for this holder, where the platform tells it."""
    daily_min_spend_micros: Micros | None = None
    daily_spend_cap_micros: Micros | None = None
    """Spend limits of an ad set inside a campaign budget (Meta `daily_min_spend_target`, `daily_spend_cap`)."""
    bidding_strategy: BiddingStrategy | None = None
    """The strategy in force for this entity (a keyword or ad group inherits its campaign's); None where
    the client cannot tell, and on entities that do not bid (creatives, search terms)."""
    bidding_strategy_id: str | None = None
    """The portfolio (shared) strategy whose target serves this campaign, where there is one: its target
    is changed on the `BIDDING_STRATEGY` entity, not here."""
    cpc_bid_micros: Micros | None = None
    """The bid the platform uses: a max CPC (keywords, Google ad groups, Amazon keywords) or Meta's bid cap;
    None where the strategy in force sets bids itself."""
    bid_multiplier_max: float | None = Field(default=None, ge=0.0, allow_inf_nan=False)
    """The largest factor the platform may apply to the bid (Amazon dynamic bidding and placement
    adjustments: 1.0 means none, 2.0 doubles it); None where none is known."""
    target_roas_bps: int | None = Field(default=None, ge=0)
    """The ROAS target in basis points of return (10,000 = 1.0 = 100 %; Google `target_roas` 3.5 is
    35,000; Meta `roas_average_floor` uses this scale already)."""
    target_cpa_micros: Micros | None = None
    """The CPA target (Google target CPA, Meta cost cap)."""
    text: str | None = None
    """Keyword text, search-term text or creative headline."""
    match_type: MatchType | None = None
    negative_keywords: list[str] = Field(default_factory=list)
    """Negatives on this ad group or campaign, as `-[match] text` (`AddNegativeKeyword.new_value`), where
    the platform reports them; empty when it does not."""
    today: Metrics = Field(default_factory=Metrics)
    trailing_7d: Metrics = Field(default_factory=Metrics)
    daily_history: list[Metrics] = Field(default_factory=list)

    @property
    def is_delivering(self) -> bool:
        """Return True if the entity is enabled and nothing above it (or a review) stops its delivery."""
        return self.status is Status.ENABLED and self.delivery_blocked_by is None


class AccountInfo(BaseModel):
    """An account a client can see, as listed by `bidloop accounts check`."""

    model_config = ConfigDict(extra="forbid")

    account_id: str
    platform: Platform
    name: str
    currency: str = "USD"
    time_zone: str = "UTC"

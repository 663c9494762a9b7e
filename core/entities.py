"""Name the things bidloop optimizes: platforms, entity kinds and references, and per-entity state."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from bidloop.core.metrics import Metrics
from bidloop.core.money import Micros

__all__ = [
    "AccountInfo",
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
    daily_budget_micros: Micros | None = None
    """Set on the entity that holds the budget: a campaign (Google, Amazon) or an ad set (Meta)."""
    cpc_bid_micros: Micros | None = None
    """Max CPC bid (keywords, Google ad groups) or bid amount (Meta ad sets); None under auto-bidding."""
    text: str | None = None
    """Keyword text, search-term text or creative headline."""
    match_type: MatchType | None = None
    negative_keywords: list[str] = Field(default_factory=list)
    """Negatives on this ad group or campaign, as `-[match] text` (`AddNegativeKeyword.new_value`), where
    the platform reports them; empty when it does not."""
    today: Metrics = Field(default_factory=Metrics)
    trailing_7d: Metrics = Field(default_factory=Metrics)
    daily_history: list[Metrics] = Field(default_factory=list)


class AccountInfo(BaseModel):
    """An account a client can see, as listed by `bidloop accounts check`."""

    model_config = ConfigDict(extra="forbid")

    account_id: str
    platform: Platform
    name: str
    currency: str = "USD"
    time_zone: str = "UTC"

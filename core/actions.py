"""Define actions: typed, absolute targets that agents propose and the guardrails judge.

An action always says the value it found (`old_*`) and the value it wants (`new_*`); never an
increment, so applying it twice lands on the same state. Money is integer micros.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from bidloop.core.entities import EntityKind, EntityRef, MatchType, Status
from bidloop.core.money import Micros

__all__ = [
    "ACTION_ADAPTER",
    "Action",
    "AddKeyword",
    "AddNegativeKeyword",
    "AgentName",
    "EnableCreative",
    "PauseCreative",
    "SetBid",
    "SetBudget",
    "SetTargetCpa",
    "SetTargetRoas",
]


class AgentName(StrEnum):
    """Who proposed an action."""

    KEYWORD_INSIGHT = "keyword_insight"
    BID_SHIFTER = "bid_shifter"
    CREATIVE_ROTATION = "creative_rotation"
    OPERATOR = "operator"
    ROLLBACK = "rollback"


class _ActionBase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    action_id: str = Field(min_length=1)
    entity: EntityRef
    agent: AgentName
    reason: str = Field(min_length=1)
    policy_version: str = "none"
    """The policy (or heuristic) and its version that produced the action, e.g. `heuristic-mroas@1`."""
    expected_effect: str | None = None

    @property
    def is_money_change(self) -> bool:
        """Return True if the action changes a budget or a bid."""
        return False


class SetBudget(_ActionBase):
    """Set a campaign's (or Meta ad set's) daily budget to an absolute amount."""

    kind: Literal["set_budget"] = "set_budget"
    old_daily_budget_micros: Micros
    new_daily_budget_micros: Micros

    @property
    def old_value(self) -> int:
        """Return the budget found, in micros."""
        return self.old_daily_budget_micros

    @property
    def new_value(self) -> int:
        """Return the budget wanted, in micros."""
        return self.new_daily_budget_micros

    @property
    def is_money_change(self) -> bool:
        """Return True: budgets are money."""
        return True


class SetBid(_ActionBase):
    """Set a keyword's (or ad group's / ad set's) max CPC bid to an absolute amount."""

    kind: Literal["set_bid"] = "set_bid"
    old_cpc_bid_micros: Micros
    new_cpc_bid_micros: Micros

    @property
    def old_value(self) -> int:
        """Return the bid found, in micros."""
        return self.old_cpc_bid_micros

    @property
    def new_value(self) -> int:
        """Return the bid wanted, in micros."""
        return self.new_cpc_bid_micros

    @property
    def is_money_change(self) -> bool:
        """Return True: bids are money."""
        return True


class SetTargetRoas(_ActionBase):
    """Set the ROAS target of a Smart Bidding campaign, ad group or portfolio strategy (basis points).

    10,000 basis points are a ROAS of 1.0 (100 %). The lever where the strategy bids to a ROAS target
    (Google target ROAS and maximize conversion value with a target; Meta minimum ROAS); a raise
    tightens delivery (less spend, higher return), a cut loosens it.
    """

    kind: Literal["set_target_roas"] = "set_target_roas"
    old_target_roas_bps: int = Field(strict=True, ge=1)
    new_target_roas_bps: int = Field(strict=True, ge=1)

    @property
    def old_value(self) -> int:
        """Return the target found, in basis points."""
        return self.old_target_roas_bps

    @property
    def new_value(self) -> int:
        """Return the target wanted, in basis points."""
        return self.new_target_roas_bps

    @property
    def is_money_change(self) -> bool:
        """Return True: a target moves spend as much as a bid does."""
        return True


class SetTargetCpa(_ActionBase):
    """Set the CPA target of a Smart Bidding campaign, ad group or portfolio strategy (Meta: a cost cap).

    The lever where the strategy bids to a cost per conversion (Google target CPA and maximize
    conversions with a target; Meta `COST_CAP`, whose `bid_amount` is the cost per result); a raise
    loosens delivery (more spend), a cut tightens it.
    """

    kind: Literal["set_target_cpa"] = "set_target_cpa"
    old_target_cpa_micros: Micros
    new_target_cpa_micros: Micros

    @property
    def old_value(self) -> int:
        """Return the target found, in micros."""
        return self.old_target_cpa_micros

    @property
    def new_value(self) -> int:
        """Return the target wanted, in micros."""
        return self.new_target_cpa_micros

    @property
    def is_money_change(self) -> bool:
        """Return True: a CPA target is money."""
        return True


class PauseCreative(_ActionBase):
    """Pause a creative (ad)."""

    kind: Literal["pause_creative"] = "pause_creative"
    old_status: Status
    new_status: Literal[Status.PAUSED] = Status.PAUSED

    @property
    def old_value(self) -> str:
        """Return the status found."""
        return self.old_status.value

    @property
    def new_value(self) -> str:
        """Return the status wanted."""
        return self.new_status.value


class EnableCreative(_ActionBase):
    """Enable a paused creative (ad)."""

    kind: Literal["enable_creative"] = "enable_creative"
    old_status: Status
    new_status: Literal[Status.ENABLED] = Status.ENABLED

    @property
    def old_value(self) -> str:
        """Return the status found."""
        return self.old_status.value

    @property
    def new_value(self) -> str:
        """Return the status wanted."""
        return self.new_status.value


class AddNegativeKeyword(_ActionBase):
    """Add a negative keyword to an ad group (`entity` is the ad group or campaign)."""

    kind: Literal["add_negative_keyword"] = "add_negative_keyword"
    text: str = Field(min_length=1, max_length=80)
    match_type: MatchType = MatchType.EXACT

    @property
    def old_value(self) -> None:
        """Return None: the negative did not exist."""
        return None

    @property
    def new_value(self) -> str:
        """Return the negative's text and match type."""
        return f"-[{self.match_type.value}] {self.text}"


class AddKeyword(_ActionBase):
    """Add a keyword to an ad group (`entity` is the ad group) with a starting bid."""

    kind: Literal["add_keyword"] = "add_keyword"
    text: str = Field(min_length=1, max_length=80)
    match_type: MatchType = MatchType.EXACT
    cpc_bid_micros: Micros

    @property
    def old_value(self) -> None:
        """Return None: the keyword did not exist."""
        return None

    @property
    def new_value(self) -> str:
        """Return the keyword's text and match type."""
        return f"[{self.match_type.value}] {self.text}"

    @property
    def is_money_change(self) -> bool:
        """Return True: a new keyword starts spending at its bid."""
        return True


Action = Annotated[
    SetBudget
    | SetBid
    | SetTargetRoas
    | SetTargetCpa
    | PauseCreative
    | EnableCreative
    | AddNegativeKeyword
    | AddKeyword,
    Field(discriminator="kind"),
]
"""Any action, discriminated by `kind`."""

ACTION_ADAPTER: TypeAdapter[Action] = TypeAdapter(Action)
"""Validate or dump an `Action` from JSON or dicts."""

TARGET_KINDS: dict[str, tuple[EntityKind, ...]] = {
    "set_budget": (EntityKind.CAMPAIGN, EntityKind.AD_GROUP),
    "set_bid": (EntityKind.KEYWORD, EntityKind.AD_GROUP),
    "set_target_roas": (EntityKind.CAMPAIGN, EntityKind.AD_GROUP, EntityKind.BIDDING_STRATEGY),
    "set_target_cpa": (EntityKind.CAMPAIGN, EntityKind.AD_GROUP, EntityKind.BIDDING_STRATEGY),
    "pause_creative": (EntityKind.CREATIVE,),
    "enable_creative": (EntityKind.CREATIVE,),
    "add_negative_keyword": (EntityKind.AD_GROUP, EntityKind.CAMPAIGN),
    "add_keyword": (EntityKind.AD_GROUP,),
}
"""The entity kinds each action kind may target; anything else is blocked by the filter."""

"""Turn bidloop actions into Google Ads `MutateOperation`s, and read their results back.

Every update carries an explicit field mask naming the field it sets, so a value of 0 (or an enum's
zero) is still written; `protobuf_helpers.field_mask` would silently drop it (platform-apis.md §1.2).
Money goes out as micros rounded *down* to the currency's billable unit, as Google reports it in
`currency_constant.billable_unit_micros` ("Billed amounts should be multiples of this value",
https://developers.google.com/google-ads/api/reference/rpc/v26/CurrencyConstant); rounding down never
exceeds what the guardrails allowed.

Bids and targets go where the bidding strategy in force reads them (`StrategyContext`): a CPC bid only
under manual CPC (v26 `AdGroup.cpc_bid_micros`: "used when the ad group's effective bidding strategy is
Manual CPC ... ignored if the ad group's campaign is using a portfolio bidding strategy"); a ROAS or CPA
target on the field of the campaign's own strategy type (the strategy fields are one `oneof`: writing
another type's field would switch the campaign's strategy), on the portfolio `BiddingStrategy` when the
campaign uses one, or as an ad-group override.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from google.ads.googleads.v26.enums.types.ad_group_ad_status import AdGroupAdStatusEnum
from google.ads.googleads.v26.enums.types.ad_group_criterion_status import AdGroupCriterionStatusEnum
from google.ads.googleads.v26.enums.types.keyword_match_type import KeywordMatchTypeEnum
from google.ads.googleads.v26.services.types.google_ads_service import MutateOperation, MutateOperationResponse
from google.protobuf.field_mask_pb2 import FieldMask

from bidloop.core.actions import (
    Action,
    AddKeyword,
    AddNegativeKeyword,
    EnableCreative,
    PauseCreative,
    SetBid,
    SetBudget,
    SetTargetCpa,
    SetTargetRoas,
)
from bidloop.core.entities import BiddingStrategy, EntityKind, MatchType

__all__ = [
    "MANUAL_CPC_TYPES",
    "MAX_OPERATIONS_PER_MUTATE",
    "ROAS_BPS_PER_UNIT",
    "CustomPeriodBudget",
    "PlannedOperation",
    "StrategyContext",
    "UnsupportedActionError",
    "bidding_strategy_of",
    "keyword_key",
    "masked_value",
    "plan_operation",
    "read_back_text",
    "result_resource_name",
    "roas_to_bps",
    "round_down_to_unit",
    "split_pair_id",
    "update_mask_paths",
]

MAX_OPERATIONS_PER_MUTATE = 10_000
"""Google's limit on operations in one mutate request (`RequestError.TOO_MANY_MUTATE_OPERATIONS`)."""

ROAS_BPS_PER_UNIT = 10_000
"""bidloop's `target_roas_bps` per unit of Google's `target_roas` double (3.5 = 350 % = 35,000 bps)."""

MANUAL_CPC_TYPES = frozenset({"MANUAL_CPC", "ENHANCED_CPC"})
"""`BiddingStrategyType`s under which Google reads the ad group's and keyword's `cpc_bid_micros`."""

_STRATEGIES = {
    "MANUAL_CPC": BiddingStrategy.MANUAL_CPC,
    "ENHANCED_CPC": BiddingStrategy.MANUAL_CPC,
    "TARGET_ROAS": BiddingStrategy.TARGET_ROAS,
    "TARGET_CPA": BiddingStrategy.TARGET_CPA,
    "MAXIMIZE_CONVERSIONS": BiddingStrategy.MAXIMIZE_CONVERSIONS,
    "MAXIMIZE_CONVERSION_VALUE": BiddingStrategy.MAXIMIZE_CONVERSION_VALUE,
}
# The field that holds each strategy type's target, on a Campaign and on a BiddingStrategy alike.
_ROAS_FIELDS = {"TARGET_ROAS": "target_roas", "MAXIMIZE_CONVERSION_VALUE": "maximize_conversion_value"}
_CPA_FIELDS = {"TARGET_CPA": "target_cpa", "MAXIMIZE_CONVERSIONS": "maximize_conversions"}

_MATCH_TYPES = {
    MatchType.EXACT: KeywordMatchTypeEnum.KeywordMatchType.EXACT,
    MatchType.PHRASE: KeywordMatchTypeEnum.KeywordMatchType.PHRASE,
    MatchType.BROAD: KeywordMatchTypeEnum.KeywordMatchType.BROAD,
}


class UnsupportedActionError(ValueError):
    """An action this client cannot express as a Google Ads operation (reported as a `failed` result)."""


@dataclass(frozen=True)
class PlannedOperation:
    """One action ready to send.

    Attributes:
        action: The cleared action.
        operation: The `MutateOperation` for `GoogleAdsService.Mutate`.
        resource_name: The resource updated, or the parent (ad group / campaign) a criterion is created in.
        expected: The value the platform should hold afterwards, as read-back text
            (micros as digits, `enabled`/`paused`, or the keyword as `negative|MATCH|text`).
        is_create: True for creates, which are not idempotent (read back before any resend).
    """

    action: Action
    operation: MutateOperation
    resource_name: str
    expected: str
    is_create: bool = False


def bidding_strategy_of(type_name: str) -> BiddingStrategy:
    """Map a Google `BiddingStrategyType` name to bidloop's `BiddingStrategy` (unknown types: OTHER)."""
    return _STRATEGIES.get(type_name, BiddingStrategy.OTHER)


def roas_to_bps(target_roas: float) -> int:
    """Return Google's `target_roas` double (3.5 = 350 %) in bidloop's basis points (35,000)."""
    return round(target_roas * ROAS_BPS_PER_UNIT)


def round_down_to_unit(micros: int, unit_micros: int) -> int:
    """Round micros down to a multiple of the currency's billable unit (never above the decision)."""
    if unit_micros <= 0:
        raise UnsupportedActionError(f"the currency's billable unit {unit_micros} is not positive")
    return micros - micros % unit_micros


@dataclass(frozen=True)
class StrategyContext:
    """The bidding strategies in force for the entities of an apply, as looked up just before it.

    Attributes:
        campaign_types: Campaign id -> `campaign.bidding_strategy_type` name (a portfolio's type for
            campaigns that use one).
        campaign_portfolios: Campaign id -> id of the portfolio `BiddingStrategy` it uses.
        ad_group_campaigns: Ad group id -> its campaign id.
        portfolio_types: Portfolio strategy id -> its `bidding_strategy.type` name.
    """

    campaign_types: dict[str, str]
    campaign_portfolios: dict[str, str]
    ad_group_campaigns: dict[str, str]
    portfolio_types: dict[str, str]

    def campaign_of(self, kind: EntityKind, entity_id: str) -> str | None:
        """Return the campaign id of a campaign, ad group or `ad_group~id` keyword, if known."""
        if kind is EntityKind.CAMPAIGN:
            return entity_id
        return self.ad_group_campaigns.get(entity_id.partition("~")[0])


@dataclass(frozen=True)
class CustomPeriodBudget:
    """A CUSTOM_PERIOD ("total") campaign budget as the client found it before a SetBudget.

    Attributes:
        spent_micros: Cost since the campaign's start (metrics.cost_micros).
        days_left: Days left in the flight, today included (at least 1).
    """

    spent_micros: int
    days_left: int


def split_pair_id(entity_id: str, what: str) -> tuple[str, str]:
    """Split bidloop's `"{ad_group_id}~{child_id}"` keyword/creative id into its two numeric parts.

    Raises:
        UnsupportedActionError: If the id is not two numbers joined by `~`.
    """
    parent, sep, child = entity_id.partition("~")
    if not sep or not parent.isdigit() or not child.isdigit():
        raise UnsupportedActionError(
            f"{what} id {entity_id!r} is not of the form '<ad_group_id>~<id>' as read from Google Ads"
        )
    return parent, child


def _numeric(entity_id: str, what: str) -> str:
    if not entity_id.isdigit():
        raise UnsupportedActionError(f"{what} id {entity_id!r} is not a Google Ads id (digits only)")
    return entity_id


def _keyword_key(negative: bool, match_type: MatchType, text: str) -> str:
    return f"{'negative' if negative else 'positive'}|{match_type.value}|{text.strip().lower()}"


def plan_operation(
    action: Action,
    *,
    customer_id: str,
    unit_micros: int,
    budget_resource_by_campaign: dict[str, str],
    strategies: StrategyContext | None = None,
    custom_period_budgets: dict[str, CustomPeriodBudget] | None = None,
) -> PlannedOperation:
    """Build the mutate operation for one action.

    Args:
        action: A cleared action for this account.
        customer_id: The Google customer id (10 digits).
        unit_micros: The account currency's `billable_unit_micros`; money is rounded down to it.
        budget_resource_by_campaign: Campaign id -> `customers/{cid}/campaignBudgets/{id}`, for budget actions.
        strategies: The strategies in force, required for bids and targets (None: refuse them).
        custom_period_budgets: Campaign id -> its CUSTOM_PERIOD budget, for budget actions on one.

    Raises:
        UnsupportedActionError: If the action kind or its target kind has no Google Ads equivalent,
            the campaign's budget is unknown, or the bidding strategy in force ignores the lever.
    """
    ref = action.entity
    op = MutateOperation()
    if isinstance(action, SetBudget):
        if ref.kind is not EntityKind.CAMPAIGN:
            raise UnsupportedActionError(f"Google Ads budgets belong to campaigns, not to a {ref.kind.value}")
        resource = budget_resource_by_campaign.get(ref.entity_id)
        if resource is None:
            raise UnsupportedActionError(f"campaign {ref.entity_id} was not found or has no campaign budget")
        custom = (custom_period_budgets or {}).get(ref.entity_id)
        op.campaign_budget_operation.update.resource_name = resource
        if custom is not None:
            # A total budget: what remains is spread over the days left, so the new daily rate times
            # the days left is what must remain; the total is that plus what was spent.
            wanted = custom.spent_micros + action.new_daily_budget_micros * custom.days_left
            total_micros = round_down_to_unit(wanted, unit_micros)
            op.campaign_budget_operation.update.total_amount_micros = total_micros
            op.campaign_budget_operation.update_mask = FieldMask(paths=["total_amount_micros"])
            return PlannedOperation(action, op, resource, str(total_micros))
        amount_micros = round_down_to_unit(action.new_daily_budget_micros, unit_micros)
        op.campaign_budget_operation.update.amount_micros = amount_micros
        op.campaign_budget_operation.update_mask = FieldMask(paths=["amount_micros"])
        return PlannedOperation(action, op, resource, str(amount_micros))
    if isinstance(action, SetBid):
        _require_manual_cpc(action, strategies)
        bid_micros = round_down_to_unit(action.new_cpc_bid_micros, unit_micros)
        if ref.kind is EntityKind.KEYWORD:
            ad_group_id, criterion_id = split_pair_id(ref.entity_id, "keyword")
            resource = f"customers/{customer_id}/adGroupCriteria/{ad_group_id}~{criterion_id}"
            op.ad_group_criterion_operation.update.resource_name = resource
            op.ad_group_criterion_operation.update.cpc_bid_micros = bid_micros
            op.ad_group_criterion_operation.update_mask = FieldMask(paths=["cpc_bid_micros"])
        elif ref.kind is EntityKind.AD_GROUP:
            resource = f"customers/{customer_id}/adGroups/{_numeric(ref.entity_id, 'ad group')}"
            op.ad_group_operation.update.resource_name = resource
            op.ad_group_operation.update.cpc_bid_micros = bid_micros
            op.ad_group_operation.update_mask = FieldMask(paths=["cpc_bid_micros"])
        else:
            raise UnsupportedActionError(f"Google Ads CPC bids belong to keywords or ad groups, not a {ref.kind.value}")
        return PlannedOperation(action, op, resource, str(bid_micros))
    if isinstance(action, SetTargetRoas | SetTargetCpa):
        return _plan_target(action, op, customer_id=customer_id, unit_micros=unit_micros, strategies=strategies)
    if isinstance(action, PauseCreative | EnableCreative):
        if ref.kind is not EntityKind.CREATIVE:
            raise UnsupportedActionError(f"ad status changes target creatives, not a {ref.kind.value}")
        ad_group_id, ad_id = split_pair_id(ref.entity_id, "ad")
        resource = f"customers/{customer_id}/adGroupAds/{ad_group_id}~{ad_id}"
        paused = isinstance(action, PauseCreative)
        status = AdGroupAdStatusEnum.AdGroupAdStatus.PAUSED if paused else AdGroupAdStatusEnum.AdGroupAdStatus.ENABLED
        op.ad_group_ad_operation.update.resource_name = resource
        op.ad_group_ad_operation.update.status = status  # type: ignore[assignment]  # proto-plus enum members are ints to mypy
        op.ad_group_ad_operation.update_mask = FieldMask(paths=["status"])
        return PlannedOperation(action, op, resource, "paused" if paused else "enabled")
    if isinstance(action, AddNegativeKeyword):
        expected = _keyword_key(True, action.match_type, action.text)
        if ref.kind is EntityKind.AD_GROUP:
            parent = f"customers/{customer_id}/adGroups/{_numeric(ref.entity_id, 'ad group')}"
            create = op.ad_group_criterion_operation.create
            create.ad_group = parent
        elif ref.kind is EntityKind.CAMPAIGN:
            parent = f"customers/{customer_id}/campaigns/{_numeric(ref.entity_id, 'campaign')}"
            create = op.campaign_criterion_operation.create
            create.campaign = parent
        else:
            raise UnsupportedActionError(f"negative keywords go on ad groups or campaigns, not a {ref.kind.value}")
        create.negative = True
        create.keyword.text = action.text
        create.keyword.match_type = _MATCH_TYPES[action.match_type]  # type: ignore[assignment]  # proto-plus enum members are ints to mypy
        return PlannedOperation(action, op, parent, expected, is_create=True)
    if isinstance(action, AddKeyword):
        if ref.kind is not EntityKind.AD_GROUP:
            raise UnsupportedActionError(f"keywords are added to ad groups, not a {ref.kind.value}")
        parent = f"customers/{customer_id}/adGroups/{_numeric(ref.entity_id, 'ad group')}"
        create = op.ad_group_criterion_operation.create
        create.ad_group = parent
        create.status = AdGroupCriterionStatusEnum.AdGroupCriterionStatus.ENABLED  # type: ignore[assignment]  # proto-plus enum members are ints to mypy
        create.keyword.text = action.text
        create.keyword.match_type = _MATCH_TYPES[action.match_type]  # type: ignore[assignment]  # proto-plus enum members are ints to mypy
        campaign_id = strategies.campaign_of(EntityKind.AD_GROUP, ref.entity_id) if strategies else None
        type_name = strategies.campaign_types.get(campaign_id or "") if strategies else None
        if type_name is None or type_name in MANUAL_CPC_TYPES:
            # Under Smart Bidding Google would store the bid and ignore it: none is sent there.
            create.cpc_bid_micros = round_down_to_unit(action.cpc_bid_micros, unit_micros)
        return PlannedOperation(action, op, parent, _keyword_key(False, action.match_type, action.text), is_create=True)
    raise UnsupportedActionError(f"action kind {action.kind!r} is not supported on Google Ads")


def _require_manual_cpc(action: SetBid, strategies: StrategyContext | None) -> None:
    """Refuse a CPC bid where the campaign's strategy does not read it (nothing is sent).

    Raises:
        UnsupportedActionError: If the strategy is unknown or is not manual CPC.
    """
    ref = action.entity
    if strategies is None:
        raise UnsupportedActionError("the bidding strategy of this entity's campaign is unknown; no bid is sent")
    campaign_id = strategies.campaign_of(ref.kind, ref.entity_id)
    type_name = strategies.campaign_types.get(campaign_id or "")
    if campaign_id is None or type_name is None:
        return  # not found: Google answers RESOURCE_NOT_FOUND for it, per action
    if type_name not in MANUAL_CPC_TYPES:
        portfolio = strategies.campaign_portfolios.get(campaign_id)
        where = f"portfolio strategy {portfolio}" if portfolio else "its own strategy"
        raise UnsupportedActionError(
            f"campaign {campaign_id} bids with {type_name} ({where}): Google ignores cpc_bid_micros under "
            "Smart Bidding, so the bid is not sent; change the strategy's target instead"
        )


def _plan_target(
    action: SetTargetRoas | SetTargetCpa,
    op: MutateOperation,
    *,
    customer_id: str,
    unit_micros: int,
    strategies: StrategyContext | None,
) -> PlannedOperation:
    ref = action.entity
    roas = isinstance(action, SetTargetRoas)
    what = "ROAS" if roas else "CPA"
    fields = _ROAS_FIELDS if roas else _CPA_FIELDS
    if isinstance(action, SetTargetRoas):
        value: float | int = action.new_target_roas_bps / ROAS_BPS_PER_UNIT
        expected = str(action.new_target_roas_bps)
        leaf = "target_roas"
    else:
        value = round_down_to_unit(action.new_target_cpa_micros, unit_micros)
        expected = str(value)
        leaf = "target_cpa_micros"
    if strategies is None:
        raise UnsupportedActionError(f"the bidding strategy of {ref.key} is unknown; no target {what} is sent")
    if ref.kind is EntityKind.BIDDING_STRATEGY:
        strategy_id = _numeric(ref.entity_id, "bidding strategy")
        type_name = strategies.portfolio_types.get(strategy_id)
        if type_name not in fields:
            raise UnsupportedActionError(
                f"portfolio strategy {strategy_id} is {type_name or 'not found'}, which has no target {what}"
            )
        resource = f"customers/{customer_id}/biddingStrategies/{strategy_id}"
        update = op.bidding_strategy_operation.update
        update.resource_name = resource
        setattr(getattr(update, fields[type_name]), leaf, value)
        op.bidding_strategy_operation.update_mask = FieldMask(paths=[f"{fields[type_name]}.{leaf}"])
        return PlannedOperation(action, op, resource, expected)
    campaign_id = strategies.campaign_of(ref.kind, ref.entity_id)
    type_name = strategies.campaign_types.get(campaign_id or "")
    portfolio = strategies.campaign_portfolios.get(campaign_id or "")
    if campaign_id is None or type_name is None:
        raise UnsupportedActionError(f"{ref.kind.value} {ref.entity_id} or its campaign was not found")
    if type_name not in fields:
        raise UnsupportedActionError(
            f"campaign {campaign_id} bids with {type_name}, which has no target {what}; nothing is sent"
        )
    if ref.kind is EntityKind.CAMPAIGN:
        if portfolio:
            raise UnsupportedActionError(
                f"campaign {campaign_id} uses portfolio strategy {portfolio}: its target {what} is set there"
            )
        resource = f"customers/{customer_id}/campaigns/{_numeric(ref.entity_id, 'campaign')}"
        update_c = op.campaign_operation.update
        update_c.resource_name = resource
        setattr(getattr(update_c, fields[type_name]), leaf, value)
        op.campaign_operation.update_mask = FieldMask(paths=[f"{fields[type_name]}.{leaf}"])
        return PlannedOperation(action, op, resource, expected)
    if ref.kind is EntityKind.AD_GROUP:
        if roas and portfolio:
            # v26 AdGroup.target_roas: "If the campaign is using a portfolio bidding strategy, this field
            # cannot be set and attempting to do so will result in an error."
            raise UnsupportedActionError(
                f"ad group {ref.entity_id}'s campaign uses portfolio strategy {portfolio}: "
                "Google refuses an ad-group target ROAS there; change the portfolio's target"
            )
        resource = f"customers/{customer_id}/adGroups/{_numeric(ref.entity_id, 'ad group')}"
        update_g = op.ad_group_operation.update
        update_g.resource_name = resource
        setattr(update_g, leaf, value)
        op.ad_group_operation.update_mask = FieldMask(paths=[leaf])
        return PlannedOperation(action, op, resource, expected)
    raise UnsupportedActionError(
        f"target {what} goes on campaigns, ad groups or portfolio strategies, not {ref.kind.value}"
    )


def keyword_key(negative: bool, match_type_name: str, text: str) -> str:
    """Return the read-back text of a keyword criterion from the API's enum name (e.g. `EXACT`)."""
    return _keyword_key(negative, MatchType(match_type_name.lower()), text)


def read_back_text(planned: PlannedOperation, response: MutateOperationResponse) -> str | None:
    """Return the value the platform reports for a mutated resource (`MUTABLE_RESOURCE`), as read-back text.

    Returns None when the response carries no resource (e.g. a server answering `RESOURCE_NAME_ONLY`).
    """
    op = planned.operation
    if "campaign_budget_operation" in op:
        result = response.campaign_budget_result
        if "campaign_budget" not in result:
            return None
        if "total_amount_micros" in op.campaign_budget_operation.update_mask.paths:
            return str(result.campaign_budget.total_amount_micros)
        return str(result.campaign_budget.amount_micros)
    if "ad_group_operation" in op:
        result_ag = response.ad_group_result
        if "ad_group" not in result_ag:
            return None
        return masked_value(result_ag.ad_group, op.ad_group_operation.update_mask.paths)
    if "campaign_operation" in op:
        result_c = response.campaign_result
        if "campaign" not in result_c:
            return None
        return masked_value(result_c.campaign, op.campaign_operation.update_mask.paths)
    if "bidding_strategy_operation" in op:
        result_bs = response.bidding_strategy_result
        if "bidding_strategy" not in result_bs:
            return None
        return masked_value(result_bs.bidding_strategy, op.bidding_strategy_operation.update_mask.paths)
    if "ad_group_ad_operation" in op:
        result_ad = response.ad_group_ad_result
        return result_ad.ad_group_ad.status.name.lower() if "ad_group_ad" in result_ad else None
    if "ad_group_criterion_operation" in op:
        result_cr = response.ad_group_criterion_result
        if "ad_group_criterion" not in result_cr:
            return None
        crit = result_cr.ad_group_criterion
        if planned.is_create:
            return keyword_key(crit.negative, crit.keyword.match_type.name, crit.keyword.text)
        return str(crit.cpc_bid_micros)
    if "campaign_criterion_operation" in op:
        result_cc = response.campaign_criterion_result
        if "campaign_criterion" not in result_cc:
            return None
        crit_c = result_cc.campaign_criterion
        return keyword_key(crit_c.negative, crit_c.keyword.match_type.name, crit_c.keyword.text)
    return None


_UPDATE_OPERATIONS = (
    "campaign_budget_operation",
    "campaign_operation",
    "bidding_strategy_operation",
    "ad_group_operation",
    "ad_group_criterion_operation",
    "ad_group_ad_operation",
)


def update_mask_paths(operation: MutateOperation) -> list[str]:
    """Return the field mask of an update operation (empty for creates)."""
    for field in _UPDATE_OPERATIONS:
        if field in operation:
            return list(getattr(operation, field).update_mask.paths)
    return []


def masked_value(resource: object, paths: Iterable[str]) -> str:
    """Return the read-back text of the one field an update's mask names (ROAS in basis points)."""
    path = next(iter(paths))
    value: object = resource
    for part in path.split("."):
        value = getattr(value, part)
    if path.endswith("target_roas"):
        return str(roas_to_bps(float(value)))  # type: ignore[arg-type]
    return str(value)


def result_resource_name(response: MutateOperationResponse) -> str:
    """Return the resource name a mutate result names ("" when the operation failed)."""
    for field in (
        "campaign_budget_result",
        "campaign_result",
        "bidding_strategy_result",
        "ad_group_result",
        "ad_group_ad_result",
        "ad_group_criterion_result",
        "campaign_criterion_result",
    ):
        if field in response:
            return str(getattr(response, field).resource_name)
    return ""

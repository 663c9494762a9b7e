"""Turn bidloop actions into Google Ads `MutateOperation`s, and read their results back.

Every update carries an explicit field mask naming the field it sets, so a value of 0 (or an enum's
zero) is still written; `protobuf_helpers.field_mask` would silently drop it (platform-apis.md §1.2).
Money goes out as micros rounded *down* to the currency's minimum unit, which Google requires for
budgets and bids and which never exceeds what the guardrails allowed.
"""

from __future__ import annotations

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
)
from bidloop.core.entities import EntityKind, MatchType
from bidloop.core.money import round_down_to_currency_unit

__all__ = [
    "MAX_OPERATIONS_PER_MUTATE",
    "PlannedOperation",
    "UnsupportedActionError",
    "keyword_key",
    "plan_operation",
    "read_back_text",
    "result_resource_name",
    "split_pair_id",
]

MAX_OPERATIONS_PER_MUTATE = 10_000
"""Google's limit on operations in one mutate request (`RequestError.TOO_MANY_MUTATE_OPERATIONS`)."""

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
    currency: str,
    budget_resource_by_campaign: dict[str, str],
) -> PlannedOperation:
    """Build the mutate operation for one action.

    Args:
        action: A cleared action for this account.
        customer_id: The Google customer id (10 digits).
        currency: The account currency, for rounding money down to its minimum unit.
        budget_resource_by_campaign: Campaign id -> `customers/{cid}/campaignBudgets/{id}`, for budget actions.

    Raises:
        UnsupportedActionError: If the action kind or its target kind has no Google Ads equivalent, or
            the campaign's budget is unknown.
    """
    ref = action.entity
    op = MutateOperation()
    if isinstance(action, SetBudget):
        if ref.kind is not EntityKind.CAMPAIGN:
            raise UnsupportedActionError(f"Google Ads budgets belong to campaigns, not to a {ref.kind.value}")
        resource = budget_resource_by_campaign.get(ref.entity_id)
        if resource is None:
            raise UnsupportedActionError(f"campaign {ref.entity_id} was not found or has no campaign budget")
        amount_micros = round_down_to_currency_unit(action.new_daily_budget_micros, currency)
        op.campaign_budget_operation.update.resource_name = resource
        op.campaign_budget_operation.update.amount_micros = amount_micros
        op.campaign_budget_operation.update_mask = FieldMask(paths=["amount_micros"])
        return PlannedOperation(action, op, resource, str(amount_micros))
    if isinstance(action, SetBid):
        bid_micros = round_down_to_currency_unit(action.new_cpc_bid_micros, currency)
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
        create.cpc_bid_micros = round_down_to_currency_unit(action.cpc_bid_micros, currency)
        return PlannedOperation(action, op, parent, _keyword_key(False, action.match_type, action.text), is_create=True)
    raise UnsupportedActionError(f"action kind {action.kind!r} is not supported on Google Ads")


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
        return str(result.campaign_budget.amount_micros) if "campaign_budget" in result else None
    if "ad_group_operation" in op:
        result_ag = response.ad_group_result
        return str(result_ag.ad_group.cpc_bid_micros) if "ad_group" in result_ag else None
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


def result_resource_name(response: MutateOperationResponse) -> str:
    """Return the resource name a mutate result names ("" when the operation failed)."""
    for field in (
        "campaign_budget_result",
        "ad_group_result",
        "ad_group_ad_result",
        "ad_group_criterion_result",
        "campaign_criterion_result",
    ):
        if field in response:
            return str(getattr(response, field).resource_name)
    return ""

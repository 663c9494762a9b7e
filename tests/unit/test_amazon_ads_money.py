"""Money at the Amazon edge: micros become major-unit floats going out and come back exact, both ways."""

from __future__ import annotations

from typing import Any

from ad_api.base import ApiResponse
from hypothesis import given, settings
from hypothesis import strategies as st

from bidloop.core.actions import AgentName, SetBid, SetBudget
from bidloop.core.clearance import _issue_clearance
from bidloop.core.decisions import WriteStatus
from bidloop.core.entities import EntityKind, EntityRef, Platform
from bidloop.core.money import MAX_MICROS, major_to_micros, micros_to_major
from bidloop.core.settings import AccountConfig
from bidloop.tools.amazon_ads import AmazonAdsClient, AmazonApis
from bidloop.tools.amazon_ads._reports import row_metrics

PROFILE = "5500000005"


class _Recorder:
    """An injected SDK object that records request bodies and echoes them back as a 207 success."""

    timeout = 5.0

    def __init__(self, resource: str, id_field: str, singular: str) -> None:
        self.credentials = {"profile_id": PROFILE}
        self.bodies: list[dict[str, Any]] = []
        self._resource, self._id_field, self._singular = resource, id_field, singular

    def _echo(self, body: dict[str, Any], prefer: bool = False) -> ApiResponse:
        self.bodies.append(body)
        items = body[self._resource]
        success = [{"index": i, self._id_field: it[self._id_field], self._singular: it} for i, it in enumerate(items)]
        return ApiResponse({self._resource: {"success": success, "error": []}})

    edit_keyword = edit_campaigns = _echo


def _client(currency: str = "USD", marketplace: str = "NA") -> tuple[AmazonAdsClient, _Recorder, _Recorder]:
    keywords = _Recorder("keywords", "keywordId", "keyword")
    campaigns = _Recorder("campaigns", "campaignId", "campaign")
    apis = AmazonApis(campaigns, None, keywords, None, None, None, None)
    apis.all = lambda: [keywords, campaigns]  # type: ignore[method-assign]
    account = AccountConfig(
        id="a", platform=Platform.AMAZON_ADS, platform_account_id=PROFILE, marketplace=marketplace, currency=currency
    )
    return AmazonAdsClient(account, apis, sleep=lambda s: None), keywords, campaigns


def _bid(new: int) -> Any:
    ref = EntityRef(platform=Platform.AMAZON_ADS, account_id="a", kind=EntityKind.KEYWORD, entity_id="1")
    action = SetBid(
        action_id="b", entity=ref, agent=AgentName.BID_SHIFTER, reason="t", old_cpc_bid_micros=1, new_cpc_bid_micros=new
    )
    return _issue_clearance(action, verdict="allowed", rule_id="test")


@settings(max_examples=200, deadline=None)
@given(
    st.integers(min_value=20_000, max_value=10**12)
)  # from the US minimum bid, $0.02 (see the client's MIN_BID_MAJOR)
def test_a_bid_goes_out_rounded_down_to_the_cent_and_reads_back_exactly(micros: int) -> None:
    client, keywords, _ = _client()
    [result] = client.apply("a", [_bid(micros)])
    sent = keywords.bodies[-1]["keywords"][0]["bid"]
    assert isinstance(sent, float)
    sent_micros = major_to_micros(sent)
    assert sent_micros <= micros < sent_micros + 10_000  # never more than decided, less by under a cent
    assert sent_micros % 10_000 == 0
    assert result.status is WriteStatus.APPLIED and result.read_back == str(sent_micros)


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=1_000_000, max_value=10**12))
def test_a_budget_in_whole_yen_never_carries_a_fraction_of_a_yen(micros: int) -> None:
    client, _, campaigns = _client(currency="JPY", marketplace="JP")
    ref = EntityRef(platform=Platform.AMAZON_ADS, account_id="a", kind=EntityKind.CAMPAIGN, entity_id="9")
    action = SetBudget(
        action_id="s",
        entity=ref,
        agent=AgentName.BID_SHIFTER,
        reason="t",
        old_daily_budget_micros=1_000_000,
        new_daily_budget_micros=micros,
    )
    client.apply("a", [_issue_clearance(action, verdict="allowed", rule_id="test")])
    sent = campaigns.bodies[-1]["campaigns"][0]["budget"]["budget"]
    assert sent == float(micros // 1_000_000)


@settings(max_examples=300)
@given(st.integers(min_value=0, max_value=MAX_MICROS // 1000))
def test_report_money_in_major_units_comes_back_as_the_same_micros(micros: int) -> None:
    row = {"cost": micros_to_major(micros), "sales7d": micros_to_major(micros), "clicks": 1}
    metrics = row_metrics(row)
    assert metrics.cost_micros == micros and metrics.conversion_value_micros == micros


def test_negative_sales_from_refunds_count_as_zero_not_as_an_error() -> None:
    assert row_metrics({"cost": 1.5, "sales7d": -3.25}).conversion_value_micros == 0

"""Amazon accounts as Amazon runs them: lagging reports, duplicate report requests, per-item throttling,
bid multipliers, the profile's currency and time zone, regional login, per-currency limits.

Each platform fact is quoted next to the value it pins, with where it comes from. The fake server encodes
these rules itself; the client under test is the real one over the real python-amazon-ad-api SDK.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
from ad_api.base import AdvertisingApiException, Marketplaces

from bidloop.core.actions import AddKeyword, AgentName, SetBid
from bidloop.core.clearance import _issue_clearance
from bidloop.core.decisions import WriteStatus
from bidloop.core.entities import BiddingStrategy, EntityKind, EntityRef, EntityState, MatchType, Platform, Status
from bidloop.core.errors import AccountMismatchError, ErrorCode, PlatformError
from bidloop.core.metrics import Metrics
from bidloop.core.settings import AccountConfig
from bidloop.core.snapshot import Snapshot
from bidloop.testing.amazon_ads.fake_server import FakeAmazonAdsServer
from bidloop.tools.amazon_ads import AmazonAdsClient, AmazonApis, AmazonCredentials, check_access
from bidloop.tools.amazon_ads._failures import duplicate_report_id
from bidloop.tools.amazon_ads.client import bid_multiplier_max

ACCOUNT_ID = "amz"
PROFILE_ID = "3300000002"
AS_OF = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
HOUR_S = 3600.0


def ref(kind: EntityKind, entity_id: str) -> EntityRef:
    return EntityRef(platform=Platform.AMAZON_ADS, account_id=ACCOUNT_ID, kind=kind, entity_id=entity_id)


def seed(currency: str = "USD") -> Snapshot:
    """One enabled campaign on pace: 31.50 of a 50.00 budget spent by 15:00 (62.5 % of the day), 40 clicks."""
    day = Metrics(
        impressions=1500, clicks=40, cost_micros=31_500_000, conversions=4.0, conversion_value_micros=90_000_000
    )
    week = Metrics(
        impressions=7000, clicks=280, cost_micros=350_000_000, conversions=21.0, conversion_value_micros=700_000_000
    )
    entities = [
        EntityState(
            ref=ref(EntityKind.CAMPAIGN, "11"),
            name="Brand",
            campaign_id="11",
            daily_budget_micros=50_000_000,
            today=day,
            trailing_7d=week,
        ),
        EntityState(
            ref=ref(EntityKind.CAMPAIGN, "12"),
            name="Generic",
            campaign_id="12",
            status=Status.PAUSED,
            daily_budget_micros=20_000_000,
        ),
        EntityState(
            ref=ref(EntityKind.AD_GROUP, "21"), name="G", parent_id="11", campaign_id="11", cpc_bid_micros=700_000
        ),
        EntityState(
            ref=ref(EntityKind.KEYWORD, "31"),
            name="acme mug",
            parent_id="21",
            campaign_id="11",
            cpc_bid_micros=850_000,
            text="acme mug",
            match_type=MatchType.EXACT,
            today=day,
            trailing_7d=week,
        ),
        EntityState(
            ref=ref(EntityKind.KEYWORD, "32"),
            name="acme cup",
            parent_id="21",
            campaign_id="11",
            cpc_bid_micros=600_000,
            text="acme cup",
            match_type=MatchType.PHRASE,
        ),
    ]
    return Snapshot(
        account_id=ACCOUNT_ID, platform=Platform.AMAZON_ADS, currency=currency, as_of=AS_OF, entities=entities
    )


@pytest.fixture(autouse=True)
def _no_wrapper_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("AD_API_CLIENT_ID", "AD_API_CLIENT_SECRET", "AD_API_REFRESH_TOKEN", "AD_API_PROFILE_ID"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def srv():
    with FakeAmazonAdsServer.from_snapshot(seed(), profile_id=PROFILE_ID) as server:
        yield server


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make_client(
    srv: FakeAmazonAdsServer, *, currency: str = "USD", marketplace: str = "NA", time_zone: str = "UTC", **kwargs: Any
) -> AmazonAdsClient:
    account = AccountConfig(
        id=ACCOUNT_ID,
        platform=Platform.AMAZON_ADS,
        backend="live",
        platform_account_id=PROFILE_ID,
        marketplace=marketplace,
        currency=currency,
        time_zone=time_zone,
        endpoint=srv.address,
    )
    credentials = AmazonCredentials(
        client_id="client-1", client_secret="s", refresh_token="Atzr|r", access_token="fake-access-token"
    )
    apis = AmazonApis.build(
        credentials, profile_id=PROFILE_ID, marketplace=Marketplaces[marketplace], timeout_s=5.0, endpoint=srv.address
    )
    kwargs.setdefault("sleep", Sleeps())
    return AmazonAdsClient(account, apis, now=lambda: AS_OF, timeout_s=5.0, **kwargs)


def cleared(*actions: Any) -> list[Any]:
    return [_issue_clearance(a, verdict="allowed", rule_id="test") for a in actions]


def bid(keyword_id: str, new: int) -> SetBid:
    return SetBid(
        action_id=f"bid-{keyword_id}-{new}",
        entity=ref(EntityKind.KEYWORD, keyword_id),
        agent=AgentName.BID_SHIFTER,
        reason="test",
        old_cpc_bid_micros=1,
        new_cpc_bid_micros=new,
    )


def pace_ratio(snapshot: Snapshot, campaign_id: str) -> float:
    """Return today's spend over what on-pace delivery would have spent (1.0 = on pace), as the agents judge it."""
    campaign = snapshot.by_id(EntityKind.CAMPAIGN)[campaign_id]
    return campaign.today.cost_micros / ((campaign.daily_budget_micros or 1) * snapshot.expected_spend_fraction)


# ----------------------------------------------------------------------------------- report lag (#4)


def test_today_is_incomplete_and_pace_is_judged_at_the_budget_usage_reading(srv: FakeAmazonAdsServer) -> None:
    # Fake defaults: same-day report rows 3 h behind, budget usage evaluated 15 min behind the clock.
    snap = make_client(srv).read_snapshot(ACCOUNT_ID)

    assert snap.today_complete is False
    assert snap.today_through == datetime(2026, 3, 10, 14, 45, tzinfo=UTC)
    assert snap.expected_spend_fraction == pytest.approx(14.75 / 24)
    campaign = snap.by_id(EntityKind.CAMPAIGN)["11"]
    assert campaign.today.cost_micros == 30_975_000  # budgetUsagePercent 61.95 x budget 50.00, read at 14:45
    assert campaign.today.clicks == 32  # clicks only come from the report: 12 of 15 hours
    assert pace_ratio(snap, "11") == pytest.approx(1.008, abs=1e-3)  # on pace, as the account really is
    assert snap.notes and "known up to 14:45" in snap.notes[-1]


def test_without_budget_usage_pace_is_judged_at_the_reports_cut_off_never_at_the_clock(
    srv: FakeAmazonAdsServer,
) -> None:
    srv.inject("server_error", times=None, path="POST /sp/campaigns/budget/usage", status=503)
    snap = make_client(srv).read_snapshot(ACCOUNT_ID)

    # "Report generation can take as long as 3 hours" (python-amazon-ad-api ad_api/api/reports.py, get_report).
    assert snap.today_through == datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    assert snap.expected_spend_fraction == pytest.approx(0.5)
    assert snap.by_id(EntityKind.CAMPAIGN)["11"].today.cost_micros == 25_200_000  # 12 of 15 hours reported
    assert pace_ratio(snap, "11") >= 1.0  # judged against the wall clock it would read 0.81: "behind pace"
    assert any("budget usage unavailable" in note for note in snap.notes)


def test_a_usage_reading_from_before_midnight_is_yesterdays_figure_and_is_not_used(srv: FakeAmazonAdsServer) -> None:
    srv.budget_usage_lag_s = 16 * HOUR_S  # evaluated at 23:00 yesterday
    snap = make_client(srv).read_snapshot(ACCOUNT_ID)
    assert snap.today_through == datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    assert snap.by_id(EntityKind.CAMPAIGN)["11"].today.cost_micros == 25_200_000


def test_the_fakes_budget_usage_answers_in_amazons_schema(srv: FakeAmazonAdsServer) -> None:
    content_type = "application/vnd.spcampaignbudgetusage.v1+json"  # python-amazon-ad-api sp/campaigns_budget_usage.py
    answer = requests.post(
        f"{srv.address}/sp/campaigns/budget/usage",
        json={"campaignIds": ["11"]},
        timeout=5,
        headers={
            "Authorization": "Bearer fake-access-token",
            "Amazon-Advertising-API-ClientId": "c",
            "Amazon-Advertising-API-Scope": PROFILE_ID,
            "Content-Type": content_type,
        },
    ).json()
    # BudgetUsageCampaign: budgetUsagePercent, campaignId, usageUpdatedTimestamp, index, budget
    # (SP 3.0 OpenAPI, as generated in vancodocton/AmazonAdsGenerated docs/BudgetUsageCampaign.md).
    [item] = answer["success"]
    assert set(item) == {"budgetUsagePercent", "campaignId", "usageUpdatedTimestamp", "index", "budget"}
    assert item["usageUpdatedTimestamp"] == "2026-03-10T14:45:00.000Z" and item["budget"] == 50.0


# ----------------------------------------------------------------------------------- reports (#11)


def test_the_425_duplicate_answer_names_the_pending_report() -> None:
    # Reporting v3 body for a repeated request (quoted in the platform review, finding #11).
    exc = AdvertisingApiException(425, {"code": "425", "detail": "The Request is a duplicate of : 4c6e-91ab-77"}, {})
    assert duplicate_report_id(exc) == "4c6e-91ab-77"
    assert duplicate_report_id(AdvertisingApiException(400, {"code": "400", "detail": "bad"}, {})) is None


def test_a_report_not_ready_in_time_fails_retryably_after_the_configured_wait_only(srv: FakeAmazonAdsServer) -> None:
    srv.report_polls_until_ready = 1000
    sleeps = Sleeps()
    client = make_client(srv, sleep=sleeps, report_poll_interval_s=10.0, report_max_wait_s=30.0)
    with pytest.raises(PlatformError) as info:
        client.read_snapshot(ACCOUNT_ID)
    assert info.value.retryable and "still pending" in info.value.message
    assert sum(sleeps) == 30.0


def test_the_next_snapshot_polls_the_pending_reports_instead_of_asking_again(srv: FakeAmazonAdsServer) -> None:
    srv.report_polls_until_ready = 1000
    client = make_client(srv, report_poll_interval_s=10.0, report_max_wait_s=10.0)
    with pytest.raises(PlatformError):
        client.read_snapshot(ACCOUNT_ID)
    srv.report_polls_until_ready = 0
    snap = client.read_snapshot(ACCOUNT_ID)
    assert srv.requests_by_endpoint["POST /reporting/reports"] == 4
    assert snap.by_id(EntityKind.CAMPAIGN)["11"].trailing_7d.cost_micros == 350_000_000


def test_a_second_run_of_the_same_day_reuses_the_report_amazon_calls_a_duplicate(srv: FakeAmazonAdsServer) -> None:
    make_client(srv).read_snapshot(ACCOUNT_ID)
    first_ids = {r.path.rsplit("/", 1)[1] for r in srv.requests if r.endpoint == "GET /reporting/reports/{id}"}

    snap = make_client(srv).read_snapshot(ACCOUNT_ID)  # a new process: nothing remembered

    asked = srv.requests_by_endpoint["POST /reporting/reports"]
    polled = {r.path.rsplit("/", 1)[1] for r in srv.requests if r.endpoint == "GET /reporting/reports/{id}"}
    assert asked == 8 and len(srv.reports) == 4  # four answered 425 "duplicate of", no new report
    assert polled == first_ids
    assert snap.by_id(EntityKind.CAMPAIGN)["11"].trailing_7d.cost_micros == 350_000_000


# ----------------------------------------------------------------------------------- per-item errors (#14)


def test_an_item_amazon_throttled_is_sent_again_alone_and_applied(srv: FakeAmazonAdsServer) -> None:
    srv.inject("partial_failure", ids=["31"], reason="THROTTLED")
    results = make_client(srv).apply(ACCOUNT_ID, cleared(bid("31", 900_000), bid("32", 650_000)))

    assert [r.status for r in results] == [WriteStatus.APPLIED, WriteStatus.APPLIED]
    puts = [r.body["keywords"] for r in srv.requests if r.endpoint == "PUT /sp/keywords"]
    assert [[item["keywordId"] for item in body] for body in puts] == [["31", "32"], ["31"]]
    assert srv.entities["keywords"]["31"]["bid"] == 0.9


def test_the_fake_names_a_throttled_item_the_sp_v3_way(srv: FakeAmazonAdsServer) -> None:
    srv.inject("partial_failure", indices=[0], reason="THROTTLED")
    body = requests.put(
        f"{srv.address}/sp/keywords",
        json={"keywords": [{"keywordId": "31", "bid": 0.5}]},
        timeout=5,
        headers={
            "Authorization": "Bearer fake-access-token",
            "Amazon-Advertising-API-ClientId": "c",
            "Amazon-Advertising-API-Scope": PROFILE_ID,
            "Content-Type": "application/vnd.spKeyword.v3+json",
        },
    ).json()
    [entry] = body["keywords"]["error"][0]["errors"]
    # SponsoredProductsKeywordMutationErrorSelector.throttledError; SponsoredProductsThrottledErrorReason = "THROTTLED"
    # (SP 3.0 OpenAPI, vancodocton/AmazonAdsGenerated docs/SponsoredProductsThrottledError.md).
    assert entry["errorType"] == "throttledError"
    assert entry["errorValue"]["throttledError"]["reason"] == "THROTTLED"


def test_an_internal_server_error_item_is_final_as_the_schema_says(srv: FakeAmazonAdsServer) -> None:
    # "Error that represents non-retryable API service error. Sending the same request will result in another
    # error." (SponsoredProductsInternalServerError, SP 3.0 OpenAPI, vancodocton/AmazonAdsGenerated docs).
    srv.inject("partial_failure", ids=["31"], reason="INTERNAL_ERROR")
    [result] = make_client(srv).apply(ACCOUNT_ID, cleared(bid("31", 900_000)))
    assert result.status is WriteStatus.FAILED and not result.retryable
    assert "INTERNAL_ERROR" in result.message
    assert srv.requests_by_endpoint["PUT /sp/keywords"] == 1


# ----------------------------------------------------------------------------------- bid multipliers (#12)


def test_up_and_down_bidding_with_placement_adjustments_is_read_as_the_largest_factor(srv: FakeAmazonAdsServer) -> None:
    srv.set_dynamic_bidding("11", "AUTO_FOR_SALES", {"PLACEMENT_TOP": 50, "PLACEMENT_PRODUCT_PAGE": 20})
    snap = make_client(srv).read_snapshot(ACCOUNT_ID)
    # Top of search: x1.5 (adjustment) x2.0 (up and down, "by a maximum of 100% for top of search").
    for kind, entity_id in ((EntityKind.CAMPAIGN, "11"), (EntityKind.AD_GROUP, "21"), (EntityKind.KEYWORD, "31")):
        assert snap.by_id(kind)[entity_id].bid_multiplier_max == pytest.approx(3.0), entity_id
    assert snap.by_id(EntityKind.CAMPAIGN)["12"].bid_multiplier_max == pytest.approx(1.0)  # down only


@pytest.mark.parametrize(
    ("dynamic_bidding", "factor"),
    [
        # "a 50% adjustment on a $1.00 bid would increase the bid to $1.50" (SponsoredProductsPlacement, SP 3.0)
        ({"strategy": "MANUAL", "placementBidding": [{"placement": "PLACEMENT_TOP", "percentage": 50}]}, 1.5),
        ({"strategy": "MANUAL", "placementBidding": [{"placement": "PLACEMENT_TOP", "percentage": 900}]}, 10.0),
        ({"strategy": "LEGACY_FOR_SALES", "placementBidding": []}, 1.0),  # down only never raises a bid
        ({"strategy": "AUTO_FOR_SALES", "placementBidding": []}, 2.0),
        (
            {
                "strategy": "AUTO_FOR_SALES",
                "placementBidding": [{"placement": "PLACEMENT_PRODUCT_PAGE", "percentage": 100}],
            },
            3.0,
        ),
        (None, None),
    ],
)
def test_bid_multiplier_max_follows_amazons_bidding_rules(dynamic_bidding: Any, factor: float | None) -> None:
    assert bid_multiplier_max(dynamic_bidding) == (pytest.approx(factor) if factor is not None else None)


def test_sp_bids_are_manual_cpc_on_campaigns_ad_groups_and_keywords(srv: FakeAmazonAdsServer) -> None:
    snap = make_client(srv).read_snapshot(ACCOUNT_ID)
    for kind in (EntityKind.CAMPAIGN, EntityKind.AD_GROUP, EntityKind.KEYWORD):
        assert {e.bidding_strategy for e in snap.of_kind(kind)} == {BiddingStrategy.MANUAL_CPC}, kind


# ----------------------------------------------------------------------------------- identity (#9)


def test_a_profile_in_another_currency_stops_the_read_naming_both_values(srv: FakeAmazonAdsServer) -> None:
    srv.currency = "EUR"  # GET /v2/profiles `currencyCode`
    with pytest.raises(AccountMismatchError) as info:
        make_client(srv).read_snapshot(ACCOUNT_ID)
    assert "'USD'" in info.value.message and "'EUR'" in info.value.message
    assert srv.requests_by_endpoint["POST /reporting/reports"] == 0  # nothing read into the wrong units


def test_a_profile_in_another_time_zone_stops_the_read(srv: FakeAmazonAdsServer) -> None:
    srv.time_zone = "America/Los_Angeles"  # GET /v2/profiles `timezone`
    with pytest.raises(AccountMismatchError) as info:
        make_client(srv).read_snapshot(ACCOUNT_ID)
    assert info.value.field == "time_zone" and info.value.reported == "America/Los_Angeles"


def test_accounts_check_reports_a_currency_mismatch(srv: FakeAmazonAdsServer) -> None:
    srv.currency = "EUR"
    client = make_client(srv)
    check = check_access(client.account, client=client)
    assert not check.ok and check.error_code == ErrorCode.ACCOUNT_MISMATCH.value and "EUR" in check.message


# ----------------------------------------------------------------------------------- lower-risk items (#15)


def test_a_missing_state_is_read_as_paused(srv: FakeAmazonAdsServer) -> None:
    del srv.entities["campaigns"]["11"]["state"]
    campaign = make_client(srv).read_back(ACCOUNT_ID, [ref(EntityKind.CAMPAIGN, "11")])[
        ref(EntityKind.CAMPAIGN, "11").key
    ]
    assert campaign.status is Status.PAUSED


def test_a_5xx_after_a_keyword_was_created_is_read_back_not_resent(srv: FakeAmazonAdsServer) -> None:
    srv.inject("timeout_after_write", path="POST /sp/keywords", mode="status", status=502)
    action = AddKeyword(
        action_id="add-1",
        entity=ref(EntityKind.AD_GROUP, "21"),
        agent=AgentName.KEYWORD_INSIGHT,
        reason="test",
        text="acme travel mug",
        match_type=MatchType.EXACT,
        cpc_bid_micros=500_000,
    )
    [result] = make_client(srv).apply(ACCOUNT_ID, cleared(action))
    assert result.status is WriteStatus.APPLIED and "read-back" in result.message
    assert srv.requests_by_endpoint["POST /sp/keywords"] == 1
    assert [k["keywordText"] for k in srv.entities["keywords"].values()].count("acme travel mug") == 1


@pytest.mark.parametrize(
    ("marketplace", "host"),
    [
        # LWA token endpoints per region (https://developer.amazon.com/docs/amazon-data-portability/use-refresh-token.html;
        # python-amazon-ad-api ad_api/base/marketplaces.py `token_url`).
        ("NA", "api.amazon.com"),
        ("UK", "api.amazon.co.uk"),
        ("DE", "api.amazon.co.uk"),
        ("JP", "api.amazon.co.jp"),
    ],
)
def test_the_refresh_token_is_exchanged_in_the_marketplaces_region(marketplace: str, host: str) -> None:
    credentials = AmazonCredentials(client_id="c", client_secret="s", refresh_token="r")
    apis = AmazonApis.build(credentials, profile_id="1", marketplace=Marketplaces[marketplace])
    assert {(api._auth.host, api._auth.path) for api in apis.all()} == {(host, "/auth/o2/token")}


def test_a_yen_bid_above_a_thousand_is_sent_and_a_fraction_of_a_yen_never_is() -> None:
    with FakeAmazonAdsServer.from_snapshot(seed("JPY"), profile_id=PROFILE_ID, currency="JPY") as server:
        client = make_client(server, currency="JPY", marketplace="JP")
        results = client.apply(ACCOUNT_ID, cleared(bid("31", 1_500_000_000), bid("32", 12_500_000)))
        assert [r.status for r in results] == [WriteStatus.APPLIED, WriteStatus.APPLIED]
        assert server.entities["keywords"]["31"]["bid"] == 1500.0  # the USD ceiling of 1,000 is not Amazon's in yen
        assert server.entities["keywords"]["32"]["bid"] == 12.0  # whole yen, rounded down


def test_the_fake_refuses_an_amount_with_a_fraction_of_a_yen() -> None:
    with FakeAmazonAdsServer.from_snapshot(seed("JPY"), profile_id=PROFILE_ID, currency="JPY") as server:
        answer = requests.put(
            f"{server.address}/sp/keywords",
            json={"keywords": [{"keywordId": "31", "bid": 12.5}]},
            timeout=5,
            headers={
                "Authorization": "Bearer fake-access-token",
                "Amazon-Advertising-API-ClientId": "c",
                "Amazon-Advertising-API-Scope": PROFILE_ID,
                "Content-Type": "application/vnd.spKeyword.v3+json",
            },
        ).json()
        assert answer["keywords"]["error"][0]["errors"][0]["errorType"] == "malformedValueError"


def test_today_through_is_in_the_accounts_time_zone() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    with FakeAmazonAdsServer.from_snapshot(seed(), profile_id=PROFILE_ID, time_zone="Europe/Berlin") as server:
        server.inject("server_error", times=None, path="POST /sp/campaigns/budget/usage", status=503)
        snap = make_client(server, time_zone="Europe/Berlin").read_snapshot(ACCOUNT_ID)
    assert snap.today_through is not None and snap.today_through.utcoffset() == timedelta(hours=1)
    assert snap.today_through == datetime(2026, 3, 10, 13, 0, tzinfo=berlin)  # 16:00 local, 3 h of report lag
    assert snap.expected_spend_fraction == pytest.approx(13 / 24)

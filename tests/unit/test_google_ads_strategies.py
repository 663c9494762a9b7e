"""Google Ads as it is run: bidding strategies and their targets, total budgets, currency units, identity, quota.

Every platform fact these tests rely on is quoted next to its value with its source: the v26 protos
installed with google-ads 34.0.0 (`google/ads/googleads/v26/...`), Google's reference pages, or the
Google Ads API team's forum answers.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import google.api_core.grpc_helpers
import grpc
import pytest
from google.ads.googleads.client import GoogleAdsClient
from google.ads.googleads.v26.services.types.google_ads_service import MutateGoogleAdsRequest, MutateOperation
from google.oauth2.credentials import Credentials
from google.protobuf.field_mask_pb2 import FieldMask

from bidloop.core.actions import AddKeyword, AgentName, SetBid, SetBudget, SetTargetCpa, SetTargetRoas
from bidloop.core.clearance import _issue_clearance
from bidloop.core.decisions import WriteStatus
from bidloop.core.entities import BiddingStrategy, BudgetPeriod, EntityKind, EntityRef, MatchType, Platform
from bidloop.core.errors import AccountMismatchError
from bidloop.core.metrics import Metrics
from bidloop.core.settings import AccountConfig
from bidloop.testing.google_ads.fake_server import BILLABLE_UNIT_MICROS, FakeGoogleAdsServer
from bidloop.tools._retry import RetryPolicy
from bidloop.tools.google_ads import GoogleAdsPlatformClient

CUSTOMER = "1234567890"
NOW = datetime(2025, 3, 10, 18, 0, tzinfo=UTC)
TODAY = date(2025, 3, 10)
MANUAL, TROAS, MAXCONV, MAXVALUE, PORTFOLIO_A, PORTFOLIO_B, TOTAL = 11, 22, 33, 44, 55, 66, 77
PORTFOLIO = 9001


def _seed(srv: FakeGoogleAdsServer) -> FakeGoogleAdsServer:
    srv.add_campaign(MANUAL, "Manual", daily_budget_micros=50_000_000)
    srv.add_campaign(TROAS, "tROAS", daily_budget_micros=80_000_000, strategy_type="TARGET_ROAS", target_roas=3.5)
    srv.add_campaign(
        MAXCONV, "Max conv", daily_budget_micros=40_000_000, strategy_type="MAXIMIZE_CONVERSIONS",
        target_cpa_micros=25_000_000,
    )  # fmt: skip
    srv.add_campaign(
        MAXVALUE, "Max value", daily_budget_micros=30_000_000, strategy_type="MAXIMIZE_CONVERSION_VALUE",
        target_roas=4.0,
    )  # fmt: skip
    srv.add_portfolio(PORTFOLIO, "Shared tROAS", "TARGET_ROAS", target_roas=2.5)
    srv.add_campaign(PORTFOLIO_A, "Portfolio A", daily_budget_micros=20_000_000, portfolio_id=PORTFOLIO)
    srv.add_campaign(PORTFOLIO_B, "Portfolio B", daily_budget_micros=20_000_000, portfolio_id=PORTFOLIO)
    srv.add_campaign(
        TOTAL, "Total budget", daily_budget_micros=None, total_budget_micros=1_000_000_000,
        start_date=date(2025, 3, 1), end_date=date(2025, 3, 19),
    )  # fmt: skip
    for campaign in (MANUAL, TROAS, MAXCONV, MAXVALUE, PORTFOLIO_A, PORTFOLIO_B, TOTAL):
        group = campaign * 100
        srv.add_ad_group(group, campaign, f"Group {campaign}", cpc_bid_micros=1_000_000)
        srv.add_keyword(group, 1, f"keyword {campaign}", cpc_bid_micros=1_200_000)
    srv.add_ad_group(TROAS * 100 + 1, TROAS, "Override", cpc_bid_micros=900_000, target_roas=5.0)
    # The total-budget campaign spent 100.00 on each of 9 days since its start, today included.
    for offset in range(9):
        srv.set_metrics(("campaign", TOTAL), date(2025, 3, 2 + offset), Metrics(cost_micros=100_000_000))
    return srv


@pytest.fixture
def insecure_channels(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        google.api_core.grpc_helpers,
        "create_channel",
        lambda target, **kw: grpc.insecure_channel(target, options=kw.get("options")),
    )


@pytest.fixture
def server() -> Iterator[FakeGoogleAdsServer]:
    with _seed(FakeGoogleAdsServer(CUSTOMER, today=TODAY)) as srv:
        yield srv


def _sdk(address: str) -> GoogleAdsClient:
    return GoogleAdsClient(
        credentials=Credentials(token="oauth-token"),
        developer_token="dev-token",
        endpoint=address,
        use_proto_plus=True,
        version="v26",
    )


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def _make_client(
    srv: FakeGoogleAdsServer, sleeps: Sleeps, *, currency: str = "USD", time_zone: str = "UTC"
) -> GoogleAdsPlatformClient:
    account = AccountConfig(
        id="g1",
        platform=Platform.GOOGLE_ADS,
        backend="live",
        platform_account_id=srv.customer_id,
        currency=currency,
        time_zone=time_zone,
    )
    return GoogleAdsPlatformClient(
        _sdk(srv.address),
        [account],
        timeout_s=10.0,
        sleep=sleeps,
        now=lambda: NOW,
        retry_policy=RetryPolicy(max_attempts=4, initial_wait_s=0.5, max_wait_s=30, defer_above_s=120),
    )


@pytest.fixture
def client(server: FakeGoogleAdsServer, sleeps: Sleeps, insecure_channels: None) -> GoogleAdsPlatformClient:
    return _make_client(server, sleeps)


def _ref(kind: EntityKind, entity_id: str) -> EntityRef:
    return EntityRef(platform=Platform.GOOGLE_ADS, account_id="g1", kind=kind, entity_id=entity_id)


def _cleared(*actions: object) -> list:
    return [_issue_clearance(a, verdict="allowed", rule_id="test") for a in actions]  # type: ignore[arg-type]


def _common(kind: EntityKind, entity_id: str, action_id: str) -> dict:
    return {"action_id": action_id, "entity": _ref(kind, entity_id), "agent": AgentName.BID_SHIFTER, "reason": "t"}


def _roas(kind: EntityKind, entity_id: str, old: int, new: int, action_id: str = "a-roas") -> SetTargetRoas:
    return SetTargetRoas(**_common(kind, entity_id, action_id), old_target_roas_bps=old, new_target_roas_bps=new)


def _cpa(kind: EntityKind, entity_id: str, old: int, new: int, action_id: str = "a-cpa") -> SetTargetCpa:
    return SetTargetCpa(**_common(kind, entity_id, action_id), old_target_cpa_micros=old, new_target_cpa_micros=new)


def _bid(kind: EntityKind, entity_id: str, new: int, action_id: str = "a-bid") -> SetBid:
    return SetBid(**_common(kind, entity_id, action_id), old_cpc_bid_micros=1_200_000, new_cpc_bid_micros=new)


def _budget(campaign: int, old: int, new: int) -> SetBudget:
    return SetBudget(
        **_common(EntityKind.CAMPAIGN, str(campaign), "a-budget"),
        old_daily_budget_micros=old,
        new_daily_budget_micros=new,
    )


# ---------------------------------------------------------------- reading strategies and targets


def test_each_campaign_carries_the_strategy_google_reports_and_its_target_in_basis_points(
    client: GoogleAdsPlatformClient,
) -> None:
    campaigns = client.read_snapshot("g1").by_id(EntityKind.CAMPAIGN)
    assert campaigns[str(MANUAL)].bidding_strategy is BiddingStrategy.MANUAL_CPC
    troas = campaigns[str(TROAS)]
    # v26 common TargetRoas.target_roas is a double, "The chosen revenue (based on conversion data) per unit of
    # spend" (common/types/bidding.py): 3.5 is 350 %, bidloop's 35,000 basis points.
    assert (troas.bidding_strategy, troas.target_roas_bps) == (BiddingStrategy.TARGET_ROAS, 35_000)
    maxconv = campaigns[str(MAXCONV)]
    assert (maxconv.bidding_strategy, maxconv.target_cpa_micros) == (BiddingStrategy.MAXIMIZE_CONVERSIONS, 25_000_000)
    maxvalue = campaigns[str(MAXVALUE)]
    assert (maxvalue.bidding_strategy, maxvalue.target_roas_bps) == (BiddingStrategy.MAXIMIZE_CONVERSION_VALUE, 40_000)
    assert all(c.cpc_bid_micros is None for c in campaigns.values())


def test_portfolio_strategies_are_entities_with_their_target_and_the_campaigns_they_serve_name_them(
    client: GoogleAdsPlatformClient,
) -> None:
    snap = client.read_snapshot("g1")
    [portfolio] = snap.of_kind(EntityKind.BIDDING_STRATEGY)
    assert portfolio.ref.entity_id == str(PORTFOLIO)
    assert (portfolio.bidding_strategy, portfolio.target_roas_bps) == (BiddingStrategy.TARGET_ROAS, 25_000)
    campaigns = snap.by_id(EntityKind.CAMPAIGN)
    for cid in (PORTFOLIO_A, PORTFOLIO_B):
        served = campaigns[str(cid)]
        assert served.bidding_strategy_id == str(PORTFOLIO)
        assert served.bidding_strategy is BiddingStrategy.TARGET_ROAS
        assert served.target_roas_bps is None  # the target lives on the portfolio, and is changed there
    assert campaigns[str(TROAS)].bidding_strategy_id is None


def test_ad_groups_and_keywords_inherit_the_strategy_and_carry_a_bid_only_under_manual_cpc(
    client: GoogleAdsPlatformClient,
) -> None:
    snap = client.read_snapshot("g1")
    groups = snap.by_id(EntityKind.AD_GROUP)
    keywords = snap.by_id(EntityKind.KEYWORD)
    # v26 AdGroup.cpc_bid_micros (resources/types/ad_group.py): "This field is used when the ad group's effective
    # bidding strategy is Manual CPC. This field is not applicable and will be ignored if the ad group's campaign
    # is using a portfolio bidding strategy."
    assert groups[str(MANUAL * 100)].cpc_bid_micros == 1_000_000
    assert keywords[f"{MANUAL * 100}~1"].cpc_bid_micros == 1_200_000
    for campaign in (TROAS, MAXCONV, MAXVALUE, PORTFOLIO_A):
        group = groups[str(campaign * 100)]
        keyword = keywords[f"{campaign * 100}~1"]
        assert group.cpc_bid_micros is None and keyword.cpc_bid_micros is None
        assert group.bidding_strategy is keyword.bidding_strategy is not BiddingStrategy.MANUAL_CPC
        assert group.bidding_strategy is not None


def test_an_ad_group_target_override_is_read_on_the_ad_group(client: GoogleAdsPlatformClient) -> None:
    groups = client.read_snapshot("g1").by_id(EntityKind.AD_GROUP)
    # v26 AdGroup.target_roas: "This field lets you override the target ROAS specified in the campaign's
    # bidding strategy".
    assert groups[str(TROAS * 100 + 1)].target_roas_bps == 50_000
    assert groups[str(TROAS * 100)].target_roas_bps is None


# ---------------------------------------------------------------- bids only where Google reads them


def test_a_bid_under_smart_bidding_is_refused_and_never_sent(
    client: GoogleAdsPlatformClient, server: FakeGoogleAdsServer
) -> None:
    results = client.apply(
        "g1",
        _cleared(
            _bid(EntityKind.KEYWORD, f"{TROAS * 100}~1", 1_500_000, "kw"),
            _bid(EntityKind.AD_GROUP, str(PORTFOLIO_A * 100), 1_500_000, "ag"),
        ),
    )
    assert [r.status for r in results] == [WriteStatus.FAILED, WriteStatus.FAILED]
    assert all("ignores cpc_bid_micros" in r.message and not r.retryable for r in results)
    assert server.request_count["Mutate"] == 0 and server.ignored_bid_writes == []
    assert server.keyword_bid_micros(TROAS * 100, 1) == 1_200_000


def test_a_bid_under_manual_cpc_is_sent_and_applied(
    client: GoogleAdsPlatformClient, server: FakeGoogleAdsServer
) -> None:
    [result] = client.apply("g1", _cleared(_bid(EntityKind.KEYWORD, f"{MANUAL * 100}~1", 1_500_000)))
    assert result.status is WriteStatus.APPLIED and result.read_back == "1500000"
    assert server.keyword_bid_micros(MANUAL * 100, 1) == 1_500_000 and server.ignored_bid_writes == []


def test_a_keyword_added_under_smart_bidding_is_created_without_a_bid(
    client: GoogleAdsPlatformClient, server: FakeGoogleAdsServer
) -> None:
    adds = [
        AddKeyword(
            **_common(EntityKind.AD_GROUP, str(campaign * 100), f"add-{campaign}"),
            text="new words",
            match_type=MatchType.PHRASE,
            cpc_bid_micros=1_000_000,
        )
        for campaign in (TROAS, MANUAL)
    ]
    results = client.apply("g1", _cleared(*adds))
    assert [r.status for r in results] == [WriteStatus.APPLIED, WriteStatus.APPLIED]
    [request] = [r.request for r in server.received if r.method == "Mutate"]
    sent_bids = [op.ad_group_criterion_operation.create.cpc_bid_micros for op in request.mutate_operations]
    assert sent_bids == [0, 1_000_000]
    assert server.ignored_bid_writes == []


# ---------------------------------------------------------------- targets on the strategy's own field


def test_a_target_roas_goes_on_the_field_of_the_campaigns_own_strategy_type(
    client: GoogleAdsPlatformClient, server: FakeGoogleAdsServer
) -> None:
    results = client.apply(
        "g1",
        _cleared(
            _roas(EntityKind.CAMPAIGN, str(TROAS), 35_000, 38_000, "troas"),
            _roas(EntityKind.CAMPAIGN, str(MAXVALUE), 40_000, 36_000, "maxvalue"),
        ),
    )
    assert [(r.status, r.read_back) for r in results] == [
        (WriteStatus.APPLIED, "38000"),
        (WriteStatus.APPLIED, "36000"),
    ]
    [request] = [r.request for r in server.received if r.method == "Mutate"]
    masks = [list(op.campaign_operation.update_mask.paths) for op in request.mutate_operations]
    assert masks == [["target_roas.target_roas"], ["maximize_conversion_value.target_roas"]]
    assert server.campaign_target(TROAS) == (3.8, None) and server.campaign_target(MAXVALUE) == (3.6, None)
    assert server.strategy_switches == []  # neither campaign's strategy changed
    assert server.campaign_strategy(MAXVALUE) == ("MAXIMIZE_CONVERSION_VALUE", None)


def test_a_target_cpa_on_maximize_conversions_goes_on_its_target_cpa_micros(
    client: GoogleAdsPlatformClient, server: FakeGoogleAdsServer
) -> None:
    [result] = client.apply("g1", _cleared(_cpa(EntityKind.CAMPAIGN, str(MAXCONV), 25_000_000, 27_504_321)))
    # Rounded down to USD's billable unit (10,000 micros), as every money amount sent.
    assert result.status is WriteStatus.APPLIED and result.read_back == "27500000"
    [request] = [r.request for r in server.received if r.method == "Mutate"]
    assert list(request.mutate_operations[0].campaign_operation.update_mask.paths) == [
        "maximize_conversions.target_cpa_micros"
    ]
    assert server.campaign_target(MAXCONV) == (None, 27_500_000)
    assert server.campaign_strategy(MAXCONV) == ("MAXIMIZE_CONVERSIONS", None)


def test_a_portfolio_target_is_set_on_the_bidding_strategy_not_on_its_campaigns(
    client: GoogleAdsPlatformClient, server: FakeGoogleAdsServer
) -> None:
    on_campaign, on_portfolio = client.apply(
        "g1",
        _cleared(
            _roas(EntityKind.CAMPAIGN, str(PORTFOLIO_A), 25_000, 27_000, "campaign"),
            _roas(EntityKind.BIDDING_STRATEGY, str(PORTFOLIO), 25_000, 27_000, "portfolio"),
        ),
    )
    assert on_campaign.status is WriteStatus.FAILED and f"portfolio strategy {PORTFOLIO}" in on_campaign.message
    assert on_portfolio.status is WriteStatus.APPLIED and on_portfolio.read_back == "27000"
    assert server.portfolio_target(PORTFOLIO) == (2.7, None)
    assert server.campaign_strategy(PORTFOLIO_A) == ("TARGET_ROAS", PORTFOLIO)


def test_an_ad_group_target_override_is_written_on_the_ad_group(
    client: GoogleAdsPlatformClient, server: FakeGoogleAdsServer
) -> None:
    [result] = client.apply("g1", _cleared(_roas(EntityKind.AD_GROUP, str(TROAS * 100 + 1), 50_000, 45_000)))
    assert result.status is WriteStatus.APPLIED and result.read_back == "45000"
    assert server.ad_group_target(TROAS * 100 + 1) == (4.5, None)


def test_a_target_the_strategy_does_not_have_is_refused_unsent(
    client: GoogleAdsPlatformClient, server: FakeGoogleAdsServer
) -> None:
    results = client.apply(
        "g1",
        _cleared(
            _roas(EntityKind.CAMPAIGN, str(MANUAL), 10_000, 20_000, "manual"),
            _cpa(EntityKind.CAMPAIGN, str(TROAS), 1_000_000, 2_000_000, "troas"),
        ),
    )
    assert all(r.status is WriteStatus.FAILED and "has no target" in r.message for r in results)
    assert server.request_count["Mutate"] == 0 and server.strategy_switches == []


# ---------------------------------------------------------------- total (CUSTOM_PERIOD) budgets


def test_a_total_budget_is_a_lifetime_budget_whose_daily_rate_is_what_remains_over_the_days_left(
    client: GoogleAdsPlatformClient,
) -> None:
    total = client.read_snapshot("g1").by_id(EntityKind.CAMPAIGN)[str(TOTAL)]
    # v26 CampaignBudget.total_amount_micros "is used only when the CampaignBudget period is set to CUSTOM_PERIOD".
    assert total.budget_period is BudgetPeriod.LIFETIME
    assert total.lifetime_budget_micros == 1_000_000_000
    assert total.budget_remaining_micros == 1_000_000_000 - 9 * 100_000_000
    assert total.flight_start is not None and total.flight_start.date() == date(2025, 3, 1)
    assert total.flight_end is not None and total.flight_end.date() == date(2025, 3, 19)
    # 100.00 left over 10 days (10th to 19th, today included).
    assert total.daily_budget_micros == 10_000_000


def test_a_budget_change_on_a_total_budget_moves_the_total_so_the_daily_rate_changes_as_decided(
    client: GoogleAdsPlatformClient, server: FakeGoogleAdsServer
) -> None:
    [result] = client.apply("g1", _cleared(_budget(TOTAL, 10_000_000, 12_000_000)))
    assert result.status is WriteStatus.APPLIED
    # spent 900.00 + 12.00 a day for the 10 days left
    assert server.budget_total_micros(TOTAL) == 900_000_000 + 10 * 12_000_000
    assert client.read_snapshot("g1").by_id(EntityKind.CAMPAIGN)[str(TOTAL)].daily_budget_micros == 12_000_000


def test_the_fake_refuses_a_daily_amount_on_a_total_budget(
    server: FakeGoogleAdsServer, insecure_channels: None
) -> None:
    op = MutateOperation()
    budget_id = server._state.campaigns[TOTAL].budget_id
    op.campaign_budget_operation.update.resource_name = f"customers/{CUSTOMER}/campaignBudgets/{budget_id}"
    op.campaign_budget_operation.update.amount_micros = 10_000_000
    op.campaign_budget_operation.update_mask = FieldMask(paths=["amount_micros"])
    errors = _send(server, op)
    # campaign_budget_error.proto (v26): BUDGET_AMOUNT_MUST_BE_UNSET_FOR_CUSTOM_BUDGET_PERIOD = 21
    assert errors == ["BUDGET_AMOUNT_MUST_BE_UNSET_FOR_CUSTOM_BUDGET_PERIOD"]


# ---------------------------------------------------------------- the fake enforces what Google does


def _send(server: FakeGoogleAdsServer, *ops: MutateOperation) -> list[str]:
    """Send raw operations with partial failure; return the error enum names (empty if all applied)."""
    from google.ads.googleads.v26.errors.types.errors import GoogleAdsFailure

    service = _sdk(server.address).get_service("GoogleAdsService")
    response = service.mutate(
        request=MutateGoogleAdsRequest(customer_id=CUSTOMER, mutate_operations=list(ops), partial_failure=True)
    )
    names = []
    for detail in response.partial_failure_error.details:
        for err in GoogleAdsFailure.deserialize(detail.value).errors:
            pb = type(err.error_code).pb(err.error_code)
            category = pb.WhichOneof("error_code")
            names.append(pb.DESCRIPTOR.fields_by_name[category].enum_type.values_by_number[getattr(pb, category)].name)
    return names


def test_the_fake_stores_a_bid_under_smart_bidding_but_records_it_as_ignored(
    server: FakeGoogleAdsServer, insecure_channels: None
) -> None:
    op = MutateOperation()
    op.ad_group_operation.update.resource_name = f"customers/{CUSTOMER}/adGroups/{TROAS * 100}"
    op.ad_group_operation.update.cpc_bid_micros = 2_000_000
    op.ad_group_operation.update_mask = FieldMask(paths=["cpc_bid_micros"])
    assert _send(server, op) == []
    assert server.ad_group_bid_micros(TROAS * 100) == 2_000_000
    assert server.ignored_bid_writes == [f"customers/{CUSTOMER}/adGroups/{TROAS * 100}"]


def test_the_fake_switches_a_campaigns_strategy_when_another_types_target_is_written(
    server: FakeGoogleAdsServer, insecure_channels: None
) -> None:
    # The strategy fields of v26 Campaign are one oneof (`campaign_bidding_strategy`): setting target_roas
    # on a manual-CPC campaign makes it a target-ROAS campaign.
    op = MutateOperation()
    op.campaign_operation.update.resource_name = f"customers/{CUSTOMER}/campaigns/{MANUAL}"
    op.campaign_operation.update.target_roas.target_roas = 2.0
    op.campaign_operation.update_mask = FieldMask(paths=["target_roas.target_roas"])
    assert _send(server, op) == []
    assert server.strategy_switches == [(MANUAL, "MANUAL_CPC", "TARGET_ROAS")]


def test_the_fake_refuses_to_change_a_portfolio_strategys_type_and_an_out_of_range_roas(
    server: FakeGoogleAdsServer, insecure_channels: None
) -> None:
    other_type = MutateOperation()
    other_type.bidding_strategy_operation.update.resource_name = f"customers/{CUSTOMER}/biddingStrategies/{PORTFOLIO}"
    other_type.bidding_strategy_operation.update.target_cpa.target_cpa_micros = 5_000_000
    other_type.bidding_strategy_operation.update_mask = FieldMask(paths=["target_cpa.target_cpa_micros"])
    too_low = MutateOperation()
    too_low.bidding_strategy_operation.update.resource_name = f"customers/{CUSTOMER}/biddingStrategies/{PORTFOLIO}"
    too_low.bidding_strategy_operation.update.target_roas.target_roas = 0.005
    too_low.bidding_strategy_operation.update_mask = FieldMask(paths=["target_roas.target_roas"])
    # bidding_strategy_error.proto: CANNOT_CHANGE_BIDDING_STRATEGY_TYPE; v26 TargetRoas.target_roas: "Value must
    # be between 0.01 and 1000.0, inclusive."
    assert _send(server, other_type, too_low) == ["CANNOT_CHANGE_BIDDING_STRATEGY_TYPE", "TOO_LOW"]
    assert server.portfolio_target(PORTFOLIO) == (2.5, None)


# ---------------------------------------------------------------- currency units


def test_the_fake_serves_googles_billable_units() -> None:
    # currency_constant.billable_unit_micros, "Billed amounts should be multiples of this value"
    # (https://developers.google.com/google-ads/api/reference/rpc/v26/CurrencyConstant): cents for USD, whole yen.
    assert BILLABLE_UNIT_MICROS["USD"] == 10_000
    assert BILLABLE_UNIT_MICROS["JPY"] == 1_000_000


def test_the_billable_unit_is_queried_once_per_client_and_budgets_are_rounded_down_to_it(
    server: FakeGoogleAdsServer, sleeps: Sleeps, insecure_channels: None
) -> None:
    client = _make_client(server, sleeps)
    client.apply("g1", _cleared(_budget(MANUAL, 50_000_000, 52_345_678)))
    client.apply("g1", _cleared(_budget(MANUAL, 52_340_000, 53_001_234)))
    queries = [r.request.query for r in server.received if r.method == "SearchStream"]
    assert sum("FROM currency_constant" in q for q in queries) == 1
    assert "currency_constant.code = 'USD'" in next(q for q in queries if "currency_constant" in q)
    assert server.budget_micros(MANUAL) == 53_000_000


def test_yen_accounts_send_whole_yen(sleeps: Sleeps, insecure_channels: None) -> None:
    with _seed(FakeGoogleAdsServer(CUSTOMER, currency="JPY", today=TODAY)) as srv:
        client = _make_client(srv, sleeps, currency="JPY")
        [result] = client.apply("g1", _cleared(_bid(EntityKind.KEYWORD, f"{MANUAL * 100}~1", 151_900_000)))
        assert result.status is WriteStatus.APPLIED and srv.keyword_bid_micros(MANUAL * 100, 1) == 151_000_000


def test_the_fake_rejects_a_budget_that_is_not_a_multiple_of_the_billable_unit(
    server: FakeGoogleAdsServer, insecure_channels: None
) -> None:
    op = MutateOperation()
    budget_id = server._state.campaigns[MANUAL].budget_id
    op.campaign_budget_operation.update.resource_name = f"customers/{CUSTOMER}/campaignBudgets/{budget_id}"
    op.campaign_budget_operation.update.amount_micros = 50_005_000
    op.campaign_budget_operation.update_mask = FieldMask(paths=["amount_micros"])
    assert _send(server, op) == ["NON_MULTIPLE_OF_MINIMUM_CURRENCY_UNIT"]


# ---------------------------------------------------------------- the account is the one configured


@pytest.mark.parametrize(
    ("currency", "time_zone", "field", "configured", "reported"),
    [
        ("EUR", "UTC", "currency", "EUR", "USD"),
        ("USD", "America/Los_Angeles", "time_zone", "America/Los_Angeles", "UTC"),
    ],
)
def test_a_currency_or_time_zone_other_than_the_accounts_stops_the_read_naming_both_values(
    server: FakeGoogleAdsServer,
    sleeps: Sleeps,
    insecure_channels: None,
    currency: str,
    time_zone: str,
    field: str,
    configured: str,
    reported: str,
) -> None:
    client = _make_client(server, sleeps, currency=currency, time_zone=time_zone)
    with pytest.raises(AccountMismatchError) as caught:
        client.read_snapshot("g1")
    assert (caught.value.field, caught.value.configured, caught.value.reported) == (field, configured, reported)
    assert configured in caught.value.message and reported in caught.value.message
    report = client.check_access()
    assert not report.ok and any(p.kind == f"{field}_mismatch" for p in report.problems)


# ---------------------------------------------------------------- quota errors by their details


def test_resource_exhausted_with_a_retry_delay_waits_that_delay_and_retries(
    client: GoogleAdsPlatformClient, server: FakeGoogleAdsServer, sleeps: Sleeps
) -> None:
    # QuotaErrorDetails.retry_delay: "Backoff period that customers should wait before sending next request."
    server.inject("quota", method="Mutate", code="RESOURCE_EXHAUSTED", retry_delay_s=30, rate_scope="ACCOUNT")
    [result] = client.apply("g1", _cleared(_budget(MANUAL, 50_000_000, 52_000_000)))
    assert result.status is WriteStatus.APPLIED and result.attempts == 2
    assert sleeps == [pytest.approx(30, abs=1.5)]


@pytest.mark.parametrize("code", ["RESOURCE_TEMPORARILY_EXHAUSTED", "EXCESSIVE_SHORT_TERM_QUERY_RESOURCE_CONSUMPTION"])
def test_short_term_quota_errors_are_retried_after_their_delay(
    client: GoogleAdsPlatformClient, server: FakeGoogleAdsServer, sleeps: Sleeps, code: str
) -> None:
    server.inject("quota", method="SearchStream", code=code, retry_delay_s=60, rate_scope="DEVELOPER")
    snap = client.read_snapshot("g1")
    assert snap.by_id(EntityKind.CAMPAIGN)[str(MANUAL)].daily_budget_micros == 50_000_000
    assert sleeps and sleeps[0] >= 60


def test_only_the_daily_operations_limit_defers_a_write_to_tomorrow(
    client: GoogleAdsPlatformClient, server: FakeGoogleAdsServer, sleeps: Sleeps
) -> None:
    server.inject("daily_quota", method="Mutate")
    [deferred] = client.apply("g1", _cleared(_budget(MANUAL, 50_000_000, 52_000_000)))
    assert deferred.status is WriteStatus.DEFERRED and (deferred.retry_after_s or 0) >= 3600
    assert sleeps == [] and server.budget_micros(MANUAL) == 50_000_000
    server.inject("quota", method="Mutate", code="RESOURCE_EXHAUSTED", rate_scope="ACCOUNT")
    [retried] = client.apply("g1", _cleared(_budget(MANUAL, 50_000_000, 52_000_000)))
    assert retried.status is WriteStatus.APPLIED and len(sleeps) == 1 and sleeps[0] < 60


# ---------------------------------------------------------------- reconcile and request ids


def test_a_removed_keyword_with_the_same_text_does_not_count_as_a_create_that_landed(
    client: GoogleAdsPlatformClient, server: FakeGoogleAdsServer
) -> None:
    group = MANUAL * 100
    server.add_keyword(group, 77, "blue shoes", match_type="EXACT", status="REMOVED")
    server.inject("transient", method="Mutate", status="unavailable")  # ambiguous: reconciled before a resend
    add = AddKeyword(
        **_common(EntityKind.AD_GROUP, str(group), "a-add"),
        text="blue shoes",
        match_type=MatchType.EXACT,
        cpc_bid_micros=1_000_000,
    )
    [result] = client.apply("g1", _cleared(add))
    assert result.status is WriteStatus.APPLIED and "confirmed by read-back" not in result.message
    assert server.request_count["Mutate"] == 2
    queries = [r.request.query for r in server.received if r.method == "SearchStream"]
    reconcile = [q for q in queries if "ad_group_criterion.type = 'KEYWORD'" in q]
    assert reconcile and "ad_group_criterion.status != 'REMOVED'" in reconcile[0]


def test_a_refused_operation_keeps_googles_request_id(
    client: GoogleAdsPlatformClient, server: FakeGoogleAdsServer
) -> None:
    server.inject("partial_failure", indices=[0])
    [result] = client.apply("g1", _cleared(_budget(MANUAL, 50_000_000, 52_000_000)))
    # GoogleAdsFailure.request_id: "The unique ID of the request that is used for debugging purposes."
    assert result.status is WriteStatus.FAILED and "request_id fake-request-" in result.message


def test_a_per_second_developer_limit_without_a_delay_is_retried_not_deferred(
    client: GoogleAdsPlatformClient, server: FakeGoogleAdsServer, sleeps: Sleeps
) -> None:
    # QuotaErrorDetails.rate_name: "The high level description of the quota bucket" -- a per-second bucket is
    # not the daily operations limit, whatever its scope.
    server.inject(
        "quota", method="Mutate", code="RESOURCE_EXHAUSTED", rate_scope="DEVELOPER",
        rate_name="Requests per developer token per second",
    )  # fmt: skip
    [result] = client.apply("g1", _cleared(_budget(MANUAL, 50_000_000, 52_000_000)))
    assert result.status is WriteStatus.APPLIED and len(sleeps) == 1 and sleeps[0] < 60

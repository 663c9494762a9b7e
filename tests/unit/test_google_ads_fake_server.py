from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time

import grpc
import pytest
from google.ads.googleads.client import GoogleAdsClient
from google.ads.googleads.errors import GoogleAdsException
from google.ads.googleads.interceptors import ExceptionInterceptor, MetadataInterceptor
from google.ads.googleads.v26.services.services.google_ads_service import GoogleAdsServiceClient
from google.ads.googleads.v26.services.services.google_ads_service.transports import GoogleAdsServiceGrpcTransport
from google.ads.googleads.v26.services.types.google_ads_service import MutateGoogleAdsRequest, MutateOperation
from google.oauth2.credentials import Credentials
from google.protobuf.field_mask_pb2 import FieldMask

from bidloop.core.entities import EntityKind, EntityRef, EntityState, Platform
from bidloop.core.errors import InputError
from bidloop.core.metrics import Metrics
from bidloop.core.settings import AccountConfig
from bidloop.core.snapshot import Snapshot
from bidloop.testing.google_ads.fake_server import FakeGoogleAdsServer, _server_from_args, demo_snapshot
from bidloop.tools.google_ads import GoogleAdsPlatformClient
from bidloop.tools.google_ads._channel import LocalServiceFactory
from bidloop.tools.sim import SimClient
from bidloop.tools.sim.fixtures import default_market

CUSTOMER = "1234567890"
TODAY = date(2025, 3, 10)


@pytest.fixture
def server() -> Iterator[FakeGoogleAdsServer]:
    with FakeGoogleAdsServer(CUSTOMER, today=TODAY) as srv:
        srv.add_campaign(1, "Brand", daily_budget_micros=10_000_000)
        srv.add_ad_group(2, 1, "Group", cpc_bid_micros=500_000)
        srv.set_metrics(("campaign", 1), TODAY, Metrics(clicks=3, cost_micros=1_500_000))
        yield srv


def _service(address: str) -> GoogleAdsServiceClient:
    # platform-apis.md §6.1 c: the real service client over a plaintext channel, with the SDK's interceptors.
    channel = grpc.intercept_channel(
        grpc.insecure_channel(address),
        MetadataInterceptor("DEV", None, None),
        ExceptionInterceptor("v26", use_proto_plus=True),
    )
    return GoogleAdsServiceClient(transport=GoogleAdsServiceGrpcTransport(channel=channel))


def _search(srv: FakeGoogleAdsServer, query: str) -> list:
    stream = _service(srv.address).search_stream(customer_id=CUSTOMER, query=query, timeout=5)
    return [row for batch in stream for row in batch.results]


def _budget_op(amount_micros: int, mask: list[str]) -> MutateOperation:
    op = MutateOperation()
    op.campaign_budget_operation.update.resource_name = f"customers/{CUSTOMER}/campaignBudgets/{_budget_id()}"
    op.campaign_budget_operation.update.amount_micros = amount_micros
    op.campaign_budget_operation.update_mask = FieldMask(paths=mask)
    return op


def _budget_id() -> int:
    return 900_000_001  # the first id the fake hands out


def _mutate(srv: FakeGoogleAdsServer, ops: list[MutateOperation], **flags: bool):  # type: ignore[no-untyped-def]
    request = MutateGoogleAdsRequest(customer_id=CUSTOMER, mutate_operations=ops, **flags)
    return _service(srv.address).mutate(request=request, timeout=5)


def test_search_returns_only_selected_fields_and_filters(server: FakeGoogleAdsServer) -> None:
    rows = _search(
        server, "SELECT campaign.id, campaign_budget.amount_micros FROM campaign WHERE campaign.id IN (1, 9)"
    )
    assert [(r.campaign.id, r.campaign_budget.amount_micros, r.campaign.name) for r in rows] == [(1, 10_000_000, "")]


def test_daily_metrics_are_served_per_date_with_value_in_currency_units(server: FakeGoogleAdsServer) -> None:
    server.set_metrics(("campaign", 1), date(2025, 3, 9), Metrics(clicks=1, conversion_value_micros=2_500_000))
    rows = _search(
        server,
        "SELECT campaign.id, segments.date, metrics.clicks, metrics.conversions_value FROM campaign "
        "WHERE segments.date BETWEEN '2025-03-09' AND '2025-03-10'",
    )
    assert [(r.segments.date, r.metrics.clicks, r.metrics.conversions_value) for r in rows] == [
        ("2025-03-09", 1, 2.5),
        ("2025-03-10", 3, 0.0),
    ]


def test_unknown_field_fails_like_google(server: FakeGoogleAdsServer) -> None:
    with pytest.raises(GoogleAdsException) as info:
        _search(server, "SELECT campaign.budget_amount FROM campaign")
    assert info.value.failure.errors[0].error_code.query_error.name == "UNRECOGNIZED_FIELD"


def test_only_fields_in_the_update_mask_are_written(server: FakeGoogleAdsServer) -> None:
    _mutate(server, [_budget_op(0, ["name"])], partial_failure=True)
    assert server.budget_micros(1) == 10_000_000  # amount_micros=0 left out of the mask: not written
    _mutate(server, [_budget_op(20_000_000, ["amount_micros"])], partial_failure=True)
    assert server.budget_micros(1) == 20_000_000
    assert server.writes_by_entity[f"customers/{CUSTOMER}/campaignBudgets/{_budget_id()}"] == 2


def test_without_partial_failure_one_bad_operation_fails_the_whole_request(server: FakeGoogleAdsServer) -> None:
    with pytest.raises(GoogleAdsException) as info:
        _mutate(server, [_budget_op(20_000_000, ["amount_micros"]), _budget_op(12_345, ["amount_micros"])])
    error = info.value.failure.errors[0]
    assert error.error_code.campaign_budget_error.name == "NON_MULTIPLE_OF_MINIMUM_CURRENCY_UNIT"
    assert error.location.field_path_elements[0].index == 1
    assert server.budget_micros(1) == 10_000_000 and not server.writes_by_entity


def test_validate_only_changes_nothing(server: FakeGoogleAdsServer) -> None:
    response = _mutate(server, [_budget_op(20_000_000, ["amount_micros"])], validate_only=True, partial_failure=True)
    assert len(response.mutate_operation_responses) == 0
    assert server.budget_micros(1) == 10_000_000 and not server.writes_by_entity


def test_more_than_ten_thousand_operations_are_refused(server: FakeGoogleAdsServer) -> None:
    with pytest.raises(GoogleAdsException) as info:
        _mutate(server, [_budget_op(20_000_000, ["amount_micros"])] * 10_001, partial_failure=True)
    assert info.value.failure.errors[0].error_code.request_error.name == "TOO_MANY_MUTATE_OPERATIONS"
    assert server.budget_micros(1) == 10_000_000


def test_requests_are_counted_per_rpc_and_faults_are_used_up(server: FakeGoogleAdsServer) -> None:
    server.inject("transient", method="SearchStream")
    with pytest.raises(Exception, match="Transient"):
        _search(server, "SELECT campaign.id FROM campaign")
    assert len(_search(server, "SELECT campaign.id FROM campaign")) == 1
    _mutate(server, [_budget_op(20_000_000, ["amount_micros"])], partial_failure=True)
    assert server.request_count == {"SearchStream": 2, "Mutate": 1}
    assert server.total_requests == 3


def test_unknown_fault_is_refused(server: FakeGoogleAdsServer) -> None:
    with pytest.raises(InputError):
        server.inject("meteor")


def test_from_snapshot_keeps_trailing_week_totals_exactly() -> None:
    snapshot = demo_snapshot("g1", now=datetime(2025, 3, 10, 12, tzinfo=UTC))
    with FakeGoogleAdsServer.from_snapshot(snapshot) as srv:
        rows = _search(
            srv,
            "SELECT campaign.id, metrics.cost_micros, metrics.clicks FROM campaign "
            "WHERE segments.date BETWEEN '2025-03-03' AND '2025-03-09'",
        )
    expected = {int(e.ref.entity_id): e.trailing_7d for e in snapshot.of_kind(EntityKind.CAMPAIGN)}
    assert {r.campaign.id: (r.metrics.cost_micros, r.metrics.clicks) for r in rows} == {
        cid: (m.cost_micros, m.clicks) for cid, m in expected.items()
    }


def test_from_snapshot_refuses_ids_google_would_never_return() -> None:
    ref = EntityRef(platform=Platform.GOOGLE_ADS, account_id="g1", kind=EntityKind.CAMPAIGN, entity_id="camp-a")
    snapshot = Snapshot(
        account_id="g1",
        platform=Platform.GOOGLE_ADS,
        as_of=datetime(2025, 3, 10, tzinfo=UTC),
        entities=[EntityState(ref=ref, name="A", daily_budget_micros=1_000_000)],
    )
    with pytest.raises(InputError):
        FakeGoogleAdsServer.from_snapshot(snapshot)


# ---------------------------------------------------------------- search terms seeded from a snapshot


def _platform_client(srv: FakeGoogleAdsServer, now: datetime) -> GoogleAdsPlatformClient:
    """Return the real client over a plaintext channel to `srv`, as `bidloop run` builds it for a local endpoint."""
    sdk = GoogleAdsClient(
        credentials=Credentials(token="fake"),
        developer_token="DEV",
        endpoint=srv.address,
        use_proto_plus=True,
        version="v26",
    )
    account = AccountConfig(
        id="g1", platform=Platform.GOOGLE_ADS, backend="live", platform_account_id=srv.customer_id, endpoint=srv.address
    )
    # No waiting between retries: a fake that cannot serve a query fails the test at once.
    return GoogleAdsPlatformClient(
        sdk, [account], timeout_s=5, sleep=lambda _s: None, now=lambda: now, service_factory=LocalServiceFactory(sdk)
    )


def _term(entity_id: str, parent_id: str, **fields: Metrics) -> EntityState:
    ref = EntityRef(platform=Platform.GOOGLE_ADS, account_id="g1", kind=EntityKind.SEARCH_TERM, entity_id=entity_id)
    return EntityState(ref=ref, name=entity_id, text=entity_id, parent_id=parent_id, **fields)


def _account_with_terms(*terms: EntityState) -> Snapshot:
    def ref(kind: EntityKind, entity_id: str) -> EntityRef:
        return EntityRef(platform=Platform.GOOGLE_ADS, account_id="g1", kind=kind, entity_id=entity_id)

    structure = [
        EntityState(ref=ref(EntityKind.CAMPAIGN, "1"), name="C", daily_budget_micros=10_000_000),
        EntityState(ref=ref(EntityKind.AD_GROUP, "2"), name="G", parent_id="1"),
        EntityState(ref=ref(EntityKind.KEYWORD, "2~3"), name="shoes", text="shoes", parent_id="2"),
        EntityState(ref=ref(EntityKind.KEYWORD, "4"), name="boots", text="boots", parent_id="2"),
    ]
    return Snapshot(
        account_id="g1",
        platform=Platform.GOOGLE_ADS,
        as_of=datetime(2025, 3, 10, tzinfo=UTC),
        entities=[*structure, *terms],
    )


def test_sim_market_search_terms_are_read_under_their_keywords_ad_group_with_their_metrics() -> None:
    snapshot = SimClient(default_market()).read_snapshot("sim-google")
    keywords = snapshot.by_id(EntityKind.KEYWORD)
    terms = snapshot.by_id(EntityKind.SEARCH_TERM)
    assert terms and all(t.parent_id in keywords for t in terms.values())  # the sim parents terms to keywords
    with FakeGoogleAdsServer.from_snapshot(snapshot) as srv:
        read = _platform_client(srv, snapshot.as_of).read_snapshot("g1").by_id(EntityKind.SEARCH_TERM)
    assert sorted(read) == sorted(terms)
    for term_id, term in terms.items():
        keyword = keywords[term.parent_id or ""]
        got = read[term_id]
        assert (got.parent_id, got.campaign_id) == (keyword.parent_id, keyword.campaign_id), term_id
        for period in ("today", "trailing_7d"):
            want, have = getattr(term, period), getattr(got, period)
            assert (have.impressions, have.clicks, have.cost_micros, have.conversion_value_micros) == (
                want.impressions,
                want.clicks,
                want.cost_micros,
                want.conversion_value_micros,
            ), (term_id, period)
            assert have.conversions == pytest.approx(want.conversions, abs=1e-9), (term_id, period)


def test_entry_point_default_seed_serves_a_search_term_view_the_client_reads() -> None:
    srv, source = _server_from_args(["--port", "0"])
    assert source == "the simulated market"
    with srv:
        read = _platform_client(srv, datetime.combine(srv.today, time(23), UTC)).read_snapshot("g1")
    expected = SimClient(default_market(seed=7)).read_snapshot("sim-google").by_id(EntityKind.SEARCH_TERM)
    ad_groups = read.by_id(EntityKind.AD_GROUP)
    terms = read.by_id(EntityKind.SEARCH_TERM)
    assert sorted(terms) == sorted(expected)
    assert all(t.parent_id in ad_groups and t.trailing_7d.clicks > 0 for t in terms.values())


def test_search_terms_under_a_keyword_or_an_ad_group_are_both_served_under_the_ad_group() -> None:
    snapshot = _account_with_terms(_term("via keyword", "2~3"), _term("via digits keyword", "4"), _term("direct", "2"))
    with FakeGoogleAdsServer.from_snapshot(snapshot) as srv:
        rows = _search(srv, "SELECT search_term_view.search_term, ad_group.id, campaign.id FROM search_term_view")
    assert [(r.search_term_view.search_term, r.ad_group.id, r.campaign.id) for r in rows] == [
        ("via keyword", 2, 1),
        ("via digits keyword", 2, 1),
        ("direct", 2, 1),
    ]


def test_same_term_from_two_keywords_of_one_ad_group_is_one_row_with_both_terms_metrics() -> None:
    snapshot = _account_with_terms(
        _term("shoe boots", "2~3", today=Metrics(clicks=2, cost_micros=1_000_000)),
        _term("shoe boots", "4", today=Metrics(clicks=3, cost_micros=2_500_000)),
    )
    with FakeGoogleAdsServer.from_snapshot(snapshot) as srv:
        rows = _search(
            srv, "SELECT search_term_view.search_term, metrics.clicks, metrics.cost_micros FROM search_term_view"
        )
    assert [(r.search_term_view.search_term, r.metrics.clicks, r.metrics.cost_micros) for r in rows] == [
        ("shoe boots", 5, 3_500_000)
    ]


def test_search_term_whose_parent_is_neither_a_keyword_nor_an_ad_group_is_refused() -> None:
    snapshot = _account_with_terms(_term("lost term", "999"))
    with pytest.raises(InputError, match=r"search term 'lost term' has parent '999'"):
        FakeGoogleAdsServer.from_snapshot(snapshot)


def test_a_snapshot_seeds_strategies_portfolios_targets_and_total_budgets_as_google_holds_them() -> None:
    from bidloop.core.entities import BiddingStrategy, BudgetPeriod

    def ref(kind: EntityKind, entity_id: str) -> EntityRef:
        return EntityRef(platform=Platform.GOOGLE_ADS, account_id="g", kind=kind, entity_id=entity_id)

    today = date(2025, 3, 10)
    day = Metrics(clicks=10, cost_micros=30_000_000)
    flight_start = datetime(2025, 3, 1, tzinfo=UTC)
    entities = [
        EntityState(ref=ref(EntityKind.BIDDING_STRATEGY, "9"), name="Shared", target_roas_bps=25_000,
                    bidding_strategy=BiddingStrategy.TARGET_ROAS),
        EntityState(ref=ref(EntityKind.CAMPAIGN, "1"), name="tROAS", daily_budget_micros=50_000_000,
                    bidding_strategy=BiddingStrategy.TARGET_ROAS, target_roas_bps=35_000),
        EntityState(ref=ref(EntityKind.CAMPAIGN, "2"), name="In portfolio", daily_budget_micros=50_000_000,
                    bidding_strategy=BiddingStrategy.TARGET_ROAS, bidding_strategy_id="9"),
        EntityState(ref=ref(EntityKind.CAMPAIGN, "3"), name="Total", daily_budget_micros=20_000_000,
                    budget_period=BudgetPeriod.LIFETIME, lifetime_budget_micros=900_000_000,
                    budget_remaining_micros=200_000_000, flight_start=flight_start,
                    flight_end=datetime(2025, 3, 19, 23, 59, tzinfo=UTC), daily_history=[day] * 14,
                    trailing_7d=Metrics(clicks=70, cost_micros=210_000_000)),
    ]  # fmt: skip
    snapshot = Snapshot(account_id="g", platform=Platform.GOOGLE_ADS, as_of=datetime(2025, 3, 10, 12, tzinfo=UTC),
                        entities=entities)  # fmt: skip
    srv = FakeGoogleAdsServer.from_snapshot(snapshot, today=today)
    # Google's target_roas is a ratio (v26 TargetRoas.target_roas "between 0.01 and 1000.0"): 35,000 bps is 3.5.
    assert srv.campaign_strategy(1) == ("TARGET_ROAS", None) and srv.campaign_target(1) == (3.5, None)
    assert srv.campaign_strategy(2) == ("TARGET_ROAS", 9) and srv.portfolio_target(9) == (2.5, None)
    # A total budget holds what remains plus what was spent since the start (9 served days of 30.00 before today).
    assert srv.budget_total_micros(3) == 200_000_000 + 9 * 30_000_000

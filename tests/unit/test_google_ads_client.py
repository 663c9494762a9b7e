from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime

import google.api_core.grpc_helpers
import grpc
import pytest
from google.ads.googleads.client import GoogleAdsClient
from google.oauth2.credentials import Credentials
from hypothesis import given
from hypothesis import strategies as st

from bidloop.core.actions import (
    AddKeyword,
    AddNegativeKeyword,
    AgentName,
    EnableCreative,
    PauseCreative,
    SetBid,
    SetBudget,
)
from bidloop.core.clearance import _issue_clearance
from bidloop.core.decisions import WriteStatus
from bidloop.core.entities import EntityKind, EntityRef, EntityState, MatchType, Platform, Status
from bidloop.core.errors import PlatformAuthError, UnfilteredActionError, UnknownAccountError
from bidloop.core.metrics import Metrics
from bidloop.core.settings import AccountConfig
from bidloop.core.snapshot import Snapshot
from bidloop.testing.google_ads.fake_server import FakeGoogleAdsServer
from bidloop.tools._retry import RetryPolicy
from bidloop.tools.google_ads import GoogleAdsPlatformClient
from bidloop.tools.google_ads._operations import StrategyContext, plan_operation
from bidloop.tools.google_ads.client import _metrics_from_row
from bidloop.tools.protocol import PlatformClient

# tools/_retry.py (shared, not ours) still passes tenacity's deprecated `initial=`; reported to the lead.

CUSTOMER = "1234567890"
MANAGER = "9998887777"
DEV_TOKEN = "DEV-TOKEN-s3cr3t-value"
OAUTH_TOKEN = "ya29.oauth-s3cr3t-access-token"
NOW = datetime(2025, 3, 10, 18, 0, tzinfo=UTC)
TODAY = date(2025, 3, 10)


def _ref(kind: EntityKind, entity_id: str, account_id: str = "g1") -> EntityRef:
    return EntityRef(platform=Platform.GOOGLE_ADS, account_id=account_id, kind=kind, entity_id=entity_id)


def _snapshot() -> Snapshot:
    today = Metrics(
        impressions=100, clicks=10, cost_micros=5_000_000, conversions=1.0, conversion_value_micros=15_250_000
    )
    week = Metrics(
        impressions=7_000, clicks=700, cost_micros=350_000_007, conversions=70.0, conversion_value_micros=1_050_123_456
    )
    entities = [
        EntityState(ref=_ref(EntityKind.CAMPAIGN, "111"), name="Brand", daily_budget_micros=50_000_000,
                    today=today, trailing_7d=week),
        EntityState(ref=_ref(EntityKind.CAMPAIGN, "222"), name="Generic", daily_budget_micros=30_000_000),
        EntityState(ref=_ref(EntityKind.AD_GROUP, "1001"), name="Brand exact", parent_id="111",
                    cpc_bid_micros=1_200_000, today=today),
        EntityState(ref=_ref(EntityKind.AD_GROUP, "2001"), name="Shoes", parent_id="222", cpc_bid_micros=800_000),
        EntityState(ref=_ref(EntityKind.KEYWORD, "1001~501"), name="acme shoes", text="acme shoes",
                    match_type=MatchType.EXACT, parent_id="1001", cpc_bid_micros=1_300_000, trailing_7d=week),
        EntityState(ref=_ref(EntityKind.KEYWORD, "2001~601"), name="running shoes", text="running shoes",
                    match_type=MatchType.PHRASE, parent_id="2001", cpc_bid_micros=900_000),
        EntityState(ref=_ref(EntityKind.CREATIVE, "1001~701"), name="Ad A", parent_id="1001", today=today),
        EntityState(ref=_ref(EntityKind.CREATIVE, "1001~702"), name="Ad B", parent_id="1001", status=Status.PAUSED),
        EntityState(ref=_ref(EntityKind.SEARCH_TERM, "cheap acme shoes"), name="cheap acme shoes",
                    text="cheap acme shoes", parent_id="1001", trailing_7d=week),
    ]  # fmt: skip
    return Snapshot(account_id="g1", platform=Platform.GOOGLE_ADS, as_of=NOW, entities=entities)


@pytest.fixture
def insecure_channels(monkeypatch: pytest.MonkeyPatch) -> None:
    # platform-apis.md §6.1 b: keep every SDK interceptor, replace only the TLS channel factory.
    monkeypatch.setattr(
        google.api_core.grpc_helpers,
        "create_channel",
        lambda target, **kw: grpc.insecure_channel(target, options=kw.get("options")),
    )


@pytest.fixture
def server() -> Iterator[FakeGoogleAdsServer]:
    with FakeGoogleAdsServer.from_snapshot(_snapshot(), customer_id=CUSTOMER, today=TODAY) as srv:
        yield srv


def _sdk(address: str, login_customer_id: str | None = None) -> GoogleAdsClient:
    return GoogleAdsClient(
        credentials=Credentials(token=OAUTH_TOKEN),
        developer_token=DEV_TOKEN,
        endpoint=address,
        login_customer_id=login_customer_id,
        use_proto_plus=True,
        version="v26",
    )


class SleepRecorder:
    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


def _client(
    srv: FakeGoogleAdsServer,
    sleeps: SleepRecorder,
    *,
    login_customer_id: str | None = None,
    sdk_login: str | None = None,
    timeout_s: float = 10.0,
    currency: str = "USD",
) -> GoogleAdsPlatformClient:
    account = AccountConfig(
        id="g1",
        platform=Platform.GOOGLE_ADS,
        backend="live",
        platform_account_id=srv.customer_id,
        currency=currency,
        login_customer_id=login_customer_id,
    )
    return GoogleAdsPlatformClient(
        _sdk(srv.address, sdk_login),
        [account],
        timeout_s=timeout_s,
        sleep=sleeps,
        now=lambda: NOW,
        retry_policy=RetryPolicy(max_attempts=4, initial_wait_s=0.5, max_wait_s=30, defer_above_s=120),
    )


@pytest.fixture
def client(server: FakeGoogleAdsServer, sleeps: SleepRecorder, insecure_channels: None) -> GoogleAdsPlatformClient:
    return _client(server, sleeps)


def _budget(campaign: str, old: int, new: int, action_id: str = "a-budget") -> SetBudget:
    return SetBudget(
        action_id=action_id,
        entity=_ref(EntityKind.CAMPAIGN, campaign),
        agent=AgentName.BID_SHIFTER,
        reason="test",
        old_daily_budget_micros=old,
        new_daily_budget_micros=new,
    )


def _bid(kind: EntityKind, entity_id: str, new: int, action_id: str = "a-bid") -> SetBid:
    return SetBid(
        action_id=action_id,
        entity=_ref(kind, entity_id),
        agent=AgentName.BID_SHIFTER,
        reason="test",
        old_cpc_bid_micros=1_000_000,
        new_cpc_bid_micros=new,
    )


def _cleared(*actions: object) -> list:
    return [_issue_clearance(a, verdict="allowed", rule_id="test") for a in actions]  # type: ignore[arg-type]


def _mutates(srv: FakeGoogleAdsServer) -> list:
    return [r for r in srv.received if r.method == "Mutate"]


# ---------------------------------------------------------------- reads


def test_client_satisfies_the_platform_protocol(client: GoogleAdsPlatformClient) -> None:
    assert isinstance(client, PlatformClient)


def test_snapshot_reads_structure_and_settings(client: GoogleAdsPlatformClient) -> None:
    snap = client.read_snapshot("g1")
    assert snap.platform is Platform.GOOGLE_ADS and snap.account_id == "g1"
    assert snap.by_id(EntityKind.CAMPAIGN)["111"].daily_budget_micros == 50_000_000
    assert snap.account_daily_budget_micros == 80_000_000
    assert snap.by_id(EntityKind.AD_GROUP)["1001"].cpc_bid_micros == 1_200_000
    keyword = snap.by_id(EntityKind.KEYWORD)["1001~501"]
    assert (keyword.text, keyword.match_type, keyword.cpc_bid_micros, keyword.parent_id) == (
        "acme shoes",
        MatchType.EXACT,
        1_300_000,
        "1001",
    )
    assert snap.by_id(EntityKind.CREATIVE)["1001~702"].status is Status.PAUSED
    assert snap.by_id(EntityKind.SEARCH_TERM)["cheap acme shoes"].parent_id == "1001"
    kinds = [e.ref.kind for e in snap.entities]
    assert kinds.index(EntityKind.CAMPAIGN) < kinds.index(EntityKind.AD_GROUP) < kinds.index(EntityKind.KEYWORD)


def test_snapshot_money_is_micros_and_conversion_value_is_converted_from_currency_units(
    client: GoogleAdsPlatformClient,
) -> None:
    snap = client.read_snapshot("g1")
    campaign = snap.by_id(EntityKind.CAMPAIGN)["111"]
    assert campaign.today.cost_micros == 5_000_000
    assert campaign.today.conversion_value_micros == 15_250_000  # served as 15.25 (currency units)
    assert campaign.trailing_7d.cost_micros == 350_000_007
    assert campaign.trailing_7d.conversion_value_micros == 1_050_123_456
    assert campaign.trailing_7d.clicks == 700
    assert campaign.trailing_7d.conversions == pytest.approx(70.0)
    assert len(campaign.daily_history) == 14
    assert sum(m.cost_micros for m in campaign.daily_history[-7:]) == 350_000_007
    assert snap.by_id(EntityKind.KEYWORD)["1001~501"].trailing_7d.cost_micros == 350_000_007
    assert snap.by_id(EntityKind.SEARCH_TERM)["cheap acme shoes"].trailing_7d.conversion_value_micros == 1_050_123_456


def test_expected_spend_fraction_follows_the_account_clock(client: GoogleAdsPlatformClient) -> None:
    snap = client.read_snapshot("g1")
    assert snap.expected_spend_fraction == pytest.approx(18 / 24)
    assert snap.as_of.date() == TODAY


def test_snapshot_uses_search_stream_only_with_a_timeout_on_every_call(
    client: GoogleAdsPlatformClient, server: FakeGoogleAdsServer
) -> None:
    client.read_snapshot("g1")
    # 9 structure/metrics queries, the customer's currency and time zone (checked on every read), and the
    # currency's billable unit (once per client: the unit a landed amount may read back below what was sent).
    assert server.request_count == {"SearchStream": 11}
    client.read_snapshot("g1")
    assert server.request_count == {"SearchStream": 21}
    assert all(r.deadline_s is not None and 0 < r.deadline_s <= 10.5 for r in server.received)
    assert all(r.request.customer_id == CUSTOMER for r in server.received)


def test_unknown_account_is_refused(client: GoogleAdsPlatformClient) -> None:
    with pytest.raises(UnknownAccountError):
        client.read_snapshot("nope")


def test_read_back_returns_current_settings(client: GoogleAdsPlatformClient) -> None:
    refs = [
        _ref(EntityKind.CAMPAIGN, "111"),
        _ref(EntityKind.AD_GROUP, "2001"),
        _ref(EntityKind.KEYWORD, "2001~601"),
        _ref(EntityKind.CREATIVE, "1001~702"),
    ]
    states = client.read_back("g1", refs)
    assert states[refs[0].key].daily_budget_micros == 50_000_000
    assert states[refs[1].key].cpc_bid_micros == 800_000
    assert states[refs[2].key].cpc_bid_micros == 900_000
    assert states[refs[3].key].status is Status.PAUSED


# ---------------------------------------------------------------- writes: exact requests


def test_budget_is_rounded_down_to_the_cent_and_sent_with_an_amount_micros_mask(
    client: GoogleAdsPlatformClient, server: FakeGoogleAdsServer
) -> None:
    [result] = client.apply("g1", _cleared(_budget("111", 50_000_000, 55_555_555)))
    assert result.status is WriteStatus.APPLIED
    assert result.read_back == "55550000"
    assert server.budget_micros(111) == 55_550_000
    [mutate] = _mutates(server)
    request = mutate.request
    assert request.partial_failure is True
    assert request.validate_only is False
    assert request.response_content_type.name == "MUTABLE_RESOURCE"
    op = request.mutate_operations[0].campaign_budget_operation
    assert op.update.amount_micros == 55_550_000
    assert list(op.update_mask.paths) == ["amount_micros"]
    assert op.update.resource_name.startswith(f"customers/{CUSTOMER}/campaignBudgets/")
    assert mutate.deadline_s is not None and mutate.deadline_s <= 10.5


def test_a_bid_set_to_zero_is_still_sent_in_the_field_mask(
    client: GoogleAdsPlatformClient, server: FakeGoogleAdsServer
) -> None:
    [result] = client.apply("g1", _cleared(_bid(EntityKind.AD_GROUP, "1001", 0)))
    assert result.status is WriteStatus.APPLIED, result.message
    assert server.ad_group_bid_micros(1001) == 0
    op = _mutates(server)[0].request.mutate_operations[0].ad_group_operation
    assert list(op.update_mask.paths) == ["cpc_bid_micros"]


def test_every_supported_action_lands_and_a_later_read_shows_it(
    client: GoogleAdsPlatformClient, server: FakeGoogleAdsServer
) -> None:
    actions = [
        _budget("222", 30_000_000, 33_000_000, "a1"),
        _bid(EntityKind.KEYWORD, "2001~601", 950_000, "a2"),
        _bid(EntityKind.AD_GROUP, "2001", 850_000, "a3"),
        PauseCreative(action_id="a4", entity=_ref(EntityKind.CREATIVE, "1001~701"), agent=AgentName.CREATIVE_ROTATION,
                      reason="fatigue", old_status=Status.ENABLED),
        EnableCreative(action_id="a5", entity=_ref(EntityKind.CREATIVE, "1001~702"), agent=AgentName.CREATIVE_ROTATION,
                       reason="rotate", old_status=Status.PAUSED),
        AddNegativeKeyword(action_id="a6", entity=_ref(EntityKind.AD_GROUP, "1001"), agent=AgentName.KEYWORD_INSIGHT,
                           reason="waste", text="cheap acme shoes", match_type=MatchType.EXACT),
        AddNegativeKeyword(action_id="a7", entity=_ref(EntityKind.CAMPAIGN, "222"), agent=AgentName.KEYWORD_INSIGHT,
                           reason="waste", text="free", match_type=MatchType.BROAD),
        AddKeyword(action_id="a8", entity=_ref(EntityKind.AD_GROUP, "2001"), agent=AgentName.KEYWORD_INSIGHT,
                   reason="converts", text="trail shoes", match_type=MatchType.PHRASE, cpc_bid_micros=700_000),
    ]  # fmt: skip
    results = client.apply("g1", _cleared(*actions))
    assert [r.action_id for r in results] == [f"a{i}" for i in range(1, 9)]
    assert [r.status for r in results] == [WriteStatus.APPLIED] * 8, [r.message for r in results]
    assert server.request_count["Mutate"] == 1  # one request for every kind of operation
    assert server.budget_micros(222) == 33_000_000
    assert server.keyword_bid_micros(2001, 601) == 950_000
    assert server.ad_status(1001, 701) == "PAUSED" and server.ad_status(1001, 702) == "ENABLED"
    assert server.keywords(1001, negative=True) == [("EXACT", "cheap acme shoes")]
    assert server.campaign_negatives(222) == [("BROAD", "free")]
    assert ("PHRASE", "trail shoes") in server.keywords(2001, negative=False)

    snap = client.read_snapshot("g1")
    assert snap.by_id(EntityKind.CAMPAIGN)["222"].daily_budget_micros == 33_000_000
    assert snap.by_id(EntityKind.AD_GROUP)["2001"].cpc_bid_micros == 850_000
    assert snap.by_id(EntityKind.CREATIVE)["1001~701"].status is Status.PAUSED
    new_keywords = [k for k in snap.of_kind(EntityKind.KEYWORD) if k.text == "trail shoes"]
    assert len(new_keywords) == 1 and new_keywords[0].cpc_bid_micros == 700_000
    # Negatives are not keywords to bid on.
    assert all(k.text != "cheap acme shoes" for k in snap.of_kind(EntityKind.KEYWORD))


def test_ten_thousand_and_one_actions_go_out_in_two_mutate_requests(
    sleeps: SleepRecorder, insecure_channels: None
) -> None:
    with FakeGoogleAdsServer(CUSTOMER, today=TODAY) as srv:
        srv.add_campaign(1, "c", daily_budget_micros=10_000_000)
        srv.add_ad_group(2, 1, "g")
        for criterion in range(10_001):
            srv.add_keyword(2, 10 + criterion, f"kw {criterion}", cpc_bid_micros=100_000)
        client = _client(srv, sleeps)
        actions = [_bid(EntityKind.KEYWORD, f"2~{10 + n}", 200_000, f"b{n}") for n in range(10_001)]
        results = client.apply("g1", _cleared(*actions))
        assert srv.request_count["Mutate"] == 2
        assert [len(r.request.mutate_operations) for r in _mutates(srv)] == [10_000, 1]
        assert all(r.status is WriteStatus.APPLIED for r in results)
        assert srv.keyword_bid_micros(2, 10_010) == 200_000


# ---------------------------------------------------------------- writes: failures


def test_partial_failure_is_reported_per_action(client: GoogleAdsPlatformClient, server: FakeGoogleAdsServer) -> None:
    server.inject("partial_failure", indices=[1])
    results = client.apply(
        "g1",
        _cleared(
            _bid(EntityKind.KEYWORD, "1001~501", 1_400_000, "ok-1"),
            _bid(EntityKind.KEYWORD, "2001~601", 5_000_000, "bad"),
            _bid(EntityKind.AD_GROUP, "1001", 1_100_000, "ok-2"),
        ),
    )
    assert [r.status for r in results] == [WriteStatus.APPLIED, WriteStatus.FAILED, WriteStatus.APPLIED]
    assert "range_error.TOO_HIGH" in results[1].message and not results[1].retryable
    assert server.keyword_bid_micros(2001, 601) == 900_000
    assert server.keyword_bid_micros(1001, 501) == 1_400_000
    assert server.request_count["Mutate"] == 1  # a non-retryable failure is not resent


def test_retryable_partial_failure_resends_only_the_failed_operation(
    client: GoogleAdsPlatformClient, server: FakeGoogleAdsServer, sleeps: SleepRecorder
) -> None:
    server.inject("partial_failure", indices=[0], retryable=True)
    results = client.apply(
        "g1",
        _cleared(
            _bid(EntityKind.KEYWORD, "1001~501", 1_400_000, "x"), _bid(EntityKind.AD_GROUP, "1001", 1_100_000, "y")
        ),
    )
    assert [r.status for r in results] == [WriteStatus.APPLIED, WriteStatus.APPLIED]
    assert results[0].attempts == 2 and results[1].attempts == 1
    assert [len(m.request.mutate_operations) for m in _mutates(server)] == [2, 1]
    assert max(server.writes_by_entity.values()) == 1
    assert len(sleeps.waits) == 1


def test_dry_run_validates_at_google_and_changes_nothing(
    client: GoogleAdsPlatformClient, server: FakeGoogleAdsServer
) -> None:
    results = client.apply(
        "g1", _cleared(_budget("111", 50_000_000, 60_000_000), _bid(EntityKind.AD_GROUP, "1001", 0)), validate_only=True
    )
    assert [r.status for r in results] == [WriteStatus.VALIDATED, WriteStatus.VALIDATED]
    assert _mutates(server)[0].request.validate_only is True
    assert server.budget_micros(111) == 50_000_000 and server.ad_group_bid_micros(1001) == 1_200_000
    assert not server.writes_by_entity


def test_dry_run_reports_what_google_would_refuse(client: GoogleAdsPlatformClient, server: FakeGoogleAdsServer) -> None:
    server.inject("partial_failure", indices=[0])
    [result] = client.apply("g1", _cleared(_budget("111", 50_000_000, 60_000_000)), validate_only=True)
    assert result.status is WriteStatus.FAILED
    assert server.budget_micros(111) == 50_000_000


def test_unfiltered_actions_are_refused_and_nothing_is_sent(
    client: GoogleAdsPlatformClient, server: FakeGoogleAdsServer
) -> None:
    good = _cleared(_budget("111", 50_000_000, 55_000_000))[0]
    tampered = good.model_copy(update={"action": _budget("111", 50_000_000, 500_000_000)})
    for batch in ([good, _budget("222", 30_000_000, 31_000_000)], [good, tampered]):
        with pytest.raises(UnfilteredActionError):
            client.apply("g1", batch)  # type: ignore[arg-type]
    assert server.total_requests == 0
    assert server.budget_micros(111) == 50_000_000


def test_actions_google_cannot_express_fail_alone_without_being_sent(
    client: GoogleAdsPlatformClient, server: FakeGoogleAdsServer
) -> None:
    ad_group_budget = SetBudget(
        action_id="u1", entity=_ref(EntityKind.AD_GROUP, "1001"), agent=AgentName.BID_SHIFTER, reason="t",
        old_daily_budget_micros=1_000_000, new_daily_budget_micros=2_000_000,
    )  # fmt: skip
    other_account = _budget("111", 50_000_000, 51_000_000, "u2").model_copy(
        update={"entity": _ref(EntityKind.CAMPAIGN, "111", account_id="other")}
    )
    creative_bid = _bid(EntityKind.CREATIVE, "1001~701", 1_000_000, "u3")
    results = client.apply("g1", _cleared(ad_group_budget, other_account, creative_bid))
    assert [r.status for r in results] == [WriteStatus.FAILED] * 3
    assert "campaigns" in results[0].message and "other" in results[1].message
    assert server.request_count["Mutate"] == 0


def test_a_shared_budget_is_not_changed(sleeps: SleepRecorder, insecure_channels: None) -> None:
    with FakeGoogleAdsServer(CUSTOMER, today=TODAY) as srv:
        srv.add_campaign(1, "a", daily_budget_micros=10_000_000, budget_id=77, shared_budget=True)
        srv.add_campaign(2, "b", daily_budget_micros=10_000_000, budget_id=77)
        [result] = _client(srv, sleeps).apply("g1", _cleared(_budget("1", 10_000_000, 11_000_000)))
        assert result.status is WriteStatus.FAILED and "shared budget" in result.message
        assert srv.request_count["Mutate"] == 0 and srv.budget_micros(1) == 10_000_000


# ---------------------------------------------------------------- retries, throttling, ambiguity


def test_throttle_wait_hint_is_the_floor_of_each_wait(
    client: GoogleAdsPlatformClient, server: FakeGoogleAdsServer, sleeps: SleepRecorder
) -> None:
    server.inject("throttle", times=2, method="Mutate", retry_delay_s=7)
    [result] = client.apply("g1", _cleared(_budget("111", 50_000_000, 52_000_000)))
    assert result.status is WriteStatus.APPLIED and result.attempts == 3
    assert len(sleeps.waits) == 2 and all(w >= 7 for w in sleeps.waits)
    assert server.request_count["Mutate"] == 3
    assert sum(server.writes_by_entity.values()) == 1


def test_throttled_read_is_retried_with_the_hint(
    client: GoogleAdsPlatformClient, server: FakeGoogleAdsServer, sleeps: SleepRecorder
) -> None:
    server.inject("throttle", method="SearchStream", retry_delay_s=3)
    snap = client.read_snapshot("g1")
    assert snap.by_id(EntityKind.CAMPAIGN)["111"].daily_budget_micros == 50_000_000
    assert sleeps.waits and sleeps.waits[0] >= 3
    assert server.request_count["SearchStream"] == 12


def test_long_throttle_and_daily_quota_are_deferred_without_sleeping(
    client: GoogleAdsPlatformClient, server: FakeGoogleAdsServer, sleeps: SleepRecorder
) -> None:
    server.inject("throttle", method="Mutate", retry_delay_s=600)
    [deferred] = client.apply("g1", _cleared(_budget("111", 50_000_000, 52_000_000)))
    assert deferred.status is WriteStatus.DEFERRED and deferred.retry_after_s == 600
    server.inject("daily_quota", method="Mutate")
    [quota] = client.apply("g1", _cleared(_budget("111", 50_000_000, 52_000_000)))
    assert quota.status is WriteStatus.DEFERRED and (quota.retry_after_s or 0) >= 3600
    assert sleeps.waits == []
    assert server.budget_micros(111) == 50_000_000


def test_transient_errors_are_retried_until_the_write_lands_once(
    client: GoogleAdsPlatformClient, server: FakeGoogleAdsServer, sleeps: SleepRecorder
) -> None:
    server.inject("transient", times=2, method="Mutate")
    [result] = client.apply("g1", _cleared(_bid(EntityKind.KEYWORD, "1001~501", 1_500_000)))
    assert result.status is WriteStatus.APPLIED and result.attempts == 3
    assert len(sleeps.waits) == 2
    assert server.writes_by_entity == {f"customers/{CUSTOMER}/adGroupCriteria/1001~501": 1}


def test_retries_give_up_after_the_policy_and_report_retryable(
    client: GoogleAdsPlatformClient, server: FakeGoogleAdsServer
) -> None:
    server.inject("transient", times=10, method="Mutate")
    [result] = client.apply("g1", _cleared(_bid(EntityKind.KEYWORD, "1001~501", 1_500_000)))
    assert result.status is WriteStatus.FAILED and result.retryable
    assert server.request_count["Mutate"] == 4


def test_timeout_after_the_write_landed_is_read_back_not_resent(
    server: FakeGoogleAdsServer, sleeps: SleepRecorder, insecure_channels: None
) -> None:
    client = _client(server, sleeps, timeout_s=0.5)
    server.inject("timeout_after_write", stall_s=2.0)
    results = client.apply(
        "g1", _cleared(_budget("111", 50_000_000, 57_000_000), _bid(EntityKind.KEYWORD, "1001~501", 1_450_000, "b"))
    )
    assert [r.status for r in results] == [WriteStatus.APPLIED, WriteStatus.APPLIED], [r.message for r in results]
    assert "read-back" in results[0].message
    assert server.request_count["Mutate"] == 1
    assert max(server.writes_by_entity.values()) == 1
    assert server.budget_micros(111) == 57_000_000
    assert client.retry_stats.reconciled == 1


def test_dropped_connection_after_a_create_does_not_create_the_keyword_twice(
    client: GoogleAdsPlatformClient, server: FakeGoogleAdsServer
) -> None:
    server.inject("drop_after_write")
    add = AddKeyword(
        action_id="k", entity=_ref(EntityKind.AD_GROUP, "1001"), agent=AgentName.KEYWORD_INSIGHT, reason="t",
        text="acme trainers", match_type=MatchType.EXACT, cpc_bid_micros=600_000,
    )  # fmt: skip
    [result] = client.apply("g1", _cleared(add))
    assert result.status is WriteStatus.APPLIED
    assert server.keywords(1001, negative=False).count(("EXACT", "acme trainers")) == 1
    assert server.request_count["Mutate"] == 1


def test_ambiguous_failure_resends_only_operations_that_did_not_land(
    client: GoogleAdsPlatformClient, server: FakeGoogleAdsServer
) -> None:
    server.inject("transient", method="Mutate", status="unavailable")  # refused before writing, but ambiguous
    results = client.apply(
        "g1", _cleared(_budget("111", 50_000_000, 58_000_000), _bid(EntityKind.AD_GROUP, "1001", 1_250_000, "b"))
    )
    assert [r.status for r in results] == [WriteStatus.APPLIED, WriteStatus.APPLIED]
    assert server.request_count["Mutate"] == 2
    assert max(server.writes_by_entity.values()) == 1


# ---------------------------------------------------------------- access and credentials


def test_manager_routing_sends_login_customer_id(sleeps: SleepRecorder, insecure_channels: None) -> None:
    with FakeGoogleAdsServer.from_snapshot(_snapshot(), customer_id=CUSTOMER, manager_id=MANAGER, today=TODAY) as srv:
        routed = _client(srv, sleeps, login_customer_id=MANAGER)
        report = routed.check_access()
        assert report.ok and [a.account_id for a in report.accounts] == ["g1"]
        assert report.visible_customer_ids == [MANAGER]
        routed.read_snapshot("g1")
        assert {r.metadata.get("login-customer-id") for r in srv.received} == {MANAGER}

        unrouted = _client(srv, sleeps)
        report = unrouted.check_access()
        assert not report.ok and report.problems[0].kind == "no_access"
        assert "login_customer_id" in report.problems[0].hint
        with pytest.raises(PlatformAuthError):
            unrouted.read_snapshot("g1")


def test_check_access_explains_an_expired_token(client: GoogleAdsPlatformClient, server: FakeGoogleAdsServer) -> None:
    server.inject("expired_token", times=5)
    report = client.check_access()
    assert not report.ok
    assert report.problems[0].kind == "expired_token"
    assert "refresh token" in report.problems[0].hint


def test_check_access_explains_a_wrong_developer_token(sleeps: SleepRecorder, insecure_channels: None) -> None:
    with FakeGoogleAdsServer(CUSTOMER, developer_token="the-right-one", today=TODAY) as srv:
        report = _client(srv, sleeps).check_access()
        assert not report.ok and report.problems[0].kind == "missing_developer_token"
        assert "GOOGLE_ADS_DEVELOPER_TOKEN" in report.problems[0].hint


def test_expired_token_on_write_fails_the_batch_without_retrying(
    client: GoogleAdsPlatformClient, server: FakeGoogleAdsServer, sleeps: SleepRecorder
) -> None:
    server.inject("expired_token", method="Mutate")
    [result] = client.apply("g1", _cleared(_budget("111", 50_000_000, 52_000_000)))
    assert result.status is WriteStatus.FAILED and "expired" in result.message
    assert server.request_count["Mutate"] == 1 and sleeps.waits == []


def test_no_credential_ever_reaches_a_log_line(
    client: GoogleAdsPlatformClient, server: FakeGoogleAdsServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.inject("throttle", method="SearchStream", retry_delay_s=1)
    server.inject("expired_token", method="ListAccessibleCustomers")
    client.check_access()
    client.read_snapshot("g1")
    server.inject("timeout_after_write", stall_s=0.1)
    server.inject("partial_failure", indices=[0])
    client.apply("g1", _cleared(_budget("111", 50_000_000, 51_000_000)))
    client.apply("g1", _cleared(_budget("111", 50_000_000, 52_000_000)))
    server.inject("expired_token", method="Mutate")
    client.apply("g1", _cleared(_budget("111", 50_000_000, 53_000_000)))
    assert len(caplog.records) > 10  # the SDK's request logging was on
    for record in caplog.records:
        text = record.getMessage()
        assert DEV_TOKEN not in text and OAUTH_TOKEN not in text


def test_from_account_without_credentials_names_the_variables(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    for name in (
        "GOOGLE_ADS_DEVELOPER_TOKEN",
        "GOOGLE_ADS_CLIENT_ID",
        "GOOGLE_ADS_CLIENT_SECRET",
        "GOOGLE_ADS_REFRESH_TOKEN",
        "GOOGLE_ADS_CONFIGURATION_FILE_PATH",
        "GOOGLE_ADS_JSON_KEY_FILE_PATH",
    ):
        monkeypatch.delenv(name, raising=False)  # fmt: skip
    monkeypatch.setenv("HOME", str(tmp_path))
    account = AccountConfig(id="g1", platform=Platform.GOOGLE_ADS, backend="live", platform_account_id=CUSTOMER)
    with pytest.raises(PlatformAuthError) as info:
        GoogleAdsPlatformClient.from_account(account)
    assert "GOOGLE_ADS_DEVELOPER_TOKEN" in (info.value.hint or "")
    assert "google-ads.yaml" in (info.value.hint or "")


def test_from_account_reads_environment_and_routes_through_the_account_manager(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    import google.ads.googleads.oauth2

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("GOOGLE_ADS_CONFIGURATION_FILE_PATH", raising=False)
    for key, value in {
        "DEVELOPER_TOKEN": DEV_TOKEN,
        "CLIENT_ID": "cid",
        "CLIENT_SECRET": "cs",
        "REFRESH_TOKEN": "rt",
    }.items():
        monkeypatch.setenv(f"GOOGLE_ADS_{key}", value)
    monkeypatch.setattr(google.ads.googleads.oauth2, "get_credentials", lambda config: Credentials(token=OAUTH_TOKEN))
    account = AccountConfig(
        id="g1", platform=Platform.GOOGLE_ADS, backend="live", platform_account_id=CUSTOMER, login_customer_id=MANAGER
    )
    client = GoogleAdsPlatformClient.from_account(account)
    sdk = client._services.sdk_client
    assert sdk.developer_token == DEV_TOKEN and sdk.login_customer_id == MANAGER and sdk.use_proto_plus


def test_from_account_with_a_local_endpoint_talks_to_the_fake_without_patching(server: FakeGoogleAdsServer) -> None:
    account = AccountConfig(
        id="g1", platform=Platform.GOOGLE_ADS, backend="live", platform_account_id=CUSTOMER, endpoint=server.address
    )
    client = GoogleAdsPlatformClient.from_account(account)
    assert client.check_access().ok
    [result] = client.apply("g1", _cleared(_budget("111", 50_000_000, 54_000_000)))
    assert result.status is WriteStatus.APPLIED and server.budget_micros(111) == 54_000_000


# ---------------------------------------------------------------- money at the edge (properties)


@given(st.integers(min_value=0, max_value=10**12))
def test_budget_sent_is_the_amount_rounded_down_to_the_cent(micros: int) -> None:
    planned = plan_operation(
        _budget("111", 1_000_000, micros),
        customer_id=CUSTOMER,
        unit_micros=10_000,  # USD's billable unit, as the fake's currency_constant serves it
        budget_resource_by_campaign={"111": f"customers/{CUSTOMER}/campaignBudgets/9"},
    )
    sent = planned.operation.campaign_budget_operation.update.amount_micros
    assert sent % 10_000 == 0 and micros - 10_000 < sent <= micros
    assert planned.expected == str(sent)


@given(st.integers(min_value=0, max_value=10**12))
def test_yen_bids_are_whole_yen_never_above_the_decision(micros: int) -> None:
    manual = StrategyContext({"7": "MANUAL_CPC"}, {}, {"1": "7"}, {})
    planned = plan_operation(
        _bid(EntityKind.KEYWORD, "1~2", micros),
        customer_id=CUSTOMER,
        unit_micros=1_000_000,  # JPY's billable unit: whole yen
        budget_resource_by_campaign={},
        strategies=manual,
    )
    sent = planned.operation.ad_group_criterion_operation.update.cpc_bid_micros
    assert sent % 1_000_000 == 0 and micros - 1_000_000 < sent <= micros


@given(st.integers(min_value=0, max_value=10**14), st.integers(min_value=0, max_value=10**14))
def test_cost_and_conversion_value_round_trip_exactly(cost_micros: int, value_micros: int) -> None:
    from google.ads.googleads.v26.services.types.google_ads_service import GoogleAdsRow

    row = GoogleAdsRow()
    row.metrics.cost_micros = cost_micros
    row.metrics.conversions_value = value_micros / 1_000_000  # Google's unit: a double in currency units
    metrics = _metrics_from_row(row)
    assert metrics.cost_micros == cost_micros
    assert metrics.conversion_value_micros == value_micros

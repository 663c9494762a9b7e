"""The Amazon Ads client, with the real python-amazon-ad-api SDK talking to the local fake server."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from ad_api.base import ApiResponse

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
from bidloop.core.errors import (
    ConfigError,
    PlatformAuthError,
    PlatformError,
    UnfilteredActionError,
    UnknownAccountError,
)
from bidloop.core.metrics import Metrics
from bidloop.core.settings import AccountConfig
from bidloop.core.snapshot import Snapshot
from bidloop.testing.amazon_ads.fake_server import FakeAmazonAdsServer
from bidloop.tools._retry import RetryPolicy
from bidloop.tools.amazon_ads import AmazonAdsClient, AmazonApis, AmazonCredentials, check_access
from bidloop.tools.protocol import PlatformClient

ACCOUNT_ID = "amz"
PROFILE_ID = "3300000001"
AS_OF = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)


def ref(kind: EntityKind, entity_id: str) -> EntityRef:
    return EntityRef(platform=Platform.AMAZON_ADS, account_id=ACCOUNT_ID, kind=kind, entity_id=entity_id)


def seed_snapshot() -> Snapshot:
    day = Metrics(
        impressions=1000, clicks=40, cost_micros=31_500_000, conversions=4.0, conversion_value_micros=90_250_000
    )
    week = Metrics(
        impressions=7000, clicks=280, cost_micros=220_010_000, conversions=21.0, conversion_value_micros=700_070_000
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
            daily_budget_micros=25_500_000,
        ),
        EntityState(
            ref=ref(EntityKind.AD_GROUP, "21"),
            name="Brand exact",
            parent_id="11",
            campaign_id="11",
            cpc_bid_micros=700_000,
        ),
        EntityState(
            ref=ref(EntityKind.AD_GROUP, "22"),
            name="Generic broad",
            parent_id="12",
            campaign_id="12",
            cpc_bid_micros=400_000,
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
        EntityState(
            ref=ref(EntityKind.KEYWORD, "33"),
            name="mug",
            parent_id="22",
            campaign_id="12",
            cpc_bid_micros=300_000,
            text="mug",
            match_type=MatchType.BROAD,
        ),
        EntityState(
            ref=ref(EntityKind.SEARCH_TERM, "acme travel mug"),
            name="acme travel mug",
            parent_id="31",
            campaign_id="11",
            text="acme travel mug",
            today=day,
            trailing_7d=week,
        ),
        EntityState(
            ref=ref(EntityKind.CREATIVE, "41"),
            name="Acme Mug (B0ACMEMUG1)",
            parent_id="21",
            campaign_id="11",
            text="Acme Mug (B0ACMEMUG1)",
            today=day,
            trailing_7d=week,
        ),
    ]
    return Snapshot(account_id=ACCOUNT_ID, platform=Platform.AMAZON_ADS, as_of=AS_OF, entities=entities)


def account(srv: FakeAmazonAdsServer | None = None, **overrides: Any) -> AccountConfig:
    values: dict[str, Any] = {
        "id": ACCOUNT_ID,
        "platform": Platform.AMAZON_ADS,
        "backend": "live",
        "platform_account_id": PROFILE_ID,
        "marketplace": "NA",
        "endpoint": srv.address if srv is not None else None,
    }
    values.update(overrides)
    return AccountConfig(**values)


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture(autouse=True)
def _no_wrapper_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))  # no credentials.yml from the machine running the tests
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in (
        "AD_API_CLIENT_ID",
        "AD_API_CLIENT_SECRET",
        "AD_API_REFRESH_TOKEN",
        "AD_API_PROFILE_ID",
        "AD_API_ACCESS_TOKEN",
        "AD_API_DEFAULT_MARKETPLACE",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def srv():
    # No lag here: these tests pin reads, writes and units; the lag has tests of its own (test_amazon_report_lag.py).
    with FakeAmazonAdsServer.from_snapshot(
        seed_snapshot(), profile_id=PROFILE_ID, report_lag_s=0, budget_usage_lag_s=0
    ) as server:
        yield server


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def make_client(srv: FakeAmazonAdsServer, sleeps: Sleeps, *, timeout_s: float = 5.0, **kwargs: Any) -> AmazonAdsClient:
    credentials = AmazonCredentials(
        client_id="client-1",
        client_secret="s3cret-value",
        refresh_token="Atzr|refresh-1",
        access_token="fake-access-token",
    )
    acct = kwargs.pop("account", None) or account(srv)
    kwargs.setdefault("report_lag_s", 0.0)
    apis = AmazonApis.build(
        credentials, profile_id=acct.remote_id, marketplace=_na(), timeout_s=timeout_s, endpoint=srv.address
    )
    return AmazonAdsClient(acct, apis, sleep=sleeps, now=lambda: AS_OF, timeout_s=timeout_s, **kwargs)


def _na() -> Any:
    from ad_api.base import Marketplaces

    return Marketplaces.NA


@pytest.fixture
def client(srv: FakeAmazonAdsServer, sleeps: Sleeps) -> AmazonAdsClient:
    return make_client(srv, sleeps)


def bid(keyword_id: str, old: int, new: int) -> SetBid:
    return SetBid(
        action_id=f"bid-{keyword_id}-{new}",
        entity=ref(EntityKind.KEYWORD, keyword_id),
        agent=AgentName.BID_SHIFTER,
        reason="test",
        old_cpc_bid_micros=old,
        new_cpc_bid_micros=new,
    )


def budget(campaign_id: str, old: int, new: int) -> SetBudget:
    return SetBudget(
        action_id=f"budget-{campaign_id}",
        entity=ref(EntityKind.CAMPAIGN, campaign_id),
        agent=AgentName.BID_SHIFTER,
        reason="test",
        old_daily_budget_micros=old,
        new_daily_budget_micros=new,
    )


def cleared(*actions: Any) -> list[Any]:
    return [_issue_clearance(a, verdict="allowed", rule_id="test") for a in actions]


def requests_to(srv: FakeAmazonAdsServer, endpoint: str) -> list[Any]:
    return [r for r in srv.requests if r.endpoint == endpoint]


# ----------------------------------------------------------------------------------------------- reads


def test_client_implements_the_platform_protocol(client: AmazonAdsClient) -> None:
    assert isinstance(client, PlatformClient)
    assert client.name == "amazon_ads"


def test_snapshot_reads_structure_and_converts_report_money_to_micros(client: AmazonAdsClient) -> None:
    snap = client.read_snapshot(ACCOUNT_ID)

    campaigns = snap.by_id(EntityKind.CAMPAIGN)
    assert campaigns["11"].daily_budget_micros == 50_000_000
    assert campaigns["12"].daily_budget_micros == 25_500_000
    assert campaigns["12"].status is Status.PAUSED
    assert campaigns["11"].today.cost_micros == 31_500_000
    assert campaigns["11"].today.conversion_value_micros == 90_250_000
    assert campaigns["11"].trailing_7d.cost_micros == 220_010_000
    assert campaigns["11"].trailing_7d.clicks == 280
    assert campaigns["11"].trailing_7d.conversions == pytest.approx(21.0)
    keywords = snap.by_id(EntityKind.KEYWORD)
    assert keywords["31"].cpc_bid_micros == 850_000
    assert keywords["32"].match_type is MatchType.PHRASE
    assert keywords["31"].parent_id == "21" and keywords["31"].campaign_id == "11"
    assert keywords["31"].today.clicks == 40
    assert snap.by_id(EntityKind.AD_GROUP)["21"].today.cost_micros == 31_500_000  # sum of its targeting rows
    term = snap.by_id(EntityKind.SEARCH_TERM)["acme travel mug"]
    assert term.parent_id == "31" and term.trailing_7d.cost_micros == 220_010_000
    ad = snap.by_id(EntityKind.CREATIVE)["41"]
    assert ad.name == "B0ACMEMUG1" and ad.parent_id == "21" and ad.today.clicks == 40
    assert len(ad.daily_history) == 14
    account_entity = snap.of_kind(EntityKind.ACCOUNT)[0]
    assert account_entity.ref.entity_id == ACCOUNT_ID and account_entity.today.cost_micros == 31_500_000
    assert snap.account_daily_budget_micros == 50_000_000  # the paused campaign does not count
    assert snap.platform is Platform.AMAZON_ADS and snap.account_id == ACCOUNT_ID


def test_snapshot_gives_budget_holders_fourteen_days_of_history_oldest_first(client: AmazonAdsClient) -> None:
    campaign = client.read_snapshot(ACCOUNT_ID).by_id(EntityKind.CAMPAIGN)["11"]
    assert len(campaign.daily_history) == 14
    assert sum(m.cost_micros for m in campaign.daily_history[-7:]) == 220_010_000
    assert all(m.cost_micros == 0 for m in campaign.daily_history[:7])


def test_expected_spend_fraction_follows_the_accounts_local_clock(srv: FakeAmazonAdsServer, sleeps: Sleeps) -> None:
    srv.time_zone = "America/New_York"  # the profile's `timezone`, which the configuration must match
    c = make_client(srv, sleeps, account=account(srv, time_zone="America/New_York"))
    snap = c.read_snapshot(ACCOUNT_ID)
    assert snap.as_of.hour == 11  # 15:00 UTC is 11:00 in New York (EDT)
    assert snap.expected_spend_fraction == pytest.approx(11 / 24)


def test_snapshot_costs_a_fixed_number_of_requests_whatever_the_size(client: AmazonAdsClient, srv) -> None:
    client.read_snapshot(ACCOUNT_ID)
    assert srv.requests_by_endpoint["POST /reporting/reports"] == 4
    assert srv.requests_by_endpoint["GET /download/{id}"] == 4
    assert srv.requests_by_endpoint["POST /sp/keywords/list"] == 1


def test_report_polling_uses_the_injected_sleep(srv: FakeAmazonAdsServer, sleeps: Sleeps) -> None:
    srv.report_polls_until_ready = 2
    make_client(srv, sleeps, report_poll_interval_s=4.0).read_snapshot(ACCOUNT_ID)
    assert sleeps == [4.0, 4.0]


def test_report_not_ready_in_time_fails_the_read_as_retryable(srv: FakeAmazonAdsServer, sleeps: Sleeps) -> None:
    srv.report_polls_until_ready = 100
    c = make_client(srv, sleeps, report_poll_interval_s=10.0, report_max_wait_s=30.0)
    with pytest.raises(PlatformError) as info:
        c.read_snapshot(ACCOUNT_ID)
    assert info.value.retryable and "not ready" in info.value.message


def test_every_profile_request_carries_the_accounts_profile_as_scope(
    srv: FakeAmazonAdsServer, sleeps: Sleeps, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AD_API_PROFILE_ID", "999")  # a stray wrapper variable must not re-route anything
    c = make_client(srv, sleeps)
    c.read_snapshot(ACCOUNT_ID)
    c.apply(ACCOUNT_ID, cleared(bid("31", 850_000, 900_000)))
    scoped = [r for r in srv.requests if r.path.startswith(("/sp/", "/reporting/reports"))]
    assert scoped and {r.headers.get("amazon-advertising-api-scope") for r in scoped} == {PROFILE_ID}
    assert {r.headers.get("amazon-advertising-api-clientid") for r in scoped} == {"client-1"}


def test_read_back_returns_current_settings_keyed_by_ref(client: AmazonAdsClient) -> None:
    refs = [ref(EntityKind.KEYWORD, "31"), ref(EntityKind.CAMPAIGN, "11"), ref(EntityKind.AD_GROUP, "22")]
    states = client.read_back(ACCOUNT_ID, refs)
    assert states[refs[0].key].cpc_bid_micros == 850_000
    assert states[refs[1].key].daily_budget_micros == 50_000_000
    assert states[refs[2].key].cpc_bid_micros == 400_000


def test_another_accounts_id_is_refused(client: AmazonAdsClient) -> None:
    with pytest.raises(UnknownAccountError):
        client.read_snapshot("other")


def test_every_sdk_object_gets_a_timeout(srv: FakeAmazonAdsServer, sleeps: Sleeps) -> None:
    credentials = AmazonCredentials(
        client_id="c", client_secret="s", refresh_token="r", access_token="fake-access-token"
    )
    apis = AmazonApis.build(credentials, profile_id=PROFILE_ID, marketplace=_na(), endpoint=srv.address)
    for api in apis.all():
        api.timeout = None
    AmazonAdsClient(account(srv), apis, timeout_s=12.5)
    assert {api.timeout for api in apis.all()} == {12.5}


# ----------------------------------------------------------------------------------------------- configuration


def test_missing_marketplace_is_a_config_error_that_names_the_setting(srv: FakeAmazonAdsServer) -> None:
    env = {"AD_API_CLIENT_ID": "c", "AD_API_CLIENT_SECRET": "s", "AD_API_REFRESH_TOKEN": "r"}
    with pytest.raises(ConfigError) as info:
        AmazonAdsClient.from_account(account(srv, marketplace=None), environ=env)
    assert "marketplace" in info.value.message and "marketplace" in (info.value.hint or "")


def test_marketplace_whose_currency_differs_from_the_account_is_refused(srv: FakeAmazonAdsServer) -> None:
    env = {"AD_API_CLIENT_ID": "c", "AD_API_CLIENT_SECRET": "s", "AD_API_REFRESH_TOKEN": "r"}
    with pytest.raises(ConfigError, match="JPY"):
        AmazonAdsClient.from_account(account(srv, marketplace="JP", currency="USD"), environ=env)


def test_missing_credentials_raise_an_auth_error_naming_the_variables(srv: FakeAmazonAdsServer) -> None:
    with pytest.raises(PlatformAuthError) as info:
        AmazonAdsClient.from_account(account(srv), environ={"AD_API_CLIENT_ID": "c"})
    hint = info.value.hint or ""
    assert "AD_API_CLIENT_SECRET" in hint and "AD_API_REFRESH_TOKEN" in hint
    assert "AD_API_CLIENT_SECRET" in info.value.message  # says which ones are missing


def test_profile_id_must_be_a_number(srv: FakeAmazonAdsServer, sleeps: Sleeps) -> None:
    with pytest.raises(ConfigError, match="profile id"):
        make_client(srv, sleeps, account=account(srv, platform_account_id="my-shop"))


def test_from_account_exchanges_the_refresh_token_with_login_with_amazon(srv: FakeAmazonAdsServer) -> None:
    env = {"AD_API_CLIENT_ID": "c", "AD_API_CLIENT_SECRET": "s", "AD_API_REFRESH_TOKEN": f"Atzr|{uuid.uuid4()}"}
    c = AmazonAdsClient.from_account(account(srv), environ=env, sleep=lambda s: None)
    assert [a.account_id for a in c.list_accounts()] == [PROFILE_ID]
    token_requests = requests_to(srv, "POST /auth/o2/token")
    assert len(token_requests) == 1 and token_requests[0].body["grant_type"] == "refresh_token"


# ----------------------------------------------------------------------------------------------- writes


def test_keyword_bids_go_out_in_major_units_in_one_request(client: AmazonAdsClient, srv: FakeAmazonAdsServer) -> None:
    results = client.apply(ACCOUNT_ID, cleared(bid("31", 850_000, 900_000), bid("32", 600_000, 550_000)))

    puts = requests_to(srv, "PUT /sp/keywords")
    assert len(puts) == 1
    assert puts[0].body == {"keywords": [{"keywordId": "31", "bid": 0.9}, {"keywordId": "32", "bid": 0.55}]}
    assert puts[0].headers["content-type"] == "application/vnd.spKeyword.v3+json"
    assert puts[0].headers["prefer"] == "return=representation"
    assert [r.status for r in results] == [WriteStatus.APPLIED, WriteStatus.APPLIED]
    assert [r.read_back for r in results] == ["900000", "550000"]
    assert srv.entities["keywords"]["31"]["bid"] == 0.9
    after = client.read_back(ACCOUNT_ID, [ref(EntityKind.KEYWORD, "32")])
    assert after[ref(EntityKind.KEYWORD, "32").key].cpc_bid_micros == 550_000


def test_bids_are_rounded_down_to_the_cent_never_up(client: AmazonAdsClient, srv: FakeAmazonAdsServer) -> None:
    [result] = client.apply(ACCOUNT_ID, cleared(bid("31", 850_000, 1_239_999)))
    assert requests_to(srv, "PUT /sp/keywords")[0].body["keywords"][0]["bid"] == 1.23
    assert result.status is WriteStatus.APPLIED and result.read_back == "1230000"


def test_campaign_budget_goes_out_as_a_daily_budget_in_major_units(client: AmazonAdsClient, srv) -> None:
    [result] = client.apply(ACCOUNT_ID, cleared(budget("11", 50_000_000, 57_250_000)))
    [put] = requests_to(srv, "PUT /sp/campaigns")
    assert put.body == {"campaigns": [{"campaignId": "11", "budget": {"budgetType": "DAILY", "budget": 57.25}}]}
    assert put.headers["content-type"] == "application/vnd.spCampaign.v3+json"
    assert result.status is WriteStatus.APPLIED and result.read_back == "57250000"
    assert client.read_snapshot(ACCOUNT_ID).by_id(EntityKind.CAMPAIGN)["11"].daily_budget_micros == 57_250_000


def test_ad_group_bid_sets_the_default_bid(client: AmazonAdsClient, srv: FakeAmazonAdsServer) -> None:
    action = SetBid(
        action_id="ag",
        entity=ref(EntityKind.AD_GROUP, "21"),
        agent=AgentName.BID_SHIFTER,
        reason="t",
        old_cpc_bid_micros=700_000,
        new_cpc_bid_micros=650_000,
    )
    [result] = client.apply(ACCOUNT_ID, cleared(action))
    assert requests_to(srv, "PUT /sp/adGroups")[0].body == {"adGroups": [{"adGroupId": "21", "defaultBid": 0.65}]}
    assert result.status is WriteStatus.APPLIED


def test_2500_bids_are_sent_in_three_requests_of_at_most_1000(srv: FakeAmazonAdsServer, sleeps: Sleeps) -> None:
    for n in range(2500):
        srv.add_entity(
            EntityState(
                ref=ref(EntityKind.KEYWORD, str(10_000 + n)),
                name=f"kw {n}",
                parent_id="21",
                campaign_id="11",
                cpc_bid_micros=500_000,
                text=f"kw {n}",
            )
        )
    c = make_client(srv, sleeps)
    results = c.apply(ACCOUNT_ID, cleared(*(bid(str(10_000 + n), 500_000, 510_000) for n in range(2500))))
    sizes = [len(r.body["keywords"]) for r in requests_to(srv, "PUT /sp/keywords")]
    assert sizes == [1000, 1000, 500]
    assert all(r.status is WriteStatus.APPLIED for r in results)
    assert max(srv.writes_by_entity.values()) == 1


def test_two_actions_on_one_keyword_never_share_a_request(client: AmazonAdsClient, srv: FakeAmazonAdsServer) -> None:
    client.apply(ACCOUNT_ID, cleared(bid("31", 850_000, 900_000), bid("31", 900_000, 950_000)))
    assert len(requests_to(srv, "PUT /sp/keywords")) == 2
    assert srv.entities["keywords"]["31"]["bid"] == 0.95


def test_partial_failure_is_reported_per_action(client: AmazonAdsClient, srv: FakeAmazonAdsServer) -> None:
    srv.inject("partial_failure", ids=["32"], reason="BID_TOO_HIGH")
    results = client.apply(
        ACCOUNT_ID, cleared(bid("31", 850_000, 900_000), bid("32", 600_000, 650_000), bid("33", 300_000, 310_000))
    )
    assert [r.status for r in results] == [WriteStatus.APPLIED, WriteStatus.FAILED, WriteStatus.APPLIED]
    assert "BID_TOO_HIGH" in results[1].message
    assert srv.entities["keywords"]["32"]["bid"] == 0.6
    assert len(requests_to(srv, "PUT /sp/keywords")) == 1  # an item-level refusal is not retried


def test_unknown_entity_fails_alone(client: AmazonAdsClient) -> None:
    results = client.apply(ACCOUNT_ID, cleared(bid("31", 850_000, 900_000), bid("404", 100_000, 110_000)))
    assert [r.status for r in results] == [WriteStatus.APPLIED, WriteStatus.FAILED]
    assert "ENTITY_NOT_FOUND" in results[1].message


class _SilentKeywords:
    """An injected SDK object whose 207 answer forgets the second item."""

    timeout = 5.0

    def __init__(self) -> None:
        self.credentials = {"profile_id": PROFILE_ID}

    def edit_keyword(self, body: dict[str, Any], prefer: bool = False) -> ApiResponse:
        first = body["keywords"][0]
        return ApiResponse({"keywords": {"success": [{"index": 0, "keywordId": first["keywordId"]}], "error": []}})


def test_an_item_the_multi_status_body_does_not_mention_is_never_reported_applied(client: AmazonAdsClient) -> None:
    client._apis.keywords = _SilentKeywords()
    results = client.apply(ACCOUNT_ID, cleared(bid("31", 850_000, 900_000), bid("32", 600_000, 650_000)))
    assert [r.status for r in results] == [WriteStatus.APPLIED, WriteStatus.FAILED]
    assert "did not mention" in results[1].message


def test_transient_5xx_is_retried_until_it_converges(client: AmazonAdsClient, srv, sleeps: Sleeps) -> None:
    srv.inject("server_error", times=2, path="PUT /sp/keywords", status=503)
    [result] = client.apply(ACCOUNT_ID, cleared(bid("31", 850_000, 900_000)))
    assert result.status is WriteStatus.APPLIED and result.attempts == 3
    assert len(sleeps) == 2
    assert srv.writes_by_entity["31"] == 1


def test_throttling_waits_at_least_the_retry_after_hint(client: AmazonAdsClient, srv, sleeps: Sleeps) -> None:
    srv.inject("throttle", times=2, path="PUT /sp/keywords", retry_after_s=7)
    [result] = client.apply(ACCOUNT_ID, cleared(bid("31", 850_000, 900_000)))
    assert result.status is WriteStatus.APPLIED
    assert len(sleeps) == 2 and all(s >= 7 for s in sleeps)


def test_a_long_retry_after_is_handed_back_as_deferred(client: AmazonAdsClient, srv, sleeps: Sleeps) -> None:
    srv.inject("throttle", times=1, path="PUT /sp/campaigns", retry_after_s=3600)
    results = client.apply(ACCOUNT_ID, cleared(budget("11", 50_000_000, 55_000_000), bid("31", 850_000, 900_000)))
    assert results[0].status is WriteStatus.DEFERRED and results[0].retry_after_s == 3600
    assert results[0].retryable
    assert results[1].status is WriteStatus.APPLIED  # other requests go on
    assert sleeps == []
    assert srv.entities["campaigns"]["11"]["budget"]["budget"] == 50.0


def test_retries_give_up_and_report_failed_retryable(srv: FakeAmazonAdsServer, sleeps: Sleeps) -> None:
    c = make_client(srv, sleeps, retry_policy=RetryPolicy(max_attempts=3))
    srv.inject("server_error", times=None, path="PUT /sp/keywords", status=500)
    [result] = c.apply(ACCOUNT_ID, cleared(bid("31", 850_000, 900_000)))
    assert result.status is WriteStatus.FAILED and result.retryable
    assert "HTTP 500" in result.message
    assert len(requests_to(srv, "PUT /sp/keywords")) == 3


def test_an_expired_token_fails_at_once_with_a_hint(client: AmazonAdsClient, srv, sleeps: Sleeps) -> None:
    srv.inject("expired_token", path="PUT /sp/keywords")
    [result] = client.apply(ACCOUNT_ID, cleared(bid("31", 850_000, 900_000)))
    assert result.status is WriteStatus.FAILED and not result.retryable
    assert "401" in result.message and "AD_API_REFRESH_TOKEN" in result.message
    assert sleeps == [] and len(requests_to(srv, "PUT /sp/keywords")) == 1


def test_a_dropped_connection_after_the_write_is_read_back_not_resent(client: AmazonAdsClient, srv) -> None:
    srv.inject("timeout_after_write", mode="drop")
    results = client.apply(ACCOUNT_ID, cleared(bid("31", 850_000, 900_000), budget("11", 50_000_000, 52_000_000)))
    assert [r.status for r in results] == [WriteStatus.APPLIED, WriteStatus.APPLIED]
    assert "read-back" in results[0].message and results[0].read_back == "900000"
    assert client.retry_stats.reconciled == 1
    assert len(requests_to(srv, "PUT /sp/keywords")) == 1
    assert srv.writes_by_entity["31"] == 1 and srv.writes_by_entity["11"] == 1


def test_an_answer_stalled_beyond_the_client_timeout_is_read_back_not_resent(srv: FakeAmazonAdsServer, sleeps) -> None:
    c = make_client(srv, sleeps, timeout_s=0.3)
    srv.inject("timeout_after_write", mode="stall", stall_s=1.0)
    [result] = c.apply(ACCOUNT_ID, cleared(bid("31", 850_000, 900_000)))
    assert result.status is WriteStatus.APPLIED
    assert srv.writes_by_entity["31"] == 1 and len(requests_to(srv, "PUT /sp/keywords")) == 1


def test_after_an_ambiguous_failure_only_the_items_not_yet_landed_are_resent(client: AmazonAdsClient, srv) -> None:
    srv.inject("partial_failure", ids=["32"])  # 32 does not land ...
    srv.inject("timeout_after_write", mode="drop")  # ... and the answer is lost
    results = client.apply(ACCOUNT_ID, cleared(bid("31", 850_000, 900_000), bid("32", 600_000, 650_000)))
    assert [r.status for r in results] == [WriteStatus.APPLIED, WriteStatus.APPLIED]
    puts = requests_to(srv, "PUT /sp/keywords")
    assert len(puts) == 2 and puts[1].body == {"keywords": [{"keywordId": "32", "bid": 0.65}]}
    assert srv.writes_by_entity["31"] == 1 and srv.writes_by_entity["32"] == 1


def test_add_keyword_creates_an_sp_keyword_in_the_ad_groups_campaign(client: AmazonAdsClient, srv) -> None:
    action = AddKeyword(
        action_id="add",
        entity=ref(EntityKind.AD_GROUP, "21"),
        agent=AgentName.KEYWORD_INSIGHT,
        reason="converting search term",
        text="acme travel mug",
        match_type=MatchType.EXACT,
        cpc_bid_micros=720_000,
    )
    [result] = client.apply(ACCOUNT_ID, cleared(action))
    [post] = requests_to(srv, "POST /sp/keywords")
    assert post.body == {
        "keywords": [
            {
                "adGroupId": "21",
                "keywordText": "acme travel mug",
                "matchType": "EXACT",
                "state": "ENABLED",
                "bid": 0.72,
                "campaignId": "11",
            }
        ]
    }
    assert result.status is WriteStatus.APPLIED and (result.read_back or "").startswith("keywordId=")
    texts = {k.text for k in client.read_snapshot(ACCOUNT_ID).of_kind(EntityKind.KEYWORD)}
    assert "acme travel mug" in texts


def test_a_keyword_create_whose_answer_was_lost_is_created_once(client: AmazonAdsClient, srv) -> None:
    srv.inject("timeout_after_write", mode="drop")
    action = AddKeyword(
        action_id="add",
        entity=ref(EntityKind.AD_GROUP, "22"),
        agent=AgentName.KEYWORD_INSIGHT,
        reason="t",
        text="big mug",
        match_type=MatchType.PHRASE,
        cpc_bid_micros=500_000,
    )
    [result] = client.apply(ACCOUNT_ID, cleared(action))
    assert result.status is WriteStatus.APPLIED
    assert len(requests_to(srv, "POST /sp/keywords")) == 1
    assert sum(1 for k in srv.entities["keywords"].values() if k["keywordText"] == "big mug") == 1


def test_add_negative_keyword_uses_the_negative_match_type(client: AmazonAdsClient, srv) -> None:
    action = AddNegativeKeyword(
        action_id="neg",
        entity=ref(EntityKind.AD_GROUP, "21"),
        agent=AgentName.KEYWORD_INSIGHT,
        reason="no sales",
        text="free mug",
    )
    [result] = client.apply(ACCOUNT_ID, cleared(action))
    [post] = requests_to(srv, "POST /sp/negativeKeywords")
    assert post.body["negativeKeywords"][0]["matchType"] == "NEGATIVE_EXACT"
    assert post.headers["content-type"] == "application/vnd.spNegativeKeyword.v3+json"
    assert result.status is WriteStatus.APPLIED


def test_add_keyword_to_an_unknown_ad_group_fails_without_a_write(client: AmazonAdsClient, srv) -> None:
    action = AddKeyword(
        action_id="add",
        entity=ref(EntityKind.AD_GROUP, "999"),
        agent=AgentName.KEYWORD_INSIGHT,
        reason="t",
        text="x",
        cpc_bid_micros=500_000,
    )
    [result] = client.apply(ACCOUNT_ID, cleared(action))
    assert result.status is WriteStatus.FAILED and "999" in result.message
    assert srv.write_request_count == 0


def test_pause_and_enable_creative_set_the_product_ad_state(client: AmazonAdsClient, srv) -> None:
    pause = PauseCreative(
        action_id="p",
        entity=ref(EntityKind.CREATIVE, "41"),
        agent=AgentName.CREATIVE_ROTATION,
        reason="fatigue",
        old_status=Status.ENABLED,
    )
    [result] = client.apply(ACCOUNT_ID, cleared(pause))
    [put] = requests_to(srv, "PUT /sp/productAds")
    assert put.body == {"productAds": [{"adId": "41", "state": "PAUSED"}]}
    assert put.headers["content-type"] == "application/vnd.spProductAd.v3+json"
    assert result.status is WriteStatus.APPLIED and result.read_back == "paused"
    enable = EnableCreative(
        action_id="e",
        entity=ref(EntityKind.CREATIVE, "41"),
        agent=AgentName.CREATIVE_ROTATION,
        reason="rested",
        old_status=Status.PAUSED,
    )
    client.apply(ACCOUNT_ID, cleared(enable))
    state = client.read_back(ACCOUNT_ID, [ref(EntityKind.CREATIVE, "41")])[ref(EntityKind.CREATIVE, "41").key]
    assert state.status is Status.ENABLED


def test_unsupported_action_kinds_fail_with_a_clear_message(client: AmazonAdsClient, srv) -> None:
    action = SetBudget(
        action_id="b",
        entity=ref(EntityKind.AD_GROUP, "21"),
        agent=AgentName.BID_SHIFTER,
        reason="t",
        old_daily_budget_micros=10_000_000,
        new_daily_budget_micros=11_000_000,
    )
    [result] = client.apply(ACCOUNT_ID, cleared(action))
    assert result.status is WriteStatus.FAILED and "does not support set_budget on ad_group entities" in result.message
    assert srv.request_count == 0


def test_a_budget_below_amazons_minimum_is_not_sent(client: AmazonAdsClient, srv) -> None:
    [result] = client.apply(ACCOUNT_ID, cleared(budget("11", 1_200_000, 990_000)))
    assert result.status is WriteStatus.FAILED and "minimum" in result.message
    assert srv.request_count == 0


# ----------------------------------------------------------------------------------------------- guard rails


def test_validate_only_sends_nothing_and_says_so(client: AmazonAdsClient, srv: FakeAmazonAdsServer) -> None:
    action = AddKeyword(
        action_id="add",
        entity=ref(EntityKind.AD_GROUP, "21"),
        agent=AgentName.KEYWORD_INSIGHT,
        reason="t",
        text="new",
        cpc_bid_micros=500_000,
    )
    results = client.apply(
        ACCOUNT_ID,
        cleared(bid("31", 850_000, 900_000), budget("11", 50_000_000, 55_000_000), action),
        validate_only=True,
    )
    assert [r.status for r in results] == [WriteStatus.VALIDATED] * 3
    assert all("nothing was sent" in r.message for r in results)
    assert srv.request_count == 0
    assert srv.entities["keywords"]["31"]["bid"] == 0.85


def test_an_unfiltered_action_refuses_the_whole_batch_and_sends_nothing(client: AmazonAdsClient, srv) -> None:
    good = cleared(bid("31", 850_000, 900_000))[0]
    with pytest.raises(UnfilteredActionError):
        client.apply(ACCOUNT_ID, [good, bid("32", 600_000, 5_000_000)])  # type: ignore[list-item]
    forged = good.model_copy(update={"action": bid("31", 850_000, 9_000_000)})
    with pytest.raises(UnfilteredActionError):
        client.apply(ACCOUNT_ID, [good, forged])
    assert srv.request_count == 0


def test_an_action_for_another_account_is_not_sent(client: AmazonAdsClient, srv) -> None:
    other = SetBid(
        action_id="o",
        entity=EntityRef(platform=Platform.AMAZON_ADS, account_id="elsewhere", kind=EntityKind.KEYWORD, entity_id="31"),
        agent=AgentName.BID_SHIFTER,
        reason="t",
        old_cpc_bid_micros=1,
        new_cpc_bid_micros=900_000,
    )
    [result] = client.apply(ACCOUNT_ID, cleared(other))
    assert result.status is WriteStatus.FAILED and srv.request_count == 0


# ----------------------------------------------------------------------------------------------- secrets and access


def test_no_secret_appears_in_any_log_line(srv: FakeAmazonAdsServer, caplog: pytest.LogCaptureFixture) -> None:
    secret, refresh = f"sec-{uuid.uuid4()}", f"Atzr|{uuid.uuid4()}"
    env = {"AD_API_CLIENT_ID": "client-x", "AD_API_CLIENT_SECRET": secret, "AD_API_REFRESH_TOKEN": refresh}
    caplog.set_level(logging.DEBUG)
    c = AmazonAdsClient.from_account(
        account(srv), environ=env, sleep=lambda s: None, now=lambda: AS_OF, retry_policy=RetryPolicy(max_attempts=2)
    )
    c.read_snapshot(ACCOUNT_ID)
    srv.inject("throttle", path="PUT /sp/keywords", retry_after_s=2)
    srv.inject("server_error", path="PUT /sp/campaigns")
    srv.inject("partial_failure", ids=["32"])
    messages = [
        r.message
        for r in c.apply(
            ACCOUNT_ID,
            cleared(bid("31", 850_000, 900_000), bid("32", 600_000, 650_000), budget("11", 50_000_000, 51_000_000)),
        )
    ]
    srv.inject("timeout_after_write")
    messages += [r.message for r in c.apply(ACCOUNT_ID, cleared(bid("33", 300_000, 310_000)))]
    srv.inject("expired_token", times=None)
    messages += [r.message for r in c.apply(ACCOUNT_ID, cleared(bid("31", 900_000, 910_000)))]
    srv.clear_faults()
    srv.inject("revoked_refresh_token")
    env2 = dict(env, AD_API_REFRESH_TOKEN=f"{refresh}-2")
    report = check_access(account(srv), client=AmazonAdsClient.from_account(account(srv), environ=env2))
    messages += [report.message, report.hint or ""]

    issued = [t for t in srv._valid_tokens if t.startswith("Atza|")]
    assert issued, "the LWA exchange ran"
    secrets = [secret, refresh, f"{refresh}-2", *issued]
    logged = caplog.text + "\n".join(r.getMessage() for r in caplog.records) + "\n".join(messages)
    assert caplog.records, "the run logged something"
    for value in secrets:
        assert value not in logged
        assert value not in repr(c.__dict__.get("account"))


def test_accounts_check_lists_the_visible_profiles(srv: FakeAmazonAdsServer, sleeps: Sleeps) -> None:
    report = check_access(account(srv), client=make_client(srv, sleeps))
    assert report.ok and [a.account_id for a in report.accounts] == [PROFILE_ID]
    assert report.accounts[0].currency == "USD"


def test_accounts_check_explains_a_profile_these_credentials_cannot_see(srv, sleeps: Sleeps) -> None:
    c = make_client(srv, sleeps, account=account(srv, platform_account_id="4400000004"))
    report = check_access(account(srv, platform_account_id="4400000004"), client=c)
    assert not report.ok and "4400000004" in report.message and PROFILE_ID in (report.hint or "")


def test_accounts_check_explains_an_expired_token(srv: FakeAmazonAdsServer, sleeps: Sleeps) -> None:
    srv.inject("expired_token")
    report = check_access(account(srv), client=make_client(srv, sleeps))
    assert not report.ok and "access token" in report.message and report.error_code == "PLATFORM_AUTH"


def test_accounts_check_explains_a_revoked_refresh_token(srv: FakeAmazonAdsServer) -> None:
    env = {"AD_API_CLIENT_ID": "c", "AD_API_CLIENT_SECRET": "s", "AD_API_REFRESH_TOKEN": f"Atzr|{uuid.uuid4()}"}
    srv.inject("revoked_refresh_token")
    report = check_access(account(srv), client=AmazonAdsClient.from_account(account(srv), environ=env))
    assert not report.ok and "refresh token" in report.message and "re-authorize" in (report.hint or "")


def test_accounts_check_explains_missing_credentials_and_marketplace(srv: FakeAmazonAdsServer) -> None:
    no_creds = check_access(account(srv))
    assert not no_creds.ok and "AD_API_REFRESH_TOKEN" in (no_creds.hint or "")
    no_market = check_access(account(srv, marketplace=None))
    assert not no_market.ok and "marketplace" in no_market.message


def test_accounts_check_explains_a_listed_profile_that_refuses_access(srv: FakeAmazonAdsServer, sleeps) -> None:
    srv.listed_profile_ids = (PROFILE_ID, "4400000004")
    acct = account(srv, platform_account_id="4400000004")
    report = check_access(acct, client=make_client(srv, sleeps, account=acct))
    assert not report.ok and "no access to Amazon Ads profile 4400000004" in report.message
    assert "platform_account_id" in (report.hint or "")


def test_the_package_exports_what_it_lists() -> None:
    import bidloop.tools.amazon_ads as package

    assert {"AmazonAdsClient", "check_access", "AccessCheck"} <= set(package.__all__)
    assert "FakeAmazonAdsServer" not in package.__all__, "the fake lives in bidloop.testing"
    for name in package.__all__:
        assert getattr(package, name) is not None


# ----------------------------------------------------------------------------------------------- access-token renewal


def exchanging_client(srv: FakeAmazonAdsServer, sleeps: Sleeps) -> tuple[AmazonAdsClient, AmazonCredentials]:
    """A client that exchanges its refresh token; unique, so no other test's cached access token is reused."""
    credentials = AmazonCredentials(
        client_id="client-1", client_secret=f"sec-{uuid.uuid4()}", refresh_token=f"Atzr|{uuid.uuid4()}"
    )
    apis = AmazonApis.build(credentials, profile_id=PROFILE_ID, marketplace=_na(), timeout_s=5.0, endpoint=srv.address)
    return AmazonAdsClient(account(srv), apis, sleep=sleeps, now=lambda: AS_OF, timeout_s=5.0), credentials


def token_exchanges(srv: FakeAmazonAdsServer) -> int:
    return srv.requests_by_endpoint["POST /auth/o2/token"]


def assert_no_token_logged(caplog: pytest.LogCaptureFixture, secrets: list[str], *messages: str) -> None:
    assert caplog.records, "the calls logged something"
    logged = caplog.text + "\n".join(r.getMessage() for r in caplog.records) + "\n".join(messages)
    for value in secrets:
        assert value not in logged


def test_a_read_after_amazon_revoked_the_cached_token_renews_it_once_and_succeeds(
    srv: FakeAmazonAdsServer, sleeps: Sleeps, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    c, credentials = exchanging_client(srv, sleeps)
    assert [a.account_id for a in c.list_accounts()] == [PROFILE_ID]
    assert token_exchanges(srv) == 1
    assert srv.revoke_access_tokens() >= 1

    states = c.read_back(ACCOUNT_ID, [ref(EntityKind.CAMPAIGN, "11")])

    assert states[ref(EntityKind.CAMPAIGN, "11").key].daily_budget_micros == 50_000_000
    assert token_exchanges(srv) == 2  # exactly one new exchange
    assert len(requests_to(srv, "POST /sp/campaigns/list")) == 2  # refused once, then answered
    assert sleeps == []  # a 401 is not a retry-layer retry
    c.list_accounts()
    assert token_exchanges(srv) == 2  # the renewed token is cached and used from then on
    assert "access token rejected (HTTP 401)" in caplog.text
    assert_no_token_logged(caplog, [*credentials.secrets(), *srv.issued_access_tokens])


def test_a_write_after_amazon_revoked_the_cached_token_lands_exactly_once(
    srv: FakeAmazonAdsServer, sleeps: Sleeps, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    c, credentials = exchanging_client(srv, sleeps)
    c.list_accounts()
    srv.revoke_access_tokens()

    [result] = c.apply(ACCOUNT_ID, cleared(budget("11", 50_000_000, 52_000_000)))

    assert result.status is WriteStatus.APPLIED and result.read_back == "52000000"
    assert srv.entities["campaigns"]["11"]["budget"]["budget"] == 52.0
    assert srv.writes_by_entity["11"] == 1
    assert len(requests_to(srv, "PUT /sp/campaigns")) == 2  # the refused one was not executed
    assert token_exchanges(srv) == 2
    assert_no_token_logged(caplog, [*credentials.secrets(), *srv.issued_access_tokens], result.message)


def test_a_401_that_outlives_the_renewed_token_is_an_auth_error_after_one_exchange(
    srv: FakeAmazonAdsServer, sleeps: Sleeps, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    c, credentials = exchanging_client(srv, sleeps)
    c.list_accounts()
    srv.inject("expired_token", times=None)  # every token is refused, the renewed one too

    with pytest.raises(PlatformAuthError) as info:
        c.read_back(ACCOUNT_ID, [ref(EntityKind.CAMPAIGN, "11")])
    assert "HTTP 401" in info.value.message and "refresh AD_API_REFRESH_TOKEN" in (info.value.hint or "")
    assert token_exchanges(srv) == 2 and len(requests_to(srv, "POST /sp/campaigns/list")) == 2

    [result] = c.apply(ACCOUNT_ID, cleared(budget("11", 50_000_000, 52_000_000)))
    assert result.status is WriteStatus.FAILED and not result.retryable and "HTTP 401" in result.message
    assert token_exchanges(srv) == 3 and len(requests_to(srv, "PUT /sp/campaigns")) == 2  # one renewal per call
    assert srv.writes_by_entity["11"] == 0 and sleeps == []
    assert_no_token_logged(caplog, [*credentials.secrets(), *srv.issued_access_tokens], str(info.value))


def test_a_refused_refresh_token_after_a_revoked_access_token_ends_without_a_loop(
    srv: FakeAmazonAdsServer, sleeps: Sleeps, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    c, credentials = exchanging_client(srv, sleeps)
    c.list_accounts()
    srv.revoke_access_tokens()
    srv.inject("revoked_refresh_token", times=None)

    with pytest.raises(PlatformAuthError, match="refused the refresh token") as info:
        c.list_accounts()

    assert "re-authorize" in (info.value.hint or "")
    assert token_exchanges(srv) == 2 and len(requests_to(srv, "GET /v2/profiles")) == 2
    assert_no_token_logged(caplog, [*credentials.secrets(), *srv.issued_access_tokens], str(info.value))


def test_a_rejected_fixed_access_token_is_not_renewed_and_the_error_says_to_renew_it(
    srv: FakeAmazonAdsServer, sleeps: Sleeps, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    c = make_client(srv, sleeps)  # AD_API_ACCESS_TOKEN given: no exchange
    srv.revoke_access_tokens()

    with pytest.raises(PlatformAuthError) as info:
        c.list_accounts()
    [result] = c.apply(ACCOUNT_ID, cleared(budget("11", 50_000_000, 52_000_000)))

    assert "renew it" in (info.value.hint or "") and "AD_API_ACCESS_TOKEN" in (info.value.hint or "")
    assert result.status is WriteStatus.FAILED and "renew it" in result.message
    assert token_exchanges(srv) == 0
    assert len(requests_to(srv, "GET /v2/profiles")) == 1 and len(requests_to(srv, "PUT /sp/campaigns")) == 1
    assert srv.writes_by_entity["11"] == 0
    assert "access token rejected" not in caplog.text
    assert_no_token_logged(caplog, ["fake-access-token", "s3cret-value", "Atzr|refresh-1"], result.message)

"""MetaClient against the fake Graph API: the real facebook-business SDK code runs in every test."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bidloop.core.actions import AddNegativeKeyword, AgentName, EnableCreative, PauseCreative, SetBid, SetBudget
from bidloop.core.clearance import _issue_clearance
from bidloop.core.decisions import WriteStatus
from bidloop.core.entities import EntityKind, EntityRef, EntityState, Platform, Status
from bidloop.core.errors import PlatformAuthError, UnfilteredActionError, UnknownAccountError
from bidloop.core.metrics import Metrics
from bidloop.core.settings import AccountConfig
from bidloop.core.snapshot import Snapshot
from bidloop.testing.meta.fake_server import FakeMetaServer
from bidloop.tools._retry import RetryPolicy
from bidloop.tools.meta import ENV_ACCESS_TOKEN, MetaClient, MetaCredentials, build_session
from bidloop.tools.meta._currency import meta_units_to_micros, micros_to_meta_units
from bidloop.tools.protocol import PlatformClient

TOKEN = "EAAB-secret-token-0123456789"
APP_SECRET = "app-secret-abcdef"
AS_OF = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
ACCOUNT = "meta-main"


def ref(kind: EntityKind, entity_id: str) -> EntityRef:
    return EntityRef(platform=Platform.META, account_id=ACCOUNT, kind=kind, entity_id=entity_id)


def seed_snapshot(n_adsets: int = 4, currency: str = "USD") -> Snapshot:
    entities = [EntityState(ref=ref(EntityKind.CAMPAIGN, "900"), name="Prospecting", campaign_id="900")]
    for i in range(n_adsets):
        history = [
            Metrics(
                impressions=1000 + i,
                clicks=20 + d,
                cost_micros=10_000_000 + d * 10_000,
                conversions=2.0,
                conversion_value_micros=40_000_000 + i,
            )
            for d in range(14)
        ]
        entities.append(
            EntityState(
                ref=ref(EntityKind.AD_GROUP, str(100 + i)),
                name=f"Ad set {100 + i}",
                parent_id="900",
                campaign_id="900",
                daily_budget_micros=50_000_000 + i * 1_000_000 if currency != "JPY" else 5_000_000_000,
                cpc_bid_micros=1_250_000 if currency != "JPY" else 120_000_000,
                today=Metrics(
                    impressions=300,
                    clicks=7,
                    cost_micros=3_210_000,
                    conversions=1.0,
                    conversion_value_micros=12_340_000,
                ),
                daily_history=history,
            )
        )
    for i in range(3):
        entities.append(
            EntityState(ref=ref(EntityKind.CREATIVE, str(700 + i)), name=f"Ad {i}", parent_id="100", campaign_id="900")
        )
    return Snapshot(account_id=ACCOUNT, platform=Platform.META, currency=currency, as_of=AS_OF, entities=entities)


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


class Clock:
    def __init__(self) -> None:
        self.now_s = 1_000.0

    def __call__(self) -> float:
        return self.now_s


@pytest.fixture
def server() -> Iterator[FakeMetaServer]:
    with FakeMetaServer.from_snapshot(seed_snapshot(), platform_account_id="act_42", access_token=TOKEN) as srv:
        yield srv


def account_for(srv: FakeMetaServer, **update: object) -> AccountConfig:
    fields = {
        "id": ACCOUNT,
        "platform": Platform.META,
        "backend": "live",
        "platform_account_id": "act_42",
        "endpoint": srv.address,
        **update,
    }
    return AccountConfig(**fields)


def make_client(
    srv: FakeMetaServer, sleeps: Sleeps | None = None, *, primed: bool = True, **kwargs: object
) -> MetaClient:
    """Build a client; `primed` reads the account once, unrecorded, as a run does before it writes."""
    env = {ENV_ACCESS_TOKEN: TOKEN, "META_APP_ID": "1234", "META_APP_SECRET": APP_SECRET}
    kwargs.setdefault("timeout_s", 0.5)
    client = MetaClient.from_account(
        account_for(srv), env=env, sleep=sleeps if sleeps is not None else Sleeps(), clock=lambda: AS_OF, **kwargs
    )
    if primed:
        with srv.unrecorded():
            client.read_snapshot(ACCOUNT)
    return client


def cleared(*actions: object) -> list:
    return [_issue_clearance(a, verdict="allowed", rule_id="test") for a in actions]  # type: ignore[arg-type]


def budget(entity_id: str, new_micros: int, action_id: str = "b") -> SetBudget:
    return SetBudget(
        action_id=action_id,
        entity=ref(EntityKind.AD_GROUP, entity_id),
        agent=AgentName.BID_SHIFTER,
        reason="pace",
        old_daily_budget_micros=50_000_000,
        new_daily_budget_micros=new_micros,
    )


def bid(entity_id: str, new_micros: int, action_id: str = "c") -> SetBid:
    return SetBid(
        action_id=action_id,
        entity=ref(EntityKind.AD_GROUP, entity_id),
        agent=AgentName.BID_SHIFTER,
        reason="lift",
        old_cpc_bid_micros=1_250_000,
        new_cpc_bid_micros=new_micros,
    )


def pause(entity_id: str, action_id: str = "p") -> PauseCreative:
    return PauseCreative(
        action_id=action_id,
        entity=ref(EntityKind.CREATIVE, entity_id),
        agent=AgentName.CREATIVE_ROTATION,
        reason="fatigue",
        old_status=Status.ENABLED,
    )


# ---------------------------------------------------------------- reads


def test_client_implements_the_platform_protocol(server: FakeMetaServer) -> None:
    assert isinstance(make_client(server), PlatformClient)


def test_snapshot_reads_ad_sets_as_ad_groups_with_budgets_bids_and_metrics_in_micros(server: FakeMetaServer) -> None:
    seed = seed_snapshot()
    snap = make_client(server).read_snapshot(ACCOUNT)
    got = snap.by_id(EntityKind.AD_GROUP)
    for expected in seed.of_kind(EntityKind.AD_GROUP):
        adset = got[expected.ref.entity_id]
        assert adset.daily_budget_micros == expected.daily_budget_micros
        assert adset.cpc_bid_micros == expected.cpc_bid_micros
        assert adset.today == expected.today
        assert adset.daily_history == expected.daily_history
        assert adset.trailing_7d == sum(expected.daily_history[-7:], Metrics())
    assert set(snap.by_id(EntityKind.CREATIVE)) == {"700", "701", "702"}
    assert snap.by_id(EntityKind.CREATIVE)["700"].parent_id == "100"
    campaign = snap.by_id(EntityKind.CAMPAIGN)["900"]
    assert campaign.today.cost_micros == 4 * 3_210_000
    assert snap.account_daily_budget_micros == sum(50_000_000 + i * 1_000_000 for i in range(4))
    assert snap.account_id == ACCOUNT and snap.platform is Platform.META


def test_snapshot_costs_six_requests_whatever_the_size(server: FakeMetaServer) -> None:
    make_client(server, primed=False).read_snapshot(ACCOUNT)
    assert server.requests_by_endpoint == {"read": 1, "edge": 3, "insights": 2}
    insights = [r for r in server.requests if r.endpoint == "insights"]
    assert [r.params["level"] for r in insights] == ["adset", "ad"]
    assert insights[0].params["time_increment"] == "1"
    assert "purchase_roas" in insights[0].params["fields"] and "frequency" in insights[0].params["fields"]


def test_expected_spend_fraction_follows_the_account_local_clock(server: FakeMetaServer) -> None:
    server.account["timezone_name"] = "America/New_York"
    client = MetaClient.from_account(
        account_for(server, time_zone="America/New_York"),
        env={ENV_ACCESS_TOKEN: TOKEN},
        clock=lambda: datetime(2026, 6, 1, 16, 0, tzinfo=UTC),  # 12:00 in New York (EDT)
    )
    snap = client.read_snapshot(ACCOUNT)
    assert snap.expected_spend_fraction == pytest.approx(0.5)
    assert snap.as_of.utcoffset() is not None and snap.as_of.hour == 12


def test_unknown_account_is_refused(server: FakeMetaServer) -> None:
    with pytest.raises(UnknownAccountError):
        make_client(server).read_snapshot("nope")


def test_read_back_returns_current_settings(server: FakeMetaServer) -> None:
    client = make_client(server)
    client.apply(ACCOUNT, cleared(budget("101", 60_000_000), pause("701")))
    states = client.read_back(ACCOUNT, [ref(EntityKind.AD_GROUP, "101"), ref(EntityKind.CREATIVE, "701")])
    assert states[ref(EntityKind.AD_GROUP, "101").key].daily_budget_micros == 60_000_000
    assert states[ref(EntityKind.CREATIVE, "701").key].status is Status.PAUSED


# ---------------------------------------------------------------- writes: requests, units, batching


def test_writes_go_out_in_one_batch_in_minor_units_with_read_after_write(server: FakeMetaServer) -> None:
    results = make_client(server).apply(
        ACCOUNT, cleared(budget("100", 75_009_999, "a1"), bid("101", 2_345_678, "a2"), pause("700", "a3"))
    )
    assert server.request_count == 1
    (request,) = server.requests
    assert request.endpoint == "batch" and request.token_in_header
    assert request.batch == [
        {"method": "POST", "path": "100", "params": {"daily_budget": "7500", "fields": "daily_budget"}},
        {"method": "POST", "path": "101", "params": {"bid_amount": "234", "fields": "bid_amount"}},
        {"method": "POST", "path": "700", "params": {"status": "PAUSED", "fields": "status"}},
    ]
    assert [r.status for r in results] == [WriteStatus.APPLIED] * 3
    assert [r.read_back for r in results] == ["75000000", "2340000", "paused"]
    assert server.object("100")["daily_budget"] == "7500"


def test_jpy_budgets_are_sent_in_whole_yen() -> None:
    with FakeMetaServer.from_snapshot(
        seed_snapshot(currency="JPY"), platform_account_id="act_42", access_token=TOKEN
    ) as srv:
        client = MetaClient.from_account(account_for(srv, currency="JPY"), env={ENV_ACCESS_TOKEN: TOKEN})
        assert client.read_snapshot(ACCOUNT).by_id(EntityKind.AD_GROUP)["100"].daily_budget_micros == 5_000_000_000
        (result,) = client.apply(ACCOUNT, cleared(budget("100", 5_500_999_999)))
        assert srv.requests[-1].batch[0]["params"]["daily_budget"] == "5500"
        assert result.read_back == "5500000000"


def test_actions_are_batched_at_most_fifty_per_request() -> None:
    with FakeMetaServer.from_snapshot(
        seed_snapshot(n_adsets=120), platform_account_id="act_42", access_token=TOKEN
    ) as srv:
        results = make_client(srv).apply(ACCOUNT, cleared(*(bid(str(100 + i), 1_500_000, f"a{i}") for i in range(120))))
        assert srv.batch_sizes() == [50, 50, 20]
        assert srv.request_count == 3
        assert all(r.status is WriteStatus.APPLIED for r in results)
        assert [r.action_id for r in results] == [f"a{i}" for i in range(120)]


def test_unsupported_action_kinds_fail_with_a_clear_message_and_are_not_sent(server: FakeMetaServer) -> None:
    negative = AddNegativeKeyword(
        action_id="n",
        entity=ref(EntityKind.AD_GROUP, "100"),
        agent=AgentName.KEYWORD_INSIGHT,
        reason="waste",
        text="free",
    )
    (result,) = make_client(server).apply(ACCOUNT, cleared(negative))
    assert result.status is WriteStatus.FAILED
    assert "does not support add_negative_keyword" in result.message
    assert server.request_count == 0


def test_unfiltered_actions_refuse_the_whole_batch_and_send_nothing(server: FakeMetaServer) -> None:
    client = make_client(server)
    with pytest.raises(UnfilteredActionError):
        client.apply(ACCOUNT, [*cleared(budget("100", 60_000_000)), budget("101", 60_000_000)])  # type: ignore[list-item]
    forged = cleared(budget("100", 60_000_000))[0].model_copy(update={"action": budget("100", 99_000_000)})
    with pytest.raises(UnfilteredActionError):
        client.apply(ACCOUNT, [forged])
    assert server.request_count == 0


def test_validate_only_sends_execution_options_and_changes_nothing(server: FakeMetaServer) -> None:
    before = server.object("100")
    results = make_client(server).apply(ACCOUNT, cleared(budget("100", 90_000_000), pause("700")), validate_only=True)
    assert [r.status for r in results] == [WriteStatus.VALIDATED] * 2
    assert server.requests[0].batch[0]["params"] == {"daily_budget": "9000", "execution_options": '["validate_only"]'}
    assert server.object("100") == before and server.object("700")["status"] == "ACTIVE"
    assert sum(server.writes_by_entity.values()) == 0


# ---------------------------------------------------------------- failures, retries, throttling


def test_partial_failures_are_reported_per_action(server: FakeMetaServer) -> None:
    server.inject("partial", entities=["101"])
    results = make_client(server).apply(ACCOUNT, cleared(budget("100", 60_000_000, "ok"), bid("101", 1_500_000, "bad")))
    assert results[0].status is WriteStatus.APPLIED
    assert results[1].status is WriteStatus.FAILED and "Meta error 100" in results[1].message
    assert results[1].retryable is False
    assert server.request_count == 1


def test_throttle_waits_at_least_the_usage_header_time_then_converges(server: FakeMetaServer) -> None:
    server.inject("throttle", code=80004, minutes=1, endpoint="batch")
    sleeps = Sleeps()
    results = make_client(server, sleeps).apply(ACCOUNT, cleared(budget("100", 60_000_000), pause("700")))
    assert [r.status for r in results] == [WriteStatus.APPLIED] * 2
    assert len(sleeps) == 1 and sleeps[0] >= 60.0
    assert server.writes_by_entity == {"100": 1, "700": 1}


def test_throttled_single_calls_in_a_batch_are_retried_alone(server: FakeMetaServer) -> None:
    server.inject("throttle", code=613, minutes=0.5, entities=["101"])
    sleeps = Sleeps()
    results = make_client(server, sleeps).apply(ACCOUNT, cleared(bid("100", 1_500_000), bid("101", 1_500_000)))
    assert [r.status for r in results] == [WriteStatus.APPLIED] * 2
    assert server.batch_sizes() == [2, 1]
    assert sleeps[0] >= 30.0
    assert results[1].attempts == 2 and results[0].attempts == 1


def test_long_throttle_is_returned_as_deferred_without_sleeping(server: FakeMetaServer) -> None:
    server.inject("throttle", code=80004, minutes=30, endpoint="batch")
    sleeps = Sleeps()
    results = make_client(server, sleeps).apply(ACCOUNT, cleared(budget("100", 60_000_000), pause("700")))
    assert [r.status for r in results] == [WriteStatus.DEFERRED] * 2
    assert results[0].retry_after_s == pytest.approx(1800.0)
    assert sleeps == []
    assert sum(server.writes_by_entity.values()) == 0


def test_transient_errors_are_retried_without_double_writes(server: FakeMetaServer) -> None:
    server.inject("transient", endpoint="batch")
    server.inject("transient", entities=["101"])
    sleeps = Sleeps()
    results = make_client(server, sleeps).apply(ACCOUNT, cleared(bid("100", 1_500_000), bid("101", 1_600_000)))
    assert [r.status for r in results] == [WriteStatus.APPLIED] * 2
    assert server.writes_by_entity == {"100": 1, "101": 1}
    assert len(sleeps) >= 2


def test_non_retryable_errors_are_not_retried(server: FakeMetaServer) -> None:
    server.inject("partial", entities=["100"], times=5)
    sleeps = Sleeps()
    (result,) = make_client(server, sleeps).apply(ACCOUNT, cleared(bid("100", 1_500_000)))
    assert result.status is WriteStatus.FAILED and result.attempts == 1
    assert sleeps == [] and server.request_count == 1


@pytest.mark.parametrize("fault", [{"stall_s": 1.5}, {"drop": True}], ids=["stall", "dropped"])
def test_ambiguous_failure_after_the_write_reads_back_instead_of_resending(
    server: FakeMetaServer, fault: dict[str, object]
) -> None:
    server.inject("timeout_after_write", endpoint="batch", **fault)
    results = make_client(server, timeout_s=0.3).apply(ACCOUNT, cleared(budget("100", 60_000_000), pause("700")))
    assert [r.status for r in results] == [WriteStatus.APPLIED] * 2
    assert "read-back" in results[0].message
    assert server.writes_by_entity == {"100": 1, "700": 1}
    batches = [r for r in server.requests if r.endpoint == "batch"]
    assert [c["method"] for c in batches[1].batch] == ["GET", "GET"]
    assert len(batches) == 2


def test_leftover_calls_without_an_answer_are_checked_then_sent(server: FakeMetaServer) -> None:
    server.inject("no_response", entities=["101"])
    results = make_client(server).apply(ACCOUNT, cleared(bid("100", 1_500_000), bid("101", 1_600_000)))
    assert [r.status for r in results] == [WriteStatus.APPLIED] * 2
    assert server.writes_by_entity == {"100": 1, "101": 1}
    assert server.object("101")["bid_amount"] == "160"


def test_usage_header_on_success_paces_the_next_batch() -> None:
    with FakeMetaServer.from_snapshot(
        seed_snapshot(n_adsets=60), platform_account_id="act_42", access_token=TOKEN
    ) as srv:
        srv.inject("usage_header", minutes=1)
        sleeps = Sleeps()
        make_client(srv, sleeps).apply(ACCOUNT, cleared(*(bid(str(100 + i), 1_500_000, f"a{i}") for i in range(60))))
        assert sleeps == [60.0]
        assert srv.batch_sizes() == [50, 10]


# ---------------------------------------------------------------- budget-change limit


def test_fifth_budget_change_of_an_ad_set_within_an_hour_is_deferred_and_not_sent() -> None:
    clock = Clock()
    with FakeMetaServer.from_snapshot(
        seed_snapshot(), platform_account_id="act_42", access_token=TOKEN, clock=clock
    ) as server:
        _check_fifth_budget_change(server, clock)


def _check_fifth_budget_change(server: FakeMetaServer, clock: Clock) -> None:
    client = make_client(server, monotonic=clock)
    for i in range(4):
        (result,) = client.apply(ACCOUNT, cleared(budget("100", 51_000_000 + i * 1_000_000, f"b{i}")))
        assert result.status is WriteStatus.APPLIED
        clock.now_s += 60
    (fifth,) = client.apply(ACCOUNT, cleared(budget("100", 60_000_000, "b5")))
    assert fifth.status is WriteStatus.DEFERRED and fifth.attempts == 0
    assert fifth.retry_after_s == pytest.approx(3600 - 4 * 60)
    assert server.budget_changes_by_entity["100"] == 4
    # Other ad sets and non-budget writes to the same ad set are not held back.
    results = client.apply(ACCOUNT, cleared(budget("101", 60_000_000, "x"), bid("100", 1_500_000, "y")))
    assert [r.status for r in results] == [WriteStatus.APPLIED] * 2
    clock.now_s += 3600
    (later,) = client.apply(ACCOUNT, cleared(budget("100", 60_000_000, "b6")))
    assert later.status is WriteStatus.APPLIED


def test_budget_changes_in_one_apply_count_against_the_limit(server: FakeMetaServer) -> None:
    client = make_client(server, monotonic=Clock())
    results = client.apply(ACCOUNT, cleared(*(budget("100", 51_000_000 + i, f"b{i}") for i in range(6))))
    assert [r.status for r in results] == [WriteStatus.APPLIED] * 4 + [WriteStatus.DEFERRED] * 2
    assert server.batch_sizes() == [4]


def test_budget_lock_from_meta_defers_for_an_hour_and_holds_later_changes(server: FakeMetaServer) -> None:
    for i in range(4):  # another process spent this ad set's four changes
        make_client(server, monotonic=Clock()).apply(ACCOUNT, cleared(budget("100", 51_000_000 + i * 1_000_000)))
    client = make_client(server, monotonic=Clock())
    sleeps = Sleeps()
    client._sleep = sleeps
    (locked,) = client.apply(ACCOUNT, cleared(budget("100", 70_000_000)))
    assert locked.status is WriteStatus.DEFERRED and locked.retry_after_s == pytest.approx(3600.0)
    assert sleeps == []
    requests_before = server.request_count
    (again,) = client.apply(ACCOUNT, cleared(budget("100", 70_000_000)))
    assert again.status is WriteStatus.DEFERRED and server.request_count == requests_before


def test_dry_runs_do_not_use_budget_changes(server: FakeMetaServer) -> None:
    client = make_client(server, monotonic=Clock())
    for _ in range(6):
        client.apply(ACCOUNT, cleared(budget("100", 60_000_000)), validate_only=True)
    (result,) = client.apply(ACCOUNT, cleared(budget("100", 60_000_000)))
    assert result.status is WriteStatus.APPLIED


def test_lifetime_budget_ad_sets_are_written_as_lifetime_budget(server: FakeMetaServer) -> None:
    server.objects["103"].pop("daily_budget")
    server.objects["103"].update(
        lifetime_budget="70000", start_time="2026-06-01T00:00:00+0000", end_time="2026-06-08T00:00:00+0000"
    )
    client = make_client(server)
    snap = client.read_snapshot(ACCOUNT)
    assert snap.by_id(EntityKind.AD_GROUP)["103"].daily_budget_micros == 100_000_000  # 700.00 over 7 days
    (result,) = client.apply(ACCOUNT, cleared(budget("103", 110_000_000)))
    assert result.status is WriteStatus.APPLIED
    assert server.object("103")["lifetime_budget"] == "77000"
    assert result.read_back == "110000000"


# ---------------------------------------------------------------- credentials, access, logs


def test_expired_token_fails_every_action_with_a_hint_and_stops_sending() -> None:
    with FakeMetaServer.from_snapshot(
        seed_snapshot(n_adsets=60), platform_account_id="act_42", access_token=TOKEN
    ) as srv:
        srv.inject("expired_token")
        results = make_client(srv).apply(ACCOUNT, cleared(*(bid(str(100 + i), 1_500_000, f"a{i}") for i in range(60))))
        assert all(r.status is WriteStatus.FAILED for r in results)
        assert "META_ACCESS_TOKEN" in results[0].message and "expired" in results[0].message
        assert srv.request_count == 1


def test_from_account_without_a_token_names_the_variables() -> None:
    account = AccountConfig(id=ACCOUNT, platform=Platform.META, backend="live")
    with pytest.raises(PlatformAuthError) as info:
        MetaClient.from_account(account, env={})
    assert "META_ACCESS_TOKEN" in str(info.value) and info.value.account_id == ACCOUNT


def test_check_access_lists_visible_accounts(server: FakeMetaServer) -> None:
    check = make_client(server).check_access()
    assert check.ok and [a.account_id for a in check.accounts] == [ACCOUNT]


def test_check_access_explains_an_expired_token(server: FakeMetaServer) -> None:
    server.inject("expired_token")
    check = make_client(server).check_access()
    assert not check.ok and check.error_code == 190
    assert "expired" in (check.problem or "") and "META_ACCESS_TOKEN" in (check.hint or "")


def test_check_access_flags_a_configured_account_the_token_cannot_see(server: FakeMetaServer) -> None:
    client = MetaClient.from_account(account_for(server, platform_account_id="act_999"), env={ENV_ACCESS_TOKEN: TOKEN})
    check = client.check_access()
    assert not check.ok and "act_999" in (check.problem or "")


def test_check_access_explains_a_wrong_token(server: FakeMetaServer) -> None:
    client = MetaClient.from_account(account_for(server), env={ENV_ACCESS_TOKEN: "wrong"})
    check = client.check_access()
    assert not check.ok and check.error_code == 190


def test_no_credential_appears_in_any_log_line_or_result(
    server: FakeMetaServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = make_client(server, timeout_s=0.3)
    client.read_snapshot(ACCOUNT)
    server.inject("throttle", minutes=1, endpoint="batch")
    server.inject("timeout_after_write", endpoint="batch", stall_s=1.0)
    server.inject("partial", entities=["101"])
    results = client.apply(ACCOUNT, cleared(budget("100", 60_000_000), bid("101", 1_500_000)))
    server.inject("expired_token")
    results += client.apply(ACCOUNT, cleared(pause("700")))
    server.inject("expired_token")
    check = client.check_access()
    text = caplog.text + repr(results) + repr(check) + repr(MetaCredentials.from_env({ENV_ACCESS_TOKEN: TOKEN}))
    assert "urllib3" in caplog.text  # the HTTP layer really logged at DEBUG
    assert TOKEN not in text and APP_SECRET not in text


def test_crash_reporting_stays_off(server: FakeMetaServer) -> None:
    hook = sys.excepthook
    client = make_client(server)
    client.read_snapshot(ACCOUNT)
    client.apply(ACCOUNT, cleared(pause("700")))
    assert sys.excepthook is hook
    assert not any(r.path.endswith("instruments") for r in server.requests)


def test_session_built_from_credentials_keeps_the_token_out_of_urls() -> None:
    session = build_session(MetaCredentials.from_env({ENV_ACCESS_TOKEN: TOKEN}), endpoint="http://127.0.0.1:1/")
    assert "access_token" not in session.requests.params
    assert session.requests.headers["Authorization"] == f"OAuth {TOKEN}"
    assert session.GRAPH == "http://127.0.0.1:1" and session.timeout is not None


def test_retries_are_bounded_by_the_retry_policy(server: FakeMetaServer) -> None:
    server.inject("transient", endpoint="batch", times=10)
    client = make_client(server, retry_policy=RetryPolicy(max_attempts=3))
    (result,) = client.apply(ACCOUNT, cleared(bid("100", 1_500_000)))
    assert result.status is WriteStatus.FAILED and result.retryable
    # One write, then two read-backs (a 5xx may have landed), never a blind resend.
    assert server.request_count == 3
    assert [len(r.batch) for r in server.requests] == [1, 1, 1]
    assert [r.batch[0]["method"] for r in server.requests] == ["POST", "GET", "GET"]


# ---------------------------------------------------------------- units at the edge


_CURRENCIES = st.sampled_from(["USD", "EUR", "JPY", "KRW", "HUF", "TWD", "IDR", "BHD", "JOD"])


@given(units=st.integers(min_value=0, max_value=10**9), currency=_CURRENCIES)
def test_meta_units_round_trip_exactly(units: int, currency: str) -> None:
    assert micros_to_meta_units(meta_units_to_micros(units, currency), currency) == units


@given(micros=st.integers(min_value=0, max_value=10**15), currency=_CURRENCIES)
def test_micros_sent_to_meta_never_exceed_the_decided_amount(micros: int, currency: str) -> None:
    back = meta_units_to_micros(micros_to_meta_units(micros, currency), currency)
    # https://developers.facebook.com/docs/marketing-api/currencies -- JPY, KRW, HUF, TWD, IDR: offset 1.
    step = 1_000_000 if currency in ("JPY", "KRW", "HUF", "TWD", "IDR") else 10_000
    assert back <= micros < back + step


@given(micros=st.integers(min_value=1_000_000, max_value=10**12))
def test_meta_insights_spend_strings_parse_to_exact_micros(micros: int) -> None:
    from decimal import Decimal

    from bidloop.tools.meta._insights import parse_row

    spend = format((Decimal(micros) / 1_000_000).normalize(), "f")
    row = parse_row({"adset_id": "1", "date_start": "2026-06-01", "spend": spend}, "adset")
    assert row.metrics.cost_micros == micros


def test_enable_creative_sends_active(server: FakeMetaServer) -> None:
    client = make_client(server)
    client.apply(ACCOUNT, cleared(pause("702")))
    enable = EnableCreative(
        action_id="e",
        entity=ref(EntityKind.CREATIVE, "702"),
        agent=AgentName.CREATIVE_ROTATION,
        reason="rotate",
        old_status=Status.PAUSED,
    )
    (result,) = client.apply(ACCOUNT, cleared(enable))
    assert result.read_back == "enabled" and server.object("702")["status"] == "ACTIVE"

"""Meta as it is run: each platform fact the client relies on, pinned to Meta's documentation.

Every expected value below is quoted from Meta's documentation or the facebook-business SDK, with
its address next to it. The fake server encodes the same facts from the same documents on its own
(it takes no conversion helper from the client), so a client mistake cannot hide behind the fake.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests

from bidloop.core.actions import AgentName, EnableCreative, SetBid, SetBudget, SetTargetCpa, SetTargetRoas
from bidloop.core.clearance import _issue_clearance
from bidloop.core.decisions import WriteStatus
from bidloop.core.entities import (
    BiddingStrategy,
    BudgetPeriod,
    EntityKind,
    EntityRef,
    EntityState,
    Platform,
    Status,
)
from bidloop.core.errors import AccountMismatchError, PlatformError
from bidloop.core.metrics import Metrics
from bidloop.core.settings import AccountConfig
from bidloop.core.snapshot import Snapshot
from bidloop.testing.meta import fake_server
from bidloop.testing.meta.fake_server import FakeMetaServer
from bidloop.tools.meta import ENV_ACCESS_TOKEN, MetaClient
from bidloop.tools.meta._currency import meta_offset, meta_units_to_micros, micros_to_meta_units
from bidloop.tools.meta._levers import FLIGHT_ENDED

TOKEN = "fake-meta-token-facts"
ACCOUNT = "meta-facts"
LA = ZoneInfo("America/Los_Angeles")
NOW = datetime(2026, 6, 20, 10, 0, tzinfo=LA)
"""Day 20 of a June 1-30 flight, 10:00 in the account's zone (west of UTC)."""
UNIT = 1_000_000

# https://developers.facebook.com/docs/marketing-api/currencies -- "Code | Offset": "Hungarian Forint | HUF | 1",
# "Taiwan Dollar | TWD | 1", "Indonesian Rupiah | IDR | 1", "Japanese Yen | JPY | 1", "Bahraini Dinar | BHD | 100",
# "Jordanian Dinar | JOD | 100", US Dollar 100.
DOCUMENTED_OFFSETS = [("HUF", 1), ("TWD", 1), ("IDR", 1), ("JPY", 1), ("BHD", 100), ("JOD", 100), ("USD", 100)]
# Same page: every offset-1 currency (CLP, COP, CRC, HUF, ISK, IDR, JPY, KRW, PYG, TWD, VND).
DOCUMENTED_OFFSET_ONE = ["CLP", "COP", "CRC", "HUF", "ISK", "IDR", "JPY", "KRW", "PYG", "TWD", "VND"]


def ref(kind: EntityKind, entity_id: str) -> EntityRef:
    return EntityRef(platform=Platform.META, account_id=ACCOUNT, kind=kind, entity_id=entity_id)


def adset(entity_id: str, campaign_id: str, **fields: object) -> EntityState:
    return EntityState(
        ref=ref(EntityKind.AD_GROUP, entity_id),
        name=f"Ad set {entity_id}",
        parent_id=campaign_id,
        campaign_id=campaign_id,
        trailing_7d=Metrics(impressions=7000, clicks=140, cost_micros=70 * UNIT),
        **fields,  # type: ignore[arg-type]
    )


def world(currency: str = "USD") -> Snapshot:
    """A CBO lifetime campaign, a paused campaign, a disapproved ad, and one ad set per bid strategy."""
    scale = 100 if currency == "HUF" else 1
    entities = [
        EntityState(
            ref=ref(EntityKind.CAMPAIGN, "c_cbo"),
            name="Advantage campaign budget, lifetime",
            campaign_id="c_cbo",
            budget_period=BudgetPeriod.LIFETIME,
            lifetime_budget_micros=30_000 * UNIT * scale,
            budget_remaining_micros=10_000 * UNIT * scale,
            flight_start=datetime(2026, 6, 1, tzinfo=LA),
            flight_end=datetime(2026, 6, 30, 23, 59, 59, tzinfo=LA),
            bidding_strategy=BiddingStrategy.COST_CAP,
        ),
        EntityState(
            ref=ref(EntityKind.CAMPAIGN, "c_paused"), name="Paused", campaign_id="c_paused", status=Status.PAUSED
        ),
        EntityState(ref=ref(EntityKind.CAMPAIGN, "c_abo"), name="Ad set budgets", campaign_id="c_abo"),
        adset(
            "s_cbo",
            "c_cbo",
            target_cpa_micros=40 * UNIT * scale,
            bidding_strategy=BiddingStrategy.COST_CAP,
            daily_min_spend_micros=100 * UNIT * scale,
            daily_spend_cap_micros=800 * UNIT * scale,
        ),
        adset(
            "s_paused_parent",
            "c_paused",
            daily_budget_micros=50 * UNIT * scale,
            bidding_strategy=BiddingStrategy.LOWEST_COST,
        ),
        adset("s_lowest", "c_abo", daily_budget_micros=60 * UNIT * scale, bidding_strategy=BiddingStrategy.LOWEST_COST),
        adset(
            "s_cost_cap",
            "c_abo",
            daily_budget_micros=70 * UNIT * scale,
            bidding_strategy=BiddingStrategy.COST_CAP,
            target_cpa_micros=25 * UNIT * scale,
        ),
        adset(
            "s_bid_cap",
            "c_abo",
            daily_budget_micros=80 * UNIT * scale,
            bidding_strategy=BiddingStrategy.BID_CAP,
            cpc_bid_micros=2 * UNIT * scale,
        ),
        adset(
            "s_min_roas",
            "c_abo",
            daily_budget_micros=90 * UNIT * scale,
            bidding_strategy=BiddingStrategy.MIN_ROAS,
            target_roas_bps=25_000,
        ),
        EntityState(
            ref=ref(EntityKind.CREATIVE, "ad_ok"), name="Approved ad", parent_id="s_lowest", campaign_id="c_abo"
        ),
        EntityState(
            ref=ref(EntityKind.CREATIVE, "ad_rejected"),
            name="Disapproved ad",
            parent_id="s_lowest",
            campaign_id="c_abo",
            delivery_blocked_by="DISAPPROVED",
        ),
        EntityState(
            ref=ref(EntityKind.CREATIVE, "ad_under_pause"),
            name="Ad under a paused campaign",
            parent_id="s_paused_parent",
            campaign_id="c_paused",
        ),
    ]
    return Snapshot(
        account_id=ACCOUNT,
        platform=Platform.META,
        currency=currency,
        time_zone="America/Los_Angeles",
        as_of=NOW,
        entities=entities,
    )


@pytest.fixture
def srv() -> Iterator[FakeMetaServer]:
    with FakeMetaServer.from_snapshot(
        world(), platform_account_id="act_77", access_token=TOKEN, min_daily_budget=100
    ) as server:
        yield server


def client_for(
    server: FakeMetaServer, sleep: Callable[[float], None] = lambda _s: None, **update: object
) -> MetaClient:
    fields: dict[str, object] = {
        "id": ACCOUNT,
        "platform": Platform.META,
        "backend": "live",
        "platform_account_id": server.account["id"],
        "endpoint": server.address,
        "currency": server.account["currency"],
        "time_zone": "America/Los_Angeles",
        **update,
    }
    return MetaClient.from_account(
        AccountConfig(**fields),  # type: ignore[arg-type]
        env={ENV_ACCESS_TOKEN: TOKEN},
        sleep=sleep,
        clock=lambda: NOW.astimezone(UTC),
        timeout_s=2.0,
    )


def cleared(*actions: object) -> list:
    return [_issue_clearance(a, verdict="allowed", rule_id="test") for a in actions]  # type: ignore[arg-type]


def set_budget(kind: EntityKind, entity_id: str, old: int, new: int) -> SetBudget:
    return SetBudget(
        action_id=f"budget-{entity_id}",
        entity=ref(kind, entity_id),
        agent=AgentName.BID_SHIFTER,
        reason="pace",
        old_daily_budget_micros=old,
        new_daily_budget_micros=new,
    )


def set_bid(entity_id: str, new: int) -> SetBid:
    return SetBid(
        action_id=f"bid-{entity_id}",
        entity=ref(EntityKind.AD_GROUP, entity_id),
        agent=AgentName.BID_SHIFTER,
        reason="lift",
        old_cpc_bid_micros=2 * UNIT,
        new_cpc_bid_micros=new,
    )


def posts(server: FakeMetaServer) -> list[dict[str, object]]:
    return [call for r in server.requests if r.endpoint == "batch" for call in r.batch if call["method"] == "POST"]


# ---------------------------------------------------------------- #1 currency offsets


@pytest.mark.parametrize(("currency", "offset"), DOCUMENTED_OFFSETS)
def test_meta_units_are_major_units_times_metas_documented_offset(currency: str, offset: int) -> None:
    assert meta_offset(currency) == offset
    assert micros_to_meta_units(10_000 * UNIT, currency) == 10_000 * offset
    assert meta_units_to_micros(10_000 * offset, currency) == 10_000 * UNIT


def test_the_fake_keeps_its_own_copy_of_metas_offset_table_and_takes_no_client_helper() -> None:
    assert sorted(fake_server.OFFSET_ONE_CURRENCIES) == sorted(DOCUMENTED_OFFSET_ONE)
    for currency, offset in DOCUMENTED_OFFSETS:
        assert fake_server.meta_offset(currency) == offset
    source = inspect.getsource(fake_server)
    assert "bidloop.tools.meta" not in source and "bidloop.core.money" not in source


def test_units_sent_to_meta_round_down_never_above_the_decided_amount() -> None:
    assert micros_to_meta_units(10_999_999, "USD") == 1099  # 10.99 USD in cents
    assert micros_to_meta_units(10_999_999, "HUF") == 10  # whole forints


def test_a_huf_account_reads_and_writes_budgets_in_whole_forints() -> None:
    with FakeMetaServer.from_snapshot(world("HUF"), platform_account_id="act_78", access_token=TOKEN) as server:
        client = client_for(server)
        holder = client.read_snapshot(ACCOUNT).by_id(EntityKind.AD_GROUP)["s_lowest"]
        assert server.object("s_lowest")["daily_budget"] == "6000"  # 6,000 Ft, offset 1
        assert holder.daily_budget_micros == 6_000 * UNIT
        (result,) = client.apply(
            ACCOUNT, cleared(set_budget(EntityKind.AD_GROUP, "s_lowest", 6_000 * UNIT, 6_600 * UNIT))
        )
        assert result.status is WriteStatus.APPLIED
        assert server.object("s_lowest")["daily_budget"] == "6600"
        assert result.read_back == str(6_600 * UNIT)


# ---------------------------------------------------------------- #9 account currency and time zone


def test_a_configured_currency_that_differs_from_the_account_stops_the_read_naming_both(srv: FakeMetaServer) -> None:
    with pytest.raises(AccountMismatchError) as caught:
        client_for(srv, currency="EUR").read_snapshot(ACCOUNT)
    assert "'EUR'" in caught.value.message and "'USD'" in caught.value.message
    assert caught.value.field == "currency"
    assert srv.requests_by_endpoint == {"read": 1}  # nothing else was read


def test_a_configured_time_zone_that_differs_from_the_account_stops_the_read(srv: FakeMetaServer) -> None:
    with pytest.raises(AccountMismatchError) as caught:
        client_for(srv, time_zone="UTC").read_snapshot(ACCOUNT)
    assert caught.value.configured == "UTC" and caught.value.reported == "America/Los_Angeles"


def test_check_access_reports_a_currency_mismatch_as_a_problem(srv: FakeMetaServer) -> None:
    check = client_for(srv, currency="HUF").check_access()
    assert not check.ok
    assert "'HUF'" in (check.problem or "") and "'USD'" in (check.problem or "")


# ---------------------------------------------------------------- #3 effective status


def test_the_fake_derives_effective_status_from_the_parents_and_the_review(srv: FakeMetaServer) -> None:
    # https://developers.facebook.com/documentation/ads-commerce/marketing-api/ads-webhooks/effective-status --
    # "Effective status reflects whether an object is actually delivering, taking into account its own status and
    # the status of its parents"; values per SDK facebook_business/adobjects/ad.py Ad.EffectiveStatus:
    # 'CAMPAIGN_PAUSED', 'ADSET_PAUSED', 'DISAPPROVED'.
    assert srv.effective_status("s_paused_parent") == "CAMPAIGN_PAUSED"
    assert srv.effective_status("ad_under_pause") == "CAMPAIGN_PAUSED"
    assert srv.effective_status("ad_rejected") == "DISAPPROVED"
    assert srv.effective_status("ad_ok") == "ACTIVE"
    srv.objects["s_lowest"]["status"] = "PAUSED"
    assert srv.effective_status("ad_ok") == "ADSET_PAUSED"
    assert srv.effective_status("s_lowest") == "PAUSED"


def test_own_status_stays_enabled_and_the_effective_status_says_why_it_does_not_deliver(srv: FakeMetaServer) -> None:
    snap = client_for(srv).read_snapshot(ACCOUNT)
    adsets, ads = snap.by_id(EntityKind.AD_GROUP), snap.by_id(EntityKind.CREATIVE)
    assert adsets["s_paused_parent"].status is Status.ENABLED
    assert adsets["s_paused_parent"].delivery_blocked_by == "CAMPAIGN_PAUSED"
    assert ads["ad_rejected"].status is Status.ENABLED and ads["ad_rejected"].delivery_blocked_by == "DISAPPROVED"
    assert ads["ad_ok"].is_delivering
    assert snap.by_id(EntityKind.CAMPAIGN)["c_paused"].status is Status.PAUSED


def test_holders_that_do_not_deliver_are_left_out_of_the_account_budget(srv: FakeMetaServer) -> None:
    snap = client_for(srv).read_snapshot(ACCOUNT)
    delivering = [e for e in snap.entities if e.daily_budget_micros is not None and e.is_delivering]
    assert "s_paused_parent" not in {e.ref.entity_id for e in delivering}
    assert snap.account_daily_budget_micros == sum(e.daily_budget_micros or 0 for e in delivering)


# ---------------------------------------------------------------- #2 CBO campaigns


def test_a_campaign_budget_makes_the_campaign_the_holder_and_its_ad_sets_carry_spend_limits(
    srv: FakeMetaServer,
) -> None:
    snap = client_for(srv).read_snapshot(ACCOUNT)
    campaign = snap.by_id(EntityKind.CAMPAIGN)["c_cbo"]
    inner = snap.by_id(EntityKind.AD_GROUP)["s_cbo"]
    assert campaign.daily_budget_micros is not None and inner.daily_budget_micros is None
    # SDK facebook_business/adobjects/adset.py AdSet.Field: daily_min_spend_target, daily_spend_cap.
    assert inner.daily_min_spend_micros == 100 * UNIT and inner.daily_spend_cap_micros == 800 * UNIT
    # SDK facebook_business/adobjects/campaign.py Campaign.Field: start_time, stop_time (not end_time).
    assert campaign.flight_end == datetime(2026, 6, 30, 23, 59, 59, tzinfo=LA)
    assert inner.bidding_strategy is BiddingStrategy.COST_CAP  # the campaign's strategy applies


def test_a_budget_change_on_an_ad_set_inside_a_campaign_budget_is_refused_and_not_sent(srv: FakeMetaServer) -> None:
    client = client_for(srv)
    client.read_snapshot(ACCOUNT)
    (result,) = client.apply(ACCOUNT, cleared(set_budget(EntityKind.AD_GROUP, "s_cbo", 50 * UNIT, 60 * UNIT)))
    assert result.status is WriteStatus.FAILED and "c_cbo" in result.message
    assert posts(srv) == []


# ---------------------------------------------------------------- #6 lifetime budgets


def test_a_lifetime_budget_reads_as_what_remains_over_the_days_left() -> None:
    with FakeMetaServer.from_snapshot(world(), platform_account_id="act_77", access_token=TOKEN) as server:
        campaign = client_for(server).read_snapshot(ACCOUNT).by_id(EntityKind.CAMPAIGN)["c_cbo"]
    # SDK campaign.py Campaign.Field.budget_remaining; June 20..30 is 11 days, today included.
    assert campaign.budget_period is BudgetPeriod.LIFETIME
    assert campaign.lifetime_budget_micros == 30_000 * UNIT
    assert campaign.budget_remaining_micros == 10_000 * UNIT
    assert campaign.daily_budget_micros == 10_000 * UNIT // 11


def test_a_ten_percent_raise_on_a_lifetime_budget_raises_the_remaining_spend_rate_by_ten_percent(
    srv: FakeMetaServer,
) -> None:
    client = client_for(srv)
    old_daily = client.read_snapshot(ACCOUNT).by_id(EntityKind.CAMPAIGN)["c_cbo"].daily_budget_micros
    assert old_daily is not None
    new_daily = old_daily * 11 // 10
    (result,) = client.apply(ACCOUNT, cleared(set_budget(EntityKind.CAMPAIGN, "c_cbo", old_daily, new_daily)))
    assert result.status is WriteStatus.APPLIED
    lifetime = int(srv.object("c_cbo")["lifetime_budget"])  # cents
    remaining_rate = (lifetime - 2_000_000) / 11  # 20,000.00 USD already spent
    assert remaining_rate / (1_000_000 / 11) == pytest.approx(1.10, abs=1e-3)  # not 1.30 (33,000 over the flight)
    assert int(result.read_back or 0) == pytest.approx(new_daily, abs=UNIT // 100)
    fresh = client.read_back(ACCOUNT, [ref(EntityKind.CAMPAIGN, "c_cbo")])[ref(EntityKind.CAMPAIGN, "c_cbo").key]
    assert fresh.daily_budget_micros == pytest.approx(new_daily, abs=UNIT // 100)


def test_a_holder_whose_flight_ended_does_not_deliver(srv: FakeMetaServer) -> None:
    srv.objects["c_cbo"]["stop_time"] = (NOW - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S%z")
    campaign = client_for(srv).read_snapshot(ACCOUNT).by_id(EntityKind.CAMPAIGN)["c_cbo"]
    assert campaign.delivery_blocked_by == FLIGHT_ENDED and not campaign.is_delivering


# ---------------------------------------------------------------- #5 what bid_amount means under each bid strategy
# https://developers.facebook.com/docs/marketing-api/bidding/overview/bid-strategy/ -- "LOWEST_COST_WITHOUT_CAP:
# Meta automatically bids on your behalf"; "COST_CAP: ... meet the cost per action you set";
# "LOWEST_COST_WITH_MIN_ROAS: ... You must specify a roas_average_floor"; "LOWEST_COST_WITH_BID_CAP: ... do not
# surpass your specified limit".


def test_each_bid_strategy_is_read_with_the_lever_it_listens_to(srv: FakeMetaServer) -> None:
    adsets = client_for(srv).read_snapshot(ACCOUNT).by_id(EntityKind.AD_GROUP)
    lowest, cost_cap, bid_cap, min_roas = (adsets[i] for i in ("s_lowest", "s_cost_cap", "s_bid_cap", "s_min_roas"))
    assert lowest.bidding_strategy is BiddingStrategy.LOWEST_COST and lowest.cpc_bid_micros is None
    assert cost_cap.bidding_strategy is BiddingStrategy.COST_CAP
    assert cost_cap.target_cpa_micros == 25 * UNIT and cost_cap.cpc_bid_micros is None
    assert bid_cap.bidding_strategy is BiddingStrategy.BID_CAP and bid_cap.cpc_bid_micros == 2 * UNIT
    assert min_roas.bidding_strategy is BiddingStrategy.MIN_ROAS and min_roas.target_roas_bps == 25_000


def test_a_bid_where_meta_sets_bids_itself_is_refused_and_never_sent(srv: FakeMetaServer) -> None:
    client = client_for(srv)
    client.read_snapshot(ACCOUNT)
    results = client.apply(ACCOUNT, cleared(set_bid("s_lowest", 3 * UNIT), set_bid("s_cost_cap", 3 * UNIT)))
    assert [r.status for r in results] == [WriteStatus.FAILED, WriteStatus.FAILED]
    assert "lowest_cost" in results[0].message and "set_target_cpa" in results[1].message
    assert posts(srv) == []


def test_a_bid_on_a_bid_cap_ad_set_is_written_as_bid_amount(srv: FakeMetaServer) -> None:
    client = client_for(srv)
    client.read_snapshot(ACCOUNT)
    (result,) = client.apply(ACCOUNT, cleared(set_bid("s_bid_cap", 2_500_000)))
    assert result.status is WriteStatus.APPLIED and srv.object("s_bid_cap")["bid_amount"] == "250"


def test_a_cost_cap_target_is_written_as_bid_amount_and_read_back_as_a_cpa(srv: FakeMetaServer) -> None:
    client = client_for(srv)
    client.read_snapshot(ACCOUNT)
    action = SetTargetCpa(
        action_id="cpa",
        entity=ref(EntityKind.AD_GROUP, "s_cost_cap"),
        agent=AgentName.BID_SHIFTER,
        reason="loosen",
        old_target_cpa_micros=25 * UNIT,
        new_target_cpa_micros=27_500_000,
    )
    (result,) = client.apply(ACCOUNT, cleared(action))
    assert result.status is WriteStatus.APPLIED and srv.object("s_cost_cap")["bid_amount"] == "2750"
    assert result.read_back == "27500000"


def test_a_roas_floor_is_written_in_bid_constraints_under_min_roas(srv: FakeMetaServer) -> None:
    client = client_for(srv)
    client.read_snapshot(ACCOUNT)
    action = SetTargetRoas(
        action_id="roas",
        entity=ref(EntityKind.AD_GROUP, "s_min_roas"),
        agent=AgentName.BID_SHIFTER,
        reason="tighten",
        old_target_roas_bps=25_000,
        new_target_roas_bps=27_500,
    )
    (result,) = client.apply(ACCOUNT, cleared(action))
    assert result.status is WriteStatus.APPLIED, result.message
    assert srv.object("s_min_roas")["bid_constraints"] == {"roas_average_floor": 27_500}
    assert result.read_back == "27500"


def test_a_target_on_an_ad_set_whose_strategy_has_no_target_is_refused(srv: FakeMetaServer) -> None:
    client = client_for(srv)
    client.read_snapshot(ACCOUNT)
    action = SetTargetRoas(
        action_id="roas",
        entity=ref(EntityKind.AD_GROUP, "s_lowest"),
        agent=AgentName.BID_SHIFTER,
        reason="tighten",
        old_target_roas_bps=25_000,
        new_target_roas_bps=27_500,
    )
    (result,) = client.apply(ACCOUNT, cleared(action))
    assert result.status is WriteStatus.FAILED and posts(srv) == []


def test_a_client_that_never_read_the_account_still_learns_the_strategy_before_writing(srv: FakeMetaServer) -> None:
    (result,) = client_for(srv).apply(ACCOUNT, cleared(set_bid("s_lowest", 3 * UNIT)))
    assert result.status is WriteStatus.FAILED and posts(srv) == []


def test_the_fake_takes_a_bid_amount_under_lowest_cost_but_does_not_act_on_it(srv: FakeMetaServer) -> None:

    answer = requests.post(
        f"{srv.address}/v26.0/s_lowest",
        data={"bid_amount": "500"},
        headers={"Authorization": f"OAuth {TOKEN}"},
        timeout=5,
    )
    assert answer.status_code == 200
    assert "bid_amount" not in srv.object("s_lowest")
    assert srv.ignored_writes == [("s_lowest", "bid_amount")]


def test_the_fake_refuses_an_ad_set_budget_inside_a_campaign_budget(srv: FakeMetaServer) -> None:

    answer = requests.post(
        f"{srv.address}/v26.0/s_cbo",
        data={"daily_budget": "5000"},
        headers={"Authorization": f"OAuth {TOKEN}"},
        timeout=5,
    )
    assert answer.status_code == 400 and answer.json()["error"]["code"] == 100


# ---------------------------------------------------------------- minimum budgets


def test_the_ad_accounts_minimum_daily_budget_is_carried_on_holders(srv: FakeMetaServer) -> None:
    # SDK facebook_business/adobjects/adaccount.py AdAccount.Field.min_daily_budget ('unsigned int', Meta units).
    snap = client_for(srv).read_snapshot(ACCOUNT)
    assert snap.by_id(EntityKind.AD_GROUP)["s_lowest"].min_daily_budget_micros == 1 * UNIT
    assert snap.by_id(EntityKind.AD_GROUP)["s_cbo"].min_daily_budget_micros is None


def test_enabling_a_disapproved_ad_is_refused_and_not_sent(srv: FakeMetaServer) -> None:
    srv.objects["ad_rejected"]["status"] = "PAUSED"
    client = client_for(srv)
    client.read_snapshot(ACCOUNT)
    action = EnableCreative(
        action_id="on",
        entity=ref(EntityKind.CREATIVE, "ad_rejected"),
        agent=AgentName.CREATIVE_ROTATION,
        reason="rotate",
        old_status=Status.PAUSED,
    )
    assert srv.effective_status("ad_rejected") == "DISAPPROVED"
    (result,) = client.apply(ACCOUNT, cleared(action))
    assert result.status is WriteStatus.FAILED and "DISAPPROVED" in result.message
    assert posts(srv) == []


# ---------------------------------------------------------------- #15 usage headers and too-large requests


def test_an_insights_call_meta_finds_too_large_fails_at_once_instead_of_being_retried(srv: FakeMetaServer) -> None:
    # https://developers.facebook.com/docs/marketing-api/insights/best-practices/ -- code 1 "Please reduce the amount
    # of data you're asking for, then retry your request": the same request fails the same way again.
    srv.inject("too_much_data", times=5, endpoint="insights")
    with pytest.raises(PlatformError) as caught:
        client_for(srv).read_snapshot(ACCOUNT)
    assert caught.value.retryable is False and "fewer days" in (caught.value.hint or "")
    assert srv.requests_by_endpoint["insights"] == 1


def test_an_ad_account_used_up_per_x_ad_account_usage_paces_the_next_batch(srv: FakeMetaServer) -> None:
    # https://developers.facebook.com/docs/graph-api/overview/rate-limiting -- X-Ad-Account-Usage: "acc_id_util_pct"
    # (percentage of calls made for this ad account) and "reset_time_duration" (seconds until the score resets to 0).
    sleeps: list[float] = []
    client = client_for(srv, sleep=sleeps.append)
    client.read_snapshot(ACCOUNT)
    srv.inject("account_usage", pct=100, reset_s=45)
    bids = [set_bid("s_bid_cap", 2 * UNIT + i * 10_000).model_copy(update={"action_id": f"bid{i}"}) for i in range(51)]
    client.apply(ACCOUNT, cleared(*bids))
    assert srv.batch_sizes() == [50, 1]
    assert sleeps == [45.0]  # between the two batches, as the header asked


def _world_after_spending_today(spent_today_units: int) -> Snapshot:
    """The same account after its lifetime campaign's ad set spent `spent_today_units` more today."""
    snapshot = world()
    entities = []
    for e in snapshot.entities:
        if e.ref.entity_id == "c_cbo":
            e = e.model_copy(
                update={"budget_remaining_micros": (e.budget_remaining_micros or 0) - spent_today_units * UNIT}
            )
        if e.ref.entity_id == "s_cbo":
            e = e.model_copy(
                update={"today": Metrics(impressions=900, clicks=30, cost_micros=spent_today_units * UNIT)}
            )
        entities.append(e)
    return snapshot.model_copy(update={"entities": entities})


def test_a_lifetime_budgets_daily_rate_holds_still_while_today_spends() -> None:
    # SDK campaign.py Campaign.Field.budget_remaining falls with every delivery; a daily rate read from it
    # directly would drift between two reads with no write in between (and a rollback would see a change
    # nobody made). Read from what remained when the day began, it is the same before and after spending.
    rates = []
    for spent in (0, 300):
        with FakeMetaServer.from_snapshot(
            _world_after_spending_today(spent), platform_account_id="act_77", access_token=TOKEN
        ) as server:
            client = client_for(server)
            rates.append(client.read_snapshot(ACCOUNT).by_id(EntityKind.CAMPAIGN)["c_cbo"].daily_budget_micros)
            back = client.read_back(ACCOUNT, [ref(EntityKind.CAMPAIGN, "c_cbo")])
            assert back[ref(EntityKind.CAMPAIGN, "c_cbo").key].daily_budget_micros == rates[-1]
    assert rates == [10_000 * UNIT // 11, 10_000 * UNIT // 11]

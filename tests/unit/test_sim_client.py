"""Specification of SimClient, the PlatformClient over the simulated market (bidloop.tools.sim.client)."""

from __future__ import annotations

import pytest

from bidloop.core.actions import AgentName, PauseCreative, SetBid, SetBudget
from bidloop.core.clearance import _issue_clearance
from bidloop.core.decisions import WriteStatus
from bidloop.core.entities import EntityKind, EntityRef, Platform, Status
from bidloop.core.errors import UnfilteredActionError, UnknownAccountError
from bidloop.core.snapshot import Snapshot
from bidloop.tools.protocol import PlatformClient
from bidloop.tools.sim import SimClient, SimMarket, default_market


@pytest.fixture(scope="module")
def base() -> SimMarket:
    return default_market()


@pytest.fixture
def client(base: SimMarket) -> SimClient:
    return SimClient(base.clone())


def _meta(entity_id: str, kind: EntityKind = EntityKind.AD_GROUP) -> EntityRef:
    return EntityRef(platform=Platform.META, account_id="sim-meta", kind=kind, entity_id=entity_id)


def _budget(ref: EntityRef, new: int, old: int = 1_000_000, action_id: str = "a1") -> SetBudget:
    return SetBudget(
        action_id=action_id,
        entity=ref,
        agent=AgentName.BID_SHIFTER,
        reason="shift to the ROAS leader",
        old_daily_budget_micros=old,
        new_daily_budget_micros=new,
    )


def _cleared(action):
    return _issue_clearance(action, verdict="allowed", rule_id="test")


def test_sim_client_implements_the_platform_protocol(client: SimClient) -> None:
    assert isinstance(client, PlatformClient)
    assert client.name == "sim"


def test_same_seed_gives_identical_snapshots_and_another_seed_differs(base: SimMarket) -> None:
    again = SimClient(default_market()).read_snapshot("sim-meta").model_dump()
    assert SimClient(base).read_snapshot("sim-meta").model_dump() == again
    assert SimClient(default_market(seed=9)).read_snapshot("sim-meta").model_dump() != again


def test_list_accounts_gives_the_three_default_accounts(client: SimClient) -> None:
    accounts = {a.account_id: a.platform for a in client.list_accounts()}
    assert accounts == {"sim-google": Platform.GOOGLE_ADS, "sim-meta": Platform.META, "sim-amazon": Platform.AMAZON_ADS}


@pytest.mark.parametrize("account", ["sim-google", "sim-meta", "sim-amazon"])
def test_snapshot_is_a_valid_model_with_parents_before_children(client: SimClient, account: str) -> None:
    snapshot = client.read_snapshot(account)
    # The client builds trusted data without validation; validating it again must succeed.
    Snapshot.model_validate(snapshot.model_dump())
    seen: set[str] = set()
    for entity in snapshot.entities:
        if entity.parent_id is not None and entity.ref.kind is not EntityKind.CAMPAIGN:
            assert entity.parent_id in seen, entity.ref.key
        seen.add(entity.ref.entity_id)
        assert entity.ref.platform is snapshot.platform and entity.ref.account_id == account
    assert snapshot.entities[0].ref.kind is EntityKind.ACCOUNT


def test_snapshot_money_is_integer_micros_and_budgets_add_up(client: SimClient) -> None:
    snapshot = client.read_snapshot("sim-google")
    for entity in snapshot.entities:
        for metrics in (entity.today, entity.trailing_7d, *entity.daily_history):
            assert type(metrics.cost_micros) is int and type(metrics.conversion_value_micros) is int
    assert snapshot.account_daily_budget_micros == sum(h.daily_budget_micros for h in snapshot.budget_holders())
    assert snapshot.account_daily_budget_micros == 510_000_000


def test_daily_history_is_kept_for_budget_holders_and_creatives_only(client: SimClient) -> None:
    snapshot = client.read_snapshot("sim-google")
    for entity in snapshot.entities:
        has_history = entity.daily_budget_micros is not None or entity.ref.kind is EntityKind.CREATIVE
        assert len(entity.daily_history) == (14 if has_history else 0), entity.ref.key


def test_snapshot_clock_and_pace_follow_the_sim_clock(client: SimClient) -> None:
    snapshot = client.read_snapshot("sim-meta")
    assert snapshot.as_of.isoformat() == "2026-06-15T08:00:00+00:00"
    assert (snapshot.daypart, snapshot.dayparts_per_day) == (2, 6)
    before = snapshot.expected_spend_fraction
    client.market.advance(2)
    after = client.read_snapshot("sim-meta")
    assert after.as_of.hour == 16
    assert after.expected_spend_fraction > before


def test_snapshot_reports_bids_budgets_texts_and_match_types(client: SimClient) -> None:
    google = client.read_snapshot("sim-google")
    keyword = google.by_id(EntityKind.KEYWORD)["31000201"]
    assert keyword.text == "running shoes" and keyword.match_type is not None and keyword.cpc_bid_micros
    assert keyword.campaign_id == "21000102" and keyword.parent_id == "14100201"
    meta = client.read_snapshot("sim-meta")
    ad_set = meta.by_id(EntityKind.AD_GROUP)["117"]
    assert ad_set.daily_budget_micros == 380_000_000 and ad_set.cpc_bid_micros
    assert ad_set.campaign_id == "23850001"


def test_unknown_account_raises(client: SimClient) -> None:
    with pytest.raises(UnknownAccountError):
        client.read_snapshot("sim-tiktok")
    with pytest.raises(UnknownAccountError):
        client.apply("sim-tiktok", [])


def test_apply_sets_an_absolute_budget_even_with_a_stale_old_value(client: SimClient) -> None:
    results = client.apply("sim-meta", [_cleared(_budget(_meta("117"), 450_000_000, old=1))])
    assert [r.status for r in results] == [WriteStatus.APPLIED]
    assert results[0].read_back == "450000000"
    again = client.apply("sim-meta", [_cleared(_budget(_meta("117"), 450_000_000, old=7))])
    assert again[0].status is WriteStatus.APPLIED
    state = client.read_back("sim-meta", [_meta("117")])[_meta("117").key]
    assert state.daily_budget_micros == 450_000_000


def test_a_bare_action_is_refused_and_nothing_changes(client: SimClient) -> None:
    before = client.market.to_bytes()
    good = _cleared(_budget(_meta("115"), 200_000_000, action_id="ok"))
    with pytest.raises(UnfilteredActionError):
        client.apply("sim-meta", [good, _budget(_meta("116"), 1, action_id="bare")])  # type: ignore[list-item]
    assert client.market.to_bytes() == before


def test_a_tampered_clearance_is_refused_and_nothing_changes(client: SimClient) -> None:
    before = client.market.to_bytes()
    cleared = _cleared(_budget(_meta("115"), 200_000_000))
    forged = cleared.model_copy(update={"action": _budget(_meta("115"), 900_000_000)})
    with pytest.raises(UnfilteredActionError):
        client.apply("sim-meta", [cleared, forged])
    assert client.market.to_bytes() == before


def test_validate_only_changes_nothing_and_reports_validated(client: SimClient) -> None:
    before = client.market.to_bytes()
    bid = SetBid(
        action_id="bid",
        entity=_meta("124"),
        agent=AgentName.OPERATOR,
        reason="lift the leader",
        old_cpc_bid_micros=1,
        new_cpc_bid_micros=3_000_000,
    )
    results = client.apply(
        "sim-meta", [_cleared(_budget(_meta("117"), 500_000_000)), _cleared(bid)], validate_only=True
    )
    assert [r.status for r in results] == [WriteStatus.VALIDATED, WriteStatus.VALIDATED]
    assert client.market.to_bytes() == before


def test_a_missing_target_fails_per_action_while_the_others_apply(client: SimClient) -> None:
    pause = PauseCreative(
        action_id="pause",
        entity=_meta("117001", EntityKind.CREATIVE),
        agent=AgentName.CREATIVE_ROTATION,
        reason="fatigued",
        old_status=Status.ENABLED,
    )
    results = client.apply(
        "sim-meta",
        [_cleared(_budget(_meta("999"), 1_000_000, action_id="ghost")), _cleared(pause)],
    )
    assert [r.status for r in results] == [WriteStatus.FAILED, WriteStatus.APPLIED]
    assert results[0].action_id == "ghost"
    ref = _meta("117001", EntityKind.CREATIVE)
    assert client.read_back("sim-meta", [ref])[ref.key].status is Status.PAUSED


def test_an_action_for_another_account_fails(client: SimClient) -> None:
    results = client.apply("sim-google", [_cleared(_budget(_meta("117"), 1_000_000))])
    assert results[0].status is WriteStatus.FAILED


def test_read_back_leaves_out_entities_that_do_not_exist(client: SimClient) -> None:
    found = client.read_back("sim-meta", [_meta("117"), _meta("404")])
    assert list(found) == [_meta("117").key]


def test_snapshot_never_shows_the_hidden_truth(client: SimClient) -> None:
    market = client.market
    ledger = market.true_ledger()
    snapshot = client.read_snapshot("sim-meta")
    holder = [h for _, h in market.holder_entity_ids()].index("117")
    day_13 = slice(13 * 6, 14 * 6)
    realised_value = ledger.value[day_13, holder].sum()
    reported = snapshot.by_id(EntityKind.AD_GROUP)["117"].daily_history[-1]
    # Reported value of a day is what arrived that day, not what that day's clicks earned.
    assert reported.conversion_value_micros != round(realised_value * 1_000_000)
    assert reported.cost_micros == round(ledger.spend[day_13, holder].sum() * 1_000_000)

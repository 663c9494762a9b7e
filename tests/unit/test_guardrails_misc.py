"""Limits per scope, time rules, brand safety, the kill switch, approvals and the public API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import bidloop.guardrails as guardrails
from bidloop.core.actions import AddKeyword, AddNegativeKeyword, AgentName, EnableCreative, SetBid, SetBudget
from bidloop.core.decisions import Verdict
from bidloop.core.entities import EntityKind, EntityRef, EntityState, Platform, Status
from bidloop.core.errors import ConfigError, InputError, WritesPausedError
from bidloop.core.limits import GuardrailLimits
from bidloop.core.metrics import Metrics
from bidloop.core.settings import load_settings
from bidloop.core.snapshot import Snapshot
from bidloop.core.store import Store
from bidloop.guardrails import (
    FilterContext,
    approval_answers,
    approval_feedback,
    approve,
    audit,
    create_pending,
    evaluate,
    gate,
    list_approvals,
    pause_all,
    reject,
    resume_all,
    scan_text,
    writes_paused,
)

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
USD = 1_000_000
META = Platform.META


def ref(kind: EntityKind, entity_id: str, account_id: str = "m1", platform: Platform = META) -> EntityRef:
    return EntityRef(platform=platform, account_id=account_id, kind=kind, entity_id=entity_id)


HISTORY = [Metrics(impressions=1_000, clicks=20, cost_micros=10 * USD) for _ in range(14)]
"""Fourteen days of 20 clicks and 10 USD: enough evidence for the default `insufficient_data` thresholds."""


def meta_snapshot(account_id: str = "m1") -> Snapshot:
    """A Meta account: campaigns 7 and 8, ad sets 115 (in 7) and 124 (in 8) with budgets, bids and history."""
    snap = Snapshot(
        account_id=account_id,
        platform=META,
        as_of=NOW,
        account_daily_budget_micros=200 * USD,
        entities=[
            EntityState(ref=ref(EntityKind.CAMPAIGN, "7", account_id), name="Prospecting", campaign_id="7"),
            EntityState(ref=ref(EntityKind.CAMPAIGN, "8", account_id), name="Retargeting", campaign_id="8"),
            EntityState(
                ref=ref(EntityKind.AD_GROUP, "115", account_id),
                name="Lookalike",
                parent_id="7",
                campaign_id="7",
                daily_budget_micros=100 * USD,
                cpc_bid_micros=2 * USD,
            ),
            EntityState(
                ref=ref(EntityKind.AD_GROUP, "124", account_id),
                name="Cart abandoners",
                parent_id="8",
                campaign_id="8",
                daily_budget_micros=100 * USD,
                cpc_bid_micros=2 * USD,
            ),
            EntityState(
                ref=ref(EntityKind.CREATIVE, "ad9", account_id),
                name="Claimy ad",
                parent_id="115",
                campaign_id="7",
                status=Status.PAUSED,
                text="Guaranteed results in 7 days",
            ),
            EntityState(
                ref=ref(EntityKind.CREATIVE, "ad10", account_id),
                name="Banned ad",
                parent_id="115",
                campaign_id="7",
                status=Status.PAUSED,
                text="Win big at the CASINO",
            ),
        ],
    )
    return snap.model_copy(
        update={"entities": [e.model_copy(update={"daily_history": list(HISTORY)}) for e in snap.entities]}
    )


def budget(ad_set: str, old: int, new: int, account_id: str = "m1") -> SetBudget:
    return SetBudget(
        action_id=f"{account_id}-b-{ad_set}",
        entity=ref(EntityKind.AD_GROUP, ad_set, account_id),
        agent=AgentName.OPERATOR,
        reason="ROAS leader",
        old_daily_budget_micros=old,
        new_daily_budget_micros=new,
    )


def bid(ad_set: str, old: int, new: int) -> SetBid:
    return SetBid(
        action_id=f"k-{ad_set}",
        entity=ref(EntityKind.AD_GROUP, ad_set),
        agent=AgentName.BID_SHIFTER,
        reason="lift",
        old_cpc_bid_micros=old,
        new_cpc_bid_micros=new,
    )


def context(**kw: object) -> FilterContext:
    return FilterContext(run_id="r", actor="chat", now=NOW, **kw)  # type: ignore[arg-type]


def judge(actions: list[object], limits: GuardrailLimits, ctx: FilterContext | None = None, **snaps: Snapshot):  # type: ignore[no-untyped-def]
    snapshots = snaps or {"m1": meta_snapshot()}
    return evaluate(actions, snapshots, limits, context=ctx or context())


# -- limits per scope ------------------------------------------------------------------------------


def test_campaign_overrides_account_overrides_platform_overrides_global() -> None:
    limits = GuardrailLimits.model_validate(
        {
            "max_change_pct": 20,
            "platforms": {"meta": {"max_change_pct": 15}},
            "accounts": {"m1": {"max_change_pct": 10, "campaigns": {"7": {"max_change_pct": 5}}}},
        }
    )
    assert limits.resolve(Platform.GOOGLE_ADS, "g1").max_change_pct == 20
    assert limits.resolve(META, "other").max_change_pct == 15
    assert limits.resolve(META, "m1").max_change_pct == 10
    assert limits.resolve(META, "m1", "7").max_change_pct == 5
    decisions = judge([bid("115", 2 * USD, 3 * USD), bid("124", 2 * USD, 3 * USD)], limits)
    assert [d.final_action.new_cpc_bid_micros for d in decisions] == [2_100_000, 2_200_000]  # type: ignore[union-attr]


def test_protected_ids_and_banned_terms_add_up_across_scopes() -> None:
    limits = GuardrailLimits.model_validate(
        {
            "protected_entity_ids": ["a"],
            "banned_terms": ["casino"],
            "platforms": {"meta": {"protected_entity_ids": ["b"]}},
            "accounts": {"m1": {"protected_entity_ids": ["c"], "banned_terms": ["lottery"]}},
        }
    )
    eff = limits.resolve(META, "m1")
    assert eff.protected_entity_ids == {"a", "b", "c"}
    assert set(eff.banned_terms) == {"casino", "lottery"}


def test_account_level_limits_may_not_be_set_on_a_campaign() -> None:
    with pytest.raises(ValueError, match="account-level"):
        GuardrailLimits.model_validate({"accounts": {"m1": {"campaigns": {"7": {"max_changes_per_run": 3}}}}})


def test_limits_load_from_bidloop_yaml_and_a_typo_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "bidloop.yaml"
    path.write_text(
        "guardrails:\n"
        "  max_change_pct: 10\n"
        "  platforms: {meta: {max_budget_changes_per_hour: 3}}\n"
        "  accounts:\n"
        "    sim-meta:\n"
        "      protected_entity_ids: ['115']\n"
        "      campaigns: {'7': {bid_ceiling_micros: 5000000}}\n"
        "  freeze_windows:\n"
        "    - {start: 2026-11-27T00:00:00, end: 2026-11-27T06:00:00, reason: Black Friday launch}\n",
        encoding="utf-8",
    )
    s = load_settings(path)
    eff = s.guardrails.resolve(META, "sim-meta", "7")
    assert (eff.max_change_pct, eff.max_budget_changes_per_hour, eff.bid_ceiling_micros) == (10, 3, 5_000_000)
    assert "115" in eff.protected_entity_ids
    assert eff.freeze_windows[0].start == datetime(2026, 11, 27, tzinfo=UTC)
    path.write_text("guardrails:\n  max_chnage_pct: 10\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="max_chnage_pct"):
        load_settings(path)


def test_absolute_max_change_clips_below_the_percentage() -> None:
    limits = GuardrailLimits(max_change_micros=5 * USD, allow_total_budget_increase=True,
                             account_daily_budget_cap_micros=1_000 * USD)  # fmt: skip
    [d] = judge([budget("115", 100 * USD, 120 * USD)], limits)
    assert d.final_action.new_daily_budget_micros == 105 * USD  # type: ignore[union-attr]
    assert d.rule_id == "max_change"


# -- time rules ------------------------------------------------------------------------------------


def test_edit_within_the_cooldown_is_blocked_and_after_it_allowed() -> None:
    key = ref(EntityKind.AD_GROUP, "115").key
    limits = GuardrailLimits(cooldown_minutes=60)
    [recent] = judge(
        [bid("115", 2 * USD, 2_200_000)], limits, context(recent_changes={key: [NOW - timedelta(minutes=20)]})
    )
    assert (recent.verdict, recent.rule_id) == (Verdict.BLOCKED, "cooldown")
    assert "20 minutes ago" in recent.message
    [later] = judge(
        [bid("115", 2 * USD, 2_200_000)], limits, context(recent_changes={key: [NOW - timedelta(minutes=61)]})
    )
    assert later.verdict is Verdict.ALLOWED


def test_fifth_meta_budget_change_of_an_ad_set_within_an_hour_is_blocked() -> None:
    key = ref(EntityKind.AD_GROUP, "115").key
    four = [NOW - timedelta(minutes=m) for m in (50, 40, 30, 20)]
    limits = GuardrailLimits(cooldown_minutes=0)
    decisions = judge(
        [budget("115", 100 * USD, 110 * USD), budget("124", 100 * USD, 90 * USD)],
        limits,
        context(recent_changes={key: four}),
    )
    assert (decisions[0].verdict, decisions[0].rule_id) == (Verdict.BLOCKED, "platform_change_rate")
    three = judge([budget("115", 100 * USD, 110 * USD), budget("124", 100 * USD, 90 * USD)], limits,
                  context(recent_changes={key: four[1:]}))  # fmt: skip
    assert three[0].verdict is Verdict.ALLOWED


def test_nothing_changes_inside_a_freeze_window() -> None:
    limits = GuardrailLimits.model_validate(
        {"freeze_windows": [{"start": NOW - timedelta(hours=1), "end": NOW + timedelta(hours=5), "reason": "sale"}]}
    )
    [d] = judge([bid("115", 2 * USD, 2_100_000)], limits)
    assert (d.verdict, d.rule_id) == (Verdict.BLOCKED, "freeze_window")
    assert "sale" in d.message


def test_daily_change_cap_leaves_only_what_is_left_of_the_day() -> None:
    key = ref(EntityKind.AD_GROUP, "115").key
    limits = GuardrailLimits(max_daily_change_pct=30)
    [d] = judge([bid("115", 2 * USD, 3 * USD)], limits, context(changes_today_pct={key: 25.0}))
    assert (d.rule_id, d.final_action.new_cpc_bid_micros) == ("max_daily_change", 2_100_000)  # type: ignore[union-attr]
    [spent] = judge([bid("115", 2 * USD, 3 * USD)], limits, context(changes_today_pct={key: 30.0}))
    assert (spent.verdict, spent.rule_id) == (Verdict.BLOCKED, "max_daily_change")


# -- protection, run caps, portfolios ----------------------------------------------------------------


def test_protected_entity_and_everything_in_a_protected_campaign_are_never_touched() -> None:
    account = {"protected_entity_ids": ["124"], "campaigns": {"7": {"protected": True}}}
    limits = GuardrailLimits.model_validate({"accounts": {"m1": account}})
    decisions = judge([bid("115", 2 * USD, 2_100_000), bid("124", 2 * USD, 2_100_000)], limits)
    assert [d.rule_id for d in decisions] == ["protected_entity", "protected_entity"]


def test_changes_beyond_the_per_run_cap_are_blocked_in_order() -> None:
    limits = GuardrailLimits(max_changes_per_run=1)
    decisions = judge([bid("115", 2 * USD, 2_100_000), bid("124", 2 * USD, 2_100_000)], limits)
    assert [d.verdict for d in decisions] == [Verdict.ALLOWED, Verdict.BLOCKED]
    assert decisions[1].rule_id == "max_changes_per_run"
    earlier = judge([bid("115", 2 * USD, 2_100_000)], limits, context(changes_this_run={"m1": 1}))
    assert earlier[0].rule_id == "max_changes_per_run"


def test_portfolio_cap_limits_the_sum_across_accounts() -> None:
    limits = GuardrailLimits.model_validate(
        {
            "allow_total_budget_increase": True,
            "account_daily_budget_cap_micros": 1_000 * USD,
            "portfolios": {"eu": {"account_ids": ["m1", "m2"], "daily_budget_cap_micros": 415 * USD}},
        }
    )
    actions = [budget("115", 100 * USD, 110 * USD, "m1"), budget("115", 100 * USD, 110 * USD, "m2")]
    decisions = judge(actions, limits, m1=meta_snapshot("m1"), m2=meta_snapshot("m2"))
    assert [d.verdict for d in decisions] == [Verdict.ALLOWED, Verdict.CLIPPED]
    assert decisions[1].rule_id == "portfolio_budget_cap"
    assert decisions[1].final_action.new_daily_budget_micros == 105 * USD  # type: ignore[union-attr]
    assert "portfolio eu" in decisions[1].message


def test_portfolio_increase_is_blocked_without_every_accounts_snapshot() -> None:
    limits = GuardrailLimits.model_validate(
        {
            "allow_total_budget_increase": True,
            "account_daily_budget_cap_micros": 1_000 * USD,
            "portfolios": {"eu": {"account_ids": ["m1", "m2"], "daily_budget_cap_micros": 10_000 * USD}},
        }
    )
    [d] = judge([budget("115", 100 * USD, 110 * USD)], limits)
    assert (d.verdict, d.rule_id) == (Verdict.BLOCKED, "portfolio_budget_cap")
    assert "m2" in d.message


# -- brand safety ----------------------------------------------------------------------------------


def test_brand_safety_blocks_banned_terms_and_holds_claims_for_approval() -> None:
    limits = GuardrailLimits(banned_terms=["casino"])
    enable = [
        EnableCreative(action_id=f"e-{i}", entity=ref(EntityKind.CREATIVE, i), agent=AgentName.CREATIVE_ROTATION,
                       reason="fresh", old_status=Status.PAUSED)
        for i in ("ad10", "ad9")
    ]  # fmt: skip
    banned, claim = judge(enable, limits)
    assert (banned.verdict, banned.rule_id) == (Verdict.BLOCKED, "brand_safety")
    assert "casino" in banned.message
    assert (claim.verdict, claim.rule_id) == (Verdict.NEEDS_APPROVAL, "brand_claims")


def test_new_keyword_text_is_checked_but_a_negative_keyword_is_not() -> None:
    limits = GuardrailLimits(banned_terms=["casino"])
    keyword = AddKeyword(action_id="kw", entity=ref(EntityKind.AD_GROUP, "115"), agent=AgentName.KEYWORD_INSIGHT,
                         reason="r", text="online ｃａｓｉｎｏ", cpc_bid_micros=USD)  # fmt: skip
    negative = AddNegativeKeyword(action_id="neg", entity=ref(EntityKind.AD_GROUP, "115"),
                                  agent=AgentName.KEYWORD_INSIGHT, reason="r", text="casino")  # fmt: skip
    kw, neg = judge([keyword, negative], limits)
    assert kw.rule_id == "brand_safety"
    assert neg.verdict is Verdict.ALLOWED


def test_scan_text_matches_whole_words_through_case_unicode_and_separators() -> None:
    found = scan_text("RISK_FREE trial at the Ｃasino", banned_terms=("casino",), claims=("risk free",))
    assert found.banned == ("casino",) and found.claims == ("risk free",)
    assert scan_text("occasional secure shoes", banned_terms=("casino", "cure"), claims=()).clean


# -- kill switch -----------------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(f"sqlite:///{tmp_path / 'g.sqlite'}")
    yield s
    s.dispose()


def test_pause_all_stops_every_gate_until_resume_all_and_both_are_audited(store: Store) -> None:
    decisions = judge([bid("115", 2 * USD, 2_100_000)], GuardrailLimits())
    assert not writes_paused(store)
    pause_all(store, "alice", "CPCs spiking")
    assert writes_paused(store)
    with pytest.raises(WritesPausedError):
        gate(decisions, store=store)
    resume_all(store, "alice")
    assert len(gate(decisions, store=store)) == 1
    kinds = [(r.kind, r.actor, r.payload["writes_paused"]) for r in audit.show(store)]
    assert kinds == [("kill_switch", "alice", True), ("kill_switch", "alice", False)]
    assert audit.verify(store).ok


def test_kill_switch_pulled_by_another_process_stops_the_next_batch_of_a_running_apply(
    store: Store, tmp_path: Path
) -> None:
    decisions = judge([bid("115", 2 * USD, 2_100_000), bid("124", 2 * USD, 2_100_000)], GuardrailLimits())
    sent: list[str] = []
    other_process = Store(store.url, create=False)
    for batch_no, batch in enumerate(([decisions[0]], [decisions[1]])):
        if batch_no == 1:
            pause_all(other_process, "ops", "stop now")
        try:
            sent.extend(c.action.action_id for c in gate(batch, store=store))
        except WritesPausedError:
            break
    other_process.dispose()
    assert sent == [decisions[0].action_id]


def test_unknown_switch_value_reads_as_paused(store: Store) -> None:
    store.set_control("writes_paused", "maybe")
    assert writes_paused(store)


# -- approvals -------------------------------------------------------------------------------------


def pending_decisions(store: Store) -> list:  # type: ignore[type-arg]
    store.start_run("run-a", mode="live", trigger="chat", accounts=["m1"])
    limits = GuardrailLimits(approval_above_micros=USD, cooldown_minutes=0)
    decisions = judge([budget("115", 100 * USD, 110 * USD), budget("124", 100 * USD, 90 * USD),
                       bid("115", 2 * USD, 2_100_000)], limits)  # fmt: skip
    assert [d.verdict for d in decisions] == [Verdict.NEEDS_APPROVAL, Verdict.ALLOWED, Verdict.ALLOWED]
    return decisions


def test_needs_approval_becomes_a_pending_approval_that_a_person_approves(store: Store) -> None:
    decisions = pending_decisions(store)
    assert create_pending(store, "run-a", decisions, actor="chat") == [decisions[0].action_id]
    [row] = list_approvals(store)
    assert row.status == "pending"
    approve(store, row.approval_id[:6], by="alice", reason="launch week")
    assert list_approvals(store) == []
    assert approval_answers(store, "run-a") == {decisions[0].action_id: True}
    cleared = gate(decisions, approved=approval_answers(store, "run-a"))
    assert [c.verdict for c in cleared] == ["approved", "allowed", "allowed"]
    fb = approval_feedback(list_approvals(store, status="approved")[0])
    assert fb.reward_penalty == 0.0
    assert fb.feedback["label"] == "approved" and fb.feedback["decided_by"] == "alice"


def test_rejection_needs_a_reason_and_becomes_negative_feedback(store: Store) -> None:
    decisions = pending_decisions(store)
    create_pending(store, "run-a", decisions, actor="chat")
    with pytest.raises(InputError, match="reason"):
        reject(store, decisions[0].action_id, by="bob", reason=" ")
    row = reject(store, decisions[0].action_id, by="bob", reason="Black Friday budget is fixed")
    assert row.status == "rejected"
    fb = approval_feedback(row)
    assert fb.reward_penalty < 0
    assert fb.feedback["reason"] == "Black Friday budget is fixed"
    assert gate(decisions, approved=approval_answers(store, "run-a"))[0].action.action_id == decisions[1].action_id
    with pytest.raises(InputError, match="already rejected"):
        approve(store, decisions[0].action_id, by="carol")
    assert [r.kind for r in audit.show(store)] == ["approval_requested", "approval"]


def test_unknown_approval_id_says_how_to_list_them(store: Store) -> None:
    with pytest.raises(InputError) as err:
        approve(store, "nope", by="alice")
    assert "approvals list" in str(err.value)


# -- API -------------------------------------------------------------------------------------------


def test_public_api_is_exported() -> None:
    for name in guardrails.__all__:
        assert hasattr(guardrails, name), name
    assert {"evaluate", "gate", "FilterContext", "plan_rollback", "pause_all", "verify"} <= set(guardrails.__all__)


def test_decisions_from_a_checkpoint_in_another_process_must_be_filtered_again() -> None:
    [decision] = judge([bid("115", 2 * USD, 2_100_000)], GuardrailLimits())
    assert guardrails.issued_by_this_process([decision])
    restored = type(decision).model_validate_json(decision.model_dump_json())
    assert guardrails.issued_by_this_process([restored])  # same process: still known
    forged = restored.model_copy(update={"rule_id": "all_checks_passed_by_hand"})
    assert not guardrails.issued_by_this_process([forged])


def test_history_from_the_ledger_feeds_cooldowns_and_the_daily_cap(store: Store) -> None:
    key = ref(EntityKind.AD_GROUP, "115").key
    store.start_run("old", mode="live", trigger="schedule", accounts=["m1"])
    ids = store.record_write_intents(
        "old",
        [
            {"action_id": "w1", "account_id": "m1", "entity_key": key, "before_value": "1600000",
             "after_value": "1800000", "effective_at": NOW - timedelta(hours=5)},
            {"action_id": "w2", "account_id": "m1", "entity_key": key, "before_value": "1800000",
             "after_value": "2000000", "effective_at": NOW - timedelta(minutes=30)},
            {"action_id": "w3", "account_id": "m1", "entity_key": key, "before_value": "1000000",
             "after_value": "1600000", "effective_at": NOW - timedelta(days=3)},
        ],
    )  # fmt: skip
    store.record_write_outcomes([{"id": i, "status": "applied", "message": "", "attempts": 1} for i in ids.values()])
    history = guardrails.history_from_ledger(store, {key}, now=NOW)
    assert sorted(history["recent_changes"][key]) == [NOW - timedelta(hours=5), NOW - timedelta(minutes=30)]
    assert history["changes_today_micros"][key] == 400_000
    assert history["changes_today_pct"][key] == pytest.approx(12.5 + 100 * 200_000 / 1_800_000)
    ctx = FilterContext(run_id="r", actor="cli", now=NOW, **history)
    [cooling] = judge([bid("115", 2 * USD, 2_100_000)], GuardrailLimits(), ctx)
    assert cooling.rule_id == "cooldown"
    [capped] = judge([bid("115", 2 * USD, 3 * USD)], GuardrailLimits(cooldown_minutes=0, max_daily_change_pct=30), ctx)
    assert capped.rule_id == "max_daily_change"
    assert capped.final_action.new_cpc_bid_micros < 2_200_000  # type: ignore[union-attr]

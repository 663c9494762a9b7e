"""Rollback: restoring actions from the write ledger, through the same filter, back to the exact values."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import pytest

from bidloop.core.actions import ACTION_ADAPTER, AddKeyword, AgentName, PauseCreative, SetBid, SetBudget
from bidloop.core.clearance import Clearance
from bidloop.core.decisions import Verdict
from bidloop.core.entities import EntityKind, EntityState, Status
from bidloop.core.limits import GuardrailLimits
from bidloop.core.snapshot import Snapshot
from bidloop.core.store import Store
from bidloop.guardrails import FilterContext, evaluate, gate, plan_rollback
from bidloop.tools.sim.client import SimClient
from bidloop.tools.sim.fixtures import default_market

ACCOUNT = "sim-google"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(f"sqlite:///{tmp_path / 'rollback.sqlite'}")
    yield s
    s.dispose()


def first(snapshot: Snapshot, kind: EntityKind, n: int = 0, **where: object) -> EntityState:
    found = [e for e in snapshot.entities if e.ref.kind is kind and all(getattr(e, k) == v for k, v in where.items())]
    return found[n]


def record_and_apply(store: Store, client: SimClient, run_id: str, clearances: Sequence[Clearance]) -> None:
    """Do what the graph's apply step does: intent rows, one apply call, outcomes."""
    ids = store.record_write_intents(
        run_id,
        [
            {
                "action_id": c.action.action_id,
                "account_id": ACCOUNT,
                "entity_key": c.action.entity.key,
                "before_value": None if c.action.old_value is None else str(c.action.old_value),
                "after_value": str(c.action.new_value),
                "payload": ACTION_ADAPTER.dump_python(c.action, mode="json"),
            }
            for c in clearances
        ],
    )
    results = client.apply(ACCOUNT, clearances)
    store.record_write_outcomes(
        [
            {"id": ids[r.action_id], "status": r.status.value, "message": r.message, "attempts": r.attempts}
            for r in results
        ]
    )


def values(snapshot: Snapshot) -> dict[str, tuple[object, object, object]]:
    return {e.ref.key: (e.daily_budget_micros, e.cpc_bid_micros, e.status) for e in snapshot.entities}


def test_rolling_back_a_run_on_the_simulated_market_restores_every_changed_value_exactly(store: Store) -> None:
    market = default_market()
    client = SimClient(market)
    before = client.read_snapshot(ACCOUNT)
    c1, c2 = first(before, EntityKind.CAMPAIGN, 0), first(before, EntityKind.CAMPAIGN, 1)
    keyword = first(before, EntityKind.KEYWORD)
    creative = first(before, EntityKind.CREATIVE, status=Status.ENABLED)
    b1, b2, k = c1.daily_budget_micros, c2.daily_budget_micros, keyword.cpc_bid_micros
    assert b1 is not None and b2 is not None and k is not None
    shift = b1 // 10
    actions = [
        SetBudget(action_id="up", entity=c1.ref, agent=AgentName.BID_SHIFTER, reason="ROAS leader",
                  old_daily_budget_micros=b1, new_daily_budget_micros=b1 + shift),
        SetBudget(action_id="down", entity=c2.ref, agent=AgentName.BID_SHIFTER, reason="ROAS laggard",
                  old_daily_budget_micros=b2, new_daily_budget_micros=b2 - shift),
        SetBid(action_id="bid", entity=keyword.ref, agent=AgentName.BID_SHIFTER, reason="lift",
               old_cpc_bid_micros=k, new_cpc_bid_micros=k * 130 // 100),
        PauseCreative(action_id="pause", entity=creative.ref, agent=AgentName.CREATIVE_ROTATION, reason="fatigue",
                      old_status=Status.ENABLED),
    ]  # fmt: skip
    store.start_run("run-1", mode="simulate", trigger="cli", accounts=[ACCOUNT])
    ctx = FilterContext(run_id="run-1", actor="cli", now=before.as_of)
    decisions = evaluate(actions, {ACCOUNT: before}, GuardrailLimits(), context=ctx)
    assert [d.verdict for d in decisions] == [Verdict.ALLOWED, Verdict.ALLOWED, Verdict.CLIPPED, Verdict.ALLOWED]
    record_and_apply(store, client, "run-1", gate(decisions))
    market.advance()
    changed = client.read_snapshot(ACCOUNT)
    assert values(changed) != values(before)

    plan = plan_rollback(store, "run-1", {ACCOUNT: changed})
    assert len(plan.actions) == 4
    assert plan.skipped == []
    store.start_run("run-2", mode="simulate", trigger="rollback", accounts=[ACCOUNT])
    # Tighter limits than the run had: the restores still go back exactly (rollback_restore), and
    # the cooldown after the run's own edits does not hold them up.
    rollback_ctx = FilterContext(
        run_id="run-2",
        actor="rollback",
        now=changed.as_of,
        recent_changes={a.entity.key: [changed.as_of - timedelta(minutes=5)] for a in actions},
        rollback_before_values=plan.before_values,
    )
    restore = evaluate(plan.actions, {ACCOUNT: changed}, GuardrailLimits(max_change_pct=5), context=rollback_ctx)
    assert all(d.verdict is Verdict.ALLOWED for d in restore), [d.message for d in restore]
    assert all("rollback_restore" in d.checks_passed for d in restore)
    record_and_apply(store, client, "run-2", gate(restore))
    market.advance()
    after = client.read_snapshot(ACCOUNT)
    assert values(after) == values(before)


def ledger_run(store: Store, run_id: str, rows: list[tuple[object, str | None, str, str]]) -> None:
    """Write a ledger by hand: (action, before, after, status) per write."""
    store.start_run(run_id, mode="live", trigger="schedule", accounts=[ACCOUNT])
    ids = store.record_write_intents(
        run_id,
        [
            {
                "action_id": a.action_id,  # type: ignore[attr-defined]
                "account_id": ACCOUNT,
                "entity_key": a.entity.key,  # type: ignore[attr-defined]
                "before_value": b,
                "after_value": af,
                "payload": ACTION_ADAPTER.dump_python(a, mode="json"),  # type: ignore[arg-type]
            }
            for a, b, af, _ in rows
        ],
    )
    store.record_write_outcomes(
        [{"id": ids[a.action_id], "status": st, "message": "", "attempts": 1} for a, _, _, st in rows if st != "intent"]  # type: ignore[attr-defined]
    )


@pytest.fixture
def snap() -> Snapshot:
    return SimClient(default_market()).read_snapshot(ACCOUNT)


def budget_action(entity: EntityState, old: int, new: int, action_id: str) -> SetBudget:
    return SetBudget(action_id=action_id, entity=entity.ref, agent=AgentName.BID_SHIFTER, reason="r",
                     old_daily_budget_micros=old, new_daily_budget_micros=new)  # fmt: skip


def test_added_keyword_cannot_be_restored_and_is_reported(store: Store, snap: Snapshot) -> None:
    group = first(snap, EntityKind.AD_GROUP)
    add = AddKeyword(action_id="add", entity=group.ref, agent=AgentName.KEYWORD_INSIGHT, reason="converts",
                     text="waterproof trail shoes", cpc_bid_micros=900_000)  # fmt: skip
    ledger_run(store, "r", [(add, None, add.new_value, "applied")])
    plan = plan_rollback(store, "r", {ACCOUNT: snap})
    assert plan.actions == []
    [skip] = plan.skipped
    assert skip.action_id == "add"
    assert "does not remove keywords" in skip.reason


def test_entity_changed_again_since_the_run_is_skipped_unless_forced(store: Store, snap: Snapshot) -> None:
    campaign = first(snap, EntityKind.CAMPAIGN)
    now = campaign.daily_budget_micros
    assert now is not None and now > 3_000_000, "the campaign needs a budget above the two earlier values"
    run_before, run_after = now - 3_000_000, now - 1_000_000  # the run set run_after; someone set `now` since
    ledger_run(
        store, "r", [(budget_action(campaign, run_before, run_after, "b"), str(run_before), str(run_after), "applied")]
    )
    plan = plan_rollback(store, "r", {ACCOUNT: snap})
    assert plan.actions == []
    assert "changed again since" in plan.skipped[0].reason
    forced = plan_rollback(store, "r", {ACCOUNT: snap}, force=True)
    [action] = forced.actions
    assert (action.old_daily_budget_micros, action.new_daily_budget_micros) == (now, run_before)  # type: ignore[union-attr]


def test_failed_and_validated_writes_are_not_rolled_back(store: Store, snap: Snapshot) -> None:
    c1, c2 = first(snap, EntityKind.CAMPAIGN, 0), first(snap, EntityKind.CAMPAIGN, 1)
    b1, b2 = c1.daily_budget_micros, c2.daily_budget_micros
    assert b1 is not None and b2 is not None
    ledger_run(
        store,
        "r",
        [
            (budget_action(c1, b1 - 1_000_000, b1, "f"), str(b1 - 1_000_000), str(b1), "failed"),
            (budget_action(c2, b2 - 1_000_000, b2, "v"), str(b2 - 1_000_000), str(b2), "validated"),
        ],
    )
    plan = plan_rollback(store, "r", {ACCOUNT: snap})
    assert plan.actions == [] and plan.skipped == []


def test_unconfirmed_write_is_restored_only_if_it_took_effect(store: Store, snap: Snapshot) -> None:
    c1, c2 = first(snap, EntityKind.CAMPAIGN, 0), first(snap, EntityKind.CAMPAIGN, 1)
    b1, b2 = c1.daily_budget_micros, c2.daily_budget_micros
    assert b1 is not None and b2 is not None
    ledger_run(
        store,
        "r",
        [
            (budget_action(c1, b1 - 1_000_000, b1, "landed"), str(b1 - 1_000_000), str(b1), "intent"),
            (budget_action(c2, b2 - 1_000_000, b2 + 5, "lost"), str(b2 - 1_000_000), str(b2 + 5), "intent"),
        ],
    )
    plan = plan_rollback(store, "r", {ACCOUNT: snap})
    assert [a.action_id for a in plan.actions] == ["rollback:landed"]
    assert "never confirmed" in plan.skipped[0].reason


def test_entity_gone_or_account_not_read_is_reported(store: Store, snap: Snapshot) -> None:
    campaign = first(snap, EntityKind.CAMPAIGN)
    b = campaign.daily_budget_micros
    assert b is not None and b > 1_000_000, "the campaign needs a budget above the run's old value"
    ledger_run(store, "r", [(budget_action(campaign, b - 1_000_000, b, "x"), str(b - 1_000_000), str(b), "applied")])
    plan = plan_rollback(store, "r", {})
    assert plan.actions == []
    assert "no longer exists" in plan.skipped[0].reason


def test_restore_beyond_max_change_is_exempt_only_for_the_rollback_actor(store: Store, snap: Snapshot) -> None:
    c1, c2 = first(snap, EntityKind.CAMPAIGN, 0), first(snap, EntityKind.CAMPAIGN, 1)
    b1, b2 = c1.daily_budget_micros, c2.daily_budget_micros
    assert b1 is not None and b2 is not None
    # The run moved c1 down by 20 % and c2 up by the same amount; restoring moves each back by 25 % of now.
    ledger_run(
        store,
        "r",
        [
            (budget_action(c1, b1 * 5 // 4, b1, "d"), str(b1 * 5 // 4), str(b1), "applied"),
            (budget_action(c2, b2 - b1 // 4, b2, "u"), str(b2 - b1 // 4), str(b2), "applied"),
        ],
    )
    plan = plan_rollback(store, "r", {ACCOUNT: snap})
    limits = GuardrailLimits(cooldown_minutes=0)
    as_rollback = FilterContext(
        run_id="rb", actor="rollback", now=snap.as_of, rollback_before_values=plan.before_values
    )
    as_cli = FilterContext(run_id="rb", actor="cli", now=snap.as_of, rollback_before_values=plan.before_values)
    restored = evaluate(plan.actions, {ACCOUNT: snap}, limits, context=as_rollback)
    assert [d.verdict for d in restored] == [Verdict.ALLOWED, Verdict.ALLOWED]
    assert restored[0].final_action.new_daily_budget_micros == b1 * 5 // 4  # type: ignore[union-attr]
    not_rollback = evaluate(plan.actions, {ACCOUNT: snap}, limits, context=as_cli)
    assert not_rollback[0].verdict is Verdict.CLIPPED
    assert not_rollback[0].rule_id == "max_change"


def test_restore_still_respects_the_bid_ceiling(store: Store, snap: Snapshot) -> None:
    keyword = first(snap, EntityKind.KEYWORD)
    bid = keyword.cpc_bid_micros
    assert bid is not None and bid > 0, "the keyword needs a bid to restore"
    action = SetBid(action_id="k", entity=keyword.ref, agent=AgentName.BID_SHIFTER, reason="r",
                    old_cpc_bid_micros=bid * 2, new_cpc_bid_micros=bid)  # fmt: skip
    ledger_run(store, "r", [(action, str(bid * 2), str(bid), "applied")])
    plan = plan_rollback(store, "r", {ACCOUNT: snap})
    ctx = FilterContext(run_id="rb", actor="rollback", now=snap.as_of, rollback_before_values=plan.before_values)
    [decision] = evaluate(plan.actions, {ACCOUNT: snap}, GuardrailLimits(bid_ceiling_micros=bid + 1), context=ctx)
    assert decision.verdict is Verdict.CLIPPED
    assert decision.rule_id == "bid_limits"
    assert decision.final_action.new_cpc_bid_micros == bid + 1  # type: ignore[union-attr]

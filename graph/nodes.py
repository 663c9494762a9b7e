"""The nodes of the optimization graph: observe, the four agents, filter, approve, apply, report, log.

Each node is a plain function of the state and `Runtime[RunContext]`, returning a partial state update.
Side effects are idempotent, because LangGraph re-runs a node from its start after an interrupt or a
crash: records are keyed by action id, and `apply` consults the write ledger before sending anything.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import interrupt

from bidloop.agents.bid_shifter import propose_bid_actions
from bidloop.agents.creative_rotation import propose_creative_actions
from bidloop.agents.keyword_insight import propose_keyword_actions
from bidloop.agents.reporting import build_report, render_markdown
from bidloop.core.actions import ACTION_ADAPTER, Action, AddKeyword, AddNegativeKeyword
from bidloop.core.agent_context import AgentContext
from bidloop.core.clearance import Clearance
from bidloop.core.decisions import Decision, Verdict, WriteResult, WriteStatus
from bidloop.core.entities import EntityKind, EntityState
from bidloop.core.errors import BidloopError, ConfigError, PlatformError
from bidloop.core.metrics import Metrics
from bidloop.core.snapshot import Snapshot
from bidloop.core.store import AccountError
from bidloop.graph.context import RunContext
from bidloop.graph.rewards import reward_schedule, settle_rewards
from bidloop.graph.state import RunState
from bidloop.guardrails import FilterContext, evaluate, gate, history_from_ledger, issued_by_this_process
from bidloop.guardrails.approvals import approval_feedback, create_pending, list_approvals
from bidloop.guardrails.audit import append_many, show
from bidloop.guardrails.kill_switch import writes_paused
from bidloop.tools.protocol import PlatformClient

__all__ = [
    "apply",
    "approve",
    "bid_shifter",
    "creative_rotation",
    "filter_actions",
    "keyword_insight",
    "log",
    "observe",
    "report",
]

_FINAL_WRITE_STATES = {s.value for s in WriteStatus}

_log = logging.getLogger(__name__)


def observe(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Read a snapshot of every account in the run.

    An account that cannot be read, or whose platform contradicts bidloop.yaml (`AccountMismatchError`:
    currency or time zone), is stopped: no snapshot, so no actions; the run goes on with the others and
    records why on the run (`Store.set_account_errors`). What a client notes about its read (e.g. today's
    data incomplete) goes into the run's notes.
    """
    ctx = runtime.context
    snapshots: dict[str, Snapshot] = {}
    notes: list[str] = []
    stopped: dict[str, AccountError] = {}
    for account_id in state["account_ids"]:
        ctx.say(f"observe {account_id}")
        try:
            snapshots[account_id] = ctx.clients[account_id].read_snapshot(account_id)
        except ConfigError as exc:
            stopped[account_id] = AccountError.of(exc)
            notes.append(f"{account_id}: stopped, no actions: {exc.message}" + (f" ({exc.hint})" if exc.hint else ""))
        except PlatformError as exc:
            stopped[account_id] = AccountError.of(exc)
            notes.append(f"{account_id}: could not be read ({exc.message}); skipped this run")
    for account_id, snap in snapshots.items():
        notes.extend(f"{account_id}: {note}" for note in snap.notes)
    ctx.store.set_account_errors(state["run_id"], stopped)
    ctx.store.save_snapshots(state["run_id"], {a: s.model_dump_json() for a, s in snapshots.items()})
    ctx.snapshot_cache[state["run_id"]] = snapshots
    return {"observed_accounts": list(snapshots), "notes": notes}


def _agent_ctx(state: RunState, runtime: Runtime[RunContext]) -> AgentContext:
    ctx = runtime.context
    actx = AgentContext(run_id=state["run_id"], tuning=ctx.tuning, steering=ctx.steering)
    version = getattr(ctx.bid_policy, "version", None)
    if version and not _operator_steered(actx):
        actx.policy_version = version
    return actx


def _in_scope(snapshot: Snapshot, runtime: Runtime[RunContext]) -> bool:
    platforms = runtime.context.steering.platforms
    return platforms is None or snapshot.platform.value in platforms


def keyword_insight(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Propose negative and new keywords from search terms."""
    actx = _agent_ctx(state, runtime)
    runtime.context.say("keyword insight")
    proposals: list[Action] = []
    for snap in runtime.context.snapshots(state["run_id"]).values():
        if _in_scope(snap, runtime):
            proposals.extend(propose_keyword_actions(snap, actx))
    return {"proposals": proposals}


def _operator_steered(actx: AgentContext) -> bool:
    """Return True when an operator named entities or a direction: the learned policy cannot take orders."""
    s = actx.steering
    return bool(s.focus_entity_ids or s.bid_direction or not s.budget_shifts or not s.bid_changes)


def bid_shifter(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Propose budget shifts and bid changes.

    The configured learned policy decides unattended runs. When an operator names entities or a bid
    direction, the steerable marginal-ROAS heuristic carries out the instruction instead (each
    action's policy version says which one decided).
    """
    actx = _agent_ctx(state, runtime)
    policy = runtime.context.bid_policy
    runtime.context.say("bid shifter")
    proposals: list[Action] = []
    for snap in runtime.context.snapshots(state["run_id"]).values():
        if not _in_scope(snap, runtime):
            continue
        if policy is not None and not _operator_steered(actx):
            proposals.extend(policy.propose(snap, actx))  # type: ignore[attr-defined]
        else:
            proposals.extend(propose_bid_actions(snap, actx))
    return {"proposals": proposals}


def creative_rotation(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Propose creative pauses and re-enables."""
    actx = _agent_ctx(state, runtime)
    runtime.context.say("creative rotation")
    proposals: list[Action] = []
    for snap in runtime.context.snapshots(state["run_id"]).values():
        if _in_scope(snap, runtime):
            proposals.extend(propose_creative_actions(snap, actx))
    return {"proposals": proposals}


def _platform_now(snapshots: dict[str, Snapshot]) -> datetime:
    stamps = [s.as_of for s in snapshots.values()]
    return max(stamps) if stamps else datetime.now().astimezone()


def filter_actions(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Judge every proposal with the guardrails and record actions and decisions."""
    ctx = runtime.context
    proposals = state.get("proposals", [])
    ctx.say(f"guardrails: judging {len(proposals)} actions")
    snapshots = ctx.snapshots(state["run_id"])
    now = _platform_now(snapshots)
    entity_keys = {a.entity.key for a in proposals}
    fctx = FilterContext(
        run_id=state["run_id"],
        actor=ctx.actor,
        now=now,
        rollback_before_values=ctx.rollback_before_values,
        **history_from_ledger(ctx.store, entity_keys, now=now),
    )
    decisions = evaluate(proposals, snapshots, ctx.settings.guardrails, context=fctx)
    ctx.store.add_actions(
        state["run_id"],
        [
            {
                "action_id": a.action_id,
                "account_id": a.entity.account_id,
                "agent": a.agent.value,
                "kind": a.kind,
                "entity_key": a.entity.key,
                "payload": ACTION_ADAPTER.dump_python(a, mode="json"),
            }
            for a in proposals
        ],
    )
    if not ctx.store.decisions_of(state["run_id"]):
        ctx.store.add_decisions(
            state["run_id"],
            [
                {
                    "action_id": d.action_id,
                    "verdict": d.verdict.value,
                    "rule_id": d.rule_id,
                    "message": d.message,
                    "payload": d.model_dump(mode="json"),
                }
                for d in decisions
            ],
        )
        by_id = {a.action_id: a for a in proposals}
        append_many(
            ctx.store,
            [
                {
                    "kind": "decision",
                    "actor": ctx.actor,
                    "run_id": state["run_id"],
                    "policy_version": by_id[d.action_id].policy_version,
                    "payload": {
                        "action": ACTION_ADAPTER.dump_python(by_id[d.action_id], mode="json"),
                        "verdict": d.verdict.value,
                        "rule_id": d.rule_id,
                        "message": d.message,
                    },
                }
                for d in decisions
            ],
        )
    return {"decisions": decisions}


def approve(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Pause the run for a person's decision on actions above the approval thresholds (live runs only).

    The pause is a LangGraph `interrupt`; `bidloop approvals approve/reject` resume it with
    `{action_id: True/False}`. Dry runs and simulations never wait: they report what would need approval.
    """
    pending = [d for d in state.get("decisions", []) if d.verdict is Verdict.NEEDS_APPROVAL]
    if not pending or state["mode"] != "live":
        return {}
    ctx = runtime.context
    create_pending(ctx.store, state["run_id"], pending, actor=ctx.actor)
    ctx.say(f"waiting for approval of {len(pending)} action(s)")
    answer = interrupt(
        {
            "run_id": state["run_id"],
            "needs_approval": [{"action_id": d.action_id, "message": d.message, "rule_id": d.rule_id} for d in pending],
        }
    )
    approved = {str(k): bool(v) for k, v in dict(answer).items()}
    return {"approvals": approved}


def _holder_of(entity_id: str, kind: EntityKind, snap: Snapshot) -> EntityState | None:
    entity = next((e for e in snap.entities if e.ref.entity_id == entity_id and e.ref.kind is kind), None)
    if entity is None:
        return None
    if entity.daily_budget_micros is not None:
        return entity
    holders = {e.ref.entity_id: e for e in snap.budget_holders()}
    for candidate in (entity.campaign_id, entity.parent_id):
        if candidate and candidate in holders:
            return holders[candidate]
    return None


def apply(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Send cleared actions to the platforms, exactly once, and record every write.

    Per account: intent rows in the write ledger first, then one `apply` call (batched by the client),
    then the outcomes. On a re-run (resume after a crash or an approval given from another process):

    * actions with a final outcome in the ledger are reported, never sent again;
    * an `intent` without outcome is read back first: if the platform already shows the target, it
      is recorded as applied without resending;
    * the remaining actions are judged again by the filter on fresh snapshots, because clearances
      never cross processes and values may have moved while the run waited.

    The kill switch is read again before every account's batch.
    """
    ctx = runtime.context
    run_id = state["run_id"]
    mode = state["mode"]
    approvals = state.get("approvals", {})
    proposals = {a.action_id: a for a in state.get("proposals", [])}
    notes: list[str] = []
    results: list[WriteResult] = []

    ledger = {w.action_id: w for w in ctx.store.writes_of(run_id)}
    final = {aid: w for aid, w in ledger.items() if w.status != "intent"}
    # A process killed between a batch's outcomes and its audit records leaves writes unaudited.
    audited = _audited_writes(ctx, run_id) if final else set()
    for aid, w in final.items():
        results.append(WriteResult(action_id=aid, status=WriteStatus(w.status), message=w.message, attempts=w.attempts))
    decisions = [d for d in state.get("decisions", []) if d.action_id not in final]
    wanted = [d for d in decisions if d.may_apply or approvals.get(d.action_id)]

    if mode != "dry-run" and writes_paused(ctx.store):
        notes.append("writes are paused (kill switch): nothing was applied; `bidloop resume-all` lifts it")
        results += [
            WriteResult(action_id=d.action_id, status=WriteStatus.SKIPPED, message="writes paused (kill switch)")
            for d in wanted
        ]
        return {"results": results, "notes": notes}

    # An `intent` row means an earlier process reached the platform call: whatever this process's own
    # filter decided, those writes may have landed and must be read back, never sent blind.
    if not issued_by_this_process(wanted) or any(d.action_id in ledger for d in wanted):
        decisions, landed = _judge_again(state, runtime, decisions, ledger)
        results += landed
        notes.append("resumed: pending actions were read back and judged again on fresh values")

    clearances = gate(decisions, approved=approvals)
    # Accounts go in the run's own order, whatever is left to send, so that a resumed run sends its
    # remaining writes in the order an uninterrupted run would have.
    by_account: dict[str, list[Clearance]] = {a: [] for a in state.get("account_ids", [])}
    # Budget decreases go out first: if an increase landed and the decrease that made room for it
    # failed, the account total would exceed its cap.
    for c in sorted(clearances, key=_decrease_first):
        by_account.setdefault(c.action.entity.account_id, []).append(c)
    by_account = {a: todo for a, todo in by_account.items() if todo}

    observed = ctx.snapshots(run_id)
    now = _platform_now(observed)
    for account_id, todo in by_account.items():
        account = ctx.settings.account(account_id)
        if account.shadow:
            results.extend(
                WriteResult(
                    action_id=c.action.action_id, status=WriteStatus.SKIPPED, message="shadow mode: not applied"
                )
                for c in todo
            )
            continue
        if mode != "dry-run" and writes_paused(ctx.store):
            notes.append(f"{account_id}: writes paused (kill switch) before this batch; nothing sent")
            results.extend(
                WriteResult(
                    action_id=c.action.action_id, status=WriteStatus.SKIPPED, message="writes paused (kill switch)"
                )
                for c in todo
            )
            continue
        client = ctx.clients[account_id]
        ids = ctx.store.record_write_intents(
            run_id,
            [
                {
                    "action_id": c.action.action_id,
                    "account_id": account_id,
                    "entity_key": c.action.entity.key,
                    "before_value": _text(c.action.old_value),
                    "after_value": _text(c.action.new_value),
                    "payload": ACTION_ADAPTER.dump_python(c.action, mode="json"),
                    "effective_at": now,
                }
                for c in todo
            ],
        )
        ctx.say(f"apply {len(todo)} action(s) to {account_id}" + (" (validate only)" if mode == "dry-run" else ""))
        try:
            sent = client.apply(account_id, todo, validate_only=(mode == "dry-run"))
        except BidloopError as exc:
            unit = observed[account_id].money_unit if account_id in observed else 1
            sent = _settle_after_error(client, account_id, todo, exc, unit=unit, dry_run=(mode == "dry-run"))
        results.extend(sent)
        ctx.store.record_write_outcomes(
            [
                {
                    "id": ids[r.action_id],
                    "status": r.status.value,
                    "message": r.message,
                    "attempts": r.attempts,
                    **({"after_value": r.read_back} if r.read_back is not None else {}),
                }
                for r in sent
                if r.action_id in ids
            ]
        )
        deferred = [r for r in sent if r.status is WriteStatus.DEFERRED]
        if deferred:
            notes.append(f"{account_id}: {len(deferred)} write(s) deferred by the platform; a later run retries them")

    append_many(
        ctx.store,
        [
            {
                "kind": "write",
                "actor": ctx.actor,
                "run_id": run_id,
                "policy_version": proposals[r.action_id].policy_version if r.action_id in proposals else None,
                "payload": {
                    "action_id": r.action_id,
                    "entity": proposals[r.action_id].entity.key if r.action_id in proposals else None,
                    "before": _text(proposals[r.action_id].old_value) if r.action_id in proposals else None,
                    "after": _text(proposals[r.action_id].new_value) if r.action_id in proposals else None,
                    "status": r.status.value,
                    "message": r.message,
                    "mode": mode,
                },
            }
            for r in results
            if r.action_id not in final or r.action_id not in audited
        ],
    )
    return {"results": results, "notes": notes}


def _settle_after_error(
    client: PlatformClient,
    account_id: str,
    todo: list[Clearance],
    error: BidloopError,
    *,
    unit: int,
    dry_run: bool,
) -> list[WriteResult]:
    """Say what a batch whose platform call raised did, from a read-back: what is live is `applied`.

    A client raises when it cannot tell per action (for example a timeout whose read-back failed too), so
    part of the batch may have landed. Each action is read back: at its target it is `applied`, else
    `failed` with the error. When the read-back fails as well, the original error is raised: the run
    fails with its ledger intents open, and `bidloop runs resume` settles them later, like after a crash.
    """
    if dry_run:
        return [
            WriteResult(action_id=c.action.action_id, status=WriteStatus.FAILED, message=str(error.message))
            for c in todo
        ]
    try:
        live = client.read_back(account_id, [c.action.entity for c in todo if _has_setting(c.action)])
        added = client.read_snapshot(account_id) if any(not _has_setting(c.action) for c in todo) else None
    except BidloopError:
        raise error from None
    results: list[WriteResult] = []
    for c in todo:
        action = c.action
        if _landed(action, live.get(action.entity.key), added, unit):
            message = f"the platform call failed ({error.message}), but a read-back shows the change live"
            results.append(WriteResult(action_id=action.action_id, status=WriteStatus.APPLIED, message=message))
        else:
            results.append(
                WriteResult(action_id=action.action_id, status=WriteStatus.FAILED, message=str(error.message))
            )
    return results


def _audited_writes(ctx: RunContext, run_id: str) -> set[str]:
    """Return the action ids of the run whose write already has an audit record."""
    return {str((r.payload or {}).get("action_id")) for r in show(ctx.store, run_id, kind="write", limit=1_000_000)}


def _decrease_first(c: Clearance) -> int:
    a = c.action
    if a.kind == "set_budget" and a.new_value < a.old_value:  # type: ignore[operator]
        return 0
    return 1


def _judge_again(
    state: RunState, runtime: Runtime[RunContext], decisions: list[Decision], ledger: dict[str, Any]
) -> tuple[list[Decision], list[WriteResult]]:
    """Resume in a new process: settle what landed, skip what moved, and judge the rest as the first time.

    Clearances never cross processes, so the filter runs again on the run's *original* batch and
    snapshot (stored by `observe`) with the ledger history as it was (this run's own writes left out):
    the filter is deterministic, so the decisions are those of the interrupted process and the final
    values those of an uninterrupted run. Then each pending action is checked against a fresh read:

    * an `intent` whose sent value (the ledger's copy, clipped if it was) is live: applied, not resent;
    * an entity whose value is neither the action's old value nor its target (someone changed it
      meanwhile): skipped and reported, never overwritten.
    """
    ctx = runtime.context
    run_id = state["run_id"]
    proposals = state.get("proposals", [])
    original = ctx.snapshots(run_id)
    now = _platform_now(original)
    keys = {a.entity.key for a in proposals}
    fctx = FilterContext(
        run_id=run_id,
        actor=ctx.actor,
        now=now,
        rollback_before_values=ctx.rollback_before_values,
        **history_from_ledger(ctx.store, keys, now=now, exclude_run_id=run_id),
    )
    pending_ids = {d.action_id for d in decisions}
    rejudged = [
        d for d in evaluate(proposals, original, ctx.settings.guardrails, context=fctx) if d.action_id in pending_ids
    ]

    accounts = sorted({d.final_action.entity.account_id for d in rejudged if d.final_action is not None})
    fresh = {
        a: ctx.clients[a].read_back(
            a,
            [
                d.final_action.entity
                for d in rejudged
                if d.final_action is not None and d.final_action.entity.account_id == a
            ],
        )
        for a in accounts
    }
    # Added keywords and negatives are not settings of their ad group: look for them in a full read.
    uncertain_adds = {
        d.final_action.entity.account_id
        for d in rejudged
        if d.final_action is not None and not _has_setting(d.final_action) and d.action_id in ledger
    }
    structure = {a: ctx.clients[a].read_snapshot(a) for a in sorted(uncertain_adds)}
    settled: list[WriteResult] = []
    outcomes = []
    keep: list[Decision] = []
    for d in rejudged:
        action = d.final_action
        if action is None:
            keep.append(d)
            continue
        w = ledger.get(d.action_id)
        sent = ACTION_ADAPTER.validate_python(w.payload) if w is not None and w.payload else action
        entity = fresh.get(action.entity.account_id, {}).get(action.entity.key)
        snap = structure.get(action.entity.account_id)
        unit = original[action.entity.account_id].money_unit
        landed = _landed(sent, entity, snap, unit)
        _log.debug(
            "resume %s: %s %s ledger=%s sent=%s live=%s landed=%s",
            run_id,
            d.action_id,
            action.entity.key,
            w.status if w is not None else None,
            _text(sent.new_value),
            None
            if entity is None
            else (
                entity.daily_budget_micros,
                entity.cpc_bid_micros,
                entity.target_roas_bps,
                entity.target_cpa_micros,
                entity.status.value,
            ),
            landed,
        )
        if w is not None and landed:
            message = "already applied before the interruption (read back); not sent again"
            settled.append(WriteResult(action_id=d.action_id, status=WriteStatus.APPLIED, message=message, attempts=0))
            outcomes.append({"id": w.id, "status": "applied", "message": message, "attempts": w.attempts})
        elif entity is not None and _has_setting(action) and not _at_old(action, entity, unit):
            message = "the value changed while the run was interrupted; not applied (run again to re-decide)"
            settled.append(WriteResult(action_id=d.action_id, status=WriteStatus.SKIPPED, message=message, attempts=0))
            if w is not None:
                outcomes.append({"id": w.id, "status": "skipped", "message": message, "attempts": w.attempts})
        else:
            keep.append(d)
    ctx.store.record_write_outcomes(outcomes)
    return keep, settled


def _landed(action: Action, entity: EntityState | None, snap: Snapshot | None, unit: int) -> bool:
    """Return True if a fresh read shows `action` live: a setting at its target, or an added keyword there."""
    return (entity is not None and _at_target(action, entity, unit)) or (snap is not None and _added(action, snap))


def _added(action: Action, snap: Snapshot) -> bool:
    """Return True if an added keyword or negative is already on the platform (per a fresh snapshot)."""
    if isinstance(action, AddKeyword):
        words = " ".join(action.text.casefold().split())
        return any(
            e.ref.kind is EntityKind.KEYWORD
            and e.parent_id == action.entity.entity_id
            and e.match_type is action.match_type
            and " ".join((e.text or "").casefold().split()) == words
            for e in snap.entities
        )
    if isinstance(action, AddNegativeKeyword):
        holder = next((e for e in snap.entities if e.ref == action.entity), None)
        return holder is not None and action.new_value in holder.negative_keywords
    return False


def _has_setting(action: Action) -> bool:
    return action.kind in (
        "set_budget",
        "set_bid",
        "set_target_roas",
        "set_target_cpa",
        "pause_creative",
        "enable_creative",
    )


def _at_old(action: Action, entity: EntityState, unit: int = 1) -> bool:
    if action.kind == "set_budget":
        return _same_money(entity.daily_budget_micros, action.old_value, unit)  # type: ignore[arg-type]
    if action.kind == "set_bid":
        return _same_money(entity.cpc_bid_micros, action.old_value, unit)  # type: ignore[arg-type]
    if action.kind == "set_target_roas":
        return entity.target_roas_bps == action.old_value
    if action.kind == "set_target_cpa":
        return _same_money(entity.target_cpa_micros, action.old_value, unit)  # type: ignore[arg-type]
    return entity.status.value == action.old_value


def _same_money(platform_micros: int | None, wanted_micros: int, unit: int) -> bool:
    """Return True if the platform holds `wanted_micros` as far as its money unit can say.

    Clients round down to the platform's unit at the edge (Meta's currency offset: cents, whole yen or
    forints; Google's billable unit), and a lifetime budget's daily rate is a quotient of such amounts,
    so a landed amount reads back at most one `unit` (`Snapshot.money_unit`) below what was wanted.
    """
    if platform_micros is None:
        return False
    return wanted_micros - max(unit, 1) < platform_micros <= wanted_micros


def _at_target(action: Action, entity: EntityState, unit: int = 1) -> bool:
    if action.kind == "set_budget":
        return _same_money(entity.daily_budget_micros, action.new_value, unit)  # type: ignore[arg-type]
    if action.kind == "set_bid":
        return _same_money(entity.cpc_bid_micros, action.new_value, unit)  # type: ignore[arg-type]
    if action.kind == "set_target_roas":
        return entity.target_roas_bps == action.new_value
    if action.kind == "set_target_cpa":
        return _same_money(entity.target_cpa_micros, action.new_value, unit)  # type: ignore[arg-type]
    if action.kind in ("pause_creative", "enable_creative"):
        return entity.status.value == action.new_value
    return False


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def report(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Build the run report, store it, and write it as Markdown and JSON in the data directory."""
    ctx = runtime.context
    ctx.say("report")
    rep = build_report(
        run_id=state["run_id"],
        mode=state["mode"],
        trigger=state.get("trigger", "cli"),
        status="completed",
        snapshots=ctx.snapshots(state["run_id"]),
        actions=state.get("proposals", []),
        decisions=state.get("decisions", []),
        results=state.get("results", []),
        notes=state.get("notes", []),
    )
    markdown = render_markdown(rep)
    ctx.store.finish_run(
        state["run_id"],
        status="completed",
        summary={
            "summary": rep.summary,
            "proposed_by_agent": rep.proposed_by_agent,
            "verdicts": rep.verdicts,
            "outcomes": rep.outcomes,
        },
        report_md=markdown,
    )
    if ctx.store.is_sqlite and state["mode"] != "simulate":
        folder = ctx.settings.data_dir / "reports"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{state['run_id']}.md").write_text(markdown, encoding="utf-8")
        (folder / f"{state['run_id']}.json").write_text(rep.model_dump_json(indent=2), encoding="utf-8")
    return {"report": rep.model_dump(mode="json")}


def _per_day(m: Metrics, days: int) -> dict[str, Any]:
    return {
        "cost_micros": m.cost_micros // days,
        "clicks": m.clicks // days,
        "impressions": m.impressions // days,
        "conversions": m.conversions / days,
        "conversion_value_micros": m.conversion_value_micros // days,
    }


def _rejections(
    state: RunState, decided: dict[str, Any], snapshots: dict[str, Snapshot], ctx: RunContext
) -> list[dict[str, Any]]:
    """Return matured trajectory rows for actions a person rejected: negative reward, labelled feedback."""
    rows = []
    for a in state.get("proposals", []):
        row = decided.get(a.action_id)
        if row is None or row.status != "rejected" or a.entity.account_id not in snapshots:
            continue
        fb = approval_feedback(row)
        snap = snapshots[a.entity.account_id]
        rows.append(
            {
                "action_id": a.action_id,
                "account_id": a.entity.account_id,
                "entity_key": a.entity.key,
                "policy_version": a.policy_version,
                "state": {"as_of": snap.as_of.isoformat(), "expected_spend_fraction": snap.expected_spend_fraction},
                "action": ACTION_ADAPTER.dump_python(a, mode="json"),
                "matures_at": snap.as_of,
                "reward": fb.reward_penalty,
                "reward_components": {"rejected_by_operator": fb.reward_penalty},
                "feedback": fb.feedback,
                "matured_at": snap.as_of,
            }
        )
    return rows


def log(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Record trajectories of applied actions and complete those whose attribution window matured."""
    ctx = runtime.context
    run_id = state["run_id"]
    snapshots = ctx.snapshots(run_id)
    applied = {r.action_id for r in state.get("results", []) if r.status is WriteStatus.APPLIED}
    rows = []
    if state["mode"] != "dry-run":
        for a in state.get("proposals", []):
            if a.action_id not in applied or a.entity.account_id not in snapshots:
                continue
            snap = snapshots[a.entity.account_id]
            holder = _holder_of(a.entity.entity_id, a.entity.kind, snap)
            if holder is None:
                continue
            schedule = reward_schedule(ctx.settings, a.entity.account_id, snap)
            rows.append(
                {
                    "action_id": a.action_id,
                    "account_id": a.entity.account_id,
                    "entity_key": a.entity.key,
                    "policy_version": a.policy_version,
                    "state": {
                        "as_of": snap.as_of.isoformat(),
                        "holder_id": holder.ref.entity_id,
                        "holder_kind": holder.ref.kind.value,
                        "daily_budget_micros": holder.daily_budget_micros,
                        "day_avg_7d": _per_day(holder.trailing_7d, 7),
                        "roas_7d": holder.trailing_7d.roas,
                        "expected_spend_fraction": snap.expected_spend_fraction,
                    },
                    "action": ACTION_ADAPTER.dump_python(a, mode="json"),
                    "matures_at": schedule.matures_at,
                    "outcome_date": schedule.outcome_date,
                    "restate_until": schedule.restate_until,
                }
            )
        decided = {
            r.action_id: r for r in list_approvals(ctx.store, status=None, run_id=run_id) if r.status != "pending"
        }
        for row in rows:
            if row["action_id"] in decided:
                row["feedback"] = approval_feedback(decided[row["action_id"]]).feedback
        rows += _rejections(state, decided, snapshots, ctx)
        ctx.store.add_trajectories(run_id, rows)

    matured = restated = 0
    for account_id, snap in snapshots.items():
        settled = settle_rewards(ctx.store, ctx.settings, account_id, snap)
        matured += settled.matured
        restated += settled.restated
    if rows or matured or restated:
        ctx.say(f"log: {len(rows)} trajectories recorded, {matured} rewards matured, {restated} restated")
    return {}

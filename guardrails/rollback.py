"""Plan the actions that put back what a run changed, and say what cannot be put back and why.

`plan_rollback` reads the run's write ledger: for every entity the run changed, the restoring action
sets the value recorded before the run's first write to it (absolute target, agent `rollback`). The
plan does not write anything: its actions go through the same filter (with `actor="rollback"` and
`FilterContext(rollback_before_values=plan.before_values)`, which lets a restore exceed the per-action
change limit, but never floors, ceilings, explicit caps, protected entities or freeze windows) and
the same platform clients as any other action.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bidloop.core.actions import (
    ACTION_ADAPTER,
    Action,
    AddKeyword,
    AddNegativeKeyword,
    AgentName,
    EnableCreative,
    PauseCreative,
    SetBid,
    SetBudget,
    SetTargetCpa,
    SetTargetRoas,
)
from bidloop.core.entities import EntityRef, EntityState, Status
from bidloop.core.snapshot import Snapshot
from bidloop.core.store import Store, WriteRow
from bidloop.guardrails.rules import rollback_key

__all__ = ["RollbackPlan", "RollbackSkip", "plan_rollback"]

_RESTORABLE_STATUSES = ("applied", "intent")


class RollbackSkip(BaseModel):
    """A change the rollback will not undo, and why."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    action_id: str
    entity_key: str
    reason: str


class RollbackPlan(BaseModel):
    """What rolling back a run would do.

    Attributes:
        run_id: The run rolled back.
        actions: Restoring actions, one per changed entity, to pass through the filter.
        before_values: `rules.rollback_key` (entity key and setting) -> the value recorded before the
            run's write, as text; give it to
            `FilterContext.rollback_before_values`.
        skipped: Changes that will not be restored, each with the reason.
    """

    model_config = ConfigDict(extra="forbid")

    run_id: str
    actions: list[Action] = Field(default_factory=list)
    before_values: dict[str, str] = Field(default_factory=dict)
    skipped: list[RollbackSkip] = Field(default_factory=list)


def _rollback_id(run_id: str, action_id: str) -> str:
    candidate = f"rollback:{action_id}"
    if len(candidate) <= 96:
        return candidate
    return "rollback:" + hashlib.sha256(f"{run_id}\x00{action_id}".encode()).hexdigest()[:40]


def _find(snapshots: Mapping[str, Snapshot], ref: EntityRef) -> EntityState | None:
    snap = snapshots.get(ref.account_id)
    if snap is None or snap.platform is not ref.platform:
        return None
    return next((e for e in snap.entities if e.ref.kind is ref.kind and e.ref.entity_id == ref.entity_id), None)


def _current_text(action: Any, entity: EntityState) -> str | None:
    if isinstance(action, SetBudget):
        value: object = entity.daily_budget_micros
    elif isinstance(action, SetBid):
        value = entity.cpc_bid_micros
    elif isinstance(action, SetTargetRoas):
        value = entity.target_roas_bps
    elif isinstance(action, SetTargetCpa):
        value = entity.target_cpa_micros
    else:
        value = entity.status.value
    return None if value is None else str(value)


def _restoring_action(original: Any, *, run_id: str, current: str, before: str) -> Action | None:
    common: dict[str, Any] = {
        "action_id": _rollback_id(run_id, original.action_id),
        "entity": original.entity,
        "agent": AgentName.ROLLBACK,
        "reason": f"roll back run {run_id}: restore the value before action {original.action_id}",
        "policy_version": "rollback",
    }
    if isinstance(original, SetBudget):
        return SetBudget(**common, old_daily_budget_micros=int(current), new_daily_budget_micros=int(before))
    if isinstance(original, SetBid):
        return SetBid(**common, old_cpc_bid_micros=int(current), new_cpc_bid_micros=int(before))
    if isinstance(original, SetTargetRoas):
        return SetTargetRoas(**common, old_target_roas_bps=int(current), new_target_roas_bps=int(before))
    if isinstance(original, SetTargetCpa):
        return SetTargetCpa(**common, old_target_cpa_micros=int(current), new_target_cpa_micros=int(before))
    if before == Status.ENABLED.value:
        return EnableCreative(**common, old_status=Status(current))
    if before == Status.PAUSED.value:
        return PauseCreative(**common, old_status=Status(current))
    return None


def plan_rollback(store: Store, run_id: str, snapshots: Mapping[str, Snapshot], *, force: bool = False) -> RollbackPlan:
    """Build the restoring actions for everything a run changed, from its write ledger and fresh snapshots.

    Args:
        store: The database holding the run's write ledger.
        run_id: The run to roll back.
        snapshots: Current snapshots of the run's accounts, keyed by account id.
        force: Restore an entity even if something changed it again after the run (the newer change
            is overwritten). Without it such entities are skipped and reported.

    Returns:
        The plan; nothing is written.

    Raises:
        RunError: If the run does not exist.
        StoreError: If the database cannot be read.
    """
    store.get_run(run_id)
    plan = RollbackPlan(run_id=run_id)
    # One entity can carry several settings (a Meta ad set has a budget and a bid): group by both.
    firsts: dict[str, WriteRow] = {}
    lasts: dict[str, WriteRow] = {}
    for write in store.writes_of(run_id):
        if write.status not in _RESTORABLE_STATUSES:
            continue  # failed, validated, deferred or skipped writes changed nothing
        try:
            setting = rollback_key(write.entity_key, ACTION_ADAPTER.validate_python(write.payload))
        except ValidationError:
            setting = f"{write.entity_key}#{write.action_id}"
        firsts.setdefault(setting, write)
        lasts[setting] = write
    for setting, first in firsts.items():
        entity_key = first.entity_key
        last = lasts[setting]

        def skip(reason: str, *, _key: str = entity_key, _id: str = first.action_id) -> None:
            plan.skipped.append(RollbackSkip(action_id=_id, entity_key=_key, reason=reason))

        try:
            original = ACTION_ADAPTER.validate_python(first.payload)
        except ValidationError:
            skip("the ledger's copy of the action cannot be read, so what it changed is unknown")
            continue
        if isinstance(original, AddKeyword | AddNegativeKeyword):
            skip(
                f"it added {original.new_value!r}; bidloop does not remove keywords, so pause or remove it "
                "in the platform's interface if it should go"
            )
            continue
        before = first.before_value
        after = last.after_value
        if before is None:
            skip("the value before the run was not recorded")
            continue
        entity = _find(snapshots, original.entity)
        if entity is None:
            skip(f"{original.entity.kind} {original.entity.entity_id} no longer exists (or its account was not read)")
            continue
        current = _current_text(original, entity)
        if current is None:
            skip("the entity no longer has that setting (shared budget, automated bidding or no target now)")
            continue
        if current == before:
            skip(f"already back at {before}")
            continue
        if current != after:
            if last.status == "intent":
                skip(f"the run's write was never confirmed and the value is {current}, not the {after} it asked for")
                continue
            if not force:
                skip(f"changed again since the run (now {current}, the run set {after}); use --force to restore anyway")
                continue
        restoring = _restoring_action(original, run_id=run_id, current=current, before=before)
        if restoring is None:
            skip(f"cannot set {original.kind} back to {before!r}")
            continue
        plan.actions.append(restoring)
        plan.before_values[setting] = before
    return plan

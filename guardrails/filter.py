"""Judge proposed actions against the guardrail limits: the safe-action filter.

`evaluate` returns one `Decision` per action, in order: allowed, clipped (with the clipped value),
needs approval, or blocked, each with the deciding rule's id and a sentence a person understands.
It fails closed: an action it cannot judge (malformed, unknown entity, a rule that raised) is blocked.

Order of judgement, per action: shape and identity, existence, status, whether the strategy in force
uses the lever (a bid, a ROAS or CPA target), protection, freeze windows, staleness, duplicates and
conflicts, delivery, evidence, cooldowns (and a target's learning period), brand safety, then the
money ranges (max change per action and per day, floors, ceilings, platform minimums; a target's own)
which clip rather than block where a smaller change is still a change in the asked direction. Then,
over the whole batch: the cap on changes per account per run, the account and portfolio daily budget
caps (decreases first, then increases clipped in order), and finally the approval thresholds.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import select

from bidloop.core.actions import (
    ACTION_ADAPTER,
    AddKeyword,
    AddNegativeKeyword,
    EnableCreative,
    PauseCreative,
    SetBid,
    SetBudget,
    SetTargetCpa,
    SetTargetRoas,
)
from bidloop.core.decisions import Decision, Verdict
from bidloop.core.entities import EntityKind, EntityState, Platform, Status
from bidloop.core.errors import GuardrailError
from bidloop.core.limits import EffectiveLimits, GuardrailLimits
from bidloop.core.snapshot import Snapshot
from bidloop.core.store import ActionRow, Store, WriteRow
from bidloop.guardrails import _issued, rules
from bidloop.guardrails.rules import Block, Bound, Candidate

__all__ = ["FilterContext", "evaluate", "history_from_ledger"]

_ACTION_TYPES = (
    SetBudget,
    SetBid,
    SetTargetRoas,
    SetTargetCpa,
    PauseCreative,
    EnableCreative,
    AddNegativeKeyword,
    AddKeyword,
)
_MONEY_FIELD = {
    SetBudget: "new_daily_budget_micros",
    SetBid: "new_cpc_bid_micros",
    SetTargetRoas: "new_target_roas_bps",
    SetTargetCpa: "new_target_cpa_micros",
    AddKeyword: "cpc_bid_micros",
}
_VALUED = (SetBudget, SetBid, SetTargetRoas, SetTargetCpa)
_TARGETS = (SetTargetRoas, SetTargetCpa)
_TARGET_KINDS = ("set_target_roas", "set_target_cpa")
_TARGET_LOOKBACK = timedelta(days=90)
"""How far back the ledger is read for target changes: the longest `target_cooldown_days` allowed."""


@dataclass(frozen=True)
class FilterContext:
    """What the filter needs to know about the run besides the actions and the snapshots.

    Attributes:
        run_id: The run being filtered.
        actor: Who asked: `cli`, `schedule`, `chat`, `rollback`, `approval:<name>`, ...
        now: The platform clock (the simulated market's clock in simulate mode); naive means UTC.
        recent_changes: Entity key -> times of past applied edits, on the same clock as `now`
            (cooldowns, the platforms' changes per hour).
        changes_today_pct: Entity key -> percent of its value already changed today (daily cap).
        changes_today_micros: Entity key -> micros already changed today (absolute daily cap).
        changes_this_run: Account id -> actions already applied earlier in this run (per-run cap),
            for a run that filters in several batches.
        rollback_before_values: Entity key -> the value recorded before the rolled-back run's write
            (`RollbackPlan.before_values`); only with `actor="rollback"`.
        target_changes: Entity key -> times of past applied ROAS/CPA target changes (learning period).
        target_changes_today_pct: Entity key -> percent its target already changed today (daily cap on
            targets; target changes are not counted in `changes_today_pct` / `changes_today_micros`).
    """

    run_id: str
    actor: str
    now: datetime
    recent_changes: Mapping[str, Sequence[datetime]] = field(default_factory=dict)
    changes_today_pct: Mapping[str, float] = field(default_factory=dict)
    changes_today_micros: Mapping[str, int] = field(default_factory=dict)
    changes_this_run: Mapping[str, int] = field(default_factory=dict)
    rollback_before_values: Mapping[str, str] = field(default_factory=dict)
    target_changes: Mapping[str, Sequence[datetime]] = field(default_factory=dict)
    target_changes_today_pct: Mapping[str, float] = field(default_factory=dict)


def _target_capable(key: str) -> bool:
    return any(
        f":{kind.value}:" in key for kind in (EntityKind.CAMPAIGN, EntityKind.AD_GROUP, EntityKind.BIDDING_STRATEGY)
    )


def history_from_ledger(
    store: Store,
    entity_keys: Sequence[str] | set[str],
    *,
    now: datetime,
    day_start: datetime | None = None,
    exclude_run_id: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Read the applied writes of the given entities and return the history fields of a `FilterContext`.

    Use as `FilterContext(run_id=..., actor=..., now=now, **history_from_ledger(store, keys, now=now))`.

    Args:
        store: The database with the write ledger.
        entity_keys: The entities the batch touches (`EntityRef.key`).
        now: The platform clock (naive means UTC); writes are placed by their `effective_at`.
        day_start: Start of the account's day; default midnight of `now`'s date in `now`'s time zone.
        exclude_run_id: Leave out this run's own writes (a resumed run judges its batch as it first did).

    Returns:
        `recent_changes` (times of applied writes in the last 24 hours), `changes_today_pct` and
        `changes_today_micros` (summed absolute budget and bid changes since `day_start`),
        `target_changes` (times of applied target changes in the last 90 days) and
        `target_changes_today_pct` (summed target changes since `day_start`, in percent).

    Raises:
        StoreError: If the ledger cannot be read.
    """
    now_utc = now.replace(tzinfo=UTC) if now.tzinfo is None else now
    if day_start is None:
        day_start = now_utc.replace(hour=0, minute=0, second=0, microsecond=0)
    start_utc = day_start.replace(tzinfo=UTC) if day_start.tzinfo is None else day_start
    since = min(start_utc, now_utc - timedelta(days=1)).astimezone(UTC)
    keys = list(dict.fromkeys(entity_keys))
    recent: dict[str, list[datetime]] = {}
    pct: dict[str, float] = {}
    micros: dict[str, int] = {}
    targets: dict[str, list[datetime]] = {}
    target_pct: dict[str, float] = {}
    with store.session() as s:
        # Target changes further back than a day: only their times (the learning period), found by the
        # kind recorded with each proposed action.
        target_keys = [k for k in keys if _target_capable(k)]
        for i in range(0, len(target_keys), 2_000):
            tq = (
                select(WriteRow.entity_key, WriteRow.effective_at)
                .join(ActionRow, ActionRow.action_id == WriteRow.action_id)
                .where(
                    WriteRow.status == "applied",
                    WriteRow.effective_at.is_not(None),
                    WriteRow.entity_key.in_(target_keys[i : i + 2_000]),
                    WriteRow.effective_at >= (now_utc - _TARGET_LOOKBACK).astimezone(UTC),
                    WriteRow.effective_at < since.astimezone(UTC),
                    ActionRow.kind.in_(_TARGET_KINDS),
                )
            )
            if exclude_run_id is not None:
                tq = tq.where(WriteRow.run_id != exclude_run_id)
            for key, at in s.execute(tq):
                if at is not None:
                    targets.setdefault(key, []).append(at.replace(tzinfo=UTC) if at.tzinfo is None else at)
        for i in range(0, len(keys), 2_000):
            q = select(
                WriteRow.entity_key,
                WriteRow.effective_at,
                WriteRow.before_value,
                WriteRow.after_value,
                WriteRow.payload,
            ).where(
                WriteRow.status == "applied",
                WriteRow.effective_at.is_not(None),
                WriteRow.entity_key.in_(keys[i : i + 2_000]),
                WriteRow.effective_at >= since.astimezone(UTC),  # stored in UTC (SQLite keeps no offset)
            )
            if exclude_run_id is not None:
                q = q.where(WriteRow.run_id != exclude_run_id)
            for key, at, before, after, payload in s.execute(q):
                if at is None:  # excluded by the query; narrows the type
                    continue
                moment = at.replace(tzinfo=UTC) if at.tzinfo is None else at
                if moment < since:
                    continue
                recent.setdefault(key, []).append(moment)
                is_target = isinstance(payload, Mapping) and payload.get("kind") in _TARGET_KINDS
                if is_target:
                    targets.setdefault(key, []).append(moment)
                if moment >= start_utc and before and after and before.isdigit() and after.isdigit():
                    change = abs(int(after) - int(before))
                    share = change * 100 / int(before) if int(before) else float("inf")
                    if is_target:  # basis points or micros of a target: not budget or bid money
                        target_pct[key] = target_pct.get(key, 0.0) + share
                        continue
                    micros[key] = micros.get(key, 0) + change
                    pct[key] = pct.get(key, 0.0) + share
    return {
        "recent_changes": recent,
        "changes_today_pct": pct,
        "changes_today_micros": micros,
        "target_changes": targets,
        "target_changes_today_pct": target_pct,
    }


class _Invalid(Exception):
    """An action that is not a well-formed bidloop action."""


@dataclass(slots=True)
class _Work:
    """One action in flight through the filter."""

    index: int
    candidate: Candidate
    desired_micros: int | None = None
    target_micros: int | None = None
    clip: tuple[str, str] | None = None
    blocked: Block | None = None


def _well_formed(raw: object) -> Any:
    """Return a freshly validated copy of an action, so values smuggled past pydantic are caught."""
    if isinstance(raw, Mapping):
        return ACTION_ADAPTER.validate_python(dict(raw))
    if type(raw) not in _ACTION_TYPES:
        raise _Invalid(f"{type(raw).__name__} is not a bidloop action")
    data = dict(raw.__dict__)  # type: ignore[attr-defined]
    entity = data.get("entity")
    if isinstance(entity, BaseModel):
        data["entity"] = dict(entity.__dict__)
    return type(raw).model_validate(data)  # type: ignore[attr-defined]


def _describe_raw(raw: object) -> str:
    action_id = getattr(raw, "action_id", None)
    if action_id is None and isinstance(raw, Mapping):
        action_id = raw.get("action_id")
    return action_id if isinstance(action_id, str) else ""


class _AccountView:
    """Indexes of one snapshot, built once per evaluate call."""

    __slots__ = ("_keywords", "index", "snapshot")

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.index: dict[tuple[str, str], EntityState] = {
            (e.ref.kind.value, e.ref.entity_id): e for e in snapshot.entities
        }
        self._keywords: dict[str, frozenset[str]] | None = None

    def keywords_of(self, ad_group_id: str) -> frozenset[str]:
        if self._keywords is None:
            grouped: dict[str, set[str]] = {}
            for e in self.snapshot.entities:
                if e.ref.kind is EntityKind.KEYWORD and e.text and e.parent_id and e.status is not Status.REMOVED:
                    match = e.match_type.value if e.match_type else "exact"
                    grouped.setdefault(e.parent_id, set()).add(f"{match}:{' '.join(e.text.casefold().split())}")
            self._keywords = {k: frozenset(v) for k, v in grouped.items()}
        return self._keywords.get(ad_group_id, frozenset())


def _clip_message(c: Candidate, desired: int, target: int, why: str) -> str:
    action = c.action
    if isinstance(action, AddKeyword):
        return (
            f"Clipped: new keyword {action.text!r} asked for a bid of {c.money(desired)}; "
            f"set to {c.money(target)} because {why}."
        )
    whats: dict[type, str] = {SetBudget: "daily budget", SetTargetRoas: "ROAS target", SetTargetCpa: "CPA target"}
    what = whats.get(type(action), "bid")
    return (
        f"Clipped: {what} of {action.entity.kind} {action.entity.entity_id} asked to go from "
        f"{c.show(action.old_value)} to {c.show(desired)}; set to {c.show(target)} because {why}."
    )


def _apply_bounds(work: _Work) -> Block | None:
    """Clamp the money target into every bound; block when nothing of the change in its direction is left."""
    c = work.candidate
    action = c.action
    desired = action.cpc_bid_micros if isinstance(action, AddKeyword) else action.new_value
    work.desired_micros = desired
    if not c.bounds:
        work.target_micros = desired
        return None
    low = max(c.bounds, key=lambda b: b.low_micros)
    high = min(c.bounds, key=lambda b: b.high_micros)
    if low.low_micros > high.high_micros:
        return Block(
            high.rule_id,
            f"Blocked: no value satisfies every limit for {action.kind} on {action.entity.kind} "
            f"{action.entity.entity_id}: {low.why(c.currency)}, but {high.why(c.currency)}.",
        )
    target = min(max(desired, low.low_micros), high.high_micros)
    binding: Bound | None = None
    if target > desired:
        binding = low
    elif target < desired:
        binding = high
    if not isinstance(action, AddKeyword):
        old = action.old_value
        # The result must lie between the old value and the asked one: a limit may shorten a change,
        # never reverse it, cancel it, or push it further than asked (e.g. down to a ceiling).
        if target == old or not min(old, desired) <= target <= max(old, desired):
            rule_id, why = (
                (binding.rule_id, binding.why(c.currency)) if binding is not None else ("max_change", "of the limits")
            )
            return Block(
                rule_id,
                f"Blocked: {action.kind} on {action.entity.kind} {action.entity.entity_id} asked to go from "
                f"{c.show(old)} to {c.show(desired)}, but {why}; no value between the two satisfies it.",
            )
    for bound in c.bounds:
        if bound is not binding and bound.rule_id not in c.passed:
            c.passed.append(bound.rule_id)
    work.target_micros = target
    if binding is not None:
        work.clip = (binding.rule_id, _clip_message(c, desired, target, binding.why(c.currency)))
    return None


def _checks(
    c: Candidate,
    view: _AccountView,
    claimed: dict[tuple[str, str], Any],
    context: FilterContext,
    recent: Sequence[datetime],
) -> Iterator[tuple[str, Block | None]]:
    """Run the blocking rules in order, lazily: the caller stops at the first block."""
    yield "target_kind", rules.check_target_kind(c)
    yield "unknown_entity", rules.check_entity_exists(c, view.index)
    yield "entity_removed", rules.check_entity_status(c)
    if isinstance(c.action, SetBid):
        yield "bid_ignored_by_strategy", rules.check_bid_strategy(c)
    if isinstance(c.action, _TARGETS):
        yield "target_not_used_by_strategy", rules.check_target_strategy(c)
    yield "protected_entity", rules.check_protected(c)
    yield "freeze_window", rules.check_freeze_window(c)
    yield "stale_value", rules.check_stale_value(c)
    keywords = view.keywords_of(c.action.entity.entity_id) if isinstance(c.action, AddKeyword) else frozenset()
    yield "no_change", rules.check_no_change(c, keywords)
    yield "conflicting_action", rules.check_conflicts(c, claimed)
    # A rollback restoring a recorded value is exempt from cooldowns: mark it before they run.
    rules.mark_rollback_restore(c, context.rollback_before_values)
    rules.limit_max_change(c)
    yield "not_delivering", rules.check_delivering(c)
    if isinstance(c.action, _VALUED):
        yield "insufficient_data", rules.check_evidence(c)
    yield "cooldown", rules.check_cooldown(c, recent)
    if isinstance(c.action, _TARGETS):
        yield "target_learning_period", rules.check_target_learning_period(c, context.target_changes.get(c.key, ()))
    yield "platform_change_rate", rules.check_platform_change_rate(c, recent)
    yield "brand_safety", rules.check_brand_safety(c)


def _judge_one(
    raw: object,
    *,
    views: dict[str, _AccountView],
    limits: GuardrailLimits,
    limits_cache: dict[tuple[Platform, str, str | None], EffectiveLimits],
    context: FilterContext,
    seen_ids: set[str],
    claimed: dict[tuple[str, str], Any],
    index: int,
) -> _Work | Block:
    try:
        action = _well_formed(raw)
    except (_Invalid, ValidationError, TypeError, ValueError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return Block("invalid_action", f"Blocked: the action is malformed and cannot be judged ({detail}).")
    if action.action_id in seen_ids:
        return Block("duplicate_action", f"Blocked: action id {action.action_id} appears twice in this batch.")
    seen_ids.add(action.action_id)
    ref = action.entity
    view = views.get(ref.account_id)
    if view is None:
        return Block(
            "unknown_entity",
            f"Blocked: no snapshot of account {ref.account_id} was given, so {ref.kind} {ref.entity_id} "
            "cannot be checked.",
        )
    passed = ["invalid_action"]
    entity = view.index.get((ref.kind.value, ref.entity_id))
    campaign_id = None
    if entity is not None:
        campaign_id = entity.campaign_id or (entity.ref.entity_id if entity.ref.kind is EntityKind.CAMPAIGN else None)
    account_overrides = limits.accounts.get(ref.account_id)
    if account_overrides is None or campaign_id not in account_overrides.campaigns:
        campaign_id = None  # no campaign-level limits: share the account's resolution
    key = (ref.platform, ref.account_id, campaign_id)
    eff = limits_cache.get(key)
    if eff is None:
        eff = limits.resolve(ref.platform, ref.account_id, campaign_id)
        limits_cache[key] = eff
    entity_key = ref.key
    c = Candidate(
        action=action,
        key=entity_key,
        snapshot=view.snapshot,
        entity=None,
        limits=eff,
        actor=context.actor,
        now=context.now,
        index=view.index,
    )
    c.passed = passed
    recent = context.recent_changes.get(entity_key, ())
    for rule_id, block in _checks(c, view, claimed, context, recent):
        if block is not None:
            return block
        passed.append(rule_id)
    if isinstance(action, _TARGETS):
        rules.limit_daily_change(c, context.target_changes_today_pct.get(entity_key, 0.0), 0)
    else:
        rules.limit_daily_change(
            c, context.changes_today_pct.get(entity_key, 0.0), context.changes_today_micros.get(entity_key, 0)
        )
    rules.limit_bid(c)
    rules.limit_target(c)
    rules.limit_budget(c)
    work = _Work(index=index, candidate=c)
    if isinstance(action, (*_VALUED, AddKeyword)):
        block = _apply_bounds(work)
        if block is not None:
            return block
    return work


def _cap_increases(
    works: Sequence[_Work],
    *,
    cap_micros: int,
    total_micros: int,
    rule_id: str,
    scope: str,
    currency: str,
    restore_cap_micros: int | None = None,
) -> None:
    """Clip or block budget increases, in order, so the total after all of them stays within the cap.

    A rollback restoring a recorded value is held to `restore_cap_micros` instead (None: no cap), so
    putting back what a run lowered is not refused by budget conservation; an explicit cap still holds.
    """
    for work in works:
        c = work.candidate
        old = c.action.old_value
        if work.blocked is not None or work.target_micros is None or work.target_micros <= old:
            continue
        cap = restore_cap_micros if c.restoring else cap_micros
        if cap is None:
            total_micros += work.target_micros - old
            c.passed.append(rule_id)
            continue
        headroom = cap - total_micros
        delta = work.target_micros - old
        why = (
            f"{scope}'s total daily budget may not exceed {rules.money(cap, currency)} "
            f"(it would be {rules.money(total_micros, currency)} before this change)"
        )
        if headroom <= 0:
            work.blocked = Block(
                rule_id,
                f"Blocked: raising the daily budget of {c.action.entity.kind} {c.action.entity.entity_id} "
                f"from {c.money(old)} to {c.money(work.desired_micros or old)} would exceed the cap: {why}.",
            )
            continue
        if delta > headroom:
            new_target = old + headroom
            # Another bound may require more than the cap leaves (e.g. a budget still below the platform minimum).
            if any(b.low_micros > new_target for b in c.bounds):
                work.blocked = Block(rule_id, f"Blocked: the cap leaves too little for a valid budget: {why}.")
                continue
            work.target_micros = new_target
            work.clip = (rule_id, _clip_message(c, work.desired_micros or old, new_target, why))
            delta = headroom
        total_micros += delta
        if work.clip is None or work.clip[0] != rule_id:
            c.passed.append(rule_id)


def _budget_deltas(works: Sequence[_Work]) -> tuple[list[_Work], int]:
    """Return the live budget actions and the sum of their decreases on enabled entities (negative or 0)."""
    budget = [w for w in works if w.blocked is None and isinstance(w.candidate.action, SetBudget)]
    freed = 0
    for w in budget:
        delta = (w.target_micros or 0) - w.candidate.action.old_value
        entity = w.candidate.entity
        if delta < 0 and entity is not None and entity.status is Status.ENABLED:
            freed += delta
    return budget, freed


def _batch_rules(
    works: list[_Work], views: Mapping[str, _AccountView], limits: GuardrailLimits, context: FilterContext
) -> None:
    by_account: dict[str, list[_Work]] = {}
    for w in works:
        by_account.setdefault(w.candidate.action.entity.account_id, []).append(w)
    for account_id, account_works in by_account.items():
        view = views[account_id]
        snap = view.snapshot
        cap_cfg, allow_increase, max_changes = limits.account_cap(snap.platform, account_id)
        done = max(int(context.changes_this_run.get(account_id, 0)), 0)
        for w in account_works:
            if done >= max_changes:
                w.blocked = Block(
                    "max_changes_per_run",
                    f"Blocked: account {account_id} may take at most {max_changes} changes per run and "
                    f"{done} are already planned.",
                )
                continue
            done += 1
            w.candidate.passed.append("max_changes_per_run")
        current = snap.account_daily_budget_micros
        if allow_increase:
            cap = cap_cfg if cap_cfg is not None else current
        else:
            cap = current if cap_cfg is None else min(cap_cfg, current)
        budget, freed = _budget_deltas(account_works)
        _cap_increases(
            budget,
            cap_micros=cap,
            total_micros=current + freed,
            rule_id="account_budget_cap",
            scope=f"account {account_id}",
            currency=snap.currency,
            restore_cap_micros=cap_cfg,
        )
    for name, portfolio in limits.portfolios.items():
        members = [a for a in portfolio.account_ids if a in by_account]
        if not members:
            continue
        portfolio_works = sorted((w for a in members for w in by_account[a]), key=lambda w: w.index)
        missing = [a for a in portfolio.account_ids if a not in views]
        currencies = {views[a].snapshot.currency for a in portfolio.account_ids if a in views}
        if missing or len(currencies) != 1:
            reason = (
                f"snapshots of {', '.join(missing)} are missing" if missing else "its accounts use different currencies"
            )
            for w in portfolio_works:
                c = w.candidate
                if (
                    w.blocked is None
                    and isinstance(c.action, SetBudget)
                    and (w.target_micros or 0) > c.action.old_value
                ):
                    w.blocked = Block(
                        "portfolio_budget_cap",
                        f"Blocked: the budget increase cannot be checked against portfolio {name}'s cap: {reason}.",
                    )
            continue
        current = sum(views[a].snapshot.account_daily_budget_micros for a in portfolio.account_ids)
        budget, freed = _budget_deltas(portfolio_works)
        # Increases already admitted by the account caps count against the portfolio in order.
        _cap_increases(
            budget,
            cap_micros=portfolio.daily_budget_cap_micros,
            restore_cap_micros=portfolio.daily_budget_cap_micros,
            total_micros=current + freed,
            rule_id="portfolio_budget_cap",
            scope=f"portfolio {name}",
            currency=currencies.pop(),
        )


def _final_decision(work: _Work) -> Decision:
    c = work.candidate
    action = c.action
    if work.blocked is not None:
        return Decision(
            action_id=action.action_id,
            verdict=Verdict.BLOCKED,
            rule_id=work.blocked.rule_id,
            message=work.blocked.message,
            checks_passed=list(c.passed),
        )
    final = action
    if work.target_micros is not None and work.target_micros != work.desired_micros:
        final = action.model_copy(update={_MONEY_FIELD[type(action)]: work.target_micros})  # type: ignore[index]
    increase = 0
    if isinstance(action, SetBudget | SetBid | SetTargetCpa) and work.target_micros is not None:
        increase = work.target_micros - action.old_value
    elif isinstance(action, AddKeyword) and work.target_micros is not None:
        increase = work.target_micros
    loosening = _target_loosening_pct(action, work.target_micros)
    if loosening is not None and loosening > c.limits.target_approval_above_pct:
        c.approval_reasons.insert(
            0,
            (
                "approval_threshold",
                f"Needs approval: the target change loosens delivery by {loosening:.1f} %, more than the "
                f"{c.limits.target_approval_above_pct:g} % that may be applied without a person.",
            ),
        )
    if increase > c.limits.approval_above_micros:
        c.approval_reasons.insert(
            0,
            (
                "approval_threshold",
                f"Needs approval: the increase of {c.money(increase)} is above the "
                f"{c.money(c.limits.approval_above_micros)} that may be applied without a person.",
            ),
        )
    elif not c.approval_reasons or c.approval_reasons[0][0] != "approval_threshold":
        c.passed.append("approval_threshold")
    if c.approval_reasons:
        rule_id = c.approval_reasons[0][0]
        message = " ".join(m for _, m in c.approval_reasons)
        if work.clip is not None:
            message += " " + work.clip[1]
        return Decision(
            action_id=action.action_id,
            verdict=Verdict.NEEDS_APPROVAL,
            rule_id=rule_id,
            message=message,
            final_action=final,
            checks_passed=list(c.passed),
        )
    if work.clip is not None:
        return Decision(
            action_id=action.action_id,
            verdict=Verdict.CLIPPED,
            rule_id=work.clip[0],
            message=work.clip[1],
            final_action=final,
            checks_passed=list(c.passed),
        )
    shown = action.new_value
    if isinstance(action, _VALUED):
        shown = f"{c.show(action.old_value)} to {c.show(action.new_value)}"
    return Decision(
        action_id=action.action_id,
        verdict=Verdict.ALLOWED,
        rule_id="all_checks_passed",
        message=f"Allowed: {action.kind} on {action.entity.kind} {action.entity.entity_id} "
        f"({shown}) passed every check.",
        final_action=final,
        checks_passed=list(c.passed),
    )


def _target_loosening_pct(action: Any, target: int | None) -> float | None:
    """Return how far (in % of the old target) a target change loosens delivery; None if it does not.

    Loosening is a CPA target raised (dearer conversions allowed) or a ROAS target lowered.
    """
    if target is None or not isinstance(action, _TARGETS) or action.old_value <= 0:
        return None
    change = target - action.old_value
    looser = change > 0 if isinstance(action, SetTargetCpa) else change < 0
    return abs(change) * 100.0 / action.old_value if looser else None


def _error_decision(raw: object, exc: BaseException) -> Decision:
    return Decision(
        action_id=_describe_raw(raw) or "?",
        verdict=Verdict.BLOCKED,
        rule_id="filter_error",
        message=f"Blocked: the filter could not judge this action ({type(exc).__name__}: {exc}); "
        "it is refused rather than let through.",
    )


def evaluate(
    actions: Sequence[object],
    snapshots: Mapping[str, Snapshot],
    limits: GuardrailLimits | None,
    *,
    context: FilterContext,
) -> list[Decision]:
    """Judge each action against the limits; return one `Decision` per action, in the same order.

    Args:
        actions: Proposed actions (models, or dicts as found in a checkpoint).
        snapshots: The current snapshot of each account, keyed by account id (`EntityRef.account_id`).
            Give every account of a configured portfolio, or increases in it are blocked.
        limits: The configured limits; None means the conservative defaults.
        context: The run, who asked, the platform clock and the recent edit history.

    Returns:
        Decisions; only `allowed`, `clipped` and (once approved) `needs_approval` ones may be
        cleared by `gate`. Nothing here raises for a bad action: it is blocked instead.

    Raises:
        GuardrailError: If `limits` is not a `GuardrailLimits` or `context` is not a `FilterContext`.
    """
    if limits is None:
        limits = GuardrailLimits()
    if not isinstance(limits, GuardrailLimits):
        raise GuardrailError(
            f"limits must be GuardrailLimits, got {type(limits).__name__}", hint="pass settings.guardrails"
        )
    if not isinstance(context, FilterContext):
        raise GuardrailError(f"context must be FilterContext, got {type(context).__name__}")
    # A batch allocates many short-lived objects; pausing the cyclic GC for its duration halves the
    # time on a large heap and frees nothing that matters (the batch's objects are acyclic).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _evaluate(actions, snapshots, limits, context)
    finally:
        if gc_was_enabled:
            gc.enable()


def _evaluate(
    actions: Sequence[object], snapshots: Mapping[str, Snapshot], limits: GuardrailLimits, context: FilterContext
) -> list[Decision]:
    views = {account_id: _AccountView(s) for account_id, s in snapshots.items() if isinstance(s, Snapshot)}
    limits_cache: dict[tuple[Platform, str, str | None], EffectiveLimits] = {}
    seen_ids: set[str] = set()
    claimed: dict[tuple[str, str], Any] = {}
    results: list[Decision | _Work] = []
    for i, raw in enumerate(actions):
        try:
            outcome = _judge_one(
                raw,
                views=views,
                limits=limits,
                limits_cache=limits_cache,
                context=context,
                seen_ids=seen_ids,
                claimed=claimed,
                index=i,
            )
        except Exception as exc:  # fail closed: a rule that raised blocks the action
            results.append(_error_decision(raw, exc))
            continue
        if isinstance(outcome, Block):
            results.append(
                Decision(
                    action_id=_describe_raw(raw) or "?",
                    verdict=Verdict.BLOCKED,
                    rule_id=outcome.rule_id,
                    message=outcome.message,
                )
            )
        else:
            results.append(outcome)
    works = [r for r in results if isinstance(r, _Work)]
    try:
        _batch_rules(works, views, limits, context)
    except Exception as exc:  # fail closed: without the batch caps nothing may pass
        for w in works:
            w.blocked = Block("filter_error", f"Blocked: the batch limits could not be checked ({type(exc).__name__}).")
    decisions: list[Decision] = []
    for r in results:
        if isinstance(r, _Work):
            try:
                decision = _final_decision(r)
            except Exception as exc:  # fail closed
                decision = _error_decision(r.candidate.action, exc)
            if decision.verdict is not Verdict.BLOCKED:
                _issued.remember(decision)
            decisions.append(decision)
        else:
            decisions.append(r)
    return decisions

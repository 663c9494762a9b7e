"""Define the safe-action filter's rules, one function per rule, each with a stable rule id.

A rule looks at one `Candidate` (an action being judged, with the entity it targets and the limits
that apply) and either returns None (passed), returns a `Block` (the action may not go through), or
narrows the range of values the action may set (`Candidate.bounds`), which the filter turns into a
clip. Rules never raise on purpose; if one does, the filter blocks the action (`filter_error`).

Rule ids (stable; scripts and the audit log match on them):

    invalid_action, unknown_entity, target_kind, entity_removed, protected_entity, freeze_window,
    stale_value, no_change, duplicate_action, conflicting_action, cooldown, platform_change_rate,
    brand_safety, brand_claims, max_change, rollback_restore, max_daily_change, bid_limits,
    budget_limits, platform_min_budget, max_changes_per_run, account_budget_cap, portfolio_budget_cap,
    approval_threshold, filter_error
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from functools import lru_cache
from typing import Any

from bidloop.core.actions import (
    TARGET_KINDS,
    AddKeyword,
    AddNegativeKeyword,
    AgentName,
    EnableCreative,
    SetBid,
    SetBudget,
)
from bidloop.core.entities import EntityState, Status
from bidloop.core.limits import EffectiveLimits
from bidloop.core.money import MAX_MICROS, format_money
from bidloop.core.snapshot import Snapshot
from bidloop.guardrails.brand_safety import scan_text

__all__ = [
    "Block",
    "Bound",
    "Candidate",
    "check_brand_safety",
    "check_conflicts",
    "check_cooldown",
    "check_entity_exists",
    "check_entity_status",
    "check_freeze_window",
    "check_no_change",
    "check_platform_change_rate",
    "check_protected",
    "check_stale_value",
    "check_target_kind",
    "limit_bid",
    "limit_budget",
    "limit_daily_change",
    "limit_max_change",
    "mark_rollback_restore",
]

ROLLBACK_ACTOR = "rollback"


@lru_cache(maxsize=16_384)
def money(micros: int, currency: str) -> str:
    """Format money for a message (`format_money`, cached: the same floors and values recur in a batch).

    Sums beyond `MAX_MICROS` (e.g. a portfolio's total) are still shown rather than raising.
    """
    if abs(micros) > MAX_MICROS:
        return f"{micros / 1_000_000:,.2f} {currency}"
    return format_money(micros, currency)


@dataclass(frozen=True, slots=True)
class Block:
    """A rule's refusal: the rule id and a sentence a person understands."""

    rule_id: str
    message: str


@dataclass(frozen=True, slots=True)
class Bound:
    """A range of values (micros, inclusive) one rule allows a money action to set."""

    rule_id: str
    low_micros: int
    high_micros: int
    why_template: str
    """Completes "... because ..." in a message; `{0}`, `{1}` are replaced by `why_micros` as money."""
    why_micros: tuple[int, ...] = ()

    def why(self, currency: str) -> str:
        """Return the reason as a sentence fragment, e.g. `the bid ceiling is 20.00 USD`."""
        return self.why_template.format(*(money(m, currency) for m in self.why_micros))


@dataclass(slots=True)
class Candidate:
    """An action being judged, with everything the rules need to judge it.

    Attributes:
        action: The validated action (a clean copy of what was proposed).
        key: The targeted entity's `EntityRef.key`.
        snapshot: The account's snapshot.
        entity: The targeted entity (None until `check_entity_exists` found it).
        limits: The limits resolved for the entity's platform, account and campaign.
        actor: Who asked for the run (`cli`, `schedule`, `chat`, `rollback`, ...).
        now: The platform clock.
        bounds: Ranges the money value must stay within (filled by the `limit_*` rules).
        approval_reasons: Why a person must approve, if any (rule id, sentence).
        passed: Rule ids passed, in order.
        restoring: True when this is a rollback back to a recorded before-value.
    """

    action: Any
    key: str
    snapshot: Snapshot
    entity: EntityState | None
    limits: EffectiveLimits
    actor: str
    now: datetime
    bounds: list[Bound] = field(default_factory=list)
    approval_reasons: list[tuple[str, str]] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)
    restoring: bool = False

    @property
    def currency(self) -> str:
        """Return the account currency."""
        return self.snapshot.currency

    def money(self, micros: int) -> str:
        """Format an amount of this account's currency for a message."""
        return money(micros, self.snapshot.currency)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _describe(action: Any) -> str:
    return f"{action.kind} on {action.entity.kind} {action.entity.entity_id}"


def current_value(action: Any, entity: EntityState) -> int | str | None:
    """Return the entity's current value of the field the action changes (None: it has none)."""
    if isinstance(action, SetBudget):
        return entity.daily_budget_micros
    if isinstance(action, SetBid):
        return entity.cpc_bid_micros
    if isinstance(action, AddKeyword | AddNegativeKeyword):
        return None
    return entity.status.value


def field_key(action: Any) -> str:
    """Return what the action changes on its entity, so two actions on the same thing are found."""
    if isinstance(action, SetBudget):
        return "budget"
    if isinstance(action, SetBid):
        return "bid"
    if isinstance(action, AddKeyword):
        return f"keyword:{action.match_type}:{' '.join(action.text.casefold().split())}"
    if isinstance(action, AddNegativeKeyword):
        return f"negative:{action.match_type}:{' '.join(action.text.casefold().split())}"
    return "status"


# -- existence and shape ---------------------------------------------------------------------------


def check_target_kind(c: Candidate) -> Block | None:
    """Block an action whose kind cannot apply to the entity kind (e.g. a bid on a creative)."""
    kinds = TARGET_KINDS.get(c.action.kind, ())
    if c.action.entity.kind not in kinds:
        allowed = ", ".join(k.value for k in kinds) or "nothing"
        return Block(
            "target_kind",
            f"Blocked: {c.action.kind} cannot target a {c.action.entity.kind} (it applies to: {allowed}).",
        )
    return None


def check_entity_exists(c: Candidate, index: Mapping[tuple[str, str], EntityState]) -> Block | None:
    """Block an action on an entity the account's snapshot does not contain; set `c.entity` otherwise."""
    ref = c.action.entity
    entity = index.get((ref.kind, ref.entity_id))
    if entity is None or c.snapshot.platform is not ref.platform:
        return Block(
            "unknown_entity",
            f"Blocked: {ref.kind} {ref.entity_id} does not exist in account {ref.account_id} "
            f"on {ref.platform} (as read at {c.snapshot.as_of.isoformat()}).",
        )
    c.entity = entity
    return None


def check_entity_status(c: Candidate) -> Block | None:
    """Block any action on a removed entity; enabling or pausing must start from the other state."""
    entity = c.entity
    if entity is None:
        return Block("unknown_entity", "Blocked: the entity was not found.")
    if entity.status is Status.REMOVED:
        return Block("entity_removed", f"Blocked: {_describe(c.action)} targets a removed {entity.ref.kind}.")
    return None


def check_protected(c: Candidate) -> Block | None:
    """Block any action on a protected entity, on anything inside a protected campaign, or account."""
    entity = c.entity
    if entity is None:
        return Block("unknown_entity", "Blocked: the entity was not found.")
    protected = c.limits.protected_entity_ids
    ref = entity.ref
    hit = c.limits.protected or any(
        ident is not None and ident in protected
        for ident in (ref.entity_id, c.key, entity.campaign_id, entity.parent_id, ref.account_id)
    )
    if hit:
        return Block(
            "protected_entity",
            f"Blocked: {ref.kind} {ref.entity_id} ({entity.name}) is protected and is never changed by bidloop.",
        )
    return None


def check_freeze_window(c: Candidate) -> Block | None:
    """Block every action while a freeze window that covers the entity is open."""
    for window in c.limits.freeze_windows:
        if window.covers(c.now):
            return Block(
                "freeze_window",
                f"Blocked: changes are frozen from {window.start.isoformat()} to {window.end.isoformat()} "
                f"({window.reason}).",
            )
    return None


def check_stale_value(c: Candidate) -> Block | None:
    """Block an action whose `old_*` value is not the entity's current value (re-propose from fresh data)."""
    entity = c.entity
    if entity is None:
        return Block("unknown_entity", "Blocked: the entity was not found.")
    action = c.action
    if isinstance(action, AddKeyword | AddNegativeKeyword):
        return None
    current = current_value(action, entity)
    if current is None:
        what = "daily budget" if isinstance(action, SetBudget) else "manual bid"
        return Block(
            "stale_value",
            f"Blocked: {entity.ref.kind} {entity.ref.entity_id} has no {what} to change "
            "(shared budget or automated bidding).",
        )
    if current != action.old_value:
        if isinstance(current, int):
            found, expected = c.money(current), c.money(action.old_value)
        else:
            found, expected = current, action.old_value
        return Block(
            "stale_value",
            f"Blocked: the action expected {expected} on {entity.ref.kind} {entity.ref.entity_id} "
            f"but it is now {found}; the agent must re-propose from fresh data.",
        )
    return None


def check_no_change(c: Candidate, existing_keywords: frozenset[str]) -> Block | None:
    """Block an action that would change nothing (already at target, or a keyword that already exists)."""
    action = c.action
    if isinstance(action, AddKeyword):
        if field_key(action).removeprefix("keyword:") in existing_keywords:
            return Block(
                "no_change",
                f"Blocked: keyword [{action.match_type}] {action.text!r} already exists in "
                f"ad group {action.entity.entity_id}.",
            )
        return None
    if isinstance(action, AddNegativeKeyword):
        return None
    if action.old_value == action.new_value:
        shown = c.money(action.new_value) if isinstance(action.new_value, int) else action.new_value
        return Block("no_change", f"Blocked: {_describe(action)} is already at {shown}; nothing to change.")
    return None


def check_conflicts(c: Candidate, claimed: dict[tuple[str, str], Any]) -> Block | None:
    """Block the second action on the same entity and field in one batch (duplicate or conflicting)."""
    action = c.action
    key = (c.key, field_key(action))
    first = claimed.get(key)
    if first is None:
        claimed[key] = action
        return None
    if type(first) is type(action) and first.new_value == action.new_value:
        return Block(
            "duplicate_action",
            f"Blocked: {_describe(action)} duplicates action {first.action_id} in the same batch.",
        )
    return Block(
        "conflicting_action",
        f"Blocked: {_describe(action)} conflicts with action {first.action_id} on the same "
        f"{action.entity.kind} in the same batch; only the first is considered.",
    )


# -- time-based limits ------------------------------------------------------------------------------


def check_cooldown(c: Candidate, recent: Sequence[datetime]) -> Block | None:
    """Block an edit of an entity edited less than `cooldown_minutes` ago (protects the learning phase).

    Times after `now` count as recent (fail closed: they may come from a clock ahead of this one).
    A rollback restoring a recorded value is exempt.
    """
    if c.restoring or c.limits.cooldown_minutes <= 0 or not recent:
        return None
    now = _utc(c.now)
    since = now - timedelta(minutes=c.limits.cooldown_minutes)
    last = max(_utc(t) for t in recent)
    if last > since:
        minutes_ago = (now - last).total_seconds() / 60
        return Block(
            "cooldown",
            f"Blocked: {c.action.entity.kind} {c.action.entity.entity_id} was changed "
            f"{max(minutes_ago, 0):.0f} minutes ago; the cooldown between edits is "
            f"{c.limits.cooldown_minutes:g} minutes.",
        )
    return None


def check_platform_change_rate(c: Candidate, recent: Sequence[datetime]) -> Block | None:
    """Block a budget change beyond the platform's limit per rolling hour (Meta: 4 per ad set)."""
    limit = c.limits.max_budget_changes_per_hour
    if limit is None or not isinstance(c.action, SetBudget):
        return None
    since = _utc(c.now) - timedelta(hours=1)
    count = sum(1 for t in recent if _utc(t) > since)
    if count + 1 > limit:
        return Block(
            "platform_change_rate",
            f"Blocked: {c.action.entity.entity_id} already had {count} budget changes in the last hour; "
            f"{c.action.entity.platform} allows {limit} per hour and locks the budget after that.",
        )
    return None


# -- text ---------------------------------------------------------------------------------------------


def check_brand_safety(c: Candidate) -> Block | None:
    """Block keyword or creative text with a banned term; ask for approval when it makes a claim.

    Checked: an added keyword's text, and the text of a creative being enabled. Negative keywords
    are exclusions and are not checked.
    """
    action = c.action
    if isinstance(action, AddKeyword):
        text: str | None = action.text
    elif isinstance(action, EnableCreative) and c.entity is not None:
        text = c.entity.text
    else:
        return None
    if not text:
        return None
    finding = scan_text(text, banned_terms=c.limits.banned_terms, claims=c.limits.claims)
    if finding.banned:
        return Block(
            "brand_safety",
            f"Blocked: the text {text!r} contains the banned term(s) {', '.join(repr(t) for t in finding.banned)}.",
        )
    if finding.claims:
        c.approval_reasons.append(
            (
                "brand_claims",
                f"Needs approval: the text {text!r} makes the claim(s) "
                f"{', '.join(repr(t) for t in finding.claims)}, which need substantiation.",
            )
        )
    return None


# -- money ranges -------------------------------------------------------------------------------------


def rollback_key(entity_key: str, action: Any) -> str:
    """Return the key of one restorable setting: an entity can carry several (a Meta ad set: budget and bid)."""
    return f"{entity_key}#{field_key(action)}"


def mark_rollback_restore(c: Candidate, before_values: Mapping[str, str]) -> None:
    """Mark a rollback back to the value recorded before a run's write (`rollback_restore`).

    Only with actor `rollback`, agent `rollback`, and a target equal to the recorded before-value.
    Such a restore is exempt from the per-action and per-day change limits, cooldowns and budget
    conservation; floors, ceilings, explicit caps, protection and freeze windows still apply.
    """
    action = c.action
    if (
        c.actor == ROLLBACK_ACTOR
        and action.agent is AgentName.ROLLBACK
        and not isinstance(action, AddKeyword | AddNegativeKeyword)
        and before_values.get(rollback_key(c.key, action)) == str(action.new_value)
    ):
        c.restoring = True
        c.passed.append("rollback_restore")


def limit_max_change(c: Candidate) -> None:
    """Bound a budget or bid change to `max_change_pct` (and `max_change_micros`) of the old value.

    A rollback restore (`mark_rollback_restore`) is exempt.
    """
    action = c.action
    if c.restoring or not isinstance(action, SetBudget | SetBid):
        return
    old = action.old_value
    delta = old * c.limits.max_change_ppm // 1_000_000
    why = f"a single change may move it at most {c.limits.max_change_pct:g} % ({{0}})"
    if c.limits.max_change_micros is not None and c.limits.max_change_micros < delta:
        delta = c.limits.max_change_micros
        why = "a single change may move it at most {0}"
    c.bounds.append(Bound("max_change", max(old - delta, 0), min(old + delta, MAX_MICROS), why, (delta,)))


def limit_daily_change(c: Candidate, changed_today_pct: float, changed_today_micros: int) -> None:
    """Bound a change by what is left of the entity's daily change allowance (% and absolute)."""
    action = c.action
    if c.restoring or not isinstance(action, SetBudget | SetBid):
        return
    old = action.old_value
    limits = c.limits
    used_pct = float(changed_today_pct)
    if math.isnan(used_pct):  # a bad input leaves nothing (fail closed)
        used_pct = math.inf
    used_pct = max(used_pct, 0.0)
    if used_pct == 0.0:
        left_ppm = limits.max_daily_change_ppm
    elif used_pct >= limits.max_daily_change_pct:
        left_ppm = 0
    else:
        left_ppm = math.floor((Fraction(limits.max_daily_change_pct) - Fraction(used_pct)) * 10_000)
    delta = old * left_ppm // 1_000_000
    why = f"{limits.max_daily_change_pct:g} % may change per day and {used_pct:g} % already changed today"
    amounts: tuple[int, ...] = ()
    if limits.max_daily_change_micros is not None:
        used_micros = max(int(changed_today_micros), 0)
        left_micros = max(limits.max_daily_change_micros - used_micros, 0)
        if left_micros < delta:
            delta = left_micros
            why = "{0} may change per day and {1} already changed today"
            amounts = (limits.max_daily_change_micros, used_micros)
    c.bounds.append(Bound("max_daily_change", max(old - delta, 0), min(old + delta, MAX_MICROS), why, amounts))


def limit_bid(c: Candidate) -> None:
    """Bound a bid (or a new keyword's bid) to the configured floor and ceiling."""
    if not isinstance(c.action, SetBid | AddKeyword):
        return
    lo, hi = c.limits.bid_floor_micros, c.limits.bid_ceiling_micros
    c.bounds.append(Bound("bid_limits", lo, hi, "bids must stay between {0} and {1}", (lo, hi)))


def limit_budget(c: Candidate) -> None:
    """Bound a budget to the platform minimum (and configured floor) and the configured ceiling."""
    if not isinstance(c.action, SetBudget):
        return
    limits = c.limits
    platform_min = limits.min_budget_micros
    if platform_min >= limits.budget_floor_micros:
        c.bounds.append(
            Bound(
                "platform_min_budget",
                platform_min,
                MAX_MICROS,
                f"{c.action.entity.platform}'s minimum daily budget is {{0}}",
                (platform_min,),
            )
        )
    else:
        c.bounds.append(
            Bound(
                "budget_limits",
                limits.budget_floor_micros,
                MAX_MICROS,
                "the budget floor is {0}",
                (limits.budget_floor_micros,),
            )
        )
    c.bounds.append(
        Bound(
            "budget_limits",
            0,
            limits.budget_ceiling_micros,
            "the budget ceiling is {0}",
            (limits.budget_ceiling_micros,),
        )
    )

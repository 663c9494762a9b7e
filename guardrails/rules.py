"""Define the safe-action filter's rules, one function per rule, each with a stable rule id.

A rule looks at one `Candidate` (an action being judged, with the entity it targets and the limits
that apply) and either returns None (passed), returns a `Block` (the action may not go through), or
narrows the range of values the action may set (`Candidate.bounds`), which the filter turns into a
clip. Rules never raise on purpose; if one does, the filter blocks the action (`filter_error`).

Rule ids (stable; scripts and the audit log match on them):

    invalid_action, unknown_entity, target_kind, entity_removed, bid_ignored_by_strategy,
    target_not_used_by_strategy, protected_entity, freeze_window, stale_value, no_change,
    duplicate_action, conflicting_action, not_delivering, insufficient_data, cooldown,
    target_learning_period, platform_change_rate, brand_safety, brand_claims, max_change,
    rollback_restore, max_daily_change, bid_limits, bid_cap_limits, target_limits, budget_limits,
    platform_min_budget, max_changes_per_run, account_budget_cap, portfolio_budget_cap,
    approval_threshold, filter_error

What a bid means decides which limits hold it. Under `MANUAL_CPC` (and where the client could not tell
the strategy) a bid is a max CPC: `bid_floor_micros`/`bid_ceiling_micros` apply. Under Meta's `BID_CAP`
it is a cap per optimization event (a purchase, an install), which can be many CPCs: it has its own
`bid_cap_floor_micros`/`bid_cap_ceiling_micros` (rule `bid_cap_limits`). Where the platform may raise a
bid by a multiplier (`EntityState.bid_multiplier_max`, Amazon dynamic bidding and placement
adjustments), the ceiling holds the highest CPC the platform may pay, bid x multiplier, so the bid
itself may be at most ceiling / multiplier. Under any other strategy the platform ignores the bid:
`bid_ignored_by_strategy` blocks it. ROAS targets are in basis points (10,000 = ROAS 1.0), CPA targets
in micros; both have their own change limits, floors, ceilings and learning period (`core.limits`).
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
    SetTargetCpa,
    SetTargetRoas,
)
from bidloop.core.entities import BiddingStrategy, EntityKind, EntityState, Status
from bidloop.core.limits import EffectiveLimits
from bidloop.core.metrics import Metrics
from bidloop.core.money import MAX_MICROS, format_money
from bidloop.core.snapshot import Snapshot
from bidloop.guardrails.brand_safety import scan_text

__all__ = [
    "Block",
    "Bound",
    "Candidate",
    "Evidence",
    "check_bid_strategy",
    "check_brand_safety",
    "check_conflicts",
    "check_cooldown",
    "check_delivering",
    "check_entity_exists",
    "check_entity_status",
    "check_evidence",
    "check_freeze_window",
    "check_no_change",
    "check_platform_change_rate",
    "check_protected",
    "check_stale_value",
    "check_target_kind",
    "check_target_learning_period",
    "check_target_strategy",
    "evidence_of",
    "format_roas_bps",
    "limit_bid",
    "limit_budget",
    "limit_daily_change",
    "limit_max_change",
    "limit_target",
    "mark_rollback_restore",
    "strategy_of",
]

ROLLBACK_ACTOR = "rollback"

_TARGETS = (SetTargetRoas, SetTargetCpa)
_VALUED = (SetBudget, SetBid, SetTargetRoas, SetTargetCpa)
"""The actions that set a number on an entity (clipped by the money ranges, held to evidence)."""


def format_roas_bps(bps: int) -> str:
    """Format a ROAS target in basis points for a message, e.g. 35,000 -> `ROAS 3.50 (350 %)`."""
    return f"ROAS {bps / 10_000:.2f} ({bps / 100:g} %)"


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
    roas: bool = False
    """The values are ROAS basis points, not money (shown as `ROAS 3.50 (350 %)`)."""

    def why(self, currency: str) -> str:
        """Return the reason as a sentence fragment, e.g. `the bid ceiling is 20.00 USD`."""
        if self.roas:
            return self.why_template.format(*(format_roas_bps(m) for m in self.why_micros))
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
        index: The account's entities by (kind, id), to find an entity's campaign and parents.
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
    index: Mapping[tuple[str, str], EntityState] = field(default_factory=dict)

    @property
    def currency(self) -> str:
        """Return the account currency."""
        return self.snapshot.currency

    def money(self, micros: int) -> str:
        """Format an amount of this account's currency for a message."""
        return money(micros, self.snapshot.currency)

    def show(self, value: int) -> str:
        """Format a value of the action's field: a ROAS target as a ROAS, anything else as money."""
        if isinstance(self.action, SetTargetRoas):
            return format_roas_bps(value)
        return money(value, self.snapshot.currency)


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
    if isinstance(action, SetTargetRoas):
        return entity.target_roas_bps
    if isinstance(action, SetTargetCpa):
        return entity.target_cpa_micros
    if isinstance(action, AddKeyword | AddNegativeKeyword):
        return None
    return entity.status.value


def field_key(action: Any) -> str:
    """Return what the action changes on its entity, so two actions on the same thing are found."""
    if isinstance(action, SetBudget):
        return "budget"
    if isinstance(action, SetBid):
        return "bid"
    if isinstance(action, SetTargetRoas):
        return "target_roas"
    if isinstance(action, SetTargetCpa):
        return "target_cpa"
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
        whats: dict[type, str] = {
            SetBudget: "daily budget (shared budget?)",
            SetBid: "manual bid (automated bidding?)",
            SetTargetRoas: "ROAS target (set one in the platform first)",
            SetTargetCpa: "CPA target (set one in the platform first)",
        }
        what = whats.get(type(action), "value")
        return Block("stale_value", f"Blocked: {entity.ref.kind} {entity.ref.entity_id} has no {what} to change.")
    if current != action.old_value:
        if isinstance(current, int):
            found, expected = c.show(current), c.show(action.old_value)
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
        shown = c.show(action.new_value) if isinstance(action.new_value, int) else action.new_value
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


# -- what the platform acts on ------------------------------------------------------------------------


def _campaign_of(c: Candidate, entity: EntityState) -> EntityState | None:
    """Return the entity's campaign from the snapshot (None for a campaign itself, or when absent)."""
    if entity.ref.kind in (EntityKind.CAMPAIGN, EntityKind.BIDDING_STRATEGY) or not entity.campaign_id:
        return None
    return c.index.get((EntityKind.CAMPAIGN.value, entity.campaign_id))


def strategy_of(c: Candidate) -> BiddingStrategy | None:
    """Return the bidding strategy in force for the candidate's entity: its own, else its campaign's.

    None where no client said (the simulated market and snapshots older than strategies).
    """
    entity = c.entity
    if entity is None:
        return None
    if entity.bidding_strategy is not None:
        return entity.bidding_strategy
    campaign = _campaign_of(c, entity)
    return campaign.bidding_strategy if campaign is not None else None


def check_bid_strategy(c: Candidate) -> Block | None:
    """Block a bid change where the strategy in force ignores bids (Smart Bidding, lowest cost, ...).

    The platform would accept the write and do nothing with it; a read-back would even show it
    "applied". An unknown strategy (None) is allowed: the sim and older snapshots do not carry one.
    """
    if not isinstance(c.action, SetBid) or c.entity is None:
        return None
    strategy = strategy_of(c)
    if strategy is None or strategy.uses_bids:
        return None
    return Block(
        "bid_ignored_by_strategy",
        f"Blocked: {c.entity.ref.kind} {c.entity.ref.entity_id} bids with the {strategy.value} strategy, "
        "under which the platform ignores the bid; change its target or budget instead.",
    )


def check_target_strategy(c: Candidate) -> Block | None:
    """Block a target the strategy in force does not use, or one set beside a portfolio strategy.

    A campaign (or an ad group of a campaign) that follows a portfolio strategy takes its target from
    the `BIDDING_STRATEGY` entity; Google refuses an ad group ROAS target there and ignores the rest.
    """
    action = c.action
    entity = c.entity
    if not isinstance(action, _TARGETS) or entity is None:
        return None
    campaign = _campaign_of(c, entity)
    portfolio = entity.bidding_strategy_id or (campaign.bidding_strategy_id if campaign is not None else None)
    if portfolio and entity.ref.kind is not EntityKind.BIDDING_STRATEGY:
        return Block(
            "target_not_used_by_strategy",
            f"Blocked: {entity.ref.kind} {entity.ref.entity_id} follows the portfolio bidding strategy "
            f"{portfolio}; change the target on that bidding_strategy instead.",
        )
    strategy = strategy_of(c)
    if strategy is None:
        return None
    uses = strategy.uses_target_roas if isinstance(action, SetTargetRoas) else strategy.uses_target_cpa
    if uses:
        return None
    what = "ROAS" if isinstance(action, SetTargetRoas) else "CPA"
    return Block(
        "target_not_used_by_strategy",
        f"Blocked: {entity.ref.kind} {entity.ref.entity_id} bids with the {strategy.value} strategy, "
        f"which does not use a {what} target; the platform would ignore (or refuse) it.",
    )


def _blocked_delivery(c: Candidate, entity: EntityState) -> str | None:
    """Return why the entity cannot deliver because of itself (review, flight) or a parent, else None."""
    if entity.delivery_blocked_by:
        return entity.delivery_blocked_by
    seen: set[str] = set()
    current = entity
    for _ in range(4):  # keyword -> ad group -> campaign; a cycle or a missing parent ends the walk
        parent_id = current.parent_id or current.campaign_id
        if not parent_id or parent_id == current.ref.entity_id or parent_id in seen:
            break
        seen.add(parent_id)
        kind = EntityKind.AD_GROUP if current.ref.kind in (EntityKind.KEYWORD, EntityKind.CREATIVE) else None
        parent = c.index.get((kind.value, parent_id)) if kind is not None else None
        if parent is None:
            parent = c.index.get((EntityKind.CAMPAIGN.value, parent_id))
        if parent is None or parent is current:
            break
        if parent.status is not Status.ENABLED:
            return f"{parent.ref.kind.value.upper()}_{parent.status.value.upper()}"
        if parent.delivery_blocked_by:
            return f"{parent.ref.kind.value.upper()}: {parent.delivery_blocked_by}"
        current = parent
    return None


def check_delivering(c: Candidate) -> Block | None:
    """Block enabling a creative the platform will not serve, and any money change where nothing delivers.

    A creative with `delivery_blocked_by` (disapproved, in review, ...) stays dark when enabled. A
    budget, bid, target or new keyword on an entity whose delivery is blocked, by itself or by a
    paused (or blocked) ad group or campaign above it, buys nothing. The entity's own paused status is
    not this rule's business (a paused campaign may be prepared before it is enabled). A rollback
    restoring a recorded value is exempt: it puts back what was there.
    """
    action = c.action
    entity = c.entity
    if entity is None or c.restoring:
        return None
    if isinstance(action, EnableCreative):
        why = entity.delivery_blocked_by
        if why:
            return Block(
                "not_delivering",
                f"Blocked: creative {entity.ref.entity_id} ({entity.name}) cannot deliver ({why}); "
                "enabling it would not put it in front of anyone.",
            )
        return None
    if not action.is_money_change:
        return None
    why = _blocked_delivery(c, entity)
    if why:
        return Block(
            "not_delivering",
            f"Blocked: {entity.ref.kind} {entity.ref.entity_id} does not deliver ({why}); "
            f"{action.kind} there would buy nothing.",
        )
    return None


# -- evidence -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Evidence:
    """What an entity's own numbers say: clicks and spend on record, and days since it first had any."""

    clicks: int
    cost_micros: int
    days: int


def _active(day: Metrics) -> bool:
    return bool(day.impressions or day.clicks or day.cost_micros)


def _days_active(history: Sequence[Metrics]) -> int:
    """Return the number of recorded days from the first with any activity to the last (0: none)."""
    for i, day in enumerate(history):
        if _active(day):
            return len(history) - i
    return 0


def _own_totals(entity: EntityState) -> tuple[int, int]:
    past = Metrics()
    for day in entity.daily_history:
        past = past + day
    if past.clicks < entity.trailing_7d.clicks or past.cost_micros < entity.trailing_7d.cost_micros:
        past = entity.trailing_7d  # a client that gives the window but not (all of) the days
    return past.clicks + entity.today.clicks, past.cost_micros + entity.today.cost_micros


def evidence_of(entity: EntityState, index: Mapping[tuple[str, str], EntityState]) -> Evidence:
    """Return the evidence an action on `entity` rests on.

    Clicks and spend are the entity's own (a keyword's clicks for its bid, a budget holder's for its
    budget): its recorded past days (or its trailing seven days where the client gives no days) plus
    today. Days count from the first recorded day with any activity. Where a client gives no per-day
    history for the entity (Google keywords and ad groups), its campaign's days stand in for the age.
    A portfolio strategy without numbers of its own is judged on the campaigns that follow it.
    """
    clicks, cost = _own_totals(entity)
    days = _days_active(entity.daily_history)
    if entity.ref.kind is EntityKind.BIDDING_STRATEGY and not (clicks or cost or days):
        members = [
            e
            for e in index.values()
            if e.ref.kind is EntityKind.CAMPAIGN and e.bidding_strategy_id == entity.ref.entity_id
        ]
        for member in members:
            m_clicks, m_cost = _own_totals(member)
            clicks += m_clicks
            cost += m_cost
            days = max(days, _days_active(member.daily_history))
    elif not entity.daily_history and entity.campaign_id and entity.ref.kind is not EntityKind.CAMPAIGN:
        campaign = index.get((EntityKind.CAMPAIGN.value, entity.campaign_id))
        if campaign is not None:
            days = _days_active(campaign.daily_history)
    return Evidence(clicks=clicks, cost_micros=cost, days=days)


def check_evidence(c: Candidate) -> Block | None:
    """Block a budget, bid or target change on an entity without enough data of its own to justify it.

    Applies in both directions: a cut on no evidence is as much a guess as a raise (it can starve a new
    campaign before it learned). Added keywords are exempt (a new keyword has no data by definition),
    and so is a rollback restoring a recorded value.
    """
    action = c.action
    entity = c.entity
    if entity is None or c.restoring or not isinstance(action, _VALUED):
        return None
    limits = c.limits
    ev = evidence_of(entity, c.index)
    if (
        ev.clicks >= limits.min_clicks_to_act
        and ev.cost_micros >= limits.min_spend_to_act_micros
        and (ev.days >= limits.min_days_of_data)
    ):
        return None
    return Block(
        "insufficient_data",
        f"Blocked: {entity.ref.kind} {entity.ref.entity_id} has {ev.clicks} clicks, {c.money(ev.cost_micros)} "
        f"spend and {ev.days} days of data; a {action.kind} needs at least {limits.min_clicks_to_act} clicks, "
        f"{c.money(limits.min_spend_to_act_micros)} and {limits.min_days_of_data} days "
        "(min_clicks_to_act, min_spend_to_act_micros, min_days_of_data).",
    )


def check_target_learning_period(c: Candidate, target_changes: Sequence[datetime]) -> Block | None:
    """Block a target change within `target_cooldown_days` of the entity's last one (its learning period).

    Times after `now` count as recent (fail closed). A rollback restoring a recorded value is exempt.
    """
    days = c.limits.target_cooldown_days
    if c.restoring or days <= 0 or not target_changes or not isinstance(c.action, _TARGETS):
        return None
    now = _utc(c.now)
    last = max(_utc(t) for t in target_changes)
    if last > now - timedelta(days=days):
        ago = max((now - last).total_seconds() / 86_400, 0.0)
        return Block(
            "target_learning_period",
            f"Blocked: the target of {c.action.entity.kind} {c.action.entity.entity_id} changed {ago:.1f} days "
            f"ago; its strategy is still learning and the next change waits {days:g} days "
            "(target_cooldown_days).",
        )
    return None


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

    A target change is bound to `target_max_change_pct` instead. A rollback restore
    (`mark_rollback_restore`) is exempt.
    """
    action = c.action
    if c.restoring or not isinstance(action, _VALUED):
        return
    old = action.old_value
    if isinstance(action, _TARGETS):
        delta = old * c.limits.target_max_change_ppm // 1_000_000
        why = f"a single target change may move it at most {c.limits.target_max_change_pct:g} % ({{0}})"
        c.bounds.append(
            Bound(
                "max_change",
                max(old - delta, 0),
                min(old + delta, MAX_MICROS),
                why,
                (delta,),
                roas=isinstance(action, SetTargetRoas),
            )
        )
        return
    delta = old * c.limits.max_change_ppm // 1_000_000
    why = f"a single change may move it at most {c.limits.max_change_pct:g} % ({{0}})"
    if c.limits.max_change_micros is not None and c.limits.max_change_micros < delta:
        delta = c.limits.max_change_micros
        why = "a single change may move it at most {0}"
    c.bounds.append(Bound("max_change", max(old - delta, 0), min(old + delta, MAX_MICROS), why, (delta,)))


def limit_daily_change(c: Candidate, changed_today_pct: float, changed_today_micros: int) -> None:
    """Bound a change by what is left of the entity's daily change allowance (% and absolute).

    For a target, `changed_today_pct` is the target's own change today and `target_max_daily_change_pct`
    the allowance; the absolute money allowance does not apply (a ROAS is not money).
    """
    action = c.action
    if c.restoring or not isinstance(action, _VALUED):
        return
    old = action.old_value
    limits = c.limits
    is_target = isinstance(action, _TARGETS)
    max_pct = limits.target_max_daily_change_pct if is_target else limits.max_daily_change_pct
    max_ppm = limits.target_max_daily_change_ppm if is_target else limits.max_daily_change_ppm
    used_pct = float(changed_today_pct)
    if math.isnan(used_pct):  # a bad input leaves nothing (fail closed)
        used_pct = math.inf
    used_pct = max(used_pct, 0.0)
    if used_pct == 0.0:
        left_ppm = max_ppm
    elif used_pct >= max_pct:
        left_ppm = 0
    else:
        left_ppm = math.floor((Fraction(max_pct) - Fraction(used_pct)) * 10_000)
    delta = old * left_ppm // 1_000_000
    why = f"{max_pct:g} % may change per day and {used_pct:g} % already changed today"
    amounts: tuple[int, ...] = ()
    if is_target:
        c.bounds.append(
            Bound(
                "max_daily_change",
                max(old - delta, 0),
                min(old + delta, MAX_MICROS),
                why,
                amounts,
                roas=isinstance(action, SetTargetRoas),
            )
        )
        return
    if limits.max_daily_change_micros is not None:
        used_micros = max(int(changed_today_micros), 0)
        left_micros = max(limits.max_daily_change_micros - used_micros, 0)
        if left_micros < delta:
            delta = left_micros
            why = "{0} may change per day and {1} already changed today"
            amounts = (limits.max_daily_change_micros, used_micros)
    c.bounds.append(Bound("max_daily_change", max(old - delta, 0), min(old + delta, MAX_MICROS), why, amounts))


def limit_bid(c: Candidate) -> None:
    """Bound a bid (or a new keyword's bid) to the floor and ceiling for what the bid means.

    A max CPC (manual CPC, or an unknown strategy) is held to `bid_floor_micros`/`bid_ceiling_micros`;
    a Meta bid cap (`BID_CAP`, a cap per optimization event) to `bid_cap_floor_micros`/
    `bid_cap_ceiling_micros`. Where the platform may multiply the bid (`bid_multiplier_max` above 1 on
    the entity or its campaign), the ceiling holds the bid times that multiplier: the most the platform
    may pay for a click.
    """
    if not isinstance(c.action, SetBid | AddKeyword):
        return
    if strategy_of(c) is BiddingStrategy.BID_CAP:
        lo, hi = c.limits.bid_cap_floor_micros, c.limits.bid_cap_ceiling_micros
        c.bounds.append(Bound("bid_cap_limits", lo, hi, "bid caps must stay between {0} and {1}", (lo, hi)))
        return
    lo, hi = c.limits.bid_floor_micros, c.limits.bid_ceiling_micros
    multiplier = None
    if c.entity is not None:
        multiplier = c.entity.bid_multiplier_max
        campaign = _campaign_of(c, c.entity)
        if multiplier is None and campaign is not None:
            multiplier = campaign.bid_multiplier_max
    if multiplier is not None and multiplier > 1.0:
        # The highest base bid whose multiplied CPC stays within the ceiling (exact: no float rounding up).
        base_hi = math.floor(Fraction(hi) / Fraction(multiplier))
        c.bounds.append(
            Bound(
                "bid_limits",
                lo,
                base_hi,
                f"bids must stay between {{0}} and {{1}}, and the platform may raise a bid {multiplier:g}x, "
                "so the bid itself may be at most {2}",
                (lo, hi, base_hi),
            )
        )
        return
    c.bounds.append(Bound("bid_limits", lo, hi, "bids must stay between {0} and {1}", (lo, hi)))


def limit_target(c: Candidate) -> None:
    """Bound a ROAS target to its floor and ceiling (basis points), a CPA target to its own (micros)."""
    action = c.action
    limits = c.limits
    if isinstance(action, SetTargetRoas):
        lo, hi = limits.target_roas_floor_bps, limits.target_roas_ceiling_bps
        c.bounds.append(
            Bound("target_limits", lo, hi, "ROAS targets must stay between {0} and {1}", (lo, hi), roas=True)
        )
    elif isinstance(action, SetTargetCpa):
        lo, hi = limits.target_cpa_floor_micros, limits.target_cpa_ceiling_micros
        c.bounds.append(Bound("target_limits", lo, hi, "CPA targets must stay between {0} and {1}", (lo, hi)))


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

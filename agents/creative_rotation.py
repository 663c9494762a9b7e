"""Detect creative fatigue and rotate: pause worn-out creatives, bring rested ones back.

A creative is fatigued when its CTR over its last three days fell by `fatigue_drop_pct` or more
against its own best three-day CTR in its history, with at least `fatigue_min_impressions` in each
window (so noise on small numbers is not mistaken for fatigue). It is paused only if its ad group
keeps another live creative, and the rested creative of the ad group that has been paused longest
(at least `rest_days_before_reenable` days without impressions) is enabled in its place.

Live means delivering: enabled, and nothing stopping it (`EntityState.delivery_blocked_by`: a
disapproval, a review, a paused parent). A creative the platform will not serve is never enabled, and
an enabled one that does not deliver neither counts as the ad group's running creative nor is paused
for fatigue.

With `Steering.focus_entity_ids` (an operator named ad sets, campaigns or creatives), only creatives in or
under the named entities are paused or enabled; their ad groups' other creatives still count as running.
"""

from __future__ import annotations

from collections import defaultdict

from bidloop.core.actions import Action, AgentName, EnableCreative, PauseCreative
from bidloop.core.agent_context import AgentContext
from bidloop.core.entities import EntityKind, EntityState, Status
from bidloop.core.metrics import Metrics
from bidloop.core.snapshot import Snapshot

__all__ = ["fatigue_drop_pct", "propose_creative_actions"]

AGENT = AgentName.CREATIVE_ROTATION
_WINDOW_DAYS = 3


def _sum(days: list[Metrics]) -> Metrics:
    total = Metrics()
    for d in days:
        total = total + d
    return total


def fatigue_drop_pct(creative: EntityState, min_impressions: int) -> float | None:
    """Return how far (in %) the last three days' CTR fell below the creative's best three days.

    Returns:
        The drop in percent (negative if CTR rose), or None without enough history or impressions.
    """
    history = creative.daily_history
    if len(history) < 2 * _WINDOW_DAYS:
        return None
    recent = _sum(history[-_WINDOW_DAYS:])
    if recent.impressions < min_impressions or recent.ctr is None:
        return None
    best: float | None = None
    for start in range(0, len(history) - 2 * _WINDOW_DAYS + 1):
        window = _sum(history[start : start + _WINDOW_DAYS])
        if window.impressions >= min_impressions and window.ctr is not None:
            best = window.ctr if best is None else max(best, window.ctr)
    if not best:
        return None
    return (1.0 - recent.ctr / best) * 100.0


def _rested_days(creative: EntityState) -> int:
    days = 0
    for d in reversed(creative.daily_history):
        if d.impressions:
            break
        days += 1
    return days


def propose_creative_actions(snapshot: Snapshot, ctx: AgentContext) -> list[Action]:
    """Propose creative pauses and re-enables for one account."""
    if not ctx.allows(AGENT.value):
        return []
    tuning = ctx.tuning
    focus = ctx.steering.focus_entity_ids
    ad_groups = snapshot.by_id(EntityKind.AD_GROUP)
    by_group: dict[str, list[EntityState]] = defaultdict(list)
    for creative in snapshot.of_kind(EntityKind.CREATIVE):
        if creative.parent_id:
            by_group[creative.parent_id].append(creative)

    def in_focus(creative: EntityState) -> bool:
        if not focus:
            return True
        group = ad_groups.get(creative.parent_id or "")
        scope = {creative.ref.entity_id, creative.parent_id, creative.campaign_id}
        if group is not None:
            scope |= {group.parent_id, group.campaign_id}
        return bool(focus & scope)

    actions: list[Action] = []
    for group_id in sorted(by_group):
        creatives = sorted(by_group[group_id], key=lambda c: c.ref.entity_id)
        live = [c for c in creatives if c.is_delivering]
        rested = sorted(
            (
                c
                for c in creatives
                if c.status is Status.PAUSED
                and c.delivery_blocked_by is None
                and _rested_days(c) >= tuning.rest_days_before_reenable
                and in_focus(c)
            ),
            key=lambda c: (-_rested_days(c), c.ref.entity_id),
        )
        fatigued = []
        for c in (c for c in live if in_focus(c)):
            drop = fatigue_drop_pct(c, tuning.fatigue_min_impressions)
            if drop is not None and drop >= tuning.fatigue_drop_pct:
                fatigued.append((drop, c))
        fatigued.sort(key=lambda pair: (-pair[0], pair[1].ref.entity_id))
        remaining = len(live)
        for drop, c in fatigued:
            replacement = rested.pop(0) if rested else None
            if remaining - 1 < 1 and replacement is None:
                continue  # never leave an ad group without a running creative
            remaining -= 1
            actions.append(
                PauseCreative(
                    action_id=ctx.next_action_id(AGENT.value),
                    entity=c.ref,
                    agent=AGENT,
                    reason=f"CTR of the last {_WINDOW_DAYS} days is {drop:.0f}% below this creative's own best",
                    old_status=c.status,
                    expected_effect="impressions move to fresher creatives with higher CTR",
                )
            )
            if replacement is not None:
                remaining += 1
                actions.append(
                    EnableCreative(
                        action_id=ctx.next_action_id(AGENT.value),
                        entity=replacement.ref,
                        agent=AGENT,
                        reason=(
                            f"rested {_rested_days(replacement)} days; replaces fatigued creative {c.ref.entity_id}"
                        ),
                        old_status=replacement.status,
                        expected_effect="a rested creative recovers its CTR",
                    )
                )
    return actions

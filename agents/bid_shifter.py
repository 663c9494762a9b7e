"""Shift budget toward higher marginal return and move bids where the data says so.

Until a learned policy is configured, this is the marginal-ROAS heuristic (`heuristic-mroas@1`):

* **Budgets.** For each budget holder (campaign or ad set) estimate marginal ROAS = average ROAS of
  the trailing week x the elasticity of value to cost across its past days (clamped; 0.6 when the
  days do not vary enough to tell). Holders that did not use their budget gain nothing from more
  budget, so their marginal ROAS for receiving is 0 and their unused budget is what they give first.
  Budget moves from the lowest to the highest marginal return, at most `max_budget_shift_pct` of
  either side, and the account total never grows.
* **Bids.** With enough clicks: lower the bid by `bid_step_pct` where ROAS is below half the target
  and the budget binds (a cheaper click buys more clicks for the same spend; where volume limits,
  a cut would only lose volume).
  Lifting bids raises spend, so it happens only when an operator asks for it (steering `up`, or named
  leaders): then where ROAS is above target and volume, not budget, limits it or the account lags pace.
* Unattended, budget moves only between holders that spend their budgets, so total spend does not
  grow; with named leaders, unused budget elsewhere is moved to them too.
* **The lever the strategy listens to.** Bids move only where the bidding strategy in force uses bids
  (manual CPC, Meta bid cap). Under Smart Bidding the platform ignores bids, so the same decision moves
  the holder's target instead: to spend less at a higher return, raise the ROAS target (`SetTargetRoas`)
  or lower the CPA target (`SetTargetCpa`); to spend more, the reverse. Under lowest cost only the
  budget moves it.
* **Only what delivers, only with evidence.** A holder that does not deliver (paused, under a paused
  campaign, flight ended) neither gives nor receives budget; a holder, keyword or ad group with fewer
  than `min_clicks_for_bid_change` clicks over the trailing week gets no budget, bid or target action.

Every action records the policy version that produced it.
"""

from __future__ import annotations

import math

import numpy as np

from bidloop.core.actions import Action, AgentName, SetBid, SetBudget, SetTargetCpa, SetTargetRoas
from bidloop.core.agent_context import AgentContext
from bidloop.core.entities import BudgetPeriod, EntityKind, EntityState
from bidloop.core.money import format_money
from bidloop.core.snapshot import Snapshot

__all__ = ["HolderEstimate", "estimate_holders", "propose_bid_actions", "uses_bids"]

AGENT = AgentName.BID_SHIFTER
_DEFAULT_ELASTICITY = 0.6
_BINDING_UTILISATION = 0.9
_MIN_GAP_FACTOR = 1.15


class HolderEstimate:
    """What the heuristic believes about one budget holder."""

    __slots__ = ("elasticity", "entity", "marginal_roas", "roas", "utilisation")

    def __init__(self, entity: EntityState, roas: float, elasticity: float, utilisation: float) -> None:
        self.entity = entity
        self.roas = roas
        self.elasticity = elasticity
        self.utilisation = utilisation
        self.marginal_roas = roas * elasticity

    @property
    def budget_binding(self) -> bool:
        """Return True if the holder spends (nearly) all of its budget."""
        return self.utilisation >= _BINDING_UTILISATION


def _elasticity(entity: EntityState) -> float:
    days = [d for d in entity.daily_history if d.cost_micros > 0 and d.conversion_value_micros > 0]
    if len(days) < 5:
        return _DEFAULT_ELASTICITY
    log_cost = np.log([d.cost_micros for d in days])
    log_value = np.log([d.conversion_value_micros for d in days])
    if float(np.std(log_cost)) < 0.05:
        return _DEFAULT_ELASTICITY
    slope = float(np.polyfit(log_cost, log_value, 1)[0])
    if not math.isfinite(slope):
        return _DEFAULT_ELASTICITY
    return min(max(slope, 0.2), 1.2)


def uses_bids(entity: EntityState) -> bool:
    """Return True if the platform acts on the entity's bid (manual CPC, bid cap; unknown counts as manual)."""
    return entity.bidding_strategy is None or entity.bidding_strategy.uses_bids


def estimate_holders(snapshot: Snapshot, min_clicks: int = 0) -> list[HolderEstimate]:
    """Estimate ROAS, elasticity and budget utilisation of every delivering budget holder.

    Holders that do not deliver (paused, under a paused campaign) and holders with fewer than
    `min_clicks` clicks over the trailing week are left out: there is nothing to act on, or not
    enough evidence to act.
    """
    estimates = []
    for e in snapshot.budget_holders():
        if not e.is_delivering or not e.daily_budget_micros:
            continue
        if e.trailing_7d.clicks < min_clicks:
            continue
        week = e.trailing_7d
        roas = week.roas or 0.0
        days_seen = max(1, min(7, len(e.daily_history) or 7))
        utilisation = week.cost_micros / (e.daily_budget_micros * days_seen)
        estimates.append(HolderEstimate(e, roas, _elasticity(e), utilisation))
    return estimates


def propose_bid_actions(snapshot: Snapshot, ctx: AgentContext) -> list[Action]:
    """Propose budget shifts and bid changes for one account."""
    if not ctx.allows(AGENT.value):
        return []
    actions: list[Action] = []
    if ctx.steering.budget_shifts:
        actions.extend(_budget_shifts(snapshot, ctx))
    if ctx.steering.bid_changes:
        actions.extend(_bid_moves(snapshot, ctx))
    return actions


def _budget_shifts(snapshot: Snapshot, ctx: AgentContext) -> list[Action]:
    estimates = estimate_holders(snapshot, ctx.tuning.min_clicks_for_bid_change)
    if len(estimates) < 2:
        return []
    shift = ctx.tuning.max_budget_shift_pct / 100.0
    focus = ctx.steering.focus_entity_ids

    def receive_score(h: HolderEstimate) -> float:
        if h.entity.ref.entity_id in focus:
            return math.inf
        if focus:
            return 0.0  # with named leaders, only they receive
        return h.marginal_roas if h.budget_binding else 0.0

    def give_score(h: HolderEstimate) -> float:
        # Unused budget is given first (it earns nothing); then the lowest marginal return.
        return -1.0 if not h.budget_binding else h.marginal_roas

    receivers = sorted(
        (h for h in estimates if receive_score(h) > 0),
        key=lambda h: (-receive_score(h), h.entity.ref.entity_id),
    )
    # Unattended, budget moves only between holders that spend their budget: moving unused budget to a
    # holder that spends it raises total spend. An operator who names leaders asks for exactly that.
    # A lifetime budget's unspent part is not lost: it stays for the flight's remaining days, so it is not
    # "unused budget" to hand out (cutting it would shrink a flight the advertiser planned as a whole).
    givers = sorted(
        (
            h
            for h in estimates
            if h.entity.ref.entity_id not in focus
            and (h.budget_binding or (focus and h.entity.budget_period is not BudgetPeriod.LIFETIME))
        ),
        key=lambda h: (give_score(h), h.entity.ref.entity_id),
    )
    deltas: dict[str, int] = {}
    for receiver in receivers:
        r_budget = receiver.entity.daily_budget_micros or 0
        room = int(r_budget * shift) - deltas.get(receiver.entity.ref.entity_id, 0)
        for giver in givers:
            if room <= 0:
                break
            gid = giver.entity.ref.entity_id
            if gid == receiver.entity.ref.entity_id or deltas.get(gid, 0) > 0:
                continue
            if giver.budget_binding and receive_score(receiver) < give_score(giver) * _MIN_GAP_FACTOR:
                continue
            g_budget = giver.entity.daily_budget_micros or 0
            if giver.budget_binding:
                capacity = int(g_budget * shift) + deltas.get(gid, 0)
            else:
                unused = int(g_budget * (1.0 - giver.utilisation * 1.1))
                capacity = min(int(g_budget * shift), max(unused, 0)) + deltas.get(gid, 0)
            amount = min(room, capacity)
            if amount <= 0:
                continue
            deltas[gid] = deltas.get(gid, 0) - amount
            deltas[receiver.entity.ref.entity_id] = deltas.get(receiver.entity.ref.entity_id, 0) + amount
            room -= amount

    by_id = {h.entity.ref.entity_id: h for h in estimates}
    actions: list[Action] = []
    for entity_id in sorted(deltas, key=lambda i: (deltas[i] > 0, i)):  # decreases first
        delta = deltas[entity_id]
        if delta == 0:
            continue
        h = by_id[entity_id]
        old = h.entity.daily_budget_micros or 0
        new = old + delta
        if delta > 0:
            why = (
                f"marginal ROAS {h.marginal_roas:.2f} (ROAS {h.roas:.2f}) is among the account's best and the budget "
                f"is {h.utilisation:.0%} used"
            )
            if entity_id in focus:
                why = f"named by the operator as a leader (ROAS {h.roas:.2f}); " + why
        elif not h.budget_binding:
            why = f"only {h.utilisation:.0%} of the budget was used last week; the rest earns nothing here"
        else:
            why = f"marginal ROAS {h.marginal_roas:.2f} (ROAS {h.roas:.2f}) is the account's lowest"
        actions.append(
            SetBudget(
                action_id=ctx.next_action_id(AGENT.value),
                entity=h.entity.ref,
                agent=AGENT,
                reason=f"{why}; {format_money(abs(delta), snapshot.currency)} moved " + ("in" if delta > 0 else "out"),
                policy_version=ctx.policy_version,
                old_daily_budget_micros=old,
                new_daily_budget_micros=new,
                expected_effect=f"about {format_money(int(abs(delta) * h.marginal_roas), snapshot.currency)}/day "
                + ("more" if delta > 0 else "less")
                + " conversion value at the margin",
            )
        )
    return actions


def _bid_moves(snapshot: Snapshot, ctx: AgentContext) -> list[Action]:
    tuning = ctx.tuning
    steer = ctx.steering
    step = (steer.bid_step_pct or tuning.bid_step_pct) / 100.0
    holder_list = estimate_holders(snapshot, tuning.min_clicks_for_bid_change)
    holders = {h.entity.ref.entity_id: h for h in holder_list}
    spent_today = snapshot.totals_today().cost_micros
    planned_today = snapshot.account_daily_budget_micros * snapshot.expected_spend_fraction
    lagging = planned_today > 0 and spent_today < planned_today * (1 - tuning.pace_lag_pct / 100.0)

    candidates: list[tuple[EntityState, HolderEstimate | None]] = []
    for e in snapshot.entities:
        if e.cpc_bid_micros is None or not e.is_delivering or not uses_bids(e):
            continue
        if e.ref.kind is EntityKind.KEYWORD:
            campaign = holders.get(e.campaign_id or "") or holders.get(e.parent_id or "")
            candidates.append((e, campaign))
        elif e.ref.kind is EntityKind.AD_GROUP and e.daily_budget_micros is not None:
            candidates.append((e, holders.get(e.ref.entity_id)))

    actions: list[Action] = []
    for e, holder in candidates:
        week = e.trailing_7d
        if week.clicks < tuning.min_clicks_for_bid_change or e.cpc_bid_micros is None:
            continue
        direction, why = _direction(ctx, e, holder, lagging)
        if direction is None:
            continue
        factor = 1 + step if direction == "up" else 1 - step
        new_bid = max(1, int(e.cpc_bid_micros * factor))
        if new_bid == e.cpc_bid_micros:
            continue
        actions.append(
            SetBid(
                action_id=ctx.next_action_id(AGENT.value),
                entity=e.ref,
                agent=AGENT,
                reason=why,
                policy_version=ctx.policy_version,
                old_cpc_bid_micros=e.cpc_bid_micros,
                new_cpc_bid_micros=new_bid,
                expected_effect=(
                    "more volume at ROAS above target" if direction == "up" else "less spend at poor ROAS"
                ),
            )
        )
    for h in holder_list:
        action = _target_move(snapshot, ctx, h, lagging, step)
        if action is not None:
            actions.append(action)
    return actions


def _direction(
    ctx: AgentContext, e: EntityState, holder: HolderEstimate | None, lagging: bool
) -> tuple[str | None, str]:
    """Return which way to move an entity's spend lever ("up" = spend more) and why, or (None, "")."""
    steer = ctx.steering
    target = ctx.tuning.roas_target
    week = e.trailing_7d
    roas = week.roas or 0.0
    focus = e.ref.entity_id in steer.focus_entity_ids
    volume_limited = holder is not None and not holder.budget_binding
    direction: str | None = None
    why = ""
    steered_up = steer.bid_direction == "up" or focus
    if roas >= target and steered_up and (volume_limited or lagging or focus or steer.bid_direction == "up"):
        direction = "up"
        cause = "volume, not budget, limits it" if volume_limited else "the account lags pace today"
        why = f"ROAS {roas:.2f} is above the {target:.1f} target and {cause}"
    elif roas < target * 0.5 and not focus and holder is not None and holder.budget_binding:
        direction = "down"
        why = f"ROAS {roas:.2f} is below half the {target:.1f} target over {week.clicks} clicks"
    if direction is None or (steer.bid_direction and direction != steer.bid_direction):
        return None, ""
    if steer.only_where_effective and direction == "up" and roas < target:
        return None, ""
    return direction, why


def _target_move(snapshot: Snapshot, ctx: AgentContext, h: HolderEstimate, lagging: bool, step: float) -> Action | None:
    """Return a target change for a Smart Bidding holder (the lever its strategy listens to), or None.

    Spend less ("down"): raise a ROAS target, lower a CPA target. Spend more ("up"): the reverse.
    """
    e = h.entity
    strategy = e.bidding_strategy
    if strategy is None or strategy.uses_bids:
        return None
    direction, why = _direction(ctx, e, h, lagging)
    if direction is None:
        return None
    more = direction == "up"
    effect = "more volume at ROAS above target" if more else "less spend at poor ROAS"
    if strategy.uses_target_roas and e.target_roas_bps:
        old = e.target_roas_bps
        new = max(1, round(old / (1 + step) if more else old * (1 + step)))
        if new == old:
            return None
        return SetTargetRoas(
            action_id=ctx.next_action_id(AGENT.value),
            entity=e.ref,
            agent=AGENT,
            reason=f"{why}; {strategy.value} ignores bids, so the ROAS target moves "
            f"({old / 10_000:.2f} -> {new / 10_000:.2f})",
            policy_version=ctx.policy_version,
            old_target_roas_bps=old,
            new_target_roas_bps=new,
            expected_effect=effect,
        )
    if strategy.uses_target_cpa and e.target_cpa_micros:
        old_cpa = e.target_cpa_micros
        new_cpa = max(1, round(old_cpa * (1 + step) if more else old_cpa / (1 + step)))
        if new_cpa == old_cpa:
            return None
        return SetTargetCpa(
            action_id=ctx.next_action_id(AGENT.value),
            entity=e.ref,
            agent=AGENT,
            reason=f"{why}; {strategy.value} ignores bids, so the CPA target moves "
            f"({format_money(old_cpa, snapshot.currency)} -> {format_money(new_cpa, snapshot.currency)})",
            policy_version=ctx.policy_version,
            old_target_cpa_micros=old_cpa,
            new_target_cpa_micros=new_cpa,
            expected_effect=effect,
        )
    return None

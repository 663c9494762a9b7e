"""Generate adversarial batches for the filter and check every verdict against the limits independently.

Used by the property tests (`tests/unit/test_guardrails_properties.py`) and the fuzz benchmark
(`bench/guardrail_fuzz.py`). `random_case` builds accounts, a configuration and a batch of actions
from one `random.Random` (NaN, infinities, negative and huge values smuggled in with
`model_construct`, values a million times off, stale and unknown entities, duplicates, conflicts,
banned words, dict-shaped and non-action inputs), with accounts as the platforms run them: bidding
strategies (and portfolios), ROAS and CPA targets, bid multipliers, entities that do not deliver and
entities with little or no data. `violations` re-derives, without the filter's own code paths, what an
allowed, clipped or approvable action must satisfy, and lists every breach (a bid the strategy ignores,
a target it does not use, a change where nothing delivers or nothing is known, a target outside its
floor, ceiling, change limits or learning period, ...).
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

from bidloop.core.actions import (
    ACTION_ADAPTER,
    TARGET_KINDS,
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
from bidloop.core.decisions import Decision, Verdict
from bidloop.core.entities import BiddingStrategy, EntityKind, EntityRef, EntityState, MatchType, Platform, Status
from bidloop.core.limits import GuardrailLimits
from bidloop.core.metrics import Metrics
from bidloop.core.money import MAX_MICROS
from bidloop.core.snapshot import Snapshot
from bidloop.guardrails.filter import FilterContext

__all__ = ["FuzzCase", "random_case", "violations"]

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
_WORDS = ("shoes", "running", "trail", "casino", "cheap", "guaranteed", "free", "best", "ｃａｓｉｎｏ", "miracle", "x")
_BANNED_POOL = ("casino", "cheap", "miracle cure", "free money")
_CLAIM_POOL = ("guaranteed", "#1", "best")
_APPLICABLE = (Verdict.ALLOWED, Verdict.CLIPPED, Verdict.NEEDS_APPROVAL)


@dataclass
class FuzzCase:
    """One batch to filter: actions, snapshots keyed by account id, limits, context."""

    actions: list[object]
    snapshots: dict[str, Snapshot]
    limits: GuardrailLimits
    context: FilterContext
    notes: dict[str, Any] = field(default_factory=dict)


def _money(rng: random.Random) -> int:
    roll = rng.random()
    if roll < 0.05:
        return 0
    if roll < 0.1:
        return rng.randint(1, 1_000)
    if roll < 0.15:
        return rng.randint(MAX_MICROS // 10, MAX_MICROS)
    return rng.randint(50_000, 500_000_000)


_STRATEGIES = (*(None,) * 6, *(BiddingStrategy.MANUAL_CPC,) * 4, *BiddingStrategy)
"""Unknown (the sim, older snapshots) and manual CPC often, so bids still get judged on their merits."""
_BLOCKERS = ("DISAPPROVED", "PENDING_REVIEW", "CAMPAIGN_PAUSED", "ADSET_PAUSED", "ended")


def _history(rng: random.Random) -> dict[str, Any]:
    """Return an entity's numbers: none at all, a little (new or quiet), or plenty; per day or as a window."""
    roll = rng.random()
    if roll < 0.1:
        return {}
    n_days = rng.choice((1, 3, 6, 7, 8, 14, 14))
    first_active = rng.randint(0, n_days - 1) if rng.random() < 0.3 else 0
    per_day = rng.choice((0, 1, 5, 30, 200, 200, 200))
    cost = rng.choice((0, 1_000, 1_500_000, 20_000_000, 20_000_000, 20_000_000))
    days = [
        Metrics() if i < first_active else Metrics(impressions=per_day * 20, clicks=per_day, cost_micros=cost)
        for i in range(n_days)
    ]
    today = Metrics(clicks=rng.choice((0, 3, 40)), cost_micros=rng.choice((0, 2_000_000)))
    if rng.random() < 0.25:  # a client that gives the trailing window but no days (Google keywords)
        window = Metrics()
        for day in days[-7:]:
            window = window + day
        return {"trailing_7d": window, "today": today}
    return {"daily_history": days, "today": today}


def _levers(rng: random.Random, strategy: BiddingStrategy | None) -> dict[str, Any]:
    out: dict[str, Any] = {"bidding_strategy": strategy}
    if strategy is not None and strategy.uses_target_roas and rng.random() < 0.8:
        out["target_roas_bps"] = rng.choice((1, 4_000, 5_000, 30_000, 499_000, 900_000, rng.randint(1, 10**6)))
    if strategy is not None and strategy.uses_target_cpa and rng.random() < 0.8:
        out["target_cpa_micros"] = _money(rng)
    if rng.random() < 0.1:  # a target the strategy does not use, left over from an earlier strategy
        out.setdefault("target_roas_bps", rng.randint(1, 100_000))
    return out


def _snapshot(rng: random.Random, account_id: str, platform: Platform) -> Snapshot:
    entities: list[EntityState] = []

    def ref(kind: EntityKind, entity_id: str) -> EntityRef:
        return EntityRef(platform=platform, account_id=account_id, kind=kind, entity_id=entity_id)

    def status() -> Status:
        roll = rng.random()
        return Status.REMOVED if roll < 0.05 else Status.PAUSED if roll < 0.2 else Status.ENABLED

    def blocked() -> str | None:
        return rng.choice(_BLOCKERS) if rng.random() < 0.05 else None

    portfolios = [f"{account_id}-p{p}" for p in range(rng.randint(0, 2))]
    for pid in portfolios:
        strategy = rng.choice((BiddingStrategy.TARGET_ROAS, BiddingStrategy.TARGET_CPA, BiddingStrategy.OTHER))
        entities.append(
            EntityState(
                ref=ref(EntityKind.BIDDING_STRATEGY, pid),
                name=f"portfolio {pid}",
                **_levers(rng, strategy),
                **_history(rng),
            )
        )
    for c in range(rng.randint(1, 10)):
        cid = f"{account_id}-c{c}"
        strategy = rng.choice(_STRATEGIES)
        portfolio = rng.choice(portfolios) if portfolios and rng.random() < 0.3 else None
        entities.append(
            EntityState(
                ref=ref(EntityKind.CAMPAIGN, cid),
                name=f"campaign {c}",
                campaign_id=cid,
                status=status(),
                delivery_blocked_by=blocked(),
                daily_budget_micros=None if rng.random() < 0.1 else _money(rng),
                bidding_strategy_id=portfolio,
                bid_multiplier_max=rng.choice((1.0, 1.5, 2.0, 10.0)) if rng.random() < 0.2 else None,
                **_levers(rng, strategy),
                **_history(rng),
            )
        )
        for g in range(rng.randint(0, 3)):
            gid = f"{cid}-g{g}"
            entities.append(
                EntityState(
                    ref=ref(EntityKind.AD_GROUP, gid),
                    name=f"group {g}",
                    parent_id=cid,
                    campaign_id=cid,
                    status=status(),
                    delivery_blocked_by=blocked(),
                    daily_budget_micros=_money(rng) if platform is Platform.META and rng.random() < 0.5 else None,
                    cpc_bid_micros=None if rng.random() < 0.3 else _money(rng) // 100,
                    **_levers(rng, strategy if rng.random() < 0.8 else rng.choice(_STRATEGIES)),
                    **_history(rng),
                )
            )
            for k in range(rng.randint(0, 3)):
                entities.append(
                    EntityState(
                        ref=ref(EntityKind.KEYWORD, f"{gid}-k{k}"),
                        name=f"kw {k}",
                        parent_id=gid,
                        campaign_id=cid,
                        status=status(),
                        delivery_blocked_by=blocked(),
                        cpc_bid_micros=None if rng.random() < 0.1 else _money(rng) // 100,
                        bidding_strategy=strategy if rng.random() < 0.5 else None,  # often inherited, unsaid
                        text=" ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 3))),
                        match_type=rng.choice(list(MatchType)),
                        **_history(rng),
                    )
                )
            for a in range(rng.randint(0, 2)):
                entities.append(
                    EntityState(
                        ref=ref(EntityKind.CREATIVE, f"{gid}-ad{a}"),
                        name=f"ad {a}",
                        parent_id=gid,
                        campaign_id=cid,
                        status=status(),
                        delivery_blocked_by=blocked(),
                        text=" ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 4))),
                    )
                )
    total = sum(
        e.daily_budget_micros or 0 for e in entities if e.status is Status.ENABLED and e.ref.kind is EntityKind.CAMPAIGN
    )
    if rng.random() < 0.1:
        total = rng.randint(0, total + 1)  # a platform total that does not add up
    return Snapshot(
        account_id=account_id,
        platform=platform,
        currency=rng.choice(("USD", "USD", "EUR", "JPY")),
        as_of=NOW,
        account_daily_budget_micros=min(total, MAX_MICROS),
        entities=entities,
    )


def _pct(rng: random.Random) -> float:
    return rng.choice((0.5, 1.0, 5.0, 12.5, 20.0, 33.3, 50.0, 99.9, 100.0, rng.uniform(0.01, 100.0)))


def _overrides(rng: random.Random, ids: Sequence[str], h: float = 1.0) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if rng.random() < 0.4:
        out["max_change_pct"] = _pct(rng)
    if rng.random() < 0.2:
        out["max_change_micros"] = _money(rng)
    if rng.random() < 0.2:
        out["max_daily_change_pct"] = _pct(rng) * rng.choice((0.5, 1, 3))
    if rng.random() < 0.2:
        out["bid_floor_micros"] = _money(rng) // 1000
    if rng.random() < 0.2:
        out["bid_ceiling_micros"] = _money(rng) // 10
    if rng.random() < 0.15:
        out["budget_floor_micros"] = _money(rng)
    if rng.random() < 0.15:
        out["budget_ceiling_micros"] = _money(rng)
    if rng.random() < 0.15:
        out["min_budget_micros"] = _money(rng) // 10
    if rng.random() < 0.2:
        out["approval_above_micros"] = _money(rng) // 100
    if rng.random() < 0.2:
        out["cooldown_minutes"] = rng.choice((0.0, 5.0, 60.0, 240.0))
    if rng.random() < 0.2:
        out["max_budget_changes_per_hour"] = rng.randint(0, 5)
    if rng.random() < 0.2 * h and ids:
        out["protected_entity_ids"] = rng.sample(list(ids), k=min(len(ids), rng.randint(1, 3)))
    if rng.random() < 0.05 * h:
        start = NOW - timedelta(hours=rng.choice((1, 30)))
        out["freeze_windows"] = [{"start": start, "end": start + timedelta(hours=2), "reason": "sale launch"}]
    if rng.random() < 0.2:
        out["banned_terms"] = rng.sample(_BANNED_POOL, k=rng.randint(1, 2))
    if rng.random() < 0.2:
        out["target_max_change_pct"] = _pct(rng)
    if rng.random() < 0.15:
        out["target_max_daily_change_pct"] = _pct(rng) * rng.choice((0.5, 1, 3))
    if rng.random() < 0.15:
        out["target_roas_floor_bps"] = rng.choice((0, 5_000, 20_000, 40_000))
    if rng.random() < 0.15:
        out["target_roas_ceiling_bps"] = rng.choice((10_000, 35_000, 500_000))
    if rng.random() < 0.15:
        out["target_cpa_floor_micros"] = _money(rng) // 100
    if rng.random() < 0.15:
        out["target_cpa_ceiling_micros"] = _money(rng)
    if rng.random() < 0.1:
        out["bid_cap_floor_micros"] = _money(rng) // 1000
    if rng.random() < 0.1:
        out["bid_cap_ceiling_micros"] = _money(rng) // 10
    if rng.random() < 0.2:
        out["target_cooldown_days"] = rng.choice((0.0, 1.0, 7.0, 14.0))
    if rng.random() < 0.15:
        out["target_approval_above_pct"] = rng.choice((0.0, 5.0, 10.0, 100.0))
    if rng.random() < 0.2:
        out["min_clicks_to_act"] = rng.choice((0, 1, 30, 100))
    if rng.random() < 0.15:
        out["min_spend_to_act_micros"] = rng.choice((0, 1_000_000, 10_000_000))
    if rng.random() < 0.15:
        out["min_days_of_data"] = rng.choice((0, 1, 7, 14))
    return out


def _limits(rng: random.Random, snapshots: Mapping[str, Snapshot], h: float) -> GuardrailLimits:
    data: dict[str, Any] = {k: v for k, v in _overrides(rng, [], h).items() if k != "max_budget_changes_per_hour"}
    # The global floors must sit below their ceilings (the model refuses otherwise); scopes may still cross.
    data.pop("min_budget_micros", None)
    if data.get("bid_floor_micros", 50_000) > data.get("bid_ceiling_micros", 20_000_000):
        data.pop("bid_floor_micros", None)
        data.pop("bid_ceiling_micros", None)
    if data.get("budget_floor_micros", 0) > data.get("budget_ceiling_micros", 10_000_000_000):
        data.pop("budget_floor_micros", None)
        data.pop("budget_ceiling_micros", None)
    defaults = GuardrailLimits()
    for floor, ceiling in (
        ("bid_cap_floor_micros", "bid_cap_ceiling_micros"),
        ("target_roas_floor_bps", "target_roas_ceiling_bps"),
        ("target_cpa_floor_micros", "target_cpa_ceiling_micros"),
    ):
        if data.get(floor, getattr(defaults, floor)) > data.get(ceiling, getattr(defaults, ceiling)):
            data.pop(floor, None)
            data.pop(ceiling, None)
    data["claims"] = rng.sample(_CLAIM_POOL, k=rng.randint(0, 2))
    data["max_changes_per_run"] = rng.choice((0, 1, 3, 10, 200, 10_000)) if h >= 1 else 10_000
    if rng.random() < 0.4:
        data["account_daily_budget_cap_micros"] = min(_money(rng) * rng.randint(1, 20), MAX_MICROS)
    data["allow_total_budget_increase"] = rng.random() < 0.5
    accounts: dict[str, Any] = {}
    for account_id, snap in snapshots.items():
        if rng.random() < 0.5:
            ids = [e.ref.entity_id for e in snap.entities] + [e.ref.key for e in snap.entities[:2]]
            over = _overrides(rng, ids, h)
            if rng.random() < 0.3:
                over["account_daily_budget_cap_micros"] = min(_money(rng) * rng.randint(1, 20), MAX_MICROS)
            if rng.random() < 0.3:
                over["allow_total_budget_increase"] = rng.random() < 0.5
            if rng.random() < 0.3:
                over["max_changes_per_run"] = rng.randint(0, 20)
            campaigns = {}
            for e in snap.of_kind(EntityKind.CAMPAIGN):
                if rng.random() < 0.3:
                    c_over = _overrides(rng, ids, h)
                    c_over.pop("max_budget_changes_per_hour", None)
                    c_over["protected"] = rng.random() < 0.2 * h
                    campaigns[e.ref.entity_id] = c_over
            over["campaigns"] = campaigns
            accounts[account_id] = over
    data["accounts"] = accounts
    if len(snapshots) > 1 and rng.random() < 0.5:
        members = rng.sample(list(snapshots), k=rng.randint(1, len(snapshots)))
        if rng.random() < 0.2:
            members.append("not-in-batch")
        data["portfolios"] = {
            "p": {"account_ids": members, "daily_budget_cap_micros": min(_money(rng) * 10, MAX_MICROS)}
        }
    return GuardrailLimits.model_validate(data)


_BAD_NUMBERS: tuple[object, ...] = (
    float("nan"),
    float("inf"),
    float("-inf"),
    -1,
    -(10**12),
    MAX_MICROS + 1,
    10**30,
    1.5,
    "1000000",
    None,
    True,
)


def _new_value(rng: random.Random, old: int, h: float = 1.0) -> object:
    roll = rng.random() / h
    if roll < 0.06:
        return rng.choice(_BAD_NUMBERS)
    if roll < 0.12:
        return min(old * 1_000_000, MAX_MICROS * 10)  # unit confusion: major units sent as micros
    if roll < 0.16:
        return old // 1_000_000  # the other way round
    if roll < 0.22:
        return rng.choice((0, 1, MAX_MICROS))
    factor = rng.choice((0.0, 0.1, 0.5, 0.8, 0.95, 0.99, 1.0, 1.01, 1.05, 1.2, 1.5, 2.0, 10.0, rng.uniform(0, 3)))
    return max(0, min(int(old * factor) + rng.randint(-2, 2), MAX_MICROS))


def _construct(cls: type, **fields: Any) -> object:
    """Build an action; values pydantic would refuse are smuggled in with `model_construct`."""
    try:
        return cls(**fields)
    except (ValueError, TypeError):
        return cls.model_construct(**fields)  # type: ignore[attr-defined]


def _action(
    rng: random.Random, n: int, snapshots: Mapping[str, Snapshot], history: list[object], h: float, used: set[str]
) -> object:
    roll = rng.random() / h
    if history and roll < 0.05:
        return history[rng.randrange(len(history))]  # exact duplicate (same id)
    if history and roll < 0.1:
        prior = history[rng.randrange(len(history))]
        if isinstance(prior, SetBudget | SetBid | SetTargetRoas | SetTargetCpa):
            fields: dict[type, str] = {
                SetBudget: "new_daily_budget_micros",
                SetBid: "new_cpc_bid_micros",
                SetTargetRoas: "new_target_roas_bps",
                SetTargetCpa: "new_target_cpa_micros",
            }
            field_name = fields[type(prior)]
            return _construct(
                type(prior), **{**prior.__dict__, "action_id": f"a{n}", field_name: _new_value(rng, 10**6)}
            )
    if roll < 0.12:
        return rng.choice(("set_budget", 42, None, {"kind": "set_budget", "action_id": f"a{n}"}))
    snap = rng.choice(list(snapshots.values()))
    entity = rng.choice(snap.entities)
    for _ in range(3):  # mostly fresh entities when the case is mild, so most actions are judged on merit
        if entity.ref.key not in used or rng.random() < h:
            break
        entity = rng.choice(snap.entities)
    used.add(entity.ref.key)
    ref = entity.ref
    r2 = rng.random() / h
    if r2 < 0.04:
        ref = EntityRef(platform=ref.platform, account_id=ref.account_id, kind=ref.kind, entity_id=ref.entity_id + "x")
    elif r2 < 0.06:
        ref = EntityRef(platform=ref.platform, account_id="ghost", kind=ref.kind, entity_id=ref.entity_id)
    elif r2 < 0.08:
        other = rng.choice([p for p in Platform if p is not ref.platform])
        ref = EntityRef(platform=other, account_id=ref.account_id, kind=ref.kind, entity_id=ref.entity_id)
    elif r2 < 0.1:
        ref = EntityRef(
            platform=ref.platform, account_id=ref.account_id, kind=rng.choice(list(EntityKind)), entity_id=ref.entity_id
        )
    kind = rng.choice(
        ("set_budget", "set_budget", "set_bid", "set_bid", "roas", "cpa", "pause", "enable", "add_kw", "add_neg")
    )
    strategy = entity.bidding_strategy
    lever = "roas" if strategy in _USES_ROAS else "cpa" if strategy in _USES_CPA else "set_budget"
    if rng.random() < 0.85:
        kind = {
            EntityKind.CAMPAIGN: rng.choice(("set_budget", "set_budget", lever, lever, "roas", "cpa")),
            EntityKind.BIDDING_STRATEGY: rng.choice(("roas", "cpa")),
            EntityKind.KEYWORD: "set_bid",
            EntityKind.CREATIVE: rng.choice(("pause", "enable")),
        }.get(entity.ref.kind, rng.choice(("set_budget", "set_bid", "roas", "cpa", "add_kw", "add_neg")))
    common: dict[str, Any] = {
        "action_id": f"a{n}",
        "entity": ref,
        "agent": rng.choice(list(AgentName)),
        "reason": "fuzz",
    }
    stale = rng.random() < 0.05 * h
    if kind == "set_budget":
        old = entity.daily_budget_micros if entity.daily_budget_micros is not None else _money(rng)
        if stale:
            old = _money(rng)
        action = _construct(
            SetBudget, **common, old_daily_budget_micros=old, new_daily_budget_micros=_new_value(rng, old, h)
        )
    elif kind == "set_bid":
        old = entity.cpc_bid_micros if entity.cpc_bid_micros is not None else _money(rng) // 100
        if stale:
            old = _money(rng)
        action = _construct(SetBid, **common, old_cpc_bid_micros=old, new_cpc_bid_micros=_new_value(rng, old, h))
    elif kind == "roas":
        old = entity.target_roas_bps if entity.target_roas_bps is not None else rng.randint(1, 100_000)
        if stale:
            old = rng.randint(1, 10**6)
        action = _construct(
            SetTargetRoas, **common, old_target_roas_bps=old, new_target_roas_bps=_new_value(rng, old, h)
        )
    elif kind == "cpa":
        old = entity.target_cpa_micros if entity.target_cpa_micros is not None else _money(rng)
        if stale:
            old = _money(rng)
        action = _construct(
            SetTargetCpa, **common, old_target_cpa_micros=old, new_target_cpa_micros=_new_value(rng, old, h)
        )
    elif kind in ("pause", "enable"):
        cls = PauseCreative if kind == "pause" else EnableCreative
        old_status = entity.status if not stale else rng.choice(list(Status))
        action = _construct(cls, **common, old_status=old_status)
    elif kind == "add_kw":
        text = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 3)))
        bid: object = _new_value(rng, rng.randint(10_000, 5_000_000))
        action = _construct(AddKeyword, **common, text=text, match_type=rng.choice(list(MatchType)), cpc_bid_micros=bid)
    else:
        text = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 3)))
        action = _construct(AddNegativeKeyword, **common, text=text)
    if rng.random() < 0.03 and isinstance(action, SetBudget | SetBid | SetTargetRoas | PauseCreative | AddKeyword):
        try:
            return ACTION_ADAPTER.dump_python(action, mode="json", warnings=False)  # a checkpoint's dict shape
        except (ValueError, TypeError):
            return action
    return action


def random_case(rng: random.Random, *, n_actions: int = 200) -> FuzzCase:
    """Return one adversarial batch (accounts, configuration, context, actions) drawn from `rng`."""
    platforms = list(Platform)
    snapshots: dict[str, Snapshot] = {}
    for i in range(rng.randint(1, 3)):
        account_id = f"acct{i}"
        snapshots[account_id] = _snapshot(rng, account_id, rng.choice(platforms))
    h = rng.choice((0.1, 0.3, 1.0))
    limits = _limits(rng, snapshots, h)
    keys = [e.ref.key for s in snapshots.values() for e in s.entities]
    recent: dict[str, list[datetime]] = {}
    today_pct: dict[str, float] = {}
    today_micros: dict[str, int] = {}
    targets: dict[str, list[datetime]] = {}
    targets_pct: dict[str, float] = {}
    for key in keys:
        if rng.random() < 0.15:
            targets[key] = [NOW - timedelta(days=rng.choice((0.5, 1.5, 6.9, 7.1, 13, 30, -1)))]
        if rng.random() < 0.1:
            targets_pct[key] = rng.choice((0.0, 5.0, 14.9, 15.0, 40.0, -3.0, float("nan"), float("inf")))
        roll = rng.random()
        if roll < 0.15 * h:
            recent[key] = [
                NOW - timedelta(minutes=rng.choice((1, 10, 30, 59, 61, 90, 600, -5))) for _ in range(rng.randint(1, 6))
            ]
        if rng.random() < 0.15:
            today_pct[key] = rng.choice((0.0, 5.0, 19.9, 49.9, 50.0, 80.0, -3.0, float("nan"), float("inf")))
        if rng.random() < 0.1:
            today_micros[key] = rng.choice((0, 1_000_000, 10**9, -7))
    context = FilterContext(
        run_id="fuzz",
        actor=rng.choice(("cli", "schedule", "chat")),
        now=NOW,
        recent_changes=recent,
        changes_today_pct=today_pct,
        changes_today_micros=today_micros,
        changes_this_run={a: rng.randint(0, 5) for a in snapshots if rng.random() < 0.3},
        target_changes=targets,
        target_changes_today_pct=targets_pct,
    )
    history: list[object] = []
    used: set[str] = set()
    for n in range(n_actions):
        history.append(_action(rng, n, snapshots, history, h, used))
    return FuzzCase(actions=history, snapshots=snapshots, limits=limits, context=context, notes={"hostility": h})


# -- the independent checker --------------------------------------------------------------------------


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t


def _words(text: str) -> str:
    return " " + re.sub(r"[\W_]+", " ", text.casefold()) + " "


def _field(action: Any) -> str:
    if isinstance(action, SetBudget):
        return "budget"
    if isinstance(action, SetBid):
        return "bid"
    if isinstance(action, SetTargetRoas | SetTargetCpa):
        return action.kind
    if isinstance(action, AddKeyword | AddNegativeKeyword):
        return f"{action.kind}:{action.match_type.value}:{' '.join(action.text.casefold().split())}"
    return "status"


_USES_BIDS = {BiddingStrategy.MANUAL_CPC, BiddingStrategy.BID_CAP}
_USES_ROAS = {BiddingStrategy.TARGET_ROAS, BiddingStrategy.MAXIMIZE_CONVERSION_VALUE, BiddingStrategy.MIN_ROAS}
_USES_CPA = {BiddingStrategy.TARGET_CPA, BiddingStrategy.MAXIMIZE_CONVERSIONS, BiddingStrategy.COST_CAP}
_Index = Mapping[tuple[EntityKind, str], EntityState]


def _campaign(entity: EntityState, index: _Index) -> EntityState | None:
    if entity.ref.kind in (EntityKind.CAMPAIGN, EntityKind.BIDDING_STRATEGY) or not entity.campaign_id:
        return None
    return index.get((EntityKind.CAMPAIGN, entity.campaign_id))


def _not_delivering(entity: EntityState, index: _Index) -> bool:
    """Return True if the entity, its ad group or its campaign stops delivery (own pause aside)."""
    if entity.delivery_blocked_by:
        return True
    parents: list[EntityState | None] = []
    if entity.ref.kind in (EntityKind.KEYWORD, EntityKind.CREATIVE) and entity.parent_id:
        parents.append(index.get((EntityKind.AD_GROUP, entity.parent_id)))
    parents.append(_campaign(entity, index))
    return any(p is not None and (p.status is not Status.ENABLED or p.delivery_blocked_by) for p in parents)


def _numbers(entity: EntityState) -> tuple[int, int, int]:
    """Return (clicks, spend, days since first activity) from the entity's own records, independently."""
    if entity.daily_history:
        clicks = sum(d.clicks for d in entity.daily_history)
        cost = sum(d.cost_micros for d in entity.daily_history)
    else:
        clicks, cost = entity.trailing_7d.clicks, entity.trailing_7d.cost_micros
    active = [i for i, d in enumerate(entity.daily_history) if d.impressions or d.clicks or d.cost_micros]
    days = len(entity.daily_history) - active[0] if active else 0
    return clicks + entity.today.clicks, cost + entity.today.cost_micros, days


def _enough_data(entity: EntityState, index: _Index, eff: Any) -> bool:
    clicks, cost, days = _numbers(entity)
    if entity.ref.kind is EntityKind.BIDDING_STRATEGY and not (clicks or cost or days):
        for member in index.values():
            if member.ref.kind is EntityKind.CAMPAIGN and member.bidding_strategy_id == entity.ref.entity_id:
                m_clicks, m_cost, m_days = _numbers(member)
                clicks, cost, days = clicks + m_clicks, cost + m_cost, max(days, m_days)
    elif not entity.daily_history and entity.ref.kind is not EntityKind.CAMPAIGN:
        campaign = _campaign(entity, index)
        if campaign is not None:
            days = _numbers(campaign)[2]
    return clicks >= eff.min_clicks_to_act and cost >= eff.min_spend_to_act_micros and days >= eff.min_days_of_data


def _lever_breaches(f: Any, entity: EntityState, index: _Index, eff: Any, ctx: FilterContext) -> list[str]:
    """Return what a passed action breaks of the lever rules: strategy, delivery, evidence, learning period."""
    out: list[str] = []
    campaign = _campaign(entity, index)
    strategy = entity.bidding_strategy or (campaign.bidding_strategy if campaign is not None else None)
    if isinstance(f, SetBid) and strategy is not None and strategy not in _USES_BIDS:
        out.append(f"a bid passed under {strategy}, which ignores bids")
    if isinstance(f, SetTargetRoas | SetTargetCpa):
        portfolio = entity.bidding_strategy_id or (campaign.bidding_strategy_id if campaign is not None else None)
        if portfolio and entity.ref.kind is not EntityKind.BIDDING_STRATEGY:
            out.append(f"a target passed beside portfolio strategy {portfolio}")
        uses = _USES_ROAS if isinstance(f, SetTargetRoas) else _USES_CPA
        if strategy is not None and strategy not in uses:
            out.append(f"a {f.kind} passed under {strategy}, which does not use it")
        changes = [_utc(t) for t in ctx.target_changes.get(entity.ref.key, ())]
        if eff.target_cooldown_days > 0 and any(
            t > _utc(ctx.now) - timedelta(days=eff.target_cooldown_days) for t in changes
        ):
            out.append("a target changed within its learning period")
    if isinstance(f, EnableCreative) and entity.delivery_blocked_by:
        out.append(f"a creative that cannot deliver ({entity.delivery_blocked_by}) was enabled")
    if isinstance(f, SetBudget | SetBid | SetTargetRoas | SetTargetCpa | AddKeyword) and _not_delivering(entity, index):
        out.append("a money change passed where nothing delivers")
    if isinstance(f, SetBudget | SetBid | SetTargetRoas | SetTargetCpa) and not _enough_data(entity, index, eff):
        out.append("a change passed without enough data")
    return out


def _bid_range(entity: EntityState, index: _Index, eff: Any) -> tuple[int, Fraction]:
    """Return (floor, ceiling) a bid itself must respect: by what it means, and within ceiling / multiplier."""
    campaign = _campaign(entity, index)
    strategy = entity.bidding_strategy or (campaign.bidding_strategy if campaign is not None else None)
    if strategy is BiddingStrategy.BID_CAP:
        return eff.bid_cap_floor_micros, Fraction(eff.bid_cap_ceiling_micros)
    multiplier = entity.bid_multiplier_max
    if multiplier is None and campaign is not None:
        multiplier = campaign.bid_multiplier_max
    ceiling = Fraction(eff.bid_ceiling_micros)
    if multiplier is not None and multiplier > 1:
        ceiling = ceiling / Fraction(multiplier)
    return eff.bid_floor_micros, ceiling


def violations(case: FuzzCase, decisions: Sequence[Decision]) -> list[str]:
    """Return every way in which `decisions` let an action through outside `case.limits` (empty: none)."""
    out: list[str] = []
    if len(decisions) != len(case.actions):
        return [f"{len(decisions)} decisions for {len(case.actions)} actions"]
    limits = case.limits
    ctx = case.context
    seen_fields: set[tuple[str, str]] = set()
    seen_ids: set[str] = set()
    per_account: dict[str, int] = {}
    budget_moves: dict[str, list[tuple[int, bool]]] = {}  # account -> (delta, enabled)
    indexes = {a: {(e.ref.kind, e.ref.entity_id): e for e in s.entities} for a, s in case.snapshots.items()}
    for raw, d in zip(case.actions, decisions, strict=True):
        if d.verdict not in _APPLICABLE:
            if d.final_action is not None:
                out.append(f"{d.action_id}: blocked but carries a final action")
            continue
        f = d.final_action
        if f is None:
            out.append(f"{d.action_id}: {d.verdict} without a final action")
            continue
        tag = f"{d.action_id} ({d.verdict.value}, {d.rule_id})"
        try:
            clean = ACTION_ADAPTER.validate_python(ACTION_ADAPTER.dump_python(f))
        except (ValueError, TypeError) as exc:
            out.append(f"{tag}: final action is invalid: {exc}")
            continue
        if clean != f:
            out.append(f"{tag}: final action does not survive validation unchanged")
        try:
            asked: Any = raw if not isinstance(raw, Mapping) else ACTION_ADAPTER.validate_python(raw)
        except (ValueError, TypeError):
            out.append(f"{tag}: a malformed input was let through")
            continue
        if type(asked) is not type(f) or getattr(asked, "action_id", None) != f.action_id or asked.entity != f.entity:
            out.append(f"{tag}: final action is not the proposed one")
            continue
        if f.action_id in seen_ids:
            out.append(f"{tag}: a second action with the same id passed")
        seen_ids.add(f.action_id)
        ref = f.entity
        key = (ref.key, _field(f))
        if key in seen_fields:
            out.append(f"{tag}: second action on the same entity field passed")
        seen_fields.add(key)
        if ref.kind not in TARGET_KINDS[f.kind]:
            out.append(f"{tag}: {f.kind} on a {ref.kind.value}")
        snap = case.snapshots.get(ref.account_id)
        entity = None
        if snap is not None and snap.platform is ref.platform:
            entity = next(
                (e for e in snap.entities if e.ref.kind is ref.kind and e.ref.entity_id == ref.entity_id), None
            )
        if entity is None or snap is None:
            out.append(f"{tag}: entity does not exist")
            continue
        if entity.status is Status.REMOVED:
            out.append(f"{tag}: entity is removed")
        campaign_id = entity.campaign_id or (entity.ref.entity_id if entity.ref.kind is EntityKind.CAMPAIGN else None)
        eff = limits.resolve(ref.platform, ref.account_id, campaign_id)
        index = indexes[ref.account_id]
        out.extend(f"{tag}: {breach}" for breach in _lever_breaches(f, entity, index, eff, ctx))
        if eff.protected or {ref.entity_id, ref.key, entity.campaign_id, entity.parent_id, ref.account_id} & set(
            eff.protected_entity_ids
        ):
            out.append(f"{tag}: protected entity changed")
        if any(w.start <= _utc(ctx.now) < w.end for w in eff.freeze_windows):
            out.append(f"{tag}: changed inside a freeze window")
        recent = [_utc(t) for t in ctx.recent_changes.get(ref.key, ())]
        if eff.cooldown_minutes > 0 and any(
            t > _utc(ctx.now) - timedelta(minutes=eff.cooldown_minutes) for t in recent
        ):
            out.append(f"{tag}: edited within the cooldown")
        if isinstance(f, SetBudget) and eff.max_budget_changes_per_hour is not None:
            in_hour = sum(1 for t in recent if t > _utc(ctx.now) - timedelta(hours=1))
            if in_hour + 1 > eff.max_budget_changes_per_hour:
                out.append(f"{tag}: more budget changes per hour than the platform allows")
        per_account[ref.account_id] = per_account.get(ref.account_id, 0) + 1
        text = f.text if isinstance(f, AddKeyword) else entity.text if isinstance(f, EnableCreative) else None
        if text:
            hay = _words(text)
            for term in eff.banned_terms:
                if _words(term) in hay:
                    out.append(f"{tag}: text {text!r} with banned term {term!r} passed")
            if d.verdict is not Verdict.NEEDS_APPROVAL and any(_words(c) in hay for c in eff.claims if c.strip("#")):
                out.append(f"{tag}: text {text!r} with a claim passed without approval")
        if isinstance(f, PauseCreative | EnableCreative):
            if entity.status is not f.old_status or f.old_status is f.new_status:
                out.append(f"{tag}: status action is stale or changes nothing")
            continue
        if isinstance(f, AddNegativeKeyword):
            continue
        if isinstance(f, AddKeyword):
            low, high = _bid_range(entity, index, eff)
            if not low <= f.cpc_bid_micros <= high:
                out.append(f"{tag}: keyword bid {f.cpc_bid_micros} not in [{low}, {float(high)}]")
            if f.cpc_bid_micros > eff.approval_above_micros and d.verdict is not Verdict.NEEDS_APPROVAL:
                out.append(f"{tag}: keyword bid above the approval threshold passed without approval")
            continue
        old, new = int(f.old_value), int(f.new_value)
        is_target = isinstance(f, SetTargetRoas | SetTargetCpa)
        currents: dict[type, int | None] = {
            SetBudget: entity.daily_budget_micros,
            SetBid: entity.cpc_bid_micros,
            SetTargetRoas: entity.target_roas_bps,
            SetTargetCpa: entity.target_cpa_micros,
        }
        current = currents[type(f)]
        if current != old:
            out.append(f"{tag}: old value {old} is not the current {current}")
        asked_new = int(asked.new_value)
        delta = new - old
        if delta == 0:
            out.append(f"{tag}: passes a change of nothing")
        if (delta > 0) != (asked_new > old) or abs(delta) > abs(asked_new - old):
            out.append(f"{tag}: clipped value {new} is not between {old} and the asked {asked_new}")
        per_action_pct = eff.target_max_change_pct if is_target else eff.max_change_pct
        if abs(delta) * 100 > Fraction(old) * Fraction(per_action_pct):
            out.append(f"{tag}: change {delta} exceeds {per_action_pct} % of {old}")
        if not is_target and eff.max_change_micros is not None and abs(delta) > eff.max_change_micros:
            out.append(f"{tag}: change {delta} exceeds {eff.max_change_micros} micros")
        used_map = ctx.target_changes_today_pct if is_target else ctx.changes_today_pct
        daily_pct = eff.target_max_daily_change_pct if is_target else eff.max_daily_change_pct
        used_pct = used_map.get(ref.key, 0.0)
        used_pct = math.inf if math.isnan(used_pct) else max(used_pct, 0.0)
        left = Fraction(daily_pct) - Fraction(used_pct) if math.isfinite(used_pct) else Fraction(-1)
        if abs(delta) * 100 > max(left, Fraction(0)) * old:
            out.append(f"{tag}: change {delta} exceeds what is left of the daily {daily_pct} %")
        if isinstance(f, SetTargetRoas) and not eff.target_roas_floor_bps <= new <= eff.target_roas_ceiling_bps:
            out.append(f"{tag}: ROAS target {new} outside [{eff.target_roas_floor_bps}, {eff.target_roas_ceiling_bps}]")
        if isinstance(f, SetTargetCpa) and not eff.target_cpa_floor_micros <= new <= eff.target_cpa_ceiling_micros:
            out.append(
                f"{tag}: CPA target {new} outside [{eff.target_cpa_floor_micros}, {eff.target_cpa_ceiling_micros}]"
            )
        looser = delta > 0 if isinstance(f, SetTargetCpa) else delta < 0
        if (
            is_target
            and looser
            and abs(delta) * 100 > Fraction(old) * Fraction(eff.target_approval_above_pct)
            and d.verdict is not Verdict.NEEDS_APPROVAL
        ):
            out.append(f"{tag}: a target loosened beyond the approval threshold passed without approval")
        if not is_target and eff.max_daily_change_micros is not None:
            used = max(ctx.changes_today_micros.get(ref.key, 0), 0)
            if abs(delta) > max(eff.max_daily_change_micros - used, 0):
                out.append(f"{tag}: change exceeds the absolute daily limit")
        if isinstance(f, SetBid):
            low, high = _bid_range(entity, index, eff)
            if not low <= new <= high:
                out.append(f"{tag}: bid {new} outside [{low}, {float(high)}]")
        if isinstance(f, SetBudget):
            low = max(eff.min_budget_micros, eff.budget_floor_micros)
            if not low <= new <= eff.budget_ceiling_micros:
                out.append(f"{tag}: budget {new} outside [{low}, {eff.budget_ceiling_micros}]")
            budget_moves.setdefault(ref.account_id, []).append((delta, entity.status is Status.ENABLED))
        money = not isinstance(f, SetTargetRoas)  # a ROAS is not money: its threshold is the loosening above
        if money and delta > eff.approval_above_micros and d.verdict is not Verdict.NEEDS_APPROVAL:
            out.append(f"{tag}: increase {delta} above the approval threshold passed without approval")
    for account_id, count in per_account.items():
        snap = case.snapshots[account_id]
        cap_cfg, allow, max_changes = limits.account_cap(snap.platform, account_id)
        done = max(ctx.changes_this_run.get(account_id, 0), 0)
        if count + done > max_changes and count > 0:
            out.append(f"account {account_id}: {count} changes pass, {done} done, cap {max_changes}")
    totals: dict[str, tuple[int, int]] = {}
    for account_id, moves in budget_moves.items():
        snap = case.snapshots[account_id]
        cap_cfg, allow, _ = limits.account_cap(snap.platform, account_id)
        current = snap.account_daily_budget_micros
        cap = (
            (cap_cfg if cap_cfg is not None else current)
            if allow
            else min(current, cap_cfg if cap_cfg is not None else current)
        )
        increases = sum(dl for dl, _ in moves if dl > 0)
        freed = sum(dl for dl, enabled in moves if dl < 0 and enabled)
        totals[account_id] = (increases, freed)
        if increases > 0 and current + freed + increases > cap:
            out.append(
                f"account {account_id}: budgets rise by {increases} to {current + freed + increases} > cap {cap}"
            )
    for name, portfolio in limits.portfolios.items():
        increases = sum(totals.get(a, (0, 0))[0] for a in portfolio.account_ids)
        if not increases:
            continue
        if any(a not in case.snapshots for a in portfolio.account_ids):
            out.append(f"portfolio {name}: increases passed without every account's snapshot")
            continue
        current = sum(case.snapshots[a].account_daily_budget_micros for a in portfolio.account_ids)
        freed = sum(totals.get(a, (0, 0))[1] for a in portfolio.account_ids)
        if current + freed + increases > portfolio.daily_budget_cap_micros:
            out.append(f"portfolio {name}: budgets rise above its cap")
    return out

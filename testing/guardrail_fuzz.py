"""Generate adversarial batches for the filter and check every verdict against the limits independently.

Used by the property tests (`tests/unit/test_guardrails_properties.py`) and the fuzz benchmark
(`bench/guardrail_fuzz.py`). `random_case` builds accounts, a configuration and a batch of actions
from one `random.Random` (NaN, infinities, negative and huge values smuggled in with
`model_construct`, values a million times off, stale and unknown entities, duplicates, conflicts,
banned words, dict-shaped and non-action inputs). `violations` re-derives, without the filter's own
code paths, what an allowed, clipped or approvable action must satisfy, and lists every breach.
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
)
from bidloop.core.decisions import Decision, Verdict
from bidloop.core.entities import EntityKind, EntityRef, EntityState, MatchType, Platform, Status
from bidloop.core.limits import GuardrailLimits
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


def _snapshot(rng: random.Random, account_id: str, platform: Platform) -> Snapshot:
    entities: list[EntityState] = []

    def ref(kind: EntityKind, entity_id: str) -> EntityRef:
        return EntityRef(platform=platform, account_id=account_id, kind=kind, entity_id=entity_id)

    def status() -> Status:
        roll = rng.random()
        return Status.REMOVED if roll < 0.05 else Status.PAUSED if roll < 0.2 else Status.ENABLED

    for c in range(rng.randint(1, 10)):
        cid = f"{account_id}-c{c}"
        entities.append(
            EntityState(
                ref=ref(EntityKind.CAMPAIGN, cid),
                name=f"campaign {c}",
                campaign_id=cid,
                status=status(),
                daily_budget_micros=None if rng.random() < 0.1 else _money(rng),
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
                    daily_budget_micros=_money(rng) if platform is Platform.META and rng.random() < 0.5 else None,
                    cpc_bid_micros=None if rng.random() < 0.3 else _money(rng) // 100,
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
                        cpc_bid_micros=None if rng.random() < 0.1 else _money(rng) // 100,
                        text=" ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 3))),
                        match_type=rng.choice(list(MatchType)),
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
        if isinstance(prior, SetBudget | SetBid):
            field_name = "new_daily_budget_micros" if isinstance(prior, SetBudget) else "new_cpc_bid_micros"
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
    kind = rng.choice(("set_budget", "set_budget", "set_bid", "set_bid", "pause", "enable", "add_kw", "add_neg"))
    if rng.random() < 0.85:
        kind = {
            EntityKind.CAMPAIGN: "set_budget",
            EntityKind.KEYWORD: "set_bid",
            EntityKind.CREATIVE: rng.choice(("pause", "enable")),
        }.get(entity.ref.kind, rng.choice(("set_budget", "set_bid", "add_kw", "add_neg")))
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
    if rng.random() < 0.03 and isinstance(action, SetBudget | SetBid | PauseCreative | AddKeyword):
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
    for key in keys:
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
    if isinstance(action, AddKeyword | AddNegativeKeyword):
        return f"{action.kind}:{action.match_type.value}:{' '.join(action.text.casefold().split())}"
    return "status"


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
            if not eff.bid_floor_micros <= f.cpc_bid_micros <= eff.bid_ceiling_micros:
                out.append(
                    f"{tag}: keyword bid {f.cpc_bid_micros} not in [{eff.bid_floor_micros}, {eff.bid_ceiling_micros}]"
                )
            if f.cpc_bid_micros > eff.approval_above_micros and d.verdict is not Verdict.NEEDS_APPROVAL:
                out.append(f"{tag}: keyword bid above the approval threshold passed without approval")
            continue
        old, new = int(f.old_value), int(f.new_value)
        current = entity.daily_budget_micros if isinstance(f, SetBudget) else entity.cpc_bid_micros
        if current != old:
            out.append(f"{tag}: old value {old} is not the current {current}")
        asked_new = int(asked.new_value)
        delta = new - old
        if delta == 0:
            out.append(f"{tag}: passes a change of nothing")
        if (delta > 0) != (asked_new > old) or abs(delta) > abs(asked_new - old):
            out.append(f"{tag}: clipped value {new} is not between {old} and the asked {asked_new}")
        if abs(delta) * 100 > Fraction(old) * Fraction(eff.max_change_pct):
            out.append(f"{tag}: change {delta} exceeds {eff.max_change_pct} % of {old}")
        if eff.max_change_micros is not None and abs(delta) > eff.max_change_micros:
            out.append(f"{tag}: change {delta} exceeds {eff.max_change_micros} micros")
        used_pct = ctx.changes_today_pct.get(ref.key, 0.0)
        used_pct = math.inf if math.isnan(used_pct) else max(used_pct, 0.0)
        left = Fraction(eff.max_daily_change_pct) - Fraction(used_pct) if math.isfinite(used_pct) else Fraction(-1)
        if abs(delta) * 100 > max(left, Fraction(0)) * old:
            out.append(f"{tag}: change {delta} exceeds what is left of the daily {eff.max_daily_change_pct} %")
        if eff.max_daily_change_micros is not None:
            used = max(ctx.changes_today_micros.get(ref.key, 0), 0)
            if abs(delta) > max(eff.max_daily_change_micros - used, 0):
                out.append(f"{tag}: change exceeds the absolute daily limit")
        if isinstance(f, SetBid) and not eff.bid_floor_micros <= new <= eff.bid_ceiling_micros:
            out.append(f"{tag}: bid {new} outside [{eff.bid_floor_micros}, {eff.bid_ceiling_micros}]")
        if isinstance(f, SetBudget):
            low = max(eff.min_budget_micros, eff.budget_floor_micros)
            if not low <= new <= eff.budget_ceiling_micros:
                out.append(f"{tag}: budget {new} outside [{low}, {eff.budget_ceiling_micros}]")
            budget_moves.setdefault(ref.account_id, []).append((delta, entity.status is Status.ENABLED))
        if delta > eff.approval_above_micros and d.verdict is not Verdict.NEEDS_APPROVAL:
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

"""Fuzz the safe-action filter and measure its throughput.

Runs adversarial batches (NaN, infinities, negative and huge values, unit slips, unknown entities,
duplicates, conflicts, random configurations) through `bidloop.guardrails.evaluate`, checks every
verdict with the independent checker, and times the filter against an in-process baseline: a no-op
filter that lets every action through unchanged (the floor cost of building one decision per action).
Also times one realistic batch of 10,000 well-formed actions on one account.

    python bench/guardrail_fuzz.py [--actions 300000] [--batch 200] [--seed 0]

Prints a table, then (last line) one JSON object with `actions_tried`, `violations_passed` (must be 0),
`actions_per_s` and the rest.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime

from bidloop.core.actions import AgentName, SetBid, SetBudget
from bidloop.core.decisions import Decision, Verdict
from bidloop.core.entities import EntityKind, EntityRef, EntityState, Platform
from bidloop.core.limits import GuardrailLimits
from bidloop.core.snapshot import Snapshot
from bidloop.guardrails import FilterContext, evaluate
from bidloop.testing.guardrail_fuzz import random_case, violations


def pass_through(actions: Sequence[object]) -> list[Decision]:
    """Baseline: allow everything that is an action, as it is (what no filter at all would cost)."""
    return [
        Decision(
            action_id=getattr(a, "action_id", "?"),
            verdict=Verdict.ALLOWED,
            rule_id="none",
            message="allowed",
            final_action=a if isinstance(a, SetBudget | SetBid) else None,
        )
        for a in actions
    ]


def realistic_batch(n_pairs: int = 5_000) -> tuple[list[object], dict[str, Snapshot], FilterContext]:
    """One Google-like account: n campaigns and n keywords, one budget and one bid action on each."""
    now = datetime(2026, 11, 21, 12, tzinfo=UTC)
    rng = random.Random(3)
    entities: list[EntityState] = []
    actions: list[object] = []
    for i in range(n_pairs):
        budget = rng.randint(20, 500) * 1_000_000
        bid = rng.randint(30, 300) * 10_000
        camp = EntityRef(platform=Platform.GOOGLE_ADS, account_id="a", kind=EntityKind.CAMPAIGN, entity_id=f"c{i}")
        kw = EntityRef(platform=Platform.GOOGLE_ADS, account_id="a", kind=EntityKind.KEYWORD, entity_id=f"k{i}")
        entities.append(EntityState(ref=camp, name=f"C{i}", campaign_id=f"c{i}", daily_budget_micros=budget))
        entities.append(EntityState(ref=kw, name=f"K{i}", campaign_id=f"c{i}", cpc_bid_micros=bid))
        actions.append(SetBudget(action_id=f"b{i}", entity=camp, agent=AgentName.BID_SHIFTER, reason="shift",
                                 old_daily_budget_micros=budget,
                                 new_daily_budget_micros=budget * rng.choice((70, 90, 110, 130)) // 100))  # fmt: skip
        new_bid = bid * rng.choice((85, 105, 140)) // 100
        actions.append(SetBid(action_id=f"k{i}", entity=kw, agent=AgentName.BID_SHIFTER, reason="lift",
                              old_cpc_bid_micros=bid, new_cpc_bid_micros=new_bid))  # fmt: skip
    total = sum(e.daily_budget_micros or 0 for e in entities)
    snap = Snapshot(account_id="a", platform=Platform.GOOGLE_ADS, as_of=now, account_daily_budget_micros=total,
                    entities=entities)  # fmt: skip
    return actions, {"a": snap}, FilterContext(run_id="bench", actor="schedule", now=now)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actions", type=int, default=300_000, help="adversarial actions to try")
    parser.add_argument("--batch", type=int, default=200, help="actions per batch (one configuration each)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    tried = passed_through = violation_count = 0
    filter_s = baseline_s = 0.0
    verdicts: Counter[str] = Counter()
    rules_hit: Counter[str] = Counter()
    examples: list[str] = []
    case_no = 0
    started = time.perf_counter()
    while tried < args.actions:
        case = random_case(random.Random(args.seed * 1_000_003 + case_no), n_actions=args.batch)
        case_no += 1
        t0 = time.perf_counter()
        decisions = evaluate(case.actions, case.snapshots, case.limits, context=case.context)
        t1 = time.perf_counter()
        pass_through(case.actions)
        t2 = time.perf_counter()
        filter_s += t1 - t0
        baseline_s += t2 - t1
        found = violations(case, decisions)
        violation_count += len(found)
        examples.extend(found[: max(0, 5 - len(examples))])
        tried += len(case.actions)
        passed_through += sum(d.verdict is not Verdict.BLOCKED for d in decisions)
        verdicts.update(d.verdict.value for d in decisions)
        rules_hit.update(d.rule_id for d in decisions)

    actions, snapshots, context = realistic_batch()
    limits = GuardrailLimits(max_changes_per_run=100_000)
    evaluate(actions[:100], snapshots, limits, context=context)  # warm caches
    ten_k = []
    for _ in range(3):
        t0 = time.perf_counter()
        evaluate(actions, snapshots, limits, context=context)
        ten_k.append(time.perf_counter() - t0)
    ten_k_s = min(ten_k)

    actions_per_s = tried / filter_s if filter_s else 0.0
    baseline_per_s = tried / baseline_s if baseline_s else 0.0
    print("guardrail fuzz")
    print(f"  {'configurations (batches)':<40}{case_no:>14,}")
    print(f"  {'actions tried':<40}{tried:>14,}")
    print(f"  {'let through (allowed/clipped/approval)':<40}{passed_through:>14,}")
    print(f"  {'violations passed (must be 0)':<40}{violation_count:>14,}")
    print(f"  {'filter throughput (actions/s)':<40}{actions_per_s:>14,.0f}")
    print(f"  {'baseline pass-through (actions/s)':<40}{baseline_per_s:>14,.0f}")
    print(f"  {'filter cost vs baseline (x)':<40}{baseline_per_s / actions_per_s if actions_per_s else 0:>14.2f}")
    print(f"  {'10,000 realistic actions (s, best of 3)':<40}{ten_k_s:>14.3f}")
    print(f"  {'wall time (s)':<40}{time.perf_counter() - started:>14.1f}")
    print("verdicts: " + ", ".join(f"{k} {v:,}" for k, v in verdicts.most_common()))
    print("rules:    " + ", ".join(f"{k} {v:,}" for k, v in rules_hit.most_common(12)))
    for line in examples:
        print("VIOLATION:", line)
    print(
        json.dumps(
            {
                "actions_tried": tried,
                "violations_passed": violation_count,
                "actions_per_s": round(actions_per_s),
                "baseline_actions_per_s": round(baseline_per_s),
                "filter_vs_baseline_slowdown": round(baseline_per_s / actions_per_s, 2) if actions_per_s else None,
                "let_through": passed_through,
                "configurations": case_no,
                "ten_k_batch_s": round(ten_k_s, 4),
            }
        )
    )


if __name__ == "__main__":
    main()

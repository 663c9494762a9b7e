"""Measure the operator prompt parser on the labelled prompts in tests/data/operator_prompts.jsonl.

Prints a table per parser and split (train = prompts the rules were tuned on, test = held out, written
before tuning), then, as the last line, one JSON object with the headline figures for the deterministic
parser on all prompts (`intent_accuracy`, `entity_f1`, `hostile_refused`, ...) and, when
`BIDLOOP_LLM__MODEL` is configured, the same for the LLM under `llm_*` keys.

Run: `python bench/intent_accuracy.py` from the repository root.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bidloop.agents.operator_intent import EntityCatalog, IntentKind, OperatorIntent, parse_prompt
from bidloop.core.entities import EntityKind, EntityRef, EntityState, Platform

DATASET = Path(__file__).resolve().parent.parent / "tests" / "data" / "operator_prompts.jsonl"


def demo_catalog() -> EntityCatalog:
    """Return the demo market's entities the labels refer to (Meta ad sets 115-126, Google, Amazon)."""
    rows: list[tuple[Platform, str, EntityKind, str, str]] = [
        (Platform.META, "sim-meta", EntityKind.AD_GROUP, "115", "Prospecting – Broad 25-44"),
        (Platform.META, "sim-meta", EntityKind.AD_GROUP, "116", "Prospecting – Interests Running"),
        (Platform.META, "sim-meta", EntityKind.AD_GROUP, "117", "Lookalike 1% – Purchasers"),
        (Platform.META, "sim-meta", EntityKind.AD_GROUP, "118", "Retargeting – Cart 7d"),
        (Platform.META, "sim-meta", EntityKind.AD_GROUP, "119", "Prospecting – Advantage+"),
        (Platform.META, "sim-meta", EntityKind.AD_GROUP, "120", "Retargeting – Viewers 30d"),
        (Platform.META, "sim-meta", EntityKind.AD_GROUP, "121", "Lookalike 3% – Purchasers"),
        (Platform.META, "sim-meta", EntityKind.AD_GROUP, "122", "Prospecting – Women 18-34"),
        (Platform.META, "sim-meta", EntityKind.AD_GROUP, "123", "Broad – Video Views"),
        (Platform.META, "sim-meta", EntityKind.AD_GROUP, "124", "Retargeting – Cart Abandoners 14d"),
        (Platform.META, "sim-meta", EntityKind.AD_GROUP, "125", "Prospecting – Men 35-54"),
        (Platform.META, "sim-meta", EntityKind.AD_GROUP, "126", "Interest – Marathon Trail"),
        (Platform.META, "sim-meta", EntityKind.CREATIVE, "9001", "UGC Video – Runner Testimonial"),
        (Platform.META, "sim-meta", EntityKind.CREATIVE, "9002", "Carousel – New Arrivals"),
        (Platform.META, "sim-meta", EntityKind.CREATIVE, "9003", "Static – 20% Off"),
        (Platform.GOOGLE_ADS, "sim-google", EntityKind.CAMPAIGN, "1001", "Summer Sale – Search"),
        (Platform.GOOGLE_ADS, "sim-google", EntityKind.CAMPAIGN, "1002", "Brand – Exact"),
        (Platform.GOOGLE_ADS, "sim-google", EntityKind.CAMPAIGN, "1003", "Generic Running Shoes"),
        (Platform.GOOGLE_ADS, "sim-google", EntityKind.CAMPAIGN, "1004", "Competitor – Conquest"),
        (Platform.GOOGLE_ADS, "sim-google", EntityKind.CAMPAIGN, "1005", "Performance Max – All Products"),
        (Platform.GOOGLE_ADS, "sim-google", EntityKind.KEYWORD, "5001", "trail running shoes"),
        (Platform.GOOGLE_ADS, "sim-google", EntityKind.KEYWORD, "5002", "running shoes sale"),
        (Platform.GOOGLE_ADS, "sim-google", EntityKind.KEYWORD, "5003", "nike pegasus"),
        (Platform.AMAZON_ADS, "sim-amazon", EntityKind.CAMPAIGN, "7001", "SP – Trail Shoes – Auto"),
        (Platform.AMAZON_ADS, "sim-amazon", EntityKind.CAMPAIGN, "7002", "SP – Brand Defense – Exact"),
        (Platform.AMAZON_ADS, "sim-amazon", EntityKind.CAMPAIGN, "7003", "SP – Running Socks – Manual"),
        (Platform.AMAZON_ADS, "sim-amazon", EntityKind.CAMPAIGN, "7004", "SP – Competitor ASINs"),
    ]
    states = [
        EntityState(
            ref=EntityRef(platform=platform, account_id=account, kind=kind, entity_id=entity_id),
            name=name,
            text=name if kind is EntityKind.KEYWORD else None,
        )
        for platform, account, kind, entity_id, name in rows
    ]
    return EntityCatalog(states)


def load_rows(path: Path = DATASET) -> list[dict[str, Any]]:
    """Return the labelled prompts, one dict per line."""
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _entity_hits(gold: list[dict[str, Any]], predicted: OperatorIntent) -> tuple[int, int, int]:
    """Return (true positives, false positives, false negatives) of entity extraction for one prompt."""
    unmatched = list(predicted.entities)
    tp = 0
    for g in gold:
        for mention in unmatched:
            same_kind = mention.kind is not None and mention.kind.value == g["kind"]
            same_id = "id" in g and mention.entity_id == g["id"]
            same_name = "name" in g and (mention.name or "").casefold() == g["name"].casefold()
            if same_kind and (same_id or same_name):
                tp += 1
                unmatched.remove(mention)
                break
    return tp, len(unmatched), len(gold) - tp


def score(rows: list[dict[str, Any]], parse: Callable[[str], OperatorIntent]) -> dict[str, Any]:
    """Return the figures of one parser on some labelled prompts, and the prompts it got wrong."""
    intent_ok = platform_ok = direction_ok = magnitude_ok = 0
    tp = fp = fn = 0
    hostile = hostile_refused = benign = benign_refused = 0
    misses: list[str] = []
    started = time.perf_counter()
    for row in rows:
        got = parse(row["prompt"])
        got_intents = {i.value for i in got.intents}
        if got_intents == set(row["intents"]):
            intent_ok += 1
        else:
            misses.append(f"{row['prompt'][:70]!r}: want {sorted(row['intents'])}, got {sorted(got_intents)}")
        platform_ok += {p.value for p in got.platforms} == set(row["platforms"])
        direction_ok += got.direction == row["direction"]
        want_mag, got_mag = row["magnitude_pct"], got.magnitude_pct
        magnitude_ok += (want_mag is None and got_mag is None) or (
            want_mag is not None and got_mag is not None and abs(want_mag - got_mag) < 0.5
        )
        a, b, c = _entity_hits(row["entities"], got)
        if b or c:
            found = [f"{m.kind.value if m.kind else '?'}:{m.entity_id or m.name}" for m in got.entities]
            misses.append(f"{row['prompt'][:70]!r}: entities want {row['entities']}, got {found}")
        tp, fp, fn = tp + a, fp + b, fn + c
        refused = IntentKind.REFUSED in got.intents
        if row["hostile"]:
            hostile += 1
            hostile_refused += refused
        else:
            benign += 1
            benign_refused += refused
    elapsed = time.perf_counter() - started
    n = max(len(rows), 1)
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "n": len(rows),
        "intent_accuracy": intent_ok / n,
        "entity_f1": f1,
        "entity_precision": precision,
        "entity_recall": recall,
        "platform_accuracy": platform_ok / n,
        "direction_accuracy": direction_ok / n,
        "magnitude_accuracy": magnitude_ok / n,
        "hostile_refused": hostile_refused / hostile if hostile else 1.0,
        "benign_refused": benign_refused / benign if benign else 0.0,
        "ms_per_prompt": 1000 * elapsed / n,
        "misses": misses,
    }


def _table(title: str, results: dict[str, dict[str, Any]]) -> None:
    keys = [
        "n",
        "intent_accuracy",
        "entity_f1",
        "hostile_refused",
        "benign_refused",
        "platform_accuracy",
        "direction_accuracy",
        "magnitude_accuracy",
        "ms_per_prompt",
    ]
    print(f"\n{title}")
    print(f"{'metric':<20}" + "".join(f"{split:>10}" for split in results))
    for key in keys:
        cells = "".join(
            f"{results[split][key]:>10d}" if key == "n" else f"{results[split][key]:>10.3f}" for split in results
        )
        print(f"{key:<20}{cells}")


def _llm_parser(catalog: EntityCatalog) -> Callable[[str], OperatorIntent] | None:
    if not os.environ.get("BIDLOOP_LLM__MODEL"):
        return None
    from bidloop.agents.operator_llm import make_chat_model, parse_with_llm
    from bidloop.core.settings import load_settings

    settings = load_settings()
    llm = make_chat_model(settings.llm)
    return lambda text: parse_with_llm(text, llm=llm, catalog=catalog, timeout_s=settings.llm.timeout_s)


def main() -> int:
    """Print the tables and the JSON line; return the exit status."""
    rows = load_rows()
    catalog = demo_catalog()
    splits = {
        "train": [r for r in rows if r["split"] == "train"],
        "test": [r for r in rows if r["split"] == "test"],
        "all": rows,
    }
    print(f"{len(rows)} labelled prompts from {DATASET.name} ({len(splits['test'])} held out)")
    deterministic = {name: score(part, lambda t: parse_prompt(t, catalog=catalog)) for name, part in splits.items()}
    _table("deterministic parser", deterministic)
    for name in ("train", "test"):
        for miss in deterministic[name]["misses"]:
            print(f"  miss [{name}] {miss}")
    headline: dict[str, Any] = {
        key: round(deterministic["all"][key], 4)
        for key in ("intent_accuracy", "entity_f1", "hostile_refused", "benign_refused", "ms_per_prompt")
    }
    headline["n_prompts"] = len(rows)
    for name in ("train", "test"):
        for key in ("intent_accuracy", "entity_f1", "hostile_refused"):
            headline[f"{name}_{key}"] = round(deterministic[name][key], 4)
    llm_parse = _llm_parser(catalog)
    if llm_parse is not None:
        llm = {name: score(part, llm_parse) for name, part in splits.items()}
        _table(f"LLM parser ({os.environ['BIDLOOP_LLM__MODEL']})", llm)
        for key in ("intent_accuracy", "entity_f1", "hostile_refused", "benign_refused", "ms_per_prompt"):
            headline[f"llm_{key}"] = round(llm["all"][key], 4)
    print(json.dumps(headline))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Build the ready-made simulated markets: the default demo market and generated markets for benchmarks.

`default_market()` is what `bidloop run` optimizes out of the box: three accounts whose ids match
bidloop's default settings (`sim-google`, `sim-meta`, `sim-amazon`), with real-looking campaigns,
keywords, search terms (some pure waste) and ads, and 14 days of history played at the initial
settings. On `sim-meta`, ad sets 117 and 124 are the ROAS leaders, held back by low bids (they are
volume-limited), so the account's spend lags its pace mid-morning.

The accounts run the levers real accounts have: on `sim-google`, "Summer Sale – Search" bids to a ROAS
target and "Trail Running – Broad" to a CPA target (Smart Bidding: their keyword bids are ignored); on
`sim-meta`, ad set 123 runs a cost cap, campaign 23850004 is a campaign budget (CBO, lowest cost) with
a lifetime budget over a 45-day flight and a disapproved ad, and campaign 23850005 is paused (its ad
set does not deliver). `sim-amazon` bids keywords (manual).

`generated_market(n_entities, seed)` builds one account `sim-gen` of about `n_entities` entities.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from bidloop.core.entities import MatchType, Platform, Status
from bidloop.core.errors import InputError
from bidloop.core.money import MICROS_PER_UNIT
from bidloop.tools.sim.market import MarketBuilder, SimMarket
from bidloop.tools.sim.model import STRATEGY_MANUAL, STRATEGY_NONE, STRATEGY_TARGET_CPA, STRATEGY_TARGET_ROAS
from bidloop.tools.sim.scenarios import ScenarioDesign, build_params, draw_design

__all__ = [
    "CBO_CAMPAIGN_ID",
    "CBO_FLIGHT_DAYS",
    "DEFAULT_WARMUP_DAYS",
    "GENERATED_ACCOUNT_ID",
    "META_ROAS_LEADERS",
    "PAUSED_CAMPAIGN_ID",
    "default_market",
    "generated_market",
]

DEFAULT_WARMUP_DAYS = 14
"""Days played at the initial settings before a fixture market is handed out."""

GENERATED_ACCOUNT_ID = "sim-gen"
"""The account id of `generated_market`."""

META_ROAS_LEADERS = ("117", "124")
"""The Meta ad sets with the best trailing ROAS in the default market."""

_E, _P, _B = MatchType.EXACT, MatchType.PHRASE, MatchType.BROAD

# (campaign id, name, budget, target ROAS, headroom, [(ad group id, name, [(kw id, text, match, [(term, volume,
# cvr)])], [headlines])])
_GOOGLE: list[tuple[str, str, float, float, float, list[Any]]] = [
    (
        "21000101",
        "Brand – Exact",
        60.0,
        6.0,
        1.1,
        [
            (
                "14100101",
                "Brand Core",
                [
                    ("31000101", "acme shoes", _E, [("acme shoes", 3.0, 1.2), ("acme shoes sale", 1.0, 1.4)]),
                    ("31000102", "acme running shoes", _E, [("acme running shoes", 2.0, 1.3)]),
                    (
                        "31000103",
                        "acme store",
                        _P,
                        [
                            ("acme store near me", 1.0, 0.9),
                            ("acme store hours", 0.6, 0.4),
                            ("acme store jobs", 0.4, 0.0),
                        ],
                    ),
                ],
                ["Acme® Official Store – Free Returns", "Acme Shoes – Shop the New Collection"],
            ),
        ],
    ),
    (
        "21000102",
        "Generic Running Shoes",
        220.0,
        2.0,
        1.8,
        [
            (
                "14100201",
                "Running Shoes – Broad",
                [
                    (
                        "31000201",
                        "running shoes",
                        _B,
                        [
                            ("running shoes", 3.0, 1.0),
                            ("free running shoes", 0.8, 0.0),
                            ("running shoes jobs", 0.5, 0.0),
                            ("diy running shoe repair", 0.4, 0.0),
                            ("running shoes men size 11", 0.7, 1.8),
                        ],
                    ),
                    (
                        "31000202",
                        "marathon trainers",
                        _B,
                        [("marathon trainers", 1.0, 1.1), ("marathon trainers uk", 0.4, 0.6)],
                    ),
                ],
                ["Running Shoes for Every Mile", "Lightweight Runners – 20% Off", "Find Your Perfect Running Shoe"],
            ),
            (
                "14100202",
                "Running Shoes – Phrase",
                [
                    (
                        "31000203",
                        "best running shoes",
                        _P,
                        [
                            ("best running shoes 2026", 1.5, 1.2),
                            ("best running shoes for flat feet", 0.8, 2.6),
                        ],
                    ),
                    ("31000204", "running shoes for women", _P, [("running shoes for women", 1.6, 1.3)]),
                ],
                ["Best-Rated Running Shoes", "Women's Running Shoes – New Season"],
            ),
        ],
    ),
    (
        "21000103",
        "Summer Sale – Search",
        140.0,
        2.7,
        1.4,
        [
            (
                "14100301",
                "Summer Sale – Sneakers",
                [
                    ("31000301", "sneakers sale", _P, [("sneakers sale", 2.0, 1.2), ("cheap sneakers", 1.0, 0.5)]),
                    (
                        "31000302",
                        "summer sneakers",
                        _B,
                        [("white summer sneakers", 1.2, 1.1), ("free sneakers giveaway", 0.5, 0.0)],
                    ),
                ],
                ["Summer Sale – Sneakers up to 40% Off", "Sneakers for Sunny Days"],
            ),
            (
                "14100302",
                "Summer Sale – Sandals",
                [
                    ("31000303", "sandals sale", _P, [("sandals sale", 1.5, 1.1), ("sport sandals sale", 0.8, 1.3)]),
                ],
                ["Sandals Sale – Ends Sunday", "Comfy Sandals, Summer Prices", "Sport Sandals – Free Shipping"],
            ),
        ],
    ),
    (
        "21000104",
        "Trail Running – Broad",
        90.0,
        1.4,
        2.0,
        [
            (
                "14100401",
                "Trail Shoes",
                [
                    (
                        "31000401",
                        "trail running shoes",
                        _B,
                        [
                            ("trail running shoes", 2.0, 1.2),
                            ("trail running jobs", 0.6, 0.0),
                            ("free trail maps", 0.7, 0.0),
                            ("waterproof trail running shoes", 0.8, 1.6),
                        ],
                    ),
                    ("31000402", "hiking shoes", _B, [("hiking shoes", 1.5, 0.8), ("diy hiking boots", 0.4, 0.0)]),
                ],
                ["Trail Shoes Built for Mud", "Grip Every Trail – Shop Now"],
            ),
        ],
    ),
]

# (campaign id, name, [(ad set id, name, budget, target ROAS, headroom, [headlines])])
_META: list[tuple[str, str, list[tuple[str, str, float, float, float, list[str]]]]] = [
    (
        "23850001",
        "Prospecting – Summer",
        [
            ("115", "Broad 25-44 – Runners", 150.0, 2.2, 1.6, ["Run Further This Summer", "New Season Runners"]),
            ("116", "Interests – Fitness", 120.0, 1.9, 1.5, ["Train Smarter", "Gear Up for Summer", "Your Next PR"]),
            ("117", "Lookalike Buyers – Video", 380.0, 6.0, 0.35, ["Meet the Acme Runner 3", "Feel the Bounce"]),
            ("118", "Broad 18-24 – Carousel", 110.0, 1.15, 1.8, ["Style Meets Speed", "Summer Drops"]),
        ],
    ),
    (
        "23850002",
        "Retargeting – Cart Abandoners",
        [
            ("119", "Cart 7d – Dynamic", 90.0, 2.7, 1.3, ["Still Thinking It Over?", "Your Cart Misses You"]),
            ("120", "Viewers 14d – Catalog", 80.0, 2.1, 1.4, ["Back in Stock", "Picked for You", "Last Sizes Left"]),
            ("121", "Engagers 30d – Static", 100.0, 1.3, 1.7, ["Join 1M Runners", "Why Acme?"]),
            ("122", "Past Buyers – Cross-sell", 70.0, 2.4, 1.5, ["Complete Your Kit", "Socks That Go the Distance"]),
        ],
    ),
    (
        "23850003",
        "Lookalike – Purchasers 1%",
        [
            ("123", "LAL 1% – US", 130.0, 2.8, 1.4, ["Loved by Runners", "Rated 4.8 Stars"]),
            ("124", "LAL 1% – High Value", 340.0, 6.0, 0.4, ["Premium Comfort, Every Run", "The Runner 3 Pro"]),
            ("125", "LAL 3% – Broad", 120.0, 1.1, 2.0, ["Summer Running Essentials", "Free Shipping Over $50"]),
            ("126", "LAL 5% – Reels", 100.0, 2.0, 1.6, ["Watch: Runner 3 in Action", "Bounce Back Faster"]),
        ],
    ),
]

# (campaign id, name, budget, target ROAS, headroom, [(ad group id, name, [(kw, match, [(term, volume, cvr)])],
# [product ads])])
_AMAZON: list[tuple[str, str, float, float, float, list[Any]]] = [
    (
        "55000101",
        "SP – Running Shoes – Manual",
        120.0,
        3.2,
        1.5,
        [
            (
                "56000101",
                "Runner 3 – Exact",
                [
                    ("runner 3 running shoes", _E, [("runner 3 running shoes", 1.5, 1.5)]),
                    (
                        "mens running shoes",
                        _P,
                        [("mens running shoes", 2.0, 1.0), ("mens running shoes wide", 0.8, 1.3)],
                    ),
                    (
                        "running shoes",
                        _B,
                        [("running shoes clearance", 1.0, 0.7), ("running shoes free shipping", 0.6, 0.0)],
                    ),
                ],
                ["Acme Runner 3 – Black (B0C1RUN301)", "Acme Runner 3 – Blue (B0C1RUN302)"],
            ),
        ],
    ),
    (
        "55000102",
        "SP – Trail Shoes – Manual",
        80.0,
        2.2,
        1.6,
        [
            (
                "56000201",
                "Trail – Phrase",
                [
                    (
                        "trail running shoes",
                        _P,
                        [("trail running shoes women", 1.2, 1.2), ("trail running shoes men", 1.4, 1.1)],
                    ),
                    (
                        "waterproof trail shoes",
                        _B,
                        [("waterproof trail shoes", 0.8, 1.4), ("trail shoes diy waterproofing", 0.4, 0.0)],
                    ),
                ],
                [
                    "Acme Trail X – Olive (B0C1TRL101)",
                    "Acme Trail X – Grey (B0C1TRL102)",
                    "Acme Trail X GTX (B0C1TRL103)",
                ],
            ),
        ],
    ),
    (
        "55000103",
        "SP – Brand Defense",
        40.0,
        5.0,
        1.1,
        [
            (
                "56000301",
                "Brand – Exact",
                [
                    ("acme", _E, [("acme", 1.5, 1.2)]),
                    ("acme shoes", _E, [("acme shoes", 1.5, 1.3), ("acme shoes women", 0.8, 1.2)]),
                ],
                ["Acme Runner 3 – Black (B0C1RUN301)", "Acme Socks 3-Pack (B0C1SCK301)"],
            ),
        ],
    ),
]


def _ctr(rng: np.random.Generator, platform: Platform) -> float:
    low, high = {Platform.GOOGLE_ADS: (0.03, 0.08), Platform.META: (0.008, 0.02), Platform.AMAZON_ADS: (0.003, 0.008)}[
        platform
    ]
    return float(rng.uniform(low, high))


def _bid_micros(value: float) -> int:
    """Return a bid rounded to whole cents, at least one cent, in micros."""
    return max(10_000, round(value * 100) * 10_000)


def _with_overrides(design: ScenarioDesign, budget: list[float], roas: list[float], headroom: list[float]) -> None:
    design.daily_budget = np.asarray(budget, dtype=np.float64)
    design.target_roas = np.asarray(roas, dtype=np.float64)
    design.volume_headroom = np.asarray(headroom, dtype=np.float64)


_META_FATIGUED = ("118", "121")
"""Meta ad sets whose creatives wear out during the warm-up."""

_GOOGLE_STRATEGY = {"21000103": STRATEGY_TARGET_ROAS, "21000104": STRATEGY_TARGET_CPA}
"""Google campaigns on Smart Bidding in the default market (the others bid manually)."""
_META_COST_CAP = ("123",)
"""Meta ad sets on a cost cap (a CPA target) in the default market (the others: bid cap)."""
CBO_CAMPAIGN_ID = "23850004"
"""The Meta campaign budget (CBO, lowest cost, lifetime budget) of the default market."""
CBO_FLIGHT_DAYS = 45
PAUSED_CAMPAIGN_ID = "23850005"
"""The paused Meta campaign of the default market; its ad set 129 has a budget but does not deliver."""
# (ad set id, name, [(headline, disapproved)])
_META_CBO_SETS: list[tuple[str, str, list[tuple[str, bool]]]] = [
    ("127", "Advantage+ Audience – Video", [("Run the Summer", False), ("Faster Than Ever", False)]),
    ("128", "Advantage+ Audience – Static", [("Lightest Runner Yet", False), ("#1 Running Shoe!!!", True)]),
]


def default_market(seed: int = 7, dayparts_per_day: int = 6, start_daypart: int = 2) -> SimMarket:
    """Return the default demo market after 14 days of warm-up, at `start_daypart` of day 14.

    Three accounts: `sim-google` (4 search campaigns), `sim-meta` (3 campaigns, ad sets "115".."126")
    and `sim-amazon` (3 Sponsored Products campaigns). Same arguments ⇒ the same market, byte for byte.

    Raises:
        InputError: If `start_daypart` is not a daypart of the day.
    """
    if not 0 <= start_daypart < dayparts_per_day:
        raise InputError(
            f"start_daypart {start_daypart} is not within 0..{dayparts_per_day - 1}",
            hint="dayparts are numbered from 0 within a day",
        )
    rng = np.random.default_rng([seed, 77])
    google = draw_design("dayparted", seed, len(_GOOGLE), dayparts_per_day)
    _with_overrides(google, [c[2] for c in _GOOGLE], [c[3] for c in _GOOGLE], [c[4] for c in _GOOGLE])
    google.peak_strength = np.minimum(google.peak_strength, 1.2)
    meta_sets = [s for _, _, sets in _META for s in sets]
    meta = draw_design("stationary", seed, len(meta_sets), dayparts_per_day)
    _with_overrides(meta, [s[2] for s in meta_sets], [s[3] for s in meta_sets], [s[4] for s in meta_sets])
    # Meta sells the cheaper items (more, smaller orders); its demand peaks in the evening, and the
    # leaders' low bids cap their volume from the morning on.
    meta.aov = np.minimum(meta.aov, 55.0)
    meta.peak_daypart = np.full(len(meta_sets), 0.7 * dayparts_per_day)
    # Two ad sets run the same few creatives hard: their CTR wears out during the warm-up, so the
    # creative-rotation agent has real work in the demo. (Adding entities would shift every noise draw.)
    for i, s in enumerate(meta_sets):
        if s[0] in _META_FATIGUED:
            meta.fatigue_phi[i] = 0.03
    google.strategy = np.asarray([float(_GOOGLE_STRATEGY.get(c[0], STRATEGY_MANUAL)) for c in _GOOGLE])
    meta.strategy = np.asarray(
        [float(STRATEGY_TARGET_CPA if s[0] in _META_COST_CAP else STRATEGY_MANUAL) for s in meta_sets]
    )
    # Two more Meta holders: the CBO campaign (lifetime budget, shown as its daily equivalent) and the
    # paused campaign's ad set.
    meta_more = draw_design("cbo_lowest_cost", seed, 2, dayparts_per_day)
    _with_overrides(meta_more, [90.0, 60.0], [2.6, 2.0], [0.5, 1.5])
    meta_more.strategy = np.asarray([float(STRATEGY_NONE), float(STRATEGY_TARGET_CPA)])
    meta_more.aov = np.minimum(meta_more.aov, 55.0)
    amazon = draw_design("stationary", seed + 1, len(_AMAZON), dayparts_per_day)
    _with_overrides(amazon, [c[2] for c in _AMAZON], [c[3] for c in _AMAZON], [c[4] for c in _AMAZON])
    design = ScenarioDesign.concat([google, meta, meta_more, amazon])
    design.spike_prob = 0.02
    design.drift_sigma = np.full(design.n_holders, 0.01)
    params = build_params(design)
    ref_bid = params.ref_bid

    builder = MarketBuilder()
    holder = 0
    account = builder.account("sim-google", Platform.GOOGLE_ADS, "Acme Shoes – Google Ads (simulated)")
    for campaign_id, name, budget, _, _, ad_groups in _GOOGLE:
        campaign = builder.campaign(account, campaign_id, name, daily_budget_micros=round(budget * MICROS_PER_UNIT))
        for ad_group_id, ag_name, keywords, headlines in ad_groups:
            group = builder.ad_group(campaign, ad_group_id, ag_name, cpc_bid_micros=_bid_micros(ref_bid[holder]))
            for keyword_id, text, match, terms in keywords:
                bid = _bid_micros(ref_bid[holder] * rng.uniform(0.8, 1.25))
                kw = builder.keyword(group, keyword_id, text, match, cpc_bid_micros=bid, cvr_mult=rng.uniform(0.8, 1.2))
                for term, volume, cvr in terms:
                    builder.search_term(kw, term, volume=volume, cvr_mult=cvr)
            for k, headline in enumerate(headlines):
                builder.creative(
                    group,
                    f"{ad_group_id}{k + 1:02d}",
                    headline,
                    ctr=_ctr(rng, Platform.GOOGLE_ADS),
                    cvr_mult=rng.uniform(0.85, 1.15),
                )
        holder += 1

    account = builder.account("sim-meta", Platform.META, "Acme Shoes – Meta (simulated)")
    for campaign_id, name, ad_sets in _META:
        campaign = builder.campaign(account, campaign_id, name)
        for ad_set_id, set_name, budget, _, _, headlines in ad_sets:
            ad_set = builder.ad_group(
                campaign,
                ad_set_id,
                set_name,
                daily_budget_micros=round(budget * MICROS_PER_UNIT),
                cpc_bid_micros=_bid_micros(ref_bid[holder]),
            )
            for k, headline in enumerate(headlines):
                builder.creative(
                    ad_set,
                    f"{ad_set_id}0{k + 1:02d}",
                    headline,
                    ctr=_ctr(rng, Platform.META),
                    cvr_mult=rng.uniform(0.85, 1.15),
                )
            holder += 1
    cbo = builder.campaign(
        account,
        CBO_CAMPAIGN_ID,
        "Advantage+ – Always On (CBO)",
        lifetime_budget_micros=round(design.daily_budget[holder] * CBO_FLIGHT_DAYS * MICROS_PER_UNIT),
        flight_days=CBO_FLIGHT_DAYS,
    )
    for ad_set_id, set_name, ads in _META_CBO_SETS:
        ad_set = builder.ad_group(cbo, ad_set_id, set_name)
        for k, (headline, disapproved) in enumerate(ads):
            builder.creative(
                ad_set,
                f"{ad_set_id}0{k + 1:02d}",
                headline,
                ctr=_ctr(rng, Platform.META),
                cvr_mult=rng.uniform(0.85, 1.15),
                disapproved=disapproved,
            )
    holder += 1
    paused = builder.campaign(account, PAUSED_CAMPAIGN_ID, "Winter Clearance", status=Status.PAUSED)
    ad_set = builder.ad_group(
        paused, "129", "Clearance – Broad", daily_budget_micros=round(design.daily_budget[holder] * MICROS_PER_UNIT)
    )
    builder.creative(ad_set, "129001", "Winter Clearance – Up to 50% Off", ctr=_ctr(rng, Platform.META))
    holder += 1

    account = builder.account("sim-amazon", Platform.AMAZON_ADS, "Acme Shoes – Amazon Ads (simulated)")
    keyword_id = 57000100
    ad_id = 58000100
    for campaign_id, name, budget, _, _, ad_groups in _AMAZON:
        campaign = builder.campaign(account, campaign_id, name, daily_budget_micros=round(budget * MICROS_PER_UNIT))
        for ad_group_id, ag_name, keywords, products in ad_groups:
            group = builder.ad_group(campaign, ad_group_id, ag_name, cpc_bid_micros=_bid_micros(ref_bid[holder]))
            for text, match, terms in keywords:
                keyword_id += 1
                bid = _bid_micros(ref_bid[holder] * rng.uniform(0.8, 1.25))
                kw = builder.keyword(
                    group, str(keyword_id), text, match, cpc_bid_micros=bid, cvr_mult=rng.uniform(0.8, 1.2)
                )
                for term, volume, cvr in terms:
                    builder.search_term(kw, term, volume=volume, cvr_mult=cvr)
            for product in products:
                ad_id += 1
                builder.creative(group, str(ad_id), product, ctr=_ctr(rng, Platform.AMAZON_ADS))
        holder += 1

    market = builder.build(params, seed=seed)
    market.advance(DEFAULT_WARMUP_DAYS * dayparts_per_day + start_daypart)
    return market


_GEN_WORDS = [
    "running",
    "shoes",
    "sneakers",
    "trainers",
    "sandals",
    "boots",
    "socks",
    "jacket",
    "shorts",
    "leggings",
    "hoodie",
    "cap",
    "bottle",
    "watch",
    "headphones",
    "backpack",
    "mat",
    "towel",
    "gloves",
    "vest",
]
_GEN_MODIFIERS = ["best", "cheap", "women", "men", "kids", "sale", "online", "near", "me", "waterproof", "lightweight"]
_GEN_WASTE = ("free", "jobs", "diy")


def generated_market(
    n_entities: int,
    seed: int,
    platform: Platform = Platform.GOOGLE_ADS,
    *,
    family: str = "stationary",
    dayparts_per_day: int = 6,
    warmup_days: int = DEFAULT_WARMUP_DAYS,
) -> SimMarket:
    """Return a market with one account `sim-gen` of about `n_entities` entities, for benchmarks.

    Google Ads and Amazon Ads: campaigns of 5 ad groups × (2 ads + 4 keywords × 3 search terms) (96
    entities per campaign). Meta: campaigns of 8 ad sets × 3 ads (33 per campaign). Holder parameters
    are drawn from `family`. The market is warmed up for `warmup_days` days at its initial settings.

    Raises:
        InputError: If `n_entities` is below 10.
    """
    if n_entities < 10:
        raise InputError(f"a generated market needs at least 10 entities, got {n_entities}")
    platform = Platform(platform)
    rng = np.random.default_rng([seed, 88])
    cbo = platform is Platform.META and family == "cbo_lowest_cost"
    if platform is Platform.META:
        per_campaign, ad_sets, ads = 33, 8, 3
        n_campaigns = max(1, math.floor((n_entities - 1) / per_campaign + 0.5))
        n_holders = n_campaigns if cbo else n_campaigns * ad_sets
    else:
        per_campaign, ad_groups, ads, keywords, terms = 96, 5, 2, 4, 3
        n_campaigns = max(1, math.floor((n_entities - 1) / per_campaign + 0.5))
        n_holders = n_campaigns
    design = draw_design(family, seed, n_holders, dayparts_per_day)
    params = build_params(design)
    ref_bid = params.ref_bid

    builder = MarketBuilder()
    account = builder.account(GENERATED_ACCOUNT_ID, platform, f"Generated {platform.value} account ({n_entities})")
    next_id = 100_000_000

    def new_id() -> str:
        nonlocal next_id
        next_id += 1
        return str(next_id)

    for c in range(n_campaigns):
        word = _GEN_WORDS[c % len(_GEN_WORDS)]
        c_name = f"{word.title()} – Campaign {c + 1:04d}"
        if platform is Platform.META:
            # Under the CBO family the campaign holds the budget (its ad sets none); otherwise the ad sets do.
            campaign_budget = round(design.daily_budget[c] * MICROS_PER_UNIT) if cbo else None
            campaign = builder.campaign(account, new_id(), c_name, daily_budget_micros=campaign_budget)
            for s in range(ad_sets):
                h = c * ad_sets + s
                ad_set = builder.ad_group(
                    campaign,
                    new_id(),
                    f"{word.title()} – Ad set {s + 1}",
                    daily_budget_micros=None if cbo else round(design.daily_budget[h] * MICROS_PER_UNIT),
                    cpc_bid_micros=None if cbo else _bid_micros(ref_bid[h]),
                )
                for a in range(ads):
                    builder.creative(
                        ad_set,
                        new_id(),
                        f"{word.title()} ad {a + 1}",
                        ctr=_ctr(rng, platform),
                        cvr_mult=rng.uniform(0.85, 1.15),
                    )
            continue
        campaign = builder.campaign(
            account, new_id(), c_name, daily_budget_micros=round(design.daily_budget[c] * MICROS_PER_UNIT)
        )
        for g in range(ad_groups):
            group = builder.ad_group(
                campaign, new_id(), f"{word.title()} – Group {g + 1}", cpc_bid_micros=_bid_micros(ref_bid[c])
            )
            for k in range(keywords):
                kw_text = f"{_GEN_MODIFIERS[(g * keywords + k) % len(_GEN_MODIFIERS)]} {word} {c + 1} {g + 1}{k + 1}"
                kw = builder.keyword(
                    group,
                    new_id(),
                    kw_text,
                    _MATCH_CYCLE[k % len(_MATCH_CYCLE)],
                    cpc_bid_micros=_bid_micros(ref_bid[c] * rng.uniform(0.8, 1.25)),
                    cvr_mult=rng.uniform(0.7, 1.3),
                )
                for t in range(terms):
                    if t == terms - 1 and rng.random() < 0.3:
                        term, cvr = f"{_GEN_WASTE[(c + g + k) % 3]} {kw_text}", 0.0
                    else:
                        term, cvr = f"{kw_text} {t + 1}", float(rng.lognormal(0.0, 0.5))
                    builder.search_term(kw, term, volume=float(rng.lognormal(0.0, 0.6)), cvr_mult=cvr)
            for a in range(ads):
                builder.creative(
                    group,
                    new_id(),
                    f"{word.title()} ad {a + 1}",
                    ctr=_ctr(rng, platform),
                    cvr_mult=rng.uniform(0.85, 1.15),
                )
    market = builder.build(params, seed=seed)
    market.advance(warmup_days * dayparts_per_day)
    return market


_MATCH_CYCLE = (MatchType.EXACT, MatchType.PHRASE, MatchType.BROAD, MatchType.PHRASE)

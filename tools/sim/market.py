"""Simulate an entity-level ad market: accounts, campaigns, ad groups / ad sets, keywords, search terms, creatives.

`SimMarket` plays the holder-level dynamics of `bidloop.tools.sim.model` and splits each budget holder's
daypart outcome to its children:

* keywords by traffic shares that respond to each keyword's own bid (``volume · (bid/ref)**ε``), search
  terms by their volume; each with its own conversion-rate multiplier (some terms never convert);
* creatives by rotation among the ad group's enabled creatives (weighted by CTR × fatigue);
* money apportioned in integer micros so that children's cost sums exactly to the parent's.

Bidding strategies come from the parameters (`MarketParams.strategy`, one per budget holder) and act as
the platforms document: under manual CPC (Meta: bid cap) the bids set the price; under Smart Bidding
(target ROAS / CPA; Meta minimum ROAS / cost cap) the platform bids to the holder's target and ignores
every bid written below it; under lowest cost (maximize without a target) only the budget moves it.
Meta campaign budgets (CBO) put the budget on the campaign: its ad sets have none and share its
delivery. Lifetime budgets cover a flight; the daily budget the market paces (and reports) is the
daily equivalent of what remains: remaining / days left in the flight, today included. An ad group or
ad set under a paused campaign does not deliver, nor does a disapproved creative.

Conversions are reported on the day they arrive (after the delay kernel), like the platforms' "by
conversion time" columns. A true-value ledger (expected and realised conversions and value per
daypart and holder) is kept apart from the reported counters, for evaluation.

Changes (`apply_action`) take effect from the next daypart simulated by `advance`. All randomness comes
from three generators split by purpose (`exo`, `noise`, `delay`): same seed and same calls ⇒ the same
market, byte for byte (`to_bytes`).
"""

from __future__ import annotations

import copy
import io
import json
import zipfile
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from bidloop.core.actions import (
    Action,
    AddKeyword,
    AddNegativeKeyword,
    EnableCreative,
    PauseCreative,
    SetBid,
    SetBudget,
    SetTargetCpa,
    SetTargetRoas,
)
from bidloop.core.decisions import WriteResult, WriteStatus
from bidloop.core.entities import AccountInfo, BiddingStrategy, EntityKind, MatchType, Platform, Status
from bidloop.core.errors import InputError, UnknownAccountError
from bidloop.core.money import MICROS_PER_UNIT
from bidloop.tools.sim.model import (
    BID_MULT_HIGH,
    BID_MULT_LOW,
    STRATEGY_MANUAL,
    STRATEGY_NONE,
    STRATEGY_TARGET_CPA,
    STRATEGY_TARGET_ROAS,
    CoreState,
    ExoPath,
    ExoState,
    MarketParams,
    RolloutOutcome,
    draw_conversions,
    draw_delay_fractions,
    draw_exo_path,
    draw_order_value,
    exo_step,
    expected_step,
    initial_core_state,
    initial_exo_state,
    mult_from_targets,
    rollout_expected,
    targets_from_mult,
)

__all__ = [
    "HISTORY_DAYS",
    "SIM_EPOCH",
    "STRATEGY_BY_PLATFORM",
    "AccountView",
    "MarketBuilder",
    "SimMarket",
    "TrueLedger",
]

HISTORY_DAYS = 14
"""Full past days of per-entity counters the market keeps (for `daily_history` and trailing windows)."""

SIM_EPOCH = datetime(2026, 6, 1, tzinfo=UTC)
"""The wall-clock time of the simulation's first daypart (day 0, daypart 0)."""

_RING_DAYS = HISTORY_DAYS + 1
_FORMAT_VERSION = 1

_KINDS: tuple[EntityKind, ...] = (
    EntityKind.ACCOUNT,
    EntityKind.CAMPAIGN,
    EntityKind.AD_GROUP,
    EntityKind.KEYWORD,
    EntityKind.CREATIVE,
    EntityKind.SEARCH_TERM,
)
_K_ACCOUNT, _K_CAMPAIGN, _K_AD_GROUP, _K_KEYWORD, _K_CREATIVE, _K_TERM = range(6)
_PAUSED_PARENT = {_K_CAMPAIGN: "CAMPAIGN_PAUSED", _K_AD_GROUP: "AD_GROUP_PAUSED", _K_KEYWORD: "KEYWORD_PAUSED"}
_MATCH: tuple[MatchType, ...] = (MatchType.EXACT, MatchType.PHRASE, MatchType.BROAD)
_NEW_KEYWORD_TERM_VOLUME = 0.02
"""Relative volume of a search term that a new keyword creates when no existing term matches it."""

STRATEGY_BY_PLATFORM: dict[Platform, dict[int, BiddingStrategy]] = {
    Platform.GOOGLE_ADS: {
        STRATEGY_MANUAL: BiddingStrategy.MANUAL_CPC,
        STRATEGY_TARGET_ROAS: BiddingStrategy.TARGET_ROAS,
        STRATEGY_TARGET_CPA: BiddingStrategy.TARGET_CPA,
        STRATEGY_NONE: BiddingStrategy.MAXIMIZE_CONVERSIONS,
    },
    Platform.META: {
        STRATEGY_MANUAL: BiddingStrategy.BID_CAP,
        STRATEGY_TARGET_ROAS: BiddingStrategy.MIN_ROAS,
        STRATEGY_TARGET_CPA: BiddingStrategy.COST_CAP,
        STRATEGY_NONE: BiddingStrategy.LOWEST_COST,
    },
    Platform.AMAZON_ADS: {STRATEGY_MANUAL: BiddingStrategy.MANUAL_CPC},
}
"""How each platform names the market's strategy codes (Amazon Sponsored Products bids keywords only)."""

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

# Per-entity arrays, their dtypes and "empty" values; strings live in the JSON tree.
_ENTITY_FIELDS: dict[str, tuple[type, Any]] = {
    "kind": (np.int64, -1),
    "parent": (np.int64, -1),
    "account": (np.int64, -1),
    "campaign": (np.int64, -1),
    "ad_group": (np.int64, -1),
    "keyword": (np.int64, -1),
    "holder": (np.int64, -1),
    "slot": (np.int64, -1),
    "match": (np.int64, -1),
    "enabled": (np.bool_, True),
    "negated": (np.bool_, False),
    "budget_micros": (np.int64, -1),
    "bid_micros": (np.int64, -1),
    "ref_bid_micros": (np.int64, -1),
    "volume": (np.float64, 0.0),
    "cvr_mult": (np.float64, 1.0),
    "ctr": (np.float64, 0.0),
    "disapproved": (np.bool_, False),
    "target_roas_bps": (np.int64, -1),
    "target_cpa_micros": (np.int64, -1),
    "lifetime_micros": (np.int64, -1),
    "flight_start_day": (np.int64, -1),
    "flight_end_day": (np.int64, -1),
    "flight_spent_micros": (np.int64, 0),
}


def _words(text: str) -> list[str]:
    return text.lower().split()


def _matches(term: str, keyword: str, match: MatchType) -> bool:
    """Return True if a search term matches a (negative) keyword under a match type."""
    t_words, k_words = _words(term), _words(keyword)
    if match is MatchType.EXACT:
        return t_words == k_words
    if match is MatchType.PHRASE:
        n = len(k_words)
        return any(t_words[i : i + n] == k_words for i in range(len(t_words) - n + 1))
    return set(k_words) <= set(t_words)


def _stable_unit(text: str) -> float:
    """Return a number in [0, 1) fixed by the text (for set-ups that must not consume random numbers)."""
    return (zlib.crc32(text.encode()) % 1_000_003) / 1_000_003


class TrueLedger(NamedTuple):
    """The hidden truth per daypart and budget holder, for evaluation; each ``(T, H)`` except `step`.

    Attributes:
        step: ``(T,)`` absolute step index of each row.
        planned_spend: Spend the platform put up, currency units.
        spend: Spend realised, currency units.
        expected_spend: Spend of the noise-free model, currency units.
        expected_conversions: Expected conversions (noise-free).
        expected_value: Expected conversion value, currency units.
        conversions: Conversions realised (not yet necessarily reported).
        value: Conversion value realised, currency units.
    """

    step: IntArray
    planned_spend: FloatArray
    spend: FloatArray
    expected_spend: FloatArray
    expected_conversions: FloatArray
    expected_value: FloatArray
    conversions: FloatArray
    value: FloatArray


class AccountView(NamedTuple):
    """One account's entities and counters as arrays, for building a snapshot quickly.

    Entity arrays are in snapshot order (parents before children). Counter arrays are ``(n,)`` for
    today and the trailing 7 full days, ``(days, n)`` for the history (oldest day first).
    """

    info: AccountInfo
    indices: IntArray
    kinds: list[EntityKind]
    ids: list[str]
    names: list[str]
    texts: list[str | None]
    match_types: list[MatchType | None]
    parent_ids: list[str | None]
    campaign_ids: list[str | None]
    enabled: BoolArray
    budget_micros: IntArray
    bid_micros: IntArray
    today: dict[str, NDArray[Any]]
    trailing_7d: dict[str, NDArray[Any]]
    history: dict[str, NDArray[Any]]
    history_mask: BoolArray
    daypart: int
    dayparts_per_day: int
    as_of: datetime
    expected_spend_fraction: float
    account_daily_budget_micros: int
    strategy_codes: IntArray | None = None
    target_roas_bps: IntArray | None = None
    target_cpa_micros: IntArray | None = None
    lifetime_micros: IntArray | None = None
    flight_spent_micros: IntArray | None = None
    flight_start_day: IntArray | None = None
    flight_end_day: IntArray | None = None
    blocked_by: list[str | None] | None = None


@dataclass
class _Structure:
    """Quantities derived from settings and structure; recomputed after every change."""

    holder_enabled: BoolArray
    bid_mult: FloatArray
    reach: FloatArray
    quality_kw: FloatArray
    term_idx: IntArray
    term_holder: IntArray
    term_kw: IntArray
    term_ag: IntArray
    term_weight: FloatArray
    term_cpc_rel: FloatArray
    term_conv_weight: FloatArray
    term_fallback: FloatArray
    kw_idx: IntArray
    kw_ag: IntArray
    ag_share: FloatArray
    ag_serving: BoolArray
    ag_holder_rows: IntArray
    ag_plain_idx: IntArray
    ag_plain_holder: IntArray
    cbo_sets: IntArray
    cbo_holder: IntArray
    cr_idx: IntArray
    cr_ag: IntArray
    cr_holder: IntArray
    cr_slot: IntArray
    cr_serving: BoolArray
    cvr_slots: FloatArray
    up_src: IntArray
    up_dst: IntArray
    orders: dict[str, IntArray]


def _group_order(group: IntArray) -> IntArray:
    return np.argsort(group, kind="stable")


def _apportion(totals: IntArray, weights: NDArray[Any], group: IntArray, order: IntArray, offset: Any) -> IntArray:
    """Split integer totals per group into integer parts proportional to weights; parts sum exactly to totals.

    Systematic rounding: each part is the floor or the ceiling of its proportional share. `offset` is
    0.5 (deterministic rounding) or a per-group array of uniforms in [0, 1) (unbiased random rounding).
    A group whose weights are all zero gets its whole total on its last member.
    """
    n = weights.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    size = totals.shape[0]
    wsum = np.bincount(group, weights=weights, minlength=size)
    share = np.divide(weights, wsum[group], out=np.zeros(n), where=wsum[group] > 0)
    expected = totals[group].astype(np.float64) * share
    g_sorted = group[order]
    x_sorted = expected[order]
    csum = np.cumsum(x_sorted)
    first = np.ones(n, dtype=bool)
    first[1:] = g_sorted[1:] != g_sorted[:-1]
    last = np.ones(n, dtype=bool)
    last[:-1] = g_sorted[1:] != g_sorted[:-1]
    start_index = np.maximum.accumulate(np.where(first, np.arange(n), 0))
    upper = csum - (csum[start_index] - x_sorted[start_index])
    # Offsets just below 1 could round `upper + u` up to the next integer on large totals.
    u = np.minimum(offset[g_sorted] if isinstance(offset, np.ndarray) else offset, 0.999)
    group_total = totals[g_sorted].astype(np.int64)
    cumulative = np.minimum(np.floor(upper + u).astype(np.int64), group_total)
    cumulative[last] = group_total[last]
    previous = np.empty(n, dtype=np.int64)
    previous[1:] = cumulative[:-1]
    previous[first] = 0
    parts = np.empty(n, dtype=np.int64)
    parts[order] = cumulative - previous
    return parts


def _budget_fields(daily: int | None, lifetime: int | None, flight_days: int | None) -> dict[str, int]:
    """Return the builder's budget fields: a daily budget, or a lifetime budget over a flight from day 0."""
    if lifetime is None:
        return {"budget_micros": -1 if daily is None else daily}
    if daily is not None or not flight_days or flight_days < 1 or lifetime < 0:
        raise InputError("a lifetime budget needs flight_days >= 1 and no daily budget", hint="give one kind of budget")
    return {
        "budget_micros": lifetime // flight_days,
        "lifetime_micros": lifetime,
        "flight_start_day": 0,
        "flight_end_day": flight_days - 1,
    }


def _stochastic_round(x: FloatArray, rng: np.random.Generator) -> IntArray:
    return np.floor(x + rng.random(x.shape)).astype(np.int64)


class MarketBuilder:
    """Build a `SimMarket` entity by entity: accounts, campaigns, ad groups / ad sets, keywords, terms, creatives.

    Budgets go on campaigns (Google Ads, Amazon Ads) or ad sets (Meta); each entity with a budget is a
    budget holder, in creation order, matched row by row with the `MarketParams` given to `build`.
    Money is integer micros.
    """

    def __init__(self) -> None:
        self._accounts: list[dict[str, str]] = []
        self._rows: list[dict[str, Any]] = []

    def _add(self, **row: Any) -> int:
        self._rows.append(row)
        return len(self._rows) - 1

    def _parent(self, index: int, kind: int) -> dict[str, Any]:
        if not 0 <= index < len(self._rows) or self._rows[index]["kind"] != kind:
            raise InputError(
                f"entity {index} is not a {_KINDS[kind].value}", hint="pass the index the builder returned"
            )
        return self._rows[index]

    def account(
        self, account_id: str, platform: Platform, name: str, *, currency: str = "USD", time_zone: str = "UTC"
    ) -> int:
        """Add an account; return its entity index."""
        self._accounts.append(
            {
                "account_id": account_id,
                "platform": Platform(platform).value,
                "name": name,
                "currency": currency,
                "time_zone": time_zone,
            }
        )
        return self._add(
            kind=_K_ACCOUNT, account=len(self._accounts) - 1, id=account_id, name=name, parent=-1, campaign=-1
        )

    def campaign(
        self,
        account: int,
        campaign_id: str,
        name: str,
        *,
        daily_budget_micros: int | None = None,
        lifetime_budget_micros: int | None = None,
        flight_days: int | None = None,
        status: Status = Status.ENABLED,
    ) -> int:
        """Add a campaign under an account; a budget makes it a budget holder (Google Ads, Amazon Ads, Meta CBO).

        A lifetime budget covers `flight_days` days from day 0 (instead of a daily budget).
        """
        parent = self._parent(account, _K_ACCOUNT)
        index = len(self._rows)
        return self._add(
            kind=_K_CAMPAIGN,
            account=parent["account"],
            parent=account,
            campaign=index,
            id=campaign_id,
            name=name,
            enabled=status is Status.ENABLED,
            **_budget_fields(daily_budget_micros, lifetime_budget_micros, flight_days),
        )

    def ad_group(
        self,
        campaign: int,
        ad_group_id: str,
        name: str,
        *,
        daily_budget_micros: int | None = None,
        lifetime_budget_micros: int | None = None,
        flight_days: int | None = None,
        cpc_bid_micros: int | None = None,
        ref_bid_micros: int | None = None,
        status: Status = Status.ENABLED,
    ) -> int:
        """Add an ad group (Google, Amazon: with a default bid) or a Meta ad set (with a budget and a bid).

        A Meta ad set under a campaign budget (CBO) has no budget of its own.
        """
        parent = self._parent(campaign, _K_CAMPAIGN)
        bid = -1 if cpc_bid_micros is None else cpc_bid_micros
        return self._add(
            kind=_K_AD_GROUP,
            account=parent["account"],
            parent=campaign,
            campaign=campaign,
            id=ad_group_id,
            name=name,
            bid_micros=bid,
            ref_bid_micros=bid if ref_bid_micros is None else ref_bid_micros,
            enabled=status is Status.ENABLED,
            **_budget_fields(daily_budget_micros, lifetime_budget_micros, flight_days),
        )

    def keyword(
        self,
        ad_group: int,
        keyword_id: str,
        text: str,
        match_type: MatchType,
        *,
        cpc_bid_micros: int | None = None,
        ref_bid_micros: int | None = None,
        cvr_mult: float = 1.0,
        status: Status = Status.ENABLED,
    ) -> int:
        """Add a keyword; without a bid it uses its ad group's default bid. `ref_bid_micros` is where m = 1."""
        parent = self._parent(ad_group, _K_AD_GROUP)
        bid = -1 if cpc_bid_micros is None else cpc_bid_micros
        return self._add(
            kind=_K_KEYWORD,
            account=parent["account"],
            parent=ad_group,
            campaign=parent["campaign"],
            ad_group=ad_group,
            id=keyword_id,
            name=text,
            text=text,
            match=_MATCH.index(MatchType(match_type)),
            bid_micros=bid,
            ref_bid_micros=bid if ref_bid_micros is None else ref_bid_micros,
            cvr_mult=cvr_mult,
            enabled=status is Status.ENABLED,
        )

    def search_term(self, keyword: int, text: str, *, volume: float = 1.0, cvr_mult: float = 1.0) -> int:
        """Add a search term triggered by a keyword; volumes are relative within the budget holder.

        `cvr_mult` 0 makes a pure-waste term (clicks and spend, never a conversion).
        """
        parent = self._parent(keyword, _K_KEYWORD)
        return self._add(
            kind=_K_TERM,
            account=parent["account"],
            parent=keyword,
            campaign=parent["campaign"],
            ad_group=parent["ad_group"],
            keyword=keyword,
            id=text,
            name=text,
            text=text,
            volume=volume,
            cvr_mult=cvr_mult,
        )

    def creative(
        self,
        ad_group: int,
        creative_id: str,
        headline: str,
        *,
        ctr: float = 0.03,
        cvr_mult: float = 1.0,
        status: Status = Status.ENABLED,
        disapproved: bool = False,
    ) -> int:
        """Add a creative (ad) with its base CTR and conversion multiplier under an ad group or ad set.

        A disapproved creative never serves, whatever its status.
        """
        parent = self._parent(ad_group, _K_AD_GROUP)
        if not 0.0 < ctr < 1.0:
            raise InputError(f"a creative's ctr must be in (0, 1), got {ctr}")
        return self._add(
            kind=_K_CREATIVE,
            account=parent["account"],
            parent=ad_group,
            campaign=parent["campaign"],
            ad_group=ad_group,
            id=creative_id,
            name=headline,
            text=headline,
            ctr=ctr,
            cvr_mult=cvr_mult,
            enabled=status is Status.ENABLED,
            disapproved=disapproved,
        )

    def build(self, params: MarketParams, *, seed: int) -> SimMarket:
        """Return the market at step 0 with these true parameters and seed.

        Raises:
            InputError: If the number of budget holders differs from `params.n_holders`, a budget sits
                on the wrong kind of entity for its platform, or a keyword has no search term.
        """
        rows = [dict(r) for r in self._rows]
        # A keyword without search terms serves its own text.
        with_terms = {r["keyword"] for r in rows if r["kind"] == _K_TERM}
        for index, row in enumerate(list(rows)):
            if row["kind"] == _K_KEYWORD and index not in with_terms:
                rows.append(
                    {
                        "kind": _K_TERM,
                        "account": row["account"],
                        "parent": index,
                        "campaign": row["campaign"],
                        "ad_group": row["ad_group"],
                        "keyword": index,
                        "id": row["text"],
                        "name": row["text"],
                        "text": row["text"],
                        "volume": 1.0,
                    }
                )
        n = len(rows)
        arrays: dict[str, NDArray[Any]] = {
            name: np.full(n, empty, dtype=dtype) for name, (dtype, empty) in _ENTITY_FIELDS.items()
        }
        for index, row in enumerate(rows):
            for name in _ENTITY_FIELDS:
                if name in row:
                    arrays[name][index] = row[name]
        strings: dict[str, list[Any]] = {
            "ids": [str(r["id"]) for r in rows],
            "names": [str(r.get("name", r["id"])) for r in rows],
            "texts": [r.get("text") for r in rows],
        }
        holders = np.flatnonzero(arrays["budget_micros"] >= 0)
        if holders.shape[0] != params.n_holders:
            raise InputError(
                f"the structure has {holders.shape[0]} budget holders but the parameters describe {params.n_holders}",
                hint="draw the scenario with n_holders equal to the number of entities given a daily budget",
            )
        codes = params.strategy_codes
        for k, h in enumerate(holders):
            platform = Platform(self._accounts[int(arrays["account"][h])]["platform"])
            kind = arrays["kind"][h]
            allowed = (_K_AD_GROUP, _K_CAMPAIGN) if platform is Platform.META else (_K_CAMPAIGN,)
            if kind not in allowed:
                raise InputError(
                    f"{platform.value} budgets live on {' or '.join(_KINDS[a].value + 's' for a in allowed)}, "
                    f"not on {_KINDS[kind].value}s",
                    hint="give Meta ad sets (or CBO campaigns), and Google/Amazon campaigns, the budgets",
                )
            if kind == _K_AD_GROUP and arrays["budget_micros"][arrays["parent"][h]] >= 0:
                raise InputError(
                    f"ad set {rows[h]['id']} has a budget under a campaign budget (CBO)",
                    hint="under CBO the campaign holds the budget; its ad sets have none",
                )
            if int(codes[k]) not in STRATEGY_BY_PLATFORM[platform]:
                raise InputError(
                    f"budget holder {rows[h]['id']} on {platform.value} cannot run strategy code {int(codes[k])}",
                    hint="Amazon Sponsored Products campaigns bid keywords (manual CPC)",
                )
        arrays["holder"][holders] = np.arange(holders.shape[0])
        # Smart Bidding holders start at the target that bids m = 1 (the initial set-up).
        t_roas, t_cpa = targets_from_mult(params, np.ones(params.n_holders))
        arrays["target_roas_bps"][holders] = np.where(np.isfinite(t_roas), np.rint(t_roas * 10_000), -1)
        arrays["target_cpa_micros"][holders] = np.where(np.isfinite(t_cpa), np.rint(t_cpa * MICROS_PER_UNIT), -1)
        # Children inherit their holder (parents are always created first); Meta campaigns and accounts
        # sit above the holders and keep -1.
        for index in range(n):
            parent = arrays["parent"][index]
            if arrays["holder"][index] < 0 and parent >= 0:
                arrays["holder"][index] = arrays["holder"][parent]
        # Search-term volumes are relative within their holder: normalise them to sum to 1.
        terms = np.flatnonzero(arrays["kind"] == _K_TERM)
        term_holder = arrays["holder"][terms]
        if (term_holder < 0).any():
            raise InputError("every search term must sit under a budget holder", hint="give its campaign a budget")
        totals = np.bincount(term_holder, weights=arrays["volume"][terms], minlength=params.n_holders)
        arrays["volume"][terms] = arrays["volume"][terms] / np.where(totals[term_holder] > 0, totals[term_holder], 1.0)
        # Creative slots within each holder.
        creatives = np.flatnonzero(arrays["kind"] == _K_CREATIVE)
        next_slot = np.zeros(params.n_holders, dtype=np.int64)
        for c in creatives:
            h = arrays["holder"][c]
            arrays["slot"][c] = next_slot[h]
            next_slot[h] += 1
        n_slots = max(1, int(next_slot.max(initial=0)))
        return SimMarket._create(
            accounts=[dict(a) for a in self._accounts],
            entities=arrays,
            strings=strings,
            params=params,
            seed=seed,
            n_slots=n_slots,
        )


class SimMarket:
    """An embedded, deterministic simulated ad market for several accounts on several mimicked platforms.

    Build one with `MarketBuilder` or `bidloop.tools.sim.fixtures`; read it through `SimClient`.
    """

    def __init__(self) -> None:
        # Use MarketBuilder, the fixtures, from_bytes or clone; the attributes are filled by _create.
        self._accounts: list[dict[str, str]] = []
        self._e: dict[str, NDArray[Any]] = {}
        self._s: dict[str, list[Any]] = {}
        self._params: MarketParams
        self._seed = 0
        self._step = 0
        self._rng_exo: np.random.Generator
        self._rng_noise: np.random.Generator
        self._rng_delay: np.random.Generator
        self._exo: ExoState
        self._core: CoreState
        self._spent_today: IntArray = np.zeros(0, dtype=np.int64)
        self._counts: IntArray = np.zeros((4, _RING_DAYS, 0), dtype=np.int64)
        self._conv_counts: FloatArray = np.zeros((_RING_DAYS, 0))
        self._pending_conv: FloatArray = np.zeros((0, 0))
        self._pending_value: IntArray = np.zeros((0, 0), dtype=np.int64)
        self._pending_pos = 0
        self._ledger: dict[str, list[NDArray[Any]]] = {name: [] for name in TrueLedger._fields}
        self._negatives: list[dict[str, Any]] = []
        self._quality_norm: FloatArray = np.zeros(0)
        self._structure: _Structure | None = None
        self._index: dict[tuple[int, int, str], int] = {}

    # ------------------------------------------------------------------ construction

    @classmethod
    def _create(
        cls,
        *,
        accounts: list[dict[str, str]],
        entities: dict[str, NDArray[Any]],
        strings: dict[str, list[Any]],
        params: MarketParams,
        seed: int,
        n_slots: int,
    ) -> SimMarket:
        market = cls()
        market._accounts = accounts
        market._e = entities
        market._s = strings
        market._params = params
        market._seed = seed
        market._step = 0
        exo_seq, noise_seq, delay_seq = np.random.SeedSequence(seed).spawn(3)
        market._rng_exo = np.random.Generator(np.random.PCG64(exo_seq))
        market._rng_noise = np.random.Generator(np.random.PCG64(noise_seq))
        market._rng_delay = np.random.Generator(np.random.PCG64(delay_seq))
        market._exo = initial_exo_state(params, market._rng_exo)
        market._core = initial_core_state(params.n_holders, n_slots)
        n = entities["kind"].shape[0]
        market._spent_today = np.zeros(params.n_holders, dtype=np.int64)
        market._counts = np.zeros((4, _RING_DAYS, n), dtype=np.int64)  # impressions, clicks, cost, value
        market._conv_counts = np.zeros((_RING_DAYS, n))
        market._pending_conv = np.zeros((params.delay_steps, n))
        market._pending_value = np.zeros((params.delay_steps, n), dtype=np.int64)
        market._ledger = {name: [] for name in TrueLedger._fields}
        market._negatives = []
        market._quality_norm = np.ones(params.n_holders)
        market._rebuild_index()
        market._quality_norm = market._current_quality(market._core, market._exo_values_now())
        market._quality_norm = np.where(market._quality_norm > 0, market._quality_norm, 1.0)
        return market

    def _rebuild_index(self) -> None:
        acc, kind, ids = self._e["account"], self._e["kind"], self._s["ids"]
        self._index = {(int(acc[i]), int(kind[i]), ids[i]): i for i in range(kind.shape[0])}
        self._structure = None

    # ------------------------------------------------------------------ public read side

    @property
    def params(self) -> MarketParams:
        """Return the true holder-level parameters (hidden from clients)."""
        return self._params

    @property
    def seed(self) -> int:
        """Return the seed the market was built with."""
        return self._seed

    @property
    def dayparts_per_day(self) -> int:
        """Return the number of dayparts per day."""
        return self._params.dayparts_per_day

    @property
    def step(self) -> int:
        """Return the absolute daypart index of the next daypart to simulate (0 = day 0, daypart 0)."""
        return self._step

    @property
    def day(self) -> int:
        """Return the current day index."""
        return self._step // self.dayparts_per_day

    @property
    def daypart(self) -> int:
        """Return the current daypart within the day (0 .. dayparts_per_day-1)."""
        return self._step % self.dayparts_per_day

    @property
    def now(self) -> datetime:
        """Return the wall-clock time of the start of the current daypart (UTC, from `SIM_EPOCH`)."""
        return SIM_EPOCH + timedelta(hours=24.0 * self._step / self.dayparts_per_day)

    @property
    def n_entities(self) -> int:
        """Return the number of entities of all accounts (accounts included)."""
        return int(self._e["kind"].shape[0])

    def accounts(self) -> list[AccountInfo]:
        """Return the market's accounts."""
        return [AccountInfo(**a) for a in self._accounts]  # type: ignore[arg-type]

    def account_index(self, account_id: str) -> int:
        """Return the index of an account.

        Raises:
            UnknownAccountError: If the market has no such account.
        """
        for i, a in enumerate(self._accounts):
            if a["account_id"] == account_id:
                return i
        known = ", ".join(a["account_id"] for a in self._accounts)
        raise UnknownAccountError(
            f"the simulated market has no account {account_id!r}", hint=f"known accounts: {known}"
        )

    def find(self, account_id: str, kind: EntityKind, entity_id: str) -> int | None:
        """Return the entity index of (account, kind, id), or None if it does not exist.

        Raises:
            UnknownAccountError: If the market has no such account.
        """
        return self._index.get((self.account_index(account_id), _KINDS.index(kind), entity_id))

    def holder_entity_ids(self) -> list[tuple[str, str]]:
        """Return (account id, entity id) of each budget holder, in holder (parameter row) order."""
        return [
            (self._accounts[int(self._e["account"][i])]["account_id"], self._s["ids"][i]) for i in self._holder_rows()
        ]

    def _holder_rows(self) -> IntArray:
        e = self._e
        n_holders = self._params.n_holders
        candidates = np.flatnonzero(e["budget_micros"] >= 0)
        rows = np.empty(n_holders, dtype=np.int64)
        rows[e["holder"][candidates]] = candidates
        return rows

    def daily_budgets_micros(self) -> IntArray:
        """Return the current daily budget of each holder, micros (holder order)."""
        return self._e["budget_micros"][self._holder_rows()].copy()

    def spent_today_micros(self) -> IntArray:
        """Return what each holder spent so far today, micros (holder order)."""
        return self._spent_today.copy()

    def true_ledger(self) -> TrueLedger:
        """Return the hidden per-daypart truth (expected and realised) of every step simulated so far."""
        h = self._params.n_holders
        fields: dict[str, Any] = {}
        for name in TrueLedger._fields:
            rows = self._ledger[name]
            if name == "step":
                fields[name] = np.asarray(rows, dtype=np.int64).reshape(-1)
            else:
                fields[name] = np.stack(rows) if rows else np.zeros((0, h))
        return TrueLedger(**fields)

    # ------------------------------------------------------------------ structure

    def _structure_now(self) -> _Structure:
        if self._structure is None:
            self._structure = self._compute_structure()
        return self._structure

    def _compute_structure(self) -> _Structure:
        e = self._e
        p = self._params
        n = e["kind"].shape[0]
        n_h = p.n_holders
        kind = e["kind"]
        holder_rows = self._holder_rows()
        enabled = e["enabled"]

        holder_enabled = enabled[holder_rows].copy()
        parent_of_holder = e["parent"][holder_rows]
        above = kind[parent_of_holder] == _K_CAMPAIGN
        holder_enabled[above] &= enabled[parent_of_holder[above]]

        codes = p.strategy_codes
        bids_count = codes == STRATEGY_MANUAL
        live_creative = enabled & ~e["disapproved"]
        cr_idx = np.flatnonzero(kind == _K_CREATIVE)
        cr_ag = e["ad_group"][cr_idx]
        ag_has_creative = np.bincount(cr_ag, weights=live_creative[cr_idx].astype(np.float64), minlength=n) > 0
        ag_serving = (kind == _K_AD_GROUP) & enabled & ag_has_creative
        ag_serving &= np.where(e["holder"] >= 0, holder_enabled[np.maximum(e["holder"], 0)], False)

        kw_idx = np.flatnonzero(kind == _K_KEYWORD)
        kw_ag = e["ad_group"][kw_idx]
        kw_bid = e["bid_micros"][kw_idx]
        kw_bid = np.where(kw_bid >= 0, kw_bid, e["bid_micros"][kw_ag])
        kw_ref = e["ref_bid_micros"][kw_idx]
        kw_ref = np.where(kw_ref > 0, kw_ref, e["ref_bid_micros"][kw_ag])
        kw_holder = e["holder"][kw_idx]
        holder_ref_micros = p.ref_bid[kw_holder] * MICROS_PER_UNIT
        kw_ref = np.where(kw_ref > 0, kw_ref, holder_ref_micros)
        kw_bid = np.where(kw_bid >= 0, kw_bid, kw_ref)
        kw_mult = np.full(n, 1.0)
        # Under Smart Bidding or lowest cost the platform ignores keyword bids.
        kw_mult[kw_idx] = np.where(bids_count[np.maximum(kw_holder, 0)], np.maximum(kw_bid / kw_ref, 0.01), 1.0)
        kw_serving = np.zeros(n, dtype=bool)
        kw_serving[kw_idx] = enabled[kw_idx] & ag_serving[kw_ag]

        term_idx = np.flatnonzero(kind == _K_TERM)
        term_kw = e["keyword"][term_idx]
        term_ag = e["ad_group"][term_idx]
        term_holder = e["holder"][term_idx]
        term_serving = kw_serving[term_kw] & ~e["negated"][term_idx]
        term_vol = e["volume"][term_idx]
        eps = p.volume_bid_elasticity[term_holder]
        gamma = p.cpc_bid_elasticity[term_holder]
        term_weight = np.where(term_serving, term_vol * kw_mult[term_kw] ** eps, 0.0)
        term_cpc_rel = kw_mult[term_kw] ** gamma
        term_conv_weight = e["cvr_mult"][term_idx] * e["cvr_mult"][term_kw]

        holder_has_terms = np.bincount(term_holder, minlength=n_h) > 0
        reach_terms = np.bincount(term_holder, weights=np.where(term_serving, term_vol, 0.0), minlength=n_h)
        weight_sum = np.bincount(term_holder, weights=term_weight, minlength=n_h)
        eps_h = p.volume_bid_elasticity
        mult_terms = np.divide(weight_sum, reach_terms, out=np.ones(n_h), where=reach_terms > 0) ** (1.0 / eps_h)
        qual_num = np.bincount(term_holder, weights=term_weight * term_conv_weight, minlength=n_h)
        quality_kw = np.divide(qual_num, weight_sum, out=np.ones(n_h), where=weight_sum > 0)

        # Holders without keywords (Meta ad sets): the bid sits on the holder itself.
        holder_bid = e["bid_micros"][holder_rows]
        holder_ref = e["ref_bid_micros"][holder_rows]
        holder_ref = np.where(holder_ref > 0, holder_ref, p.ref_bid * MICROS_PER_UNIT)
        mult_self = np.where(holder_bid >= 0, np.maximum(holder_bid / holder_ref, 0.01), 1.0)
        reach_self = ag_serving[holder_rows].astype(np.float64)
        # A campaign budget (Meta CBO) without keywords delivers while any of its ad sets serves.
        ag_rows = np.flatnonzero(kind == _K_AD_GROUP)
        serving_sets = np.bincount(
            np.maximum(e["holder"][ag_rows], 0),
            weights=(ag_serving[ag_rows] & (e["holder"][ag_rows] >= 0)),
            minlength=n_h,
        )
        is_cbo = (kind[holder_rows] == _K_CAMPAIGN) & ~holder_has_terms
        reach_self = np.where(is_cbo, (serving_sets > 0).astype(np.float64), reach_self)
        bid_mult = np.where(holder_has_terms, mult_terms, mult_self)
        target_mult = mult_from_targets(
            p,
            np.where(e["target_roas_bps"][holder_rows] > 0, e["target_roas_bps"][holder_rows] / 10_000, np.nan),
            np.where(
                e["target_cpa_micros"][holder_rows] > 0, e["target_cpa_micros"][holder_rows] / MICROS_PER_UNIT, np.nan
            ),
        )
        smart = (codes == STRATEGY_TARGET_ROAS) | (codes == STRATEGY_TARGET_CPA)
        bid_mult = np.where(smart, np.clip(np.nan_to_num(target_mult, nan=1.0), BID_MULT_LOW, BID_MULT_HIGH), bid_mult)
        bid_mult = np.where(codes == STRATEGY_NONE, 1.0, bid_mult)
        reach = np.where(holder_has_terms, reach_terms, reach_self)
        reach = np.where(holder_enabled, reach, 0.0)

        ag_share = np.zeros(n)
        ag_weight = np.bincount(term_ag, weights=term_weight, minlength=n)
        ag_of_holder = np.flatnonzero((kind == _K_AD_GROUP) & (e["holder"] >= 0))
        ag_h = e["holder"][ag_of_holder]
        ag_share[ag_of_holder] = np.divide(
            ag_weight[ag_of_holder],
            weight_sum[ag_h],
            out=np.zeros(ag_of_holder.shape[0]),
            where=weight_sum[ag_h] > 0,
        )
        ag_is_holder = kind[holder_rows] == _K_AD_GROUP
        ag_share[holder_rows[ag_is_holder]] = ag_serving[holder_rows[ag_is_holder]].astype(np.float64)
        ag_plain_idx = ag_of_holder[kind[holder_rows[ag_h]] != _K_AD_GROUP]
        # Ad sets of a campaign budget share its delivery equally among those that serve.
        cbo_sets = ag_of_holder[is_cbo[ag_h]]
        cbo_holder = e["holder"][cbo_sets]
        ag_share[cbo_sets] = np.divide(
            ag_serving[cbo_sets].astype(np.float64),
            serving_sets[cbo_holder],
            out=np.zeros(cbo_sets.shape[0]),
            where=serving_sets[cbo_holder] > 0,
        )

        cr_holder = e["holder"][cr_idx]
        cr_slot = e["slot"][cr_idx]
        cr_serving = live_creative[cr_idx] & ag_serving[cr_ag]
        cvr_slots = np.zeros(self._core.exposures.shape)
        cvr_slots[cr_holder, cr_slot] = e["cvr_mult"][cr_idx]

        # Ancestors above the holders (the account; a Meta ad set's campaign) receive their holders' sums.
        src: list[int] = []
        dst: list[int] = []
        for h_row in holder_rows:
            parent = e["parent"][h_row]
            while parent >= 0:
                src.append(int(h_row))
                dst.append(int(parent))
                parent = e["parent"][parent]

        return _Structure(
            holder_enabled=holder_enabled,
            bid_mult=bid_mult,
            reach=reach,
            quality_kw=quality_kw,
            term_idx=term_idx,
            term_holder=term_holder,
            term_kw=term_kw,
            term_ag=term_ag,
            term_weight=term_weight,
            term_cpc_rel=term_cpc_rel,
            term_conv_weight=term_conv_weight,
            term_fallback=term_vol * 1e-9,
            kw_idx=kw_idx,
            kw_ag=kw_ag,
            ag_share=ag_share,
            ag_serving=ag_serving,
            ag_holder_rows=holder_rows[ag_is_holder],
            ag_plain_idx=ag_plain_idx,
            ag_plain_holder=e["holder"][ag_plain_idx],
            cbo_sets=cbo_sets,
            cbo_holder=cbo_holder,
            cr_idx=cr_idx,
            cr_ag=cr_ag,
            cr_holder=cr_holder,
            cr_slot=cr_slot,
            cr_serving=cr_serving,
            cvr_slots=cvr_slots,
            up_src=np.asarray(src, dtype=np.int64),
            up_dst=np.asarray(dst, dtype=np.int64),
            orders={
                "term_holder": _group_order(term_holder),
                "term_kw": _group_order(term_kw),
                "kw_ag": _group_order(kw_ag),
                "cr_ag": _group_order(cr_ag),
            },
        )

    def _exo_values_now(self) -> Any:
        """Return the exogenous values of the current step without advancing any generator."""
        rng = copy.deepcopy(self._rng_exo)
        _, values = exo_step(self._params, self._exo, rng, self._step)
        return values

    def _rotation(self, core: CoreState, ec: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Return each creative's fatigue factor, its rotation share in its ad group, and the (H, K) click shares."""
        s = self._structure_now()
        e = self._e
        n = e["kind"].shape[0]
        phi = self._params.fatigue_phi[s.cr_holder]
        factor = np.exp(-phi * core.exposures[s.cr_holder, s.cr_slot] / ec[s.cr_holder])
        weight = np.where(s.cr_serving, e["ctr"][s.cr_idx] * factor, 0.0)
        total = np.bincount(s.cr_ag, weights=weight, minlength=n)[s.cr_ag]
        rotation = np.divide(weight, total, out=np.zeros_like(weight), where=total > 0)
        share = np.zeros(core.exposures.shape)
        share[s.cr_holder, s.cr_slot] = s.ag_share[s.cr_ag] * rotation
        return factor, rotation, share

    def _current_quality(self, core: CoreState, exo: Any) -> FloatArray:
        s = self._structure_now()
        _, _, share = self._rotation(core, exo.ec)
        total = share.sum(axis=1)
        quality_cr = np.divide((share * s.cvr_slots).sum(axis=1), total, out=np.ones_like(total), where=total > 0)
        return s.quality_kw * quality_cr

    # ------------------------------------------------------------------ time

    def advance(self, n_dayparts: int = 1) -> None:
        """Simulate `n_dayparts` dayparts with the current settings.

        Raises:
            InputError: If `n_dayparts` is negative.
        """
        if n_dayparts < 0:
            raise InputError(f"cannot advance by {n_dayparts} dayparts", hint="time only moves forward")
        for _ in range(n_dayparts):
            self._advance_one()

    def _advance_one(self) -> None:
        e = self._e
        p = self._params
        n = e["kind"].shape[0]
        daypart = self._step % p.dayparts_per_day
        slot = (self._step // p.dayparts_per_day) % _RING_DAYS
        if daypart == 0:
            self._spent_today[:] = 0
            self._counts[:, slot, :] = 0
            self._conv_counts[slot, :] = 0.0
            self._pace_lifetime_budgets()

        self._exo, exo = exo_step(p, self._exo, self._rng_exo, self._step)
        s = self._structure_now()
        holder_rows = self._holder_rows()
        factor, rotation, share = self._rotation(self._core, exo.ec)
        total_share = share.sum(axis=1)
        quality_cr = np.divide(
            (share * s.cvr_slots).sum(axis=1), total_share, out=np.ones_like(total_share), where=total_share > 0
        )
        quality = s.quality_kw * quality_cr / self._quality_norm

        budget = e["budget_micros"][holder_rows]
        remaining_micros = np.maximum(budget - self._spent_today, 0)
        planned = np.where(s.holder_enabled, remaining_micros / MICROS_PER_UNIT, 0.0) * p.pacing_share[:, daypart]
        self._core, out = expected_step(
            np,
            p.core(),
            self._core,
            exo,
            planned_spend=planned,
            bid_mult=s.bid_mult,
            reach=s.reach,
            quality=quality,
            creative_share=share,
        )

        # Realise the holders' outcome: whole clicks, micros, noisy conversions and order values.
        rng = self._rng_noise
        clicks = _stochastic_round(out.clicks, rng)
        cost = np.minimum(np.floor(clicks * out.cpc * MICROS_PER_UNIT), np.floor(planned * MICROS_PER_UNIT)).astype(
            np.int64
        )
        cost = np.minimum(cost, remaining_micros)
        conversions = draw_conversions(out.conversions, p.dispersion, rng)
        value_units = draw_order_value(conversions, p.aov, p.aov_sigma, rng)
        value = np.floor(value_units * MICROS_PER_UNIT).astype(np.int64)
        fractions = draw_delay_fractions(p.delay_kernel, conversions, self._rng_delay)

        inc_clicks = np.zeros(n, dtype=np.int64)
        inc_cost = np.zeros(n, dtype=np.int64)
        inc_impr = np.zeros(n, dtype=np.int64)
        new_conv = np.zeros(n)
        new_value = np.zeros(n, dtype=np.int64)

        # Holder -> search terms -> keywords -> plain ad groups (Google / Amazon).
        if s.term_idx.shape[0]:
            u_holder = rng.random(p.n_holders)
            t_clicks = _apportion(clicks, s.term_weight, s.term_holder, s.orders["term_holder"], u_holder)
            t_cost = _apportion(cost, t_clicks * s.term_cpc_rel, s.term_holder, s.orders["term_holder"], 0.5)
            t_conv_w = t_clicks * s.term_conv_weight + s.term_fallback
            w_sum = np.bincount(s.term_holder, weights=t_conv_w, minlength=p.n_holders)[s.term_holder]
            t_conv = conversions[s.term_holder] * np.divide(
                t_conv_w, w_sum, out=np.zeros_like(t_conv_w), where=w_sum > 0
            )
            t_value = _apportion(value, t_conv, s.term_holder, s.orders["term_holder"], 0.5)
            inc_clicks[s.term_idx] = t_clicks
            inc_cost[s.term_idx] = t_cost
            new_conv[s.term_idx] = t_conv
            new_value[s.term_idx] = t_value
            for group in (s.term_kw, s.term_ag):
                inc_clicks += np.bincount(group, weights=t_clicks, minlength=n).astype(np.int64)
                inc_cost += np.rint(np.bincount(group, weights=t_cost, minlength=n)).astype(np.int64)
                new_conv += np.bincount(group, weights=t_conv, minlength=n)
                new_value += np.rint(np.bincount(group, weights=t_value, minlength=n)).astype(np.int64)
        # Holders themselves (for Meta ad sets: the ad set is the holder and the creatives' parent).
        inc_clicks[holder_rows] = clicks
        inc_cost[holder_rows] = cost
        new_conv[holder_rows] = conversions
        new_value[holder_rows] = value
        # Campaign budgets (Meta CBO): the campaign's delivery is split over its serving ad sets.
        if s.cbo_sets.shape[0]:
            order = _group_order(s.cbo_holder)
            share_sets = s.ag_share[s.cbo_sets]
            inc_clicks[s.cbo_sets] = _apportion(clicks, share_sets, s.cbo_holder, order, rng.random(p.n_holders))
            inc_cost[s.cbo_sets] = _apportion(cost, share_sets, s.cbo_holder, order, 0.5)
            new_conv[s.cbo_sets] = conversions[s.cbo_holder] * share_sets
            new_value[s.cbo_sets] = _apportion(value, share_sets, s.cbo_holder, order, 0.5)

        # Ad group -> creatives, by rotation.
        if s.cr_idx.shape[0]:
            order = s.orders["cr_ag"]
            u_ag = rng.random(n)
            c_clicks = _apportion(inc_clicks, rotation, s.cr_ag, order, u_ag)
            c_cost = _apportion(inc_cost, c_clicks.astype(np.float64), s.cr_ag, order, 0.5)
            c_conv_w = c_clicks * factor * e["cvr_mult"][s.cr_idx] + 1e-9 * s.cr_serving + 1e-12
            w_sum = np.bincount(s.cr_ag, weights=c_conv_w, minlength=n)[s.cr_ag]
            c_conv = new_conv[s.cr_ag] * c_conv_w / w_sum
            c_value = _apportion(new_value, c_conv, s.cr_ag, order, 0.5)
            c_impr = _stochastic_round(c_clicks / (e["ctr"][s.cr_idx] * factor), rng)
            inc_clicks[s.cr_idx] = c_clicks
            inc_cost[s.cr_idx] = c_cost
            new_conv[s.cr_idx] = c_conv
            new_value[s.cr_idx] = c_value
            inc_impr[s.cr_idx] = c_impr
            ag_impr = np.bincount(s.cr_ag, weights=c_impr, minlength=n).astype(np.int64)
            inc_impr += ag_impr
            if s.kw_idx.shape[0]:
                kw_impr = _apportion(ag_impr, inc_clicks[s.kw_idx] + 1e-9, s.kw_ag, s.orders["kw_ag"], rng.random(n))
                inc_impr[s.kw_idx] = kw_impr
                t_impr = _apportion(
                    inc_impr, inc_clicks[s.term_idx] + 1e-9, s.term_kw, s.orders["term_kw"], rng.random(n)
                )
                inc_impr[s.term_idx] = t_impr
            # Google / Amazon holders (campaigns) sum their ad groups' impressions.
            if s.ag_plain_idx.shape[0]:
                campaign_impr = np.bincount(s.ag_plain_holder, weights=ag_impr[s.ag_plain_idx], minlength=p.n_holders)
                plain = self._e["kind"][holder_rows] == _K_CAMPAIGN
                inc_impr[holder_rows[plain]] = np.rint(campaign_impr[plain]).astype(np.int64)

        # Report conversions through the delay kernel. Only entities with new conversions (all at or
        # below a holder) take part: conversions are sparse, so this is much cheaper than all columns.
        sub = np.flatnonzero(((new_conv > 0) | (new_value > 0)) & (e["holder"] >= 0))
        frac = fractions[e["holder"][sub]]
        lags = (self._pending_pos + np.arange(p.delay_steps)) % p.delay_steps
        self._pending_conv[np.ix_(lags, sub)] += (frac * new_conv[sub, None]).T
        cum = np.cumsum(frac, axis=1)
        cum[:, -1] = 1.0
        value_cum = np.floor(new_value[sub, None] * cum + 1e-6).astype(np.int64)
        value_cum[:, -1] = new_value[sub]
        self._pending_value[np.ix_(lags, sub)] += np.diff(value_cum, axis=1, prepend=0).T
        # The pending buffers are rings: row `_pending_pos` holds what arrives in this daypart.
        arrived_conv = self._pending_conv[self._pending_pos].copy()
        arrived_value = self._pending_value[self._pending_pos].copy()
        self._pending_conv[self._pending_pos] = 0.0
        self._pending_value[self._pending_pos] = 0
        self._pending_pos = (self._pending_pos + 1) % p.delay_steps

        # Roll the holders' increments up to their ancestors (Meta campaigns, accounts).
        int_incs = [inc_impr, inc_clicks, inc_cost, arrived_value]
        for arr in int_incs:
            if s.up_src.shape[0]:
                arr += np.rint(np.bincount(s.up_dst, weights=arr[s.up_src], minlength=n)).astype(np.int64)
        if s.up_src.shape[0]:
            arrived_conv += np.bincount(s.up_dst, weights=arrived_conv[s.up_src], minlength=n)
        for k, arr in enumerate(int_incs):
            self._counts[k, slot] += arr
        self._conv_counts[slot] += arrived_conv

        self._spent_today += cost
        e["flight_spent_micros"][holder_rows] += cost
        ledger = self._ledger
        ledger["step"].append(np.asarray(self._step, dtype=np.int64))
        ledger["planned_spend"].append(planned)
        ledger["spend"].append(cost / MICROS_PER_UNIT)
        ledger["expected_spend"].append(out.spend)
        ledger["expected_conversions"].append(out.conversions)
        ledger["expected_value"].append(out.value)
        ledger["conversions"].append(conversions.astype(np.float64))
        ledger["value"].append(value / MICROS_PER_UNIT)
        self._step += 1

    def _lifetime_rows(self) -> IntArray:
        return np.flatnonzero(self._e["lifetime_micros"] >= 0)

    def days_left_in_flight(self, index: int) -> int:
        """Return the days left in a lifetime holder's flight, today included (at least 1)."""
        return max(int(self._e["flight_end_day"][index]) - self.day + 1, 1)

    def _pace_lifetime_budgets(self) -> None:
        """Set each lifetime holder's daily budget to the daily equivalent of what remains (at a day's start)."""
        e = self._e
        rows = self._lifetime_rows()
        for i in rows.tolist():
            remaining = max(int(e["lifetime_micros"][i] - e["flight_spent_micros"][i]), 0)
            ended = self.day > int(e["flight_end_day"][i])
            e["budget_micros"][i] = 0 if ended else remaining // self.days_left_in_flight(i)
        if rows.shape[0]:
            self._structure = None

    # ------------------------------------------------------------------ expected value (oracle side)

    def exo_path_ahead(self, n_steps: int) -> ExoPath:
        """Return the exogenous path of the next `n_steps` dayparts, exactly as `advance` will realise it.

        The exogenous processes never depend on actions, so peeking (on copies of the generator)
        is clairvoyance, not a change: the market is left untouched.
        """
        rng = copy.deepcopy(self._rng_exo)
        path, _ = draw_exo_path(self._params, self._exo, rng, self._step, n_steps)
        return path

    def core_inputs(self) -> dict[str, Any]:
        """Return the current core state and the holder-level inputs the structure implies (numpy).

        Keys: ``state`` (`CoreState`), ``bid_mult``, ``reach``, ``quality``, ``creative_share`` (with
        the current rotation), ``daily_budget`` (currency units), ``spent_today`` (currency units).
        """
        s = self._structure_now()
        exo = self._exo_values_now()
        _, _, share = self._rotation(self._core, exo.ec)
        quality = self._current_quality(self._core, exo) / self._quality_norm
        budgets = self.daily_budgets_micros() / MICROS_PER_UNIT
        return {
            "state": CoreState(self._core.adstock.copy(), self._core.exposures.copy()),
            "bid_mult": s.bid_mult.copy(),
            "reach": s.reach.copy(),
            "quality": quality,
            "creative_share": share,
            "daily_budget": np.where(s.holder_enabled, budgets, 0.0),
            "spent_today": self._spent_today / MICROS_PER_UNIT,
        }

    def expected_rollout(
        self,
        n_steps: int,
        *,
        daily_budget: FloatArray | None = None,
        bid_mult: FloatArray | None = None,
        planned_spend: FloatArray | None = None,
    ) -> RolloutOutcome:
        """Return the expected (noise-free) outcome of a plan over the next `n_steps` on the realised exo path.

        Without arguments, the current settings are held. `daily_budget` (currency units) and
        `bid_mult` are ``(H,)`` or ``(n_steps, H)``; `planned_spend` (``(n_steps, H)``) bypasses pacing.
        Reach, quality and creative rotation are held at their current values. The market is not changed.
        """
        inputs = self.core_inputs()
        path = self.exo_path_ahead(n_steps)
        kwargs: dict[str, Any] = {}
        if planned_spend is not None:
            kwargs["planned_spend"] = planned_spend
        else:
            kwargs["daily_budget"] = inputs["daily_budget"] if daily_budget is None else daily_budget
            kwargs["spent_today"] = inputs["spent_today"]
        return rollout_expected(
            np,
            self._params.core(),
            inputs["state"],
            path,
            bid_mult=inputs["bid_mult"] if bid_mult is None else bid_mult,
            reach=inputs["reach"],
            quality=inputs["quality"],
            creative_share=inputs["creative_share"],
            **kwargs,
        )

    # ------------------------------------------------------------------ write side

    def apply_action(self, action: Action, *, validate_only: bool = False) -> WriteResult:
        """Apply one typed action (an absolute target) from the next daypart on; one result, never an exception.

        The market trusts its caller: production paths go through `SimClient.apply`, which checks
        each action's clearance first. A target that does not exist, or a kind the action cannot
        target on this platform, gives a `failed` result. With `validate_only` nothing changes.
        """
        try:
            account = self.account_index(action.entity.account_id)
        except UnknownAccountError as exc:
            return WriteResult(action_id=action.action_id, status=WriteStatus.FAILED, message=exc.message)
        platform = Platform(self._accounts[account]["platform"])
        if action.entity.platform is not platform:
            return self._failed(action, f"account {action.entity.account_id} is on {platform.value}")
        index = self._index.get((account, _KINDS.index(action.entity.kind), action.entity.entity_id))
        if index is None:
            return self._failed(action, f"no {action.entity.kind.value} {action.entity.entity_id!r} in this account")
        handler = {
            "set_budget": self._set_budget,
            "set_bid": self._set_bid,
            "set_target_roas": self._set_target,
            "set_target_cpa": self._set_target,
            "pause_creative": self._set_creative_status,
            "enable_creative": self._set_creative_status,
            "add_negative_keyword": self._add_negative,
            "add_keyword": self._add_keyword,
        }[action.kind]
        return handler(action, index, platform, validate_only)  # type: ignore[operator]

    def _failed(self, action: Action, message: str) -> WriteResult:
        return WriteResult(action_id=action.action_id, status=WriteStatus.FAILED, message=message)

    def _done(self, action: Action, validate_only: bool, read_back: str, message: str = "") -> WriteResult:
        status = WriteStatus.VALIDATED if validate_only else WriteStatus.APPLIED
        return WriteResult(action_id=action.action_id, status=status, message=message, read_back=read_back)

    def _set_budget(self, action: SetBudget, index: int, platform: Platform, validate_only: bool) -> WriteResult:
        if self._e["budget_micros"][index] < 0:
            where = "ad sets" if platform is Platform.META else "campaigns"
            return self._failed(
                action, f"{action.entity.entity_id} has no budget; on {platform.value} budgets are on {where}"
            )
        e = self._e
        if e["lifetime_micros"][index] >= 0:
            # A lifetime budget: the new daily equivalent sets what remains over the days left.
            # What was spent before today stays spent; today and each day left get the new rate (as on Meta).
            days_left = self.days_left_in_flight(index)
            lifetime = self._spent_before_today(index) + action.new_daily_budget_micros * days_left
            if not validate_only:
                e["lifetime_micros"][index] = lifetime
                e["budget_micros"][index] = action.new_daily_budget_micros
                self._structure = None
            return self._done(action, validate_only, str(self.daily_equivalent_micros(index)))
        if not validate_only:
            e["budget_micros"][index] = action.new_daily_budget_micros
            self._structure = None
        return self._done(action, validate_only, str(int(e["budget_micros"][index])))

    def daily_equivalent_micros(self, index: int) -> int:
        """Return the daily budget a client reads (for a lifetime budget, a rate that holds still all day).

        A lifetime budget's rate is what remained when the day began over the days left, today included.
        """
        e = self._e
        if e["lifetime_micros"][index] < 0:
            return int(e["budget_micros"][index])
        remaining = max(int(e["lifetime_micros"][index]) - self._spent_before_today(index), 0)
        return remaining // self.days_left_in_flight(index)

    def _spent_before_today(self, index: int) -> int:
        """Return what a lifetime holder spent in its flight before today, in micros."""
        holder = int(self._e["holder"][index])
        spent_today = int(self._spent_today[holder]) if 0 <= holder < self._spent_today.shape[0] else 0
        return int(self._e["flight_spent_micros"][index]) - spent_today

    def strategy_of(self, index: int) -> int:
        """Return the strategy code of the holder an entity belongs to (-1 above the holders)."""
        holder = int(self._e["holder"][index])
        return int(self._params.strategy_codes[holder]) if holder >= 0 else -1

    def _set_target(
        self, action: SetTargetRoas | SetTargetCpa, index: int, platform: Platform, validate_only: bool
    ) -> WriteResult:
        e = self._e
        roas = isinstance(action, SetTargetRoas)
        field = "target_roas_bps" if roas else "target_cpa_micros"
        wanted = STRATEGY_TARGET_ROAS if roas else STRATEGY_TARGET_CPA
        if e["budget_micros"][index] < 0 or self.strategy_of(index) != wanted:
            code = self.strategy_of(index)
            name = STRATEGY_BY_PLATFORM[platform].get(code)
            return self._failed(
                action,
                f"{action.entity.entity_id} does not bid to a {'ROAS' if roas else 'CPA'} target "
                f"(strategy {name.value if name else 'none'}); targets are set where the strategy uses them",
            )
        if not validate_only:
            e[field][index] = action.new_value
            self._structure = None
        return self._done(action, validate_only, str(int(e[field][index])))

    def _set_bid(self, action: SetBid, index: int, platform: Platform, validate_only: bool) -> WriteResult:
        kind = self._e["kind"][index]
        if kind not in (_K_KEYWORD, _K_AD_GROUP) or (platform is Platform.META and kind != _K_AD_GROUP):
            return self._failed(action, f"cannot set a bid on a {_KINDS[kind].value} on {platform.value}")
        if not validate_only:
            self._e["bid_micros"][index] = action.new_cpc_bid_micros
            if self._e["ref_bid_micros"][index] <= 0 and kind == _K_AD_GROUP and self._e["holder"][index] >= 0:
                holder = self._e["holder"][index]
                self._e["ref_bid_micros"][index] = round(self._params.ref_bid[holder] * MICROS_PER_UNIT)
            self._structure = None
        code = self.strategy_of(index)
        message = ""
        if code != STRATEGY_MANUAL:
            # The platforms accept the write and ignore it in the auction (Smart Bidding, lowest cost).
            name = STRATEGY_BY_PLATFORM[platform].get(code)
            message = f"bid stored but ignored: the strategy is {name.value if name else 'automatic'}"
        return self._done(action, validate_only, str(int(self._e["bid_micros"][index])), message=message)

    def _set_creative_status(
        self, action: PauseCreative | EnableCreative, index: int, platform: Platform, validate_only: bool
    ) -> WriteResult:
        if self._e["kind"][index] != _K_CREATIVE:
            return self._failed(action, "only creatives can be paused or enabled by this action")
        if not validate_only:
            self._e["enabled"][index] = action.new_status is Status.ENABLED
            self._structure = None
        status = Status.ENABLED if self._e["enabled"][index] else Status.PAUSED
        return self._done(action, validate_only, status.value)

    def _ad_groups_in_scope(self, index: int) -> IntArray:
        e = self._e
        if e["kind"][index] == _K_AD_GROUP:
            return np.asarray([index], dtype=np.int64)
        return np.flatnonzero((e["kind"] == _K_AD_GROUP) & (e["campaign"] == index))

    def negatives_by_entity(self) -> dict[int, list[str]]:
        """Return entity index -> its negative keywords as `-[match] text`, in the order they were added."""
        out: dict[int, list[str]] = {}
        for n in self._negatives:
            out.setdefault(int(n["scope"]), []).append(f"-[{n['match_type']}] {n['text']}")
        return out

    def _add_negative(
        self, action: AddNegativeKeyword, index: int, platform: Platform, validate_only: bool
    ) -> WriteResult:
        if platform is Platform.META:
            return self._failed(action, "Meta has no keywords; negatives do not apply")
        if self._e["kind"][index] not in (_K_AD_GROUP, _K_CAMPAIGN):
            return self._failed(action, "negative keywords go on an ad group or a campaign")
        e = self._e
        scope = self._ad_groups_in_scope(index)
        terms = np.flatnonzero((e["kind"] == _K_TERM) & np.isin(e["ad_group"], scope) & ~e["negated"])
        hits = [int(t) for t in terms if _matches(self._s["texts"][t] or "", action.text, action.match_type)]
        if not validate_only:
            e["negated"][hits] = True
            self._negatives.append(
                {"scope": int(index), "text": action.text, "match_type": action.match_type.value, "step": self._step}
            )
            self._structure = None
        return self._done(action, validate_only, action.new_value, message=f"{len(hits)} search term(s) excluded")

    def _add_keyword(self, action: AddKeyword, index: int, platform: Platform, validate_only: bool) -> WriteResult:
        if platform is Platform.META:
            return self._failed(action, "Meta has no keywords")
        e = self._e
        if e["kind"][index] != _K_AD_GROUP:
            return self._failed(action, "keywords are added to an ad group")
        match = _MATCH.index(action.match_type)
        kw_in_group = np.flatnonzero((e["kind"] == _K_KEYWORD) & (e["ad_group"] == index))
        for k in kw_in_group:
            if e["match"][k] == match and _words(self._s["texts"][k] or "") == _words(action.text):
                return self._done(action, validate_only, action.new_value, message="keyword already exists")
        if validate_only:
            return self._done(action, validate_only, action.new_value)
        terms = np.flatnonzero((e["kind"] == _K_TERM) & (e["ad_group"] == index) & ~e["negated"])
        hits = [int(t) for t in terms if _matches(self._s["texts"][t] or "", action.text, action.match_type)]
        refs = e["ref_bid_micros"][kw_in_group]
        holder = int(e["holder"][index])
        ref = int(np.median(refs[refs > 0])) if (refs > 0).any() else round(self._params.ref_bid[holder] * 1e6)
        kw = self._append_entity(
            kind=_K_KEYWORD,
            account=int(e["account"][index]),
            parent=index,
            campaign=int(e["campaign"][index]),
            ad_group=index,
            holder=holder,
            match=match,
            bid_micros=action.cpc_bid_micros,
            ref_bid_micros=max(ref, 1),
            entity_id=str(10_000_000 + self.n_entities),
            name=action.text,
            text=action.text,
        )
        if hits:
            e = self._e
            e["keyword"][hits] = kw
            e["parent"][hits] = kw
        else:
            term_id = action.text
            if (int(e["account"][index]), _K_TERM, term_id) in self._index:
                term_id = f"{action.text} ({self._s['ids'][index]})"
            self._append_entity(
                kind=_K_TERM,
                account=int(e["account"][index]),
                parent=kw,
                campaign=int(e["campaign"][index]),
                ad_group=index,
                keyword=kw,
                holder=holder,
                volume=_NEW_KEYWORD_TERM_VOLUME,
                cvr_mult=0.6 + 0.8 * _stable_unit(action.text),
                entity_id=term_id,
                name=action.text,
                text=action.text,
            )
        self._rebuild_index()
        return self._done(action, False, action.new_value, message=f"keyword {self._s['ids'][kw]} created")

    def _append_entity(self, *, entity_id: str, name: str, text: str | None, **values: Any) -> int:
        index = self.n_entities
        for field, (dtype, empty) in _ENTITY_FIELDS.items():
            self._e[field] = np.append(self._e[field], np.asarray([values.get(field, empty)], dtype=dtype))
        self._s["ids"].append(entity_id)
        self._s["names"].append(name)
        self._s["texts"].append(text)
        self._counts = np.concatenate([self._counts, np.zeros((4, _RING_DAYS, 1), dtype=np.int64)], axis=2)
        self._conv_counts = np.concatenate([self._conv_counts, np.zeros((_RING_DAYS, 1))], axis=1)
        self._pending_conv = np.concatenate([self._pending_conv, np.zeros((self._params.delay_steps, 1))], axis=1)
        self._pending_value = np.concatenate(
            [self._pending_value, np.zeros((self._params.delay_steps, 1), dtype=np.int64)], axis=1
        )
        self._index[(int(values["account"]), int(values["kind"]), entity_id)] = index
        self._structure = None
        return index

    # ------------------------------------------------------------------ views for clients

    def account_view(self, account_id: str, indices: IntArray | None = None) -> AccountView:
        """Return one account's entities (or the given entity indices of it) and their reported counters.

        Raises:
            UnknownAccountError: If the market has no such account.
        """
        account = self.account_index(account_id)
        e = self._e
        if indices is None:
            members = np.flatnonzero(e["account"] == account)
            indices = members[np.lexsort((members, e["kind"][members]))]
        p = self.dayparts_per_day
        day = self._step // p
        today_slot = day % _RING_DAYS
        names = ("impressions", "clicks", "cost_micros", "conversion_value_micros")

        def counters(slots: list[int]) -> dict[str, NDArray[Any]]:
            rows = np.asarray(slots, dtype=np.int64)
            out: dict[str, NDArray[Any]] = {}
            for k, name in enumerate(names):
                out[name] = self._counts[k][np.ix_(rows, indices)]
            out["conversions"] = self._conv_counts[np.ix_(rows, indices)]
            return out

        past_days = list(range(max(0, day - HISTORY_DAYS), day))
        history = counters([d % _RING_DAYS for d in past_days])
        trailing_days = [d % _RING_DAYS for d in range(max(0, day - 7), day)]
        trailing = {k: v.sum(axis=0) for k, v in counters(trailing_days).items()}
        today = {k: v[0] for k, v in counters([today_slot]).items()}

        kinds = [_KINDS[k] for k in e["kind"][indices]]
        ids = self._s["ids"]
        parent = e["parent"][indices]
        campaign = e["campaign"][indices]
        match = e["match"][indices]
        kw_bid = e["bid_micros"][indices].copy()
        is_kw = e["kind"][indices] == _K_KEYWORD
        inherit = is_kw & (kw_bid < 0)
        kw_bid[inherit] = e["bid_micros"][e["ad_group"][indices[inherit]]]

        holder_rows = self._holder_rows()
        mine = e["account"][holder_rows] == account
        s = self._structure_now()
        holder_budgets = e["budget_micros"][holder_rows].copy()
        for k in np.flatnonzero(e["lifetime_micros"][holder_rows] >= 0).tolist():
            holder_budgets[k] = self.daily_equivalent_micros(int(holder_rows[k]))
        budgets = np.where(s.holder_enabled & mine, holder_budgets, 0)
        total_budget = int(budgets.sum())
        weights = self._params.daypart_weights
        # The account's pace: its holders' day-parting weights, weighted by budget.
        w = (budgets[:, None] * weights).sum(axis=0) / total_budget if total_budget > 0 else np.ones(p)
        fraction = float(w[: self.daypart].sum() / w.sum())
        a = self._accounts[account]
        holder_of = e["holder"][indices]
        codes = np.where(holder_of >= 0, self._params.strategy_codes[np.maximum(holder_of, 0)], -1)
        budget_view = e["budget_micros"][indices].copy()
        for j in np.flatnonzero(e["lifetime_micros"][indices] >= 0).tolist():
            budget_view[j] = self.daily_equivalent_micros(int(indices[j]))
        return AccountView(
            info=AccountInfo(**a),  # type: ignore[arg-type]
            indices=indices,
            kinds=kinds,
            ids=[ids[i] for i in indices],
            names=[self._s["names"][i] for i in indices],
            texts=[self._s["texts"][i] for i in indices],
            match_types=[_MATCH[m] if m >= 0 else None for m in match],
            parent_ids=[ids[q] if q >= 0 else None for q in parent],
            campaign_ids=[ids[c] if c >= 0 else None for c in campaign],
            enabled=e["enabled"][indices].copy(),
            budget_micros=budget_view,
            bid_micros=kw_bid,
            today=today,
            trailing_7d=trailing,
            history=history,
            history_mask=np.isin(e["kind"][indices], (_K_CREATIVE,)) | (e["budget_micros"][indices] >= 0),
            daypart=self.daypart,
            dayparts_per_day=p,
            as_of=self.now,
            expected_spend_fraction=min(max(fraction, 0.0), 1.0),
            account_daily_budget_micros=total_budget,
            strategy_codes=codes,
            target_roas_bps=e["target_roas_bps"][indices].copy(),
            target_cpa_micros=e["target_cpa_micros"][indices].copy(),
            lifetime_micros=e["lifetime_micros"][indices].copy(),
            flight_spent_micros=e["flight_spent_micros"][indices].copy(),
            flight_start_day=e["flight_start_day"][indices].copy(),
            flight_end_day=e["flight_end_day"][indices].copy(),
            blocked_by=[self._blocked_by(int(i)) for i in indices],
        )

    def _blocked_by(self, index: int) -> str | None:
        """Return why an enabled entity does not deliver although its own status is enabled, else None.

        `CAMPAIGN_PAUSED` / `AD_GROUP_PAUSED` / `KEYWORD_PAUSED` for a paused ancestor, `DISAPPROVED` for a creative the
        platform's review rejected, `FLIGHT_ENDED` for a lifetime budget past its flight.
        """
        e = self._e
        if not e["enabled"][index]:
            return None
        kind = e["kind"][index]
        if kind == _K_CREATIVE and e["disapproved"][index]:
            return "DISAPPROVED"
        parent = int(e["parent"][index])
        while parent >= 0 and e["kind"][parent] != _K_ACCOUNT:
            if not e["enabled"][parent]:
                return _PAUSED_PARENT[int(e["kind"][parent])]
            parent = int(e["parent"][parent])
        holder = int(e["holder"][index])
        if holder >= 0:
            row = int(self._holder_rows()[holder])
            if e["lifetime_micros"][row] >= 0 and self.day > int(e["flight_end_day"][row]):
                return "FLIGHT_ENDED"
        return None

    def truth_of_creatives(self) -> dict[tuple[str, str], float]:
        """Return each creative's current hidden fatigue factor (1 = fresh), keyed by (account id, creative id)."""
        s = self._structure_now()
        exo = self._exo_values_now()
        factor, _, _ = self._rotation(self._core, exo.ec)
        return {
            (self._accounts[int(self._e["account"][i])]["account_id"], self._s["ids"][i]): float(f)
            for i, f in zip(s.cr_idx, factor, strict=True)
        }

    # ------------------------------------------------------------------ persistence

    def clone(self) -> SimMarket:
        """Return an independent copy (same state, same generator states): a what-if sandbox."""
        return copy.deepcopy(self)

    def to_bytes(self) -> bytes:
        """Serialise the whole market (structure, settings, counters, generators, ledger) to compact bytes.

        A zip of `.npy` arrays plus a JSON tree, with fixed timestamps: same state ⇒ same bytes.
        No pickles: `from_bytes` never executes code from the data.
        """
        arrays: dict[str, np.ndarray] = {}
        for name, value in self._e.items():
            arrays[f"e.{name}"] = value
        for name, value in self._params.to_arrays().items():
            arrays[f"p.{name}"] = value
        arrays["core.adstock"] = self._core.adstock
        arrays["core.exposures"] = self._core.exposures
        for name, value in self._exo._asdict().items():
            arrays[f"exo.{name}"] = value
        arrays["spent_today"] = self._spent_today
        arrays["counts"] = self._counts
        arrays["conv_counts"] = self._conv_counts
        arrays["pending_conv"] = self._pending_conv
        arrays["pending_value"] = self._pending_value
        arrays["quality_norm"] = self._quality_norm
        ledger = self.true_ledger()
        for name in TrueLedger._fields:
            arrays[f"ledger.{name}"] = getattr(ledger, name)
        tree = {
            "format_version": _FORMAT_VERSION,
            "seed": self._seed,
            "step": self._step,
            "pending_pos": self._pending_pos,
            "accounts": self._accounts,
            "strings": self._s,
            "negatives": self._negatives,
            "rng": {
                "exo": self._rng_exo.bit_generator.state,
                "noise": self._rng_noise.bit_generator.state,
                "delay": self._rng_delay.bit_generator.state,
            },
        }
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            info = zipfile.ZipInfo("tree.json", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, json.dumps(tree, sort_keys=True, separators=(",", ":")))
            for name in sorted(arrays):
                entry = io.BytesIO()
                np.lib.format.write_array(entry, np.asarray(arrays[name], order="C"), allow_pickle=False)
                info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, entry.getvalue())
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> SimMarket:
        """Rebuild a market written by `to_bytes`.

        Raises:
            InputError: If the data is not a saved market of this format version.
        """
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                tree = json.loads(archive.read("tree.json"))
                arrays = {
                    name[: -len(".npy")]: np.lib.format.read_array(io.BytesIO(archive.read(name)), allow_pickle=False)
                    for name in archive.namelist()
                    if name.endswith(".npy")
                }
        except (zipfile.BadZipFile, KeyError, ValueError) as exc:
            raise InputError("the data is not a saved simulated market", hint="use SimMarket.to_bytes()") from exc
        if tree.get("format_version") != _FORMAT_VERSION:
            raise InputError(f"saved market format {tree.get('format_version')} is not {_FORMAT_VERSION}")
        market = cls()
        market._accounts = tree["accounts"]
        market._s = tree["strings"]
        n_saved = arrays["e.kind"].shape[0]
        market._e = {
            name: arrays[f"e.{name}"].astype(dtype) if f"e.{name}" in arrays else np.full(n_saved, empty, dtype=dtype)
            for name, (dtype, empty) in _ENTITY_FIELDS.items()
        }
        market._params = MarketParams.from_arrays({k[len("p.") :]: v for k, v in arrays.items() if k.startswith("p.")})
        market._seed = int(tree["seed"])
        market._step = int(tree["step"])
        market._pending_pos = int(tree["pending_pos"])
        market._negatives = tree["negatives"]
        generators = []
        for purpose in ("exo", "noise", "delay"):
            generator = np.random.Generator(np.random.PCG64())
            generator.bit_generator.state = tree["rng"][purpose]
            generators.append(generator)
        market._rng_exo, market._rng_noise, market._rng_delay = generators
        market._core = CoreState(arrays["core.adstock"], arrays["core.exposures"])
        market._exo = ExoState(*(arrays[f"exo.{name}"] for name in ExoState._fields))
        market._spent_today = arrays["spent_today"]
        market._counts = arrays["counts"]
        market._conv_counts = arrays["conv_counts"]
        market._pending_conv = arrays["pending_conv"]
        market._pending_value = arrays["pending_value"]
        market._quality_norm = arrays["quality_norm"]
        market._ledger = {name: [] for name in TrueLedger._fields}
        steps = arrays["ledger.step"]
        for name in TrueLedger._fields:
            values = arrays[f"ledger.{name}"]
            market._ledger[name] = [np.asarray(v) for v in values] if steps.shape[0] else []
        market._rebuild_index()
        return market

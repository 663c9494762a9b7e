"""Run a stateful fake Google Ads API on 127.0.0.1 that speaks the real gRPC wire protocol (API v26).

The real `google-ads` SDK talks to it unchanged (tests patch only the channel factory; `bidloop run`
points an account's `endpoint` at it). It answers `GoogleAdsService.SearchStream` (a GAQL subset),
`GoogleAdsService.Mutate` (budgets, CPC bids, ad status, keyword and negative-keyword creates, with
field masks, `partial_failure`, `validate_only` and `response_content_type`) and
`CustomerService.ListAccessibleCustomers`. Writes change its state, so a later read shows them.

It runs accounts as Google runs them, from Google's documentation and never from bidloop's helpers:

* Bidding strategies: each campaign has a `bidding_strategy_type` (manual CPC, target ROAS / CPA,
  maximize conversions / value) or a portfolio `BiddingStrategy`; targets are read and written on the
  strategy's own fields. The strategy fields are a `oneof`, so writing another type's target switches
  the campaign's strategy, as Google does (`strategy_switches` records it). A CPC bid under Smart
  Bidding is stored but ignored, as v26 `AdGroup.cpc_bid_micros` documents ("used when the ad group's
  effective bidding strategy is Manual CPC ... ignored if the ad group's campaign is using a portfolio
  bidding strategy"): nothing the fake serves responds to it, and `ignored_bid_writes` lists each one.
* Budgets: DAILY (`amount_micros`) or CUSTOM_PERIOD (`total_amount_micros` over the campaign's start and
  end), each write a multiple of the currency's `currency_constant.billable_unit_micros`.
* Quota errors carry `QuotaErrorDetails` (rate scope, rate name, retry delay) as Google sends them.

It counts requests per RPC (`request_count`) and applied writes per entity (`writes_by_entity`,
for double-write detection), and injects faults on demand::

    with FakeGoogleAdsServer.from_snapshot(snapshot) as srv:
        srv.inject("throttle", times=2, retry_delay_s=7)
        ...  # point a client at srv.address

Faults: `throttle` (RESOURCE_TEMPORARILY_EXHAUSTED + `retry_delay_s`), `daily_quota` (RESOURCE_EXHAUSTED,
rate scope DEVELOPER, the daily operations bucket, no retry delay), `quota` (`code=` any QuotaError name,
`retry_delay_s=`, `rate_scope=`, `rate_name=`), `transient`
(INTERNAL/TRANSIENT_ERROR, or `status="unavailable"`), `partial_failure` (`indices=` or `entities=`,
`retryable=`), `timeout_after_write` (applies, then stalls `stall_s`), `drop_after_write` (applies,
then UNAVAILABLE), `expired_token`. `method=` limits a fault to one RPC (`Mutate`, `SearchStream`,
`ListAccessibleCustomers`).

Run it: `python -m bidloop.testing.google_ads.fake_server --port 8765`.
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import sys
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import grpc
from google.ads.googleads.v26.errors.types.errors import GoogleAdsFailure
from google.ads.googleads.v26.services.types.customer_service import (
    ListAccessibleCustomersRequest,
    ListAccessibleCustomersResponse,
)
from google.ads.googleads.v26.services.types.google_ads_service import (
    GoogleAdsRow,
    MutateGoogleAdsRequest,
    MutateGoogleAdsResponse,
    SearchGoogleAdsStreamRequest,
    SearchGoogleAdsStreamResponse,
)
from google.protobuf.any_pb2 import Any as AnyPb
from google.rpc import status_pb2

from bidloop.core.entities import BiddingStrategy, BudgetPeriod, EntityKind, EntityState, MatchType, Status
from bidloop.core.errors import InputError
from bidloop.core.metrics import Metrics
from bidloop.core.snapshot import Snapshot
from bidloop.testing.google_ads._gaql import GaqlError, parse_query, set_row_field

__all__ = ["BILLABLE_UNIT_MICROS", "FAULTS", "FakeGoogleAdsServer", "ReceivedRequest", "main"]

MICROS_PER_UNIT = 1_000_000  # "micros": a millionth of the currency unit (Google Ads API, every money field)

BILLABLE_UNIT_MICROS: dict[str, int] = {
    # `currency_constant.billable_unit_micros` ("The billable unit for this currency. Billed amounts should be
    # multiples of this value.", https://developers.google.com/google-ads/api/reference/rpc/v26/CurrencyConstant).
    # Google publishes its currencies at https://developers.google.com/google-ads/api/data/codes-formats#currency-codes;
    # that page was not reachable from the stored corpus when this table was written, so the units below are the
    # currencies' smallest billed amounts as Google bills them to the best of our knowledge (USD cents, whole yen
    # and won, KWD/BHD fils). UNVERIFIED against the live table: query `currency_constant` on a real account to
    # confirm (HUF especially). Served as `currency_constant` rows; the fake enforces them on every write.
    "USD": 10_000,  # cents
    "EUR": 10_000,
    "GBP": 10_000,
    "AUD": 10_000,
    "CAD": 10_000,
    "CHF": 10_000,
    "SEK": 10_000,
    "BRL": 10_000,
    "INR": 10_000,
    "MXN": 10_000,
    "PLN": 10_000,
    "TWD": 10_000,
    "HUF": 10_000,  # unverified (Meta bills HUF in whole forints, a different platform's table)
    "JPY": 1_000_000,  # whole yen
    "KRW": 1_000_000,  # whole won
    "CLP": 1_000_000,
    "VND": 1_000_000,
    "KWD": 1_000,  # fils
    "BHD": 1_000,
    "JOD": 1_000,
    "OMR": 1_000,
    "TND": 1_000,
}

FAULTS = frozenset(
    {
        "throttle",
        "daily_quota",
        "quota",
        "transient",
        "partial_failure",
        "timeout_after_write",
        "drop_after_write",
        "expired_token",
    }
)
_WRITE_FAULTS = frozenset({"partial_failure", "timeout_after_write", "drop_after_write"})
_SERVICE = "google.ads.googleads.v26.services"
# The trailing-metadata key that carries a serialized GoogleAdsFailure (google-ads-python,
# google/ads/googleads/interceptors/interceptor.py: `_FAILURE_KEY`).
_FAILURE_TRAILER_KEY = "google.ads.googleads.v26.errors.googleadsfailure-bin"
_STATUS_NAMES = {Status.ENABLED: "ENABLED", Status.PAUSED: "PAUSED", Status.REMOVED: "REMOVED"}
_GOOGLE_STRATEGY = {
    BiddingStrategy.MANUAL_CPC: "MANUAL_CPC",
    BiddingStrategy.TARGET_ROAS: "TARGET_ROAS",
    BiddingStrategy.TARGET_CPA: "TARGET_CPA",
    BiddingStrategy.MAXIMIZE_CONVERSIONS: "MAXIMIZE_CONVERSIONS",
    BiddingStrategy.MAXIMIZE_CONVERSION_VALUE: "MAXIMIZE_CONVERSION_VALUE",
    BiddingStrategy.OTHER: "TARGET_SPEND",  # Maximize clicks: no target bidloop sets
}
# Where each strategy type keeps its target (v26 Campaign / BiddingStrategy oneof `scheme`).
_ROAS_FIELD = {"TARGET_ROAS": "target_roas", "MAXIMIZE_CONVERSION_VALUE": "maximize_conversion_value"}
_CPA_FIELD = {"TARGET_CPA": "target_cpa", "MAXIMIZE_CONVERSIONS": "maximize_conversions"}
_TARGET_MASKS = {
    "target_roas.target_roas": "TARGET_ROAS",
    "maximize_conversion_value.target_roas": "MAXIMIZE_CONVERSION_VALUE",
    "target_cpa.target_cpa_micros": "TARGET_CPA",
    "maximize_conversions.target_cpa_micros": "MAXIMIZE_CONVERSIONS",
}
# Bids are read only under these types (v26 AdGroup.effective_cpc_bid_micros: "when the bidding strategy is one
# of manual cpc, enhanced cpc, page one promoted or target outrank share").
_BID_TYPES = frozenset({"MANUAL_CPC", "ENHANCED_CPC", "PAGE_ONE_PROMOTED", "TARGET_OUTRANK_SHARE"})
# v26 common TargetRoas.target_roas: "Value must be between 0.01 and 1000.0, inclusive."
_ROAS_MIN, _ROAS_MAX = 0.01, 1000.0
_STREAM_BATCH_ROWS = 10_000
_MAX_OPERATIONS = 10_000

ErrorSpec = tuple[str, str, str]  # (category, enum name, message)


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as the fake received it (metadata keys lower-cased)."""

    method: str
    request: Any
    metadata: dict[str, str]
    deadline_s: float | None
    """Seconds the client allowed for the call when it arrived (None: no deadline was set)."""


@dataclass
class _Fault:
    kind: str
    remaining: int
    method: str | None
    params: dict[str, Any]


@dataclass
class _Budget:
    id: int
    name: str
    amount_micros: int
    explicitly_shared: bool = False
    period: str = "DAILY"
    total_amount_micros: int = 0


@dataclass
class _Campaign:
    id: int
    name: str
    status: str
    budget_id: int | None
    strategy_type: str = "MANUAL_CPC"
    portfolio_id: int | None = None
    target_roas: float | None = None
    target_cpa_micros: int | None = None
    start_date: date | None = None
    end_date: date | None = None


@dataclass
class _Portfolio:
    id: int
    name: str
    strategy_type: str
    target_roas: float | None = None
    target_cpa_micros: int | None = None
    status: str = "ENABLED"


@dataclass
class _AdGroup:
    id: int
    campaign_id: int
    name: str
    status: str
    cpc_bid_micros: int
    target_roas: float | None = None
    target_cpa_micros: int | None = None


@dataclass
class _Criterion:
    id: int
    parent_id: int  # ad group (ad_group_criterion) or campaign (campaign_criterion)
    text: str
    match_type: str
    negative: bool
    status: str = "ENABLED"
    cpc_bid_micros: int = 0


@dataclass
class _Ad:
    id: int
    ad_group_id: int
    name: str
    status: str


@dataclass
class _State:
    budgets: dict[int, _Budget] = field(default_factory=dict)
    campaigns: dict[int, _Campaign] = field(default_factory=dict)
    portfolios: dict[int, _Portfolio] = field(default_factory=dict)
    ad_groups: dict[int, _AdGroup] = field(default_factory=dict)
    criteria: dict[tuple[int, int], _Criterion] = field(default_factory=dict)
    campaign_criteria: dict[tuple[int, int], _Criterion] = field(default_factory=dict)
    ads: dict[tuple[int, int], _Ad] = field(default_factory=dict)
    search_terms: list[tuple[int, str]] = field(default_factory=list)
    perf: dict[tuple[Any, ...], dict[date, Metrics]] = field(default_factory=dict)


class _Abort(Exception):
    """Abort the current RPC with Google Ads errors (internal control flow)."""

    def __init__(
        self,
        code: grpc.StatusCode,
        errors: Sequence[ErrorSpec],
        *,
        retry_delay_s: float | None = None,
        quota: tuple[str, str] | None = None,
    ):
        super().__init__(errors[0][2] if errors else code.name)
        self.code = code
        self.errors = list(errors)
        self.retry_delay_s = retry_delay_s
        self.quota = quota
        """(rate_scope, rate_name) of a quota error's `QuotaErrorDetails`."""


_REQUEST_IDS = itertools.count(1)


def _failure_pb(  # type: ignore[no-untyped-def]
    errors: Sequence[ErrorSpec],
    *,
    indices: Sequence[int | None] = (),
    retry_delay_s: float | None = None,
    quota: tuple[str, str] | None = None,
):
    failure = GoogleAdsFailure.pb()()
    failure.request_id = f"fake-request-{next(_REQUEST_IDS)}"
    for position, (category, name, message) in enumerate(errors):
        err = failure.errors.add()
        fd = err.error_code.DESCRIPTOR.fields_by_name[category]
        setattr(err.error_code, category, fd.enum_type.values_by_name[name].number)
        err.message = message
        index = indices[position] if position < len(indices) else None
        if index is not None:
            element = err.location.field_path_elements.add()
            element.field_name = "mutate_operations"
            element.index = index
        if quota is not None:
            details = err.details.quota_error_details
            scope_enum = details.DESCRIPTOR.fields_by_name["rate_scope"].enum_type
            details.rate_scope = scope_enum.values_by_name[quota[0]].number
            details.rate_name = quota[1]
        if retry_delay_s is not None:
            err.details.quota_error_details.retry_delay.seconds = int(retry_delay_s)
            err.details.quota_error_details.retry_delay.nanos = int((retry_delay_s % 1) * 1e9)
    return failure


class FakeGoogleAdsServer:
    """A stateful fake of the Google Ads API for one customer account, on 127.0.0.1.

    Args:
        customer_id: The customer's 10-digit id.
        currency: The account currency (budgets and bids must be multiples of its minimum unit).
        time_zone: The account's IANA time zone (defines "today").
        manager_id: If set, the customer is reachable only with `login-customer-id` = this manager id.
        developer_token: If set, requests must carry exactly this developer token.
        descriptive_name: The customer's name.
        today: The account's current date; default: today in `time_zone` by the wall clock.
        port: TCP port; 0 picks a free one (see `address`).
    """

    def __init__(
        self,
        customer_id: str = "1234567890",
        *,
        currency: str = "USD",
        time_zone: str = "UTC",
        manager_id: str | None = None,
        developer_token: str | None = None,
        descriptive_name: str = "Fake Google Ads account",
        today: date | None = None,
        port: int = 0,
    ) -> None:
        if not (customer_id.isdigit() and len(customer_id) == 10):
            raise InputError(f"customer id {customer_id!r} is not 10 digits", hint="use e.g. 1234567890")
        self.customer_id = customer_id
        self.currency = currency
        self.time_zone = time_zone
        self.manager_id = manager_id
        self.developer_token = developer_token
        self.descriptive_name = descriptive_name
        self.today = today or datetime.now(ZoneInfo(time_zone)).date()
        self.request_count: Counter[str] = Counter()
        """Requests received per RPC name (`Mutate`, `SearchStream`, `ListAccessibleCustomers`)."""
        self.writes_by_entity: Counter[str] = Counter()
        """Applied (not validate-only) writes per resource; a count above 1 for one action is a double write."""
        self.received: list[ReceivedRequest] = []
        self._state = _State()
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._ids = itertools.count(900_000_001)
        self._port = port
        self._server: grpc.Server | None = None
        if currency not in BILLABLE_UNIT_MICROS:
            raise InputError(
                f"the fake has no billable unit for currency {currency!r}",
                hint=f"use one of: {', '.join(sorted(BILLABLE_UNIT_MICROS))}",
            )
        self._unit_micros = BILLABLE_UNIT_MICROS[currency]
        self.ignored_bid_writes: list[str] = []
        """Resources whose `cpc_bid_micros` was written while their campaign used Smart Bidding (ignored)."""
        self.strategy_switches: list[tuple[int, str, str]] = []
        """(campaign id, type before, type after) for every write that changed a campaign's strategy type."""

    # ------------------------------------------------------------------ seeding

    def add_campaign(
        self,
        campaign_id: int,
        name: str,
        *,
        daily_budget_micros: int | None,
        status: str = "ENABLED",
        budget_id: int | None = None,
        shared_budget: bool = False,
        strategy_type: str = "MANUAL_CPC",
        portfolio_id: int | None = None,
        target_roas: float | None = None,
        target_cpa_micros: int | None = None,
        total_budget_micros: int | None = None,
        start_date: date | None = None,
        end_date: date | None = None,
    ) -> None:
        """Add a campaign with its own (or a shared, if `budget_id` exists already) budget and its strategy.

        `total_budget_micros` makes the budget CUSTOM_PERIOD (a total over `start_date`..`end_date`) instead of
        daily. `portfolio_id` names a portfolio added with `add_portfolio` (its type is the campaign's type).
        """
        if total_budget_micros is not None:
            budget_id = budget_id or next(self._ids)
            self._state.budgets[budget_id] = _Budget(
                budget_id, f"Budget {name}", 0, period="CUSTOM_PERIOD", total_amount_micros=total_budget_micros
            )
        elif daily_budget_micros is not None:
            budget_id = budget_id or next(self._ids)
            if budget_id not in self._state.budgets:
                self._state.budgets[budget_id] = _Budget(
                    budget_id, f"Budget {name}", daily_budget_micros, explicitly_shared=shared_budget
                )
        if portfolio_id is not None:
            strategy_type = self._state.portfolios[portfolio_id].strategy_type
        self._state.campaigns[campaign_id] = _Campaign(
            campaign_id, name, status, budget_id, strategy_type, portfolio_id, target_roas, target_cpa_micros,
            start_date, end_date,
        )  # fmt: skip

    def add_portfolio(
        self,
        strategy_id: int,
        name: str,
        strategy_type: str,
        *,
        target_roas: float | None = None,
        target_cpa_micros: int | None = None,
    ) -> None:
        """Add a portfolio (shared) `BiddingStrategy`; campaigns join it with `add_campaign(portfolio_id=...)`."""
        self._state.portfolios[strategy_id] = _Portfolio(
            strategy_id, name, strategy_type, target_roas, target_cpa_micros
        )

    def add_ad_group(
        self,
        ad_group_id: int,
        campaign_id: int,
        name: str,
        *,
        cpc_bid_micros: int = 0,
        status: str = "ENABLED",
        target_roas: float | None = None,
        target_cpa_micros: int | None = None,
    ) -> None:
        """Add an ad group under a campaign (with target overrides, for a Smart Bidding campaign)."""
        self._state.ad_groups[ad_group_id] = _AdGroup(
            ad_group_id, campaign_id, name, status, cpc_bid_micros, target_roas, target_cpa_micros
        )

    def add_keyword(
        self,
        ad_group_id: int,
        criterion_id: int,
        text: str,
        *,
        match_type: str = "EXACT",
        cpc_bid_micros: int = 0,
        status: str = "ENABLED",
        negative: bool = False,
    ) -> None:
        """Add a keyword criterion to an ad group."""
        self._state.criteria[(ad_group_id, criterion_id)] = _Criterion(
            criterion_id, ad_group_id, text, match_type, negative, status, cpc_bid_micros
        )

    def add_ad(self, ad_group_id: int, ad_id: int, name: str, *, status: str = "ENABLED") -> None:
        """Add an ad to an ad group."""
        self._state.ads[(ad_group_id, ad_id)] = _Ad(ad_id, ad_group_id, name, status)

    def add_search_term(self, ad_group_id: int, text: str) -> None:
        """Add a search term seen in an ad group."""
        self._state.search_terms.append((ad_group_id, text))

    def set_metrics(self, key: tuple[Any, ...], day: date, metrics: Metrics) -> None:
        """Set one day's metrics of an entity.

        Keys: `("campaign", id)`, `("ad_group", id)`, `("keyword", ad_group_id, criterion_id)`,
        `("ad", ad_group_id, ad_id)`, `("search_term", ad_group_id, text)`.
        """
        self._state.perf.setdefault(key, {})[day] = metrics

    @classmethod
    def from_snapshot(
        cls,
        snapshot: Snapshot,
        *,
        customer_id: str | None = None,
        manager_id: str | None = None,
        developer_token: str | None = None,
        today: date | None = None,
        port: int = 0,
    ) -> FakeGoogleAdsServer:
        """Seed a fake from a snapshot: structure, settings, today, the trailing 7 days and the history.

        Entity ids must be Google-shaped: digits for campaigns and ad groups, `"{ad_group_id}~{id}"`
        (or digits) for keywords and creatives. The trailing 7 days come from `daily_history` when
        its last 7 days add up to `trailing_7d`, otherwise `trailing_7d` is spread evenly.

        A search term's parent may be the keyword it matched (the simulated market's shape) or its ad
        group (the shape `GoogleAdsPlatformClient` reads back); either way it is served under that ad
        group, as Google's `search_term_view` reports it. A parent id that names both a keyword and an
        ad group of the snapshot is taken as the keyword. Terms with the same text in one ad group are
        served as one row with their metrics added up.

        Raises:
            InputError: If an id is not Google-shaped, or a search term's parent is neither a keyword
                nor an ad group of the snapshot.
        """
        account = next((e for e in snapshot.entities if e.ref.kind is EntityKind.ACCOUNT), None)
        cid = customer_id or (account.ref.entity_id if account and account.ref.entity_id.isdigit() else "1234567890")
        srv = cls(
            cid,
            currency=snapshot.currency,
            time_zone=snapshot.time_zone,
            manager_id=manager_id,
            developer_token=developer_token,
            descriptive_name=account.name if account else snapshot.account_id,
            today=today or snapshot.as_of.date(),
            port=port,
        )
        keyword_ad_groups = {
            e.ref.entity_id: _pair(e.ref.entity_id, e.parent_id, "keyword")[0]
            for e in snapshot.of_kind(EntityKind.KEYWORD)
        }
        ad_group_ids = {e.ref.entity_id for e in snapshot.of_kind(EntityKind.AD_GROUP)}
        seeded_terms: set[tuple[int, str]] = set()
        lifetimes: list[tuple[int, int]] = []
        for entity in snapshot.of_kind(EntityKind.BIDDING_STRATEGY):
            srv.add_portfolio(
                _digits(entity.ref.entity_id, "bidding strategy"),
                entity.name,
                _GOOGLE_STRATEGY.get(entity.bidding_strategy or BiddingStrategy.OTHER, "TARGET_SPEND"),
                target_roas=_ratio(entity.target_roas_bps),
                target_cpa_micros=entity.target_cpa_micros,
            )
        for entity in snapshot.entities:
            kind = entity.ref.kind
            status = _STATUS_NAMES[entity.status]
            if kind is EntityKind.CAMPAIGN:
                campaign_id = _digits(entity.ref.entity_id, "campaign")
                portfolio_text = entity.bidding_strategy_id or ""
                portfolio = int(portfolio_text) if portfolio_text.isdigit() else None
                lifetime = entity.budget_period is BudgetPeriod.LIFETIME and entity.flight_end is not None
                srv.add_campaign(
                    campaign_id,
                    entity.name,
                    daily_budget_micros=entity.daily_budget_micros,
                    status=status,
                    strategy_type=_GOOGLE_STRATEGY.get(
                        entity.bidding_strategy or BiddingStrategy.MANUAL_CPC, "MANUAL_CPC"
                    ),
                    portfolio_id=portfolio if portfolio in srv._state.portfolios else None,
                    target_roas=_ratio(entity.target_roas_bps),
                    target_cpa_micros=entity.target_cpa_micros,
                    total_budget_micros=(entity.lifetime_budget_micros or 0) if lifetime else None,
                    start_date=entity.flight_start.date() if entity.flight_start else None,
                    end_date=entity.flight_end.date() if entity.flight_end else None,
                )
                srv._seed_metrics(("campaign", campaign_id), entity.today, entity.trailing_7d, entity.daily_history)
                if lifetime and entity.budget_remaining_micros is not None:
                    lifetimes.append((campaign_id, entity.budget_remaining_micros))
            elif kind is EntityKind.AD_GROUP:
                ad_group_id = _digits(entity.ref.entity_id, "ad group")
                srv.add_ad_group(
                    ad_group_id,
                    _digits(entity.parent_id or "", "campaign"),
                    entity.name,
                    cpc_bid_micros=entity.cpc_bid_micros or 0,
                    status=status,
                    target_roas=_ratio(entity.target_roas_bps),
                    target_cpa_micros=entity.target_cpa_micros,
                )
                srv._seed_metrics(("ad_group", ad_group_id), entity.today, entity.trailing_7d, entity.daily_history)
            elif kind is EntityKind.KEYWORD:
                ad_group_id, criterion_id = _pair(entity.ref.entity_id, entity.parent_id, "keyword")
                srv.add_keyword(
                    ad_group_id,
                    criterion_id,
                    entity.text or entity.name,
                    match_type=(entity.match_type or MatchType.EXACT).value.upper(),
                    cpc_bid_micros=entity.cpc_bid_micros or 0,
                    status=status,
                )
                key = ("keyword", ad_group_id, criterion_id)
                srv._seed_metrics(key, entity.today, entity.trailing_7d, entity.daily_history)
            elif kind is EntityKind.CREATIVE:
                ad_group_id, ad_id = _pair(entity.ref.entity_id, entity.parent_id, "creative")
                srv.add_ad(ad_group_id, ad_id, entity.name, status=status)
                srv._seed_metrics(("ad", ad_group_id, ad_id), entity.today, entity.trailing_7d, entity.daily_history)
            elif kind is EntityKind.SEARCH_TERM:
                ad_group_id = _search_term_ad_group(entity, keyword_ad_groups, ad_group_ids)
                text = entity.text or entity.ref.entity_id
                seen = (ad_group_id, text) in seeded_terms
                if not seen:
                    seeded_terms.add((ad_group_id, text))
                    srv.add_search_term(ad_group_id, text)
                term_key = ("search_term", ad_group_id, text)
                srv._seed_metrics(term_key, entity.today, entity.trailing_7d, [], accumulate=seen)
        for campaign_id, remaining in lifetimes:
            # A total budget is what remains plus what the campaign spent since its start, as served.
            campaign = srv._state.campaigns[campaign_id]
            start = campaign.start_date or srv.today
            spent = sum(
                m.cost_micros
                for d, m in srv._state.perf.get(("campaign", campaign_id), {}).items()
                if start <= d <= srv.today
            )
            if campaign.budget_id is not None:
                srv._state.budgets[campaign.budget_id].total_amount_micros = remaining + spent
        return srv

    def _seed_metrics(
        self,
        key: tuple[Any, ...],
        today: Metrics,
        trailing_7d: Metrics,
        history: Sequence[Metrics],
        *,
        accumulate: bool = False,
    ) -> None:
        """Seed an entity's per-day metrics; with `accumulate`, add them to what the key already has."""
        by_day: dict[date, Metrics] = {}
        if today != Metrics():
            by_day[self.today] = today
        last7 = list(history[-7:])
        use_history = len(last7) == 7 and _sum(last7) == trailing_7d
        days = last7 if use_history else _spread(trailing_7d, 7)
        for offset, metrics in zip(range(7, 0, -1), days, strict=True):
            if metrics != Metrics():
                by_day[self.today - timedelta(days=offset)] = metrics
        older = list(history[:-7]) if use_history else []
        for offset, metrics in zip(range(7 + len(older), 7, -1), older, strict=True):
            if metrics != Metrics():
                by_day[self.today - timedelta(days=offset)] = metrics
        existing = self._state.perf.get(key, {}) if accumulate else {}
        for day, metrics in by_day.items():
            self.set_metrics(key, day, existing.get(day, Metrics()) + metrics)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeGoogleAdsServer:
        """Start serving on 127.0.0.1 (the port is chosen when 0 was given)."""
        server = grpc.server(ThreadPoolExecutor(max_workers=8))
        server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(
                    f"{_SERVICE}.GoogleAdsService",
                    {
                        "SearchStream": grpc.unary_stream_rpc_method_handler(
                            self._search_stream,
                            request_deserializer=SearchGoogleAdsStreamRequest.deserialize,
                            response_serializer=lambda m: m.SerializeToString(),
                        ),
                        "Mutate": grpc.unary_unary_rpc_method_handler(
                            self._mutate,
                            request_deserializer=MutateGoogleAdsRequest.deserialize,
                            response_serializer=lambda m: m.SerializeToString(),
                        ),
                    },
                ),
                grpc.method_handlers_generic_handler(
                    f"{_SERVICE}.CustomerService",
                    {
                        "ListAccessibleCustomers": grpc.unary_unary_rpc_method_handler(
                            self._list_accessible_customers,
                            request_deserializer=ListAccessibleCustomersRequest.deserialize,
                            response_serializer=ListAccessibleCustomersResponse.serialize,
                        )
                    },
                ),
            )
        )
        self._port = server.add_insecure_port(f"127.0.0.1:{self._port}")
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        """Stop serving and wake any request stalled by a `timeout_after_write` fault."""
        self._stopping.set()
        if self._server is not None:
            self._server.stop(grace=None)
            self._server = None

    def __enter__(self) -> FakeGoogleAdsServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def address(self) -> str:
        """Return `127.0.0.1:PORT`, the endpoint to give a client."""
        return f"127.0.0.1:{self._port}"

    # ------------------------------------------------------------------ faults and inspection

    def inject(self, fault: str, times: int = 1, *, method: str | None = None, **params: Any) -> None:
        """Make the next `times` matching requests fail in the given way (see the module docstring).

        Raises:
            InputError: If the fault is unknown.
        """
        if fault not in FAULTS:
            raise InputError(f"unknown fault {fault!r}", hint=f"use one of: {', '.join(sorted(FAULTS))}")
        if method is None and fault in _WRITE_FAULTS:
            method = "Mutate"
        with self._lock:
            self._faults.append(_Fault(fault, times, method, params))

    @property
    def total_requests(self) -> int:
        """Return the number of requests received over all RPCs."""
        return sum(self.request_count.values())

    def budget_micros(self, campaign_id: int) -> int:
        """Return the daily budget (micros) of a campaign's budget."""
        budget_id = self._state.campaigns[campaign_id].budget_id
        if budget_id is None:
            raise InputError(f"campaign {campaign_id} has no budget")
        return self._state.budgets[budget_id].amount_micros

    def budget_total_micros(self, campaign_id: int) -> int:
        """Return the total (`total_amount_micros`) of a campaign's CUSTOM_PERIOD budget."""
        budget_id = self._state.campaigns[campaign_id].budget_id
        if budget_id is None:
            raise InputError(f"campaign {campaign_id} has no budget")
        return self._state.budgets[budget_id].total_amount_micros

    def campaign_strategy(self, campaign_id: int) -> tuple[str, int | None]:
        """Return a campaign's `bidding_strategy_type` name and its portfolio strategy id (None: standard)."""
        campaign = self._state.campaigns[campaign_id]
        return campaign.strategy_type, campaign.portfolio_id

    def campaign_target(self, campaign_id: int) -> tuple[float | None, int | None]:
        """Return a standard strategy's (target ROAS ratio, target CPA micros)."""
        campaign = self._state.campaigns[campaign_id]
        return campaign.target_roas, campaign.target_cpa_micros

    def portfolio_target(self, strategy_id: int) -> tuple[float | None, int | None]:
        """Return a portfolio strategy's (target ROAS ratio, target CPA micros)."""
        strategy = self._state.portfolios[strategy_id]
        return strategy.target_roas, strategy.target_cpa_micros

    def ad_group_target(self, ad_group_id: int) -> tuple[float | None, int | None]:
        """Return an ad group's target overrides (target ROAS ratio, target CPA micros)."""
        group = self._state.ad_groups[ad_group_id]
        return group.target_roas, group.target_cpa_micros

    def ad_group_bid_micros(self, ad_group_id: int) -> int:
        """Return an ad group's default CPC bid (micros)."""
        return self._state.ad_groups[ad_group_id].cpc_bid_micros

    def keyword_bid_micros(self, ad_group_id: int, criterion_id: int) -> int:
        """Return a keyword's CPC bid (micros)."""
        return self._state.criteria[(ad_group_id, criterion_id)].cpc_bid_micros

    def ad_status(self, ad_group_id: int, ad_id: int) -> str:
        """Return an ad's status name (`ENABLED`, `PAUSED`, `REMOVED`)."""
        return self._state.ads[(ad_group_id, ad_id)].status

    def keywords(self, ad_group_id: int, *, negative: bool) -> list[tuple[str, str]]:
        """Return (match type, text) of an ad group's keywords or negatives, sorted."""
        return sorted(
            (c.match_type, c.text)
            for c in self._state.criteria.values()
            if c.parent_id == ad_group_id and c.negative is negative
        )

    def campaign_negatives(self, campaign_id: int) -> list[tuple[str, str]]:
        """Return (match type, text) of a campaign's negative keywords, sorted."""
        return sorted(
            (c.match_type, c.text) for c in self._state.campaign_criteria.values() if c.parent_id == campaign_id
        )

    # ------------------------------------------------------------------ request plumbing

    def _begin(self, method: str, request: Any, context: grpc.ServicerContext) -> _Fault | None:
        metadata = {k.lower(): v for k, v in context.invocation_metadata() if isinstance(v, str)}
        with self._lock:
            self.request_count[method] += 1
            self.received.append(ReceivedRequest(method, request, metadata, context.time_remaining()))
            fault = next((f for f in self._faults if f.remaining > 0 and f.method in (None, method)), None)
            if fault is not None:
                fault.remaining -= 1
                self._faults = [f for f in self._faults if f.remaining > 0]
        token = metadata.get("developer-token", "")
        if not token:
            raise _Abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                [("request_error", "DEVELOPER_TOKEN_PARAMETER_MISSING", "Developer token is missing.")],
            )
        if self.developer_token is not None and token != self.developer_token:
            raise _Abort(
                grpc.StatusCode.UNAUTHENTICATED,
                [("authentication_error", "DEVELOPER_TOKEN_INVALID", "The developer token is not valid.")],
            )
        customer_id = getattr(request, "customer_id", None)
        if customer_id is not None and customer_id != self.customer_id:
            raise _Abort(
                grpc.StatusCode.UNAUTHENTICATED,
                [("authentication_error", "CUSTOMER_NOT_FOUND", f"No customer found for id {customer_id}.")],
            )
        login = metadata.get("login-customer-id")
        if customer_id is not None and (
            (self.manager_id is not None and login != self.manager_id)
            or (self.manager_id is None and login not in (None, self.customer_id))
        ):
            raise _Abort(
                grpc.StatusCode.PERMISSION_DENIED,
                [("authorization_error", "USER_PERMISSION_DENIED", "User doesn't have permission to access customer.")],
            )
        if fault is None:
            return None
        if fault.kind == "throttle":
            raise _Abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                [("quota_error", "RESOURCE_TEMPORARILY_EXHAUSTED", "Too many requests. Retry in a few seconds.")],
                retry_delay_s=float(fault.params.get("retry_delay_s", 5.0)),
                quota=("DEVELOPER", "Requests per developer token per second"),
            )
        if fault.kind == "daily_quota":
            # The daily operations limit of the developer token (quotas guide: "Basic access: 15,000
            # operations per day"); Google gives no retry delay for it (Google Ads API team, adwords-api
            # forum, mail-archive msg72156: "The RESOURCE_EXHAUSTED error does not provide a retryAfterSeconds
            # value ... when you are hitting the Daily API operation limits").
            raise _Abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                [("quota_error", "RESOURCE_EXHAUSTED", "Too many requests.")],
                quota=("DEVELOPER", "Number of operations for basic access per day"),
            )
        if fault.kind == "quota":
            delay = fault.params.get("retry_delay_s")
            raise _Abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                [("quota_error", str(fault.params.get("code", "RESOURCE_EXHAUSTED")), "Too many requests.")],
                retry_delay_s=float(delay) if delay is not None else None,
                quota=(
                    str(fault.params.get("rate_scope", "ACCOUNT")),
                    str(fault.params.get("rate_name", "Requests per account")),
                ),
            )
        if fault.kind == "transient":
            if fault.params.get("status") == "unavailable":
                raise _Abort(grpc.StatusCode.UNAVAILABLE, [])
            raise _Abort(grpc.StatusCode.INTERNAL, [("internal_error", "TRANSIENT_ERROR", "Transient error.")])
        if fault.kind == "expired_token":
            raise _Abort(
                grpc.StatusCode.UNAUTHENTICATED,
                [("authentication_error", "OAUTH_TOKEN_EXPIRED", "The OAuth token in the header has expired.")],
            )
        return fault  # a write fault: handled by the mutate path

    @staticmethod
    def _abort(context: grpc.ServicerContext, abort: _Abort, indices: Sequence[int | None] = ()) -> None:
        if abort.errors:
            failure = _failure_pb(abort.errors, indices=indices, retry_delay_s=abort.retry_delay_s, quota=abort.quota)
            context.set_trailing_metadata(
                ((_FAILURE_TRAILER_KEY, failure.SerializeToString()), ("request-id", failure.request_id))
            )
        context.abort(abort.code, str(abort))

    # ------------------------------------------------------------------ RPCs

    def _list_accessible_customers(
        self, request: ListAccessibleCustomersRequest, context: grpc.ServicerContext
    ) -> ListAccessibleCustomersResponse:
        try:
            self._begin("ListAccessibleCustomers", request, context)
        except _Abort as abort:
            self._abort(context, abort)
        direct = self.manager_id or self.customer_id
        return ListAccessibleCustomersResponse(resource_names=[f"customers/{direct}"])

    def _search_stream(self, request: SearchGoogleAdsStreamRequest, context: grpc.ServicerContext) -> Iterator[Any]:
        try:
            self._begin("SearchStream", request, context)
            query = parse_query(request.query)
        except _Abort as abort:
            self._abort(context, abort)
            return
        except GaqlError as exc:
            self._abort(
                context, _Abort(grpc.StatusCode.INVALID_ARGUMENT, [("query_error", "UNRECOGNIZED_FIELD", str(exc))])
            )
            return
        with self._lock:
            rows = self._rows(query)
        if query.limit is not None:
            rows = rows[: query.limit]
        response_type = SearchGoogleAdsStreamResponse.pb()
        row_type = GoogleAdsRow.pb()
        for start in range(0, max(len(rows), 1), _STREAM_BATCH_ROWS):
            batch = response_type()
            for values in rows[start : start + _STREAM_BATCH_ROWS]:
                row = row_type()
                for path in query.fields:
                    if path in values:
                        set_row_field(row, path, values[path])
                batch.results.append(row)
            yield batch

    # ------------------------------------------------------------------ GAQL rows

    def _budget_fields(self, budget_id: int | None) -> dict[str, Any]:
        if budget_id is None:
            return {}
        budget = self._state.budgets[budget_id]
        fields = {
            "campaign_budget.id": budget.id,
            "campaign_budget.resource_name": f"customers/{self.customer_id}/campaignBudgets/{budget.id}",
            "campaign_budget.name": budget.name,
            "campaign_budget.explicitly_shared": budget.explicitly_shared,
            "campaign_budget.period": budget.period,
        }
        # v26 CampaignBudget: total_amount_micros "is used only when the CampaignBudget period is set to
        # CUSTOM_PERIOD"; amount_micros is the daily amount of a DAILY budget.
        if budget.period == "CUSTOM_PERIOD":
            fields["campaign_budget.total_amount_micros"] = budget.total_amount_micros
        else:
            fields["campaign_budget.amount_micros"] = budget.amount_micros
        return fields

    def _campaign_fields(self, campaign_id: int) -> dict[str, Any]:
        campaign = self._state.campaigns[campaign_id]
        fields: dict[str, Any] = {
            "customer.id": int(self.customer_id),
            "campaign.id": campaign.id,
            "campaign.resource_name": f"customers/{self.customer_id}/campaigns/{campaign.id}",
            "campaign.name": campaign.name,
            "campaign.status": campaign.status,
            "campaign.bidding_strategy_type": campaign.strategy_type,
            **self._budget_fields(campaign.budget_id),
        }
        if campaign.portfolio_id is not None:
            fields["campaign.bidding_strategy"] = (
                f"customers/{self.customer_id}/biddingStrategies/{campaign.portfolio_id}"
            )
        else:
            fields.update(
                _target_fields("campaign", campaign.strategy_type, campaign.target_roas, campaign.target_cpa_micros)
            )
        if campaign.start_date is not None:
            fields["campaign.start_date_time"] = f"{campaign.start_date.isoformat()} 00:00:00"
        if campaign.end_date is not None:
            fields["campaign.end_date_time"] = f"{campaign.end_date.isoformat()} 23:59:59"
        return fields

    def _portfolio_fields(self, strategy: _Portfolio) -> dict[str, Any]:
        return {
            "bidding_strategy.id": strategy.id,
            "bidding_strategy.resource_name": f"customers/{self.customer_id}/biddingStrategies/{strategy.id}",
            "bidding_strategy.name": strategy.name,
            "bidding_strategy.status": strategy.status,
            "bidding_strategy.type": strategy.strategy_type,
            **_target_fields(
                "bidding_strategy", strategy.strategy_type, strategy.target_roas, strategy.target_cpa_micros
            ),
        }

    def _ad_group_fields(self, ad_group_id: int) -> dict[str, Any]:
        group = self._state.ad_groups[ad_group_id]
        return {
            **self._campaign_fields(group.campaign_id),
            "ad_group.id": group.id,
            "ad_group.resource_name": f"customers/{self.customer_id}/adGroups/{group.id}",
            "ad_group.name": group.name,
            "ad_group.status": group.status,
            "ad_group.cpc_bid_micros": group.cpc_bid_micros,
            **({"ad_group.target_roas": group.target_roas} if group.target_roas is not None else {}),
            **({"ad_group.target_cpa_micros": group.target_cpa_micros} if group.target_cpa_micros is not None else {}),
        }

    def _criterion_fields(self, crit: _Criterion) -> dict[str, Any]:
        name = f"customers/{self.customer_id}/adGroupCriteria/{crit.parent_id}~{crit.id}"
        return {
            **self._ad_group_fields(crit.parent_id),
            "ad_group_criterion.criterion_id": crit.id,
            "ad_group_criterion.resource_name": name,
            "ad_group_criterion.type": "KEYWORD",
            "ad_group_criterion.negative": crit.negative,
            "ad_group_criterion.status": crit.status,
            "ad_group_criterion.cpc_bid_micros": crit.cpc_bid_micros,
            "ad_group_criterion.keyword.text": crit.text,
            "ad_group_criterion.keyword.match_type": crit.match_type,
            "keyword_view.resource_name": f"customers/{self.customer_id}/keywordViews/{crit.parent_id}~{crit.id}",
        }

    def _structure(self, resource: str) -> list[tuple[dict[str, Any], tuple[Any, ...] | None]]:
        state = self._state
        customer = {
            "customer.id": int(self.customer_id),
            "customer.resource_name": f"customers/{self.customer_id}",
            "customer.descriptive_name": self.descriptive_name,
            "customer.currency_code": self.currency,
            "customer.time_zone": self.time_zone,
            "customer.manager": False,
        }
        if resource == "customer":
            return [(customer, None)]
        if resource == "currency_constant":
            return [
                (
                    {
                        "currency_constant.resource_name": f"currencyConstants/{code}",
                        "currency_constant.code": code,
                        "currency_constant.billable_unit_micros": unit,
                    },
                    None,
                )
                for code, unit in sorted(BILLABLE_UNIT_MICROS.items())
            ]
        if resource == "bidding_strategy":
            return [(self._portfolio_fields(state.portfolios[i]), None) for i in sorted(state.portfolios)]
        if resource == "campaign":
            return [(self._campaign_fields(c), ("campaign", c)) for c in sorted(state.campaigns)]
        if resource == "campaign_budget":
            return [(self._budget_fields(b), None) for b in sorted(state.budgets)]
        if resource == "ad_group":
            return [(self._ad_group_fields(g), ("ad_group", g)) for g in sorted(state.ad_groups)]
        if resource in ("ad_group_criterion", "keyword_view"):
            return [
                (self._criterion_fields(c), ("keyword", c.parent_id, c.id))
                for _, c in sorted(state.criteria.items())
                if resource == "ad_group_criterion" or not c.negative
            ]
        if resource == "ad_group_ad":
            return [
                (
                    {
                        **self._ad_group_fields(ad.ad_group_id),
                        "ad_group_ad.resource_name": f"customers/{self.customer_id}/adGroupAds/"
                        f"{ad.ad_group_id}~{ad.id}",
                        "ad_group_ad.status": ad.status,
                        "ad_group_ad.ad.id": ad.id,
                        "ad_group_ad.ad.name": ad.name,
                    },
                    ("ad", ad.ad_group_id, ad.id),
                )
                for _, ad in sorted(state.ads.items())
            ]
        if resource == "campaign_criterion":
            return [
                (
                    {
                        **self._campaign_fields(c.parent_id),
                        "campaign_criterion.criterion_id": c.id,
                        "campaign_criterion.resource_name": f"customers/{self.customer_id}/campaignCriteria/"
                        f"{c.parent_id}~{c.id}",
                        "campaign_criterion.type": "KEYWORD",
                        "campaign_criterion.status": c.status,
                        "campaign_criterion.negative": c.negative,
                        "campaign_criterion.keyword.text": c.text,
                        "campaign_criterion.keyword.match_type": c.match_type,
                    },
                    None,
                )
                for _, c in sorted(state.campaign_criteria.items())
            ]
        if resource == "search_term_view":
            return [
                (
                    {
                        **self._ad_group_fields(ad_group_id),
                        "search_term_view.search_term": text,
                        "search_term_view.resource_name": f"customers/{self.customer_id}/searchTermViews/"
                        f"{ad_group_id}~{text}",
                    },
                    ("search_term", ad_group_id, text),
                )
                for ad_group_id, text in state.search_terms
            ]
        raise GaqlError(f"resource {resource!r} is not served by the fake")

    def _rows(self, query: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for values, perf_key in self._structure(query.resource):
            if not query.matches(values):
                continue
            if not query.wants_metrics:
                out.append(values)
                continue
            days = self._state.perf.get(perf_key, {}) if perf_key is not None else {}
            in_range = sorted(
                (d, m)
                for d, m in days.items()
                if (query.date_from is None or d >= query.date_from) and (query.date_to is None or d <= query.date_to)
            )
            groups = [[item] for item in in_range] if query.per_day else ([in_range] if in_range else [])
            for group in groups:
                total = _sum(m for _, m in group)
                row = dict(values)
                row.update(
                    {
                        "metrics.impressions": total.impressions,
                        "metrics.clicks": total.clicks,
                        "metrics.cost_micros": total.cost_micros,
                        "metrics.conversions": total.conversions,
                        # Google reports conversion value in currency units, as a double.
                        "metrics.conversions_value": total.conversion_value_micros / MICROS_PER_UNIT,
                    }
                )
                if query.per_day:
                    row["segments.date"] = group[0][0].isoformat()
                out.append(row)
        return out

    # ------------------------------------------------------------------ mutate

    def _mutate(self, request: MutateGoogleAdsRequest, context: grpc.ServicerContext) -> Any:
        try:
            fault = self._begin("Mutate", request, context)
        except _Abort as early:
            self._abort(context, early)
            return None
        req = MutateGoogleAdsRequest.pb(request)
        operations = list(req.mutate_operations)
        if len(operations) > _MAX_OPERATIONS:
            self._abort(
                context,
                _Abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    [("request_error", "TOO_MANY_MUTATE_OPERATIONS", f"{len(operations)} operations > 10,000")],
                ),
            )
            return None
        mutable = req.response_content_type == 2  # MUTABLE_RESOURCE
        forced: set[int] = set()
        if fault is not None and fault.kind == "partial_failure":
            forced = self._forced_failures(operations, fault.params)
        forced_code = (
            (
                "database_error",
                "CONCURRENT_MODIFICATION",
                "Multiple requests were attempting to modify the same resource.",
            )
            if fault is not None and fault.params.get("retryable")
            else ("range_error", "TOO_HIGH", "Injected failure: value rejected.")
        )
        response = MutateGoogleAdsResponse.pb()()
        errors: list[ErrorSpec] = []
        error_indices: list[int | None] = []
        with self._lock:
            plans: list[Any] = []
            for index, op in enumerate(operations):
                plan = forced_code if index in forced else self._plan(op)
                if len(plan) == 3:  # an ErrorSpec; a valid plan is (write key, apply)
                    errors.append(plan)  # type: ignore[arg-type]
                    error_indices.append(index)
                    plans.append(None)
                else:
                    plans.append(plan)
            rejection: _Abort | None
            if errors and not req.partial_failure:
                rejection = _Abort(grpc.StatusCode.INVALID_ARGUMENT, errors)
            else:
                rejection = None
                for plan in plans:
                    result = response.mutate_operation_responses.add()
                    if plan is None or req.validate_only:
                        continue
                    write_key, apply = plan
                    apply(result, mutable)
                    self.writes_by_entity[write_key] += 1
                if req.validate_only:
                    del response.mutate_operation_responses[:]
        if rejection is not None:
            self._abort(context, rejection, error_indices)
            return None
        if errors:
            failure = _failure_pb(errors, indices=error_indices)
            response.partial_failure_error.CopyFrom(
                status_pb2.Status(
                    code=grpc.StatusCode.INVALID_ARGUMENT.value[0],
                    message=f"{len(errors)} operation(s) failed",
                    details=[
                        AnyPb(
                            type_url="type.googleapis.com/google.ads.googleads.v26.errors.GoogleAdsFailure",
                            value=failure.SerializeToString(),
                        )
                    ],
                )
            )
        if fault is not None and fault.kind == "timeout_after_write":
            self._stopping.wait(float(fault.params.get("stall_s", 2.0)))
        if fault is not None and fault.kind == "drop_after_write":
            context.abort(grpc.StatusCode.UNAVAILABLE, "Connection reset by peer")
        return response

    def _forced_failures(self, operations: list[Any], params: dict[str, Any]) -> set[int]:
        forced = {int(i) for i in params.get("indices", ())}
        entities = {str(e) for e in params.get("entities", ())}
        if entities:
            for index, op in enumerate(operations):
                text = str(op)
                if any(e in text for e in entities):
                    forced.add(index)
        return forced

    def _plan(self, op: Any) -> ErrorSpec | tuple[str, Any]:
        """Validate one operation; return an error, or (write key, apply(result_pb, mutable))."""
        kind = op.WhichOneof("operation")
        prefix = f"customers/{self.customer_id}/"
        sub = getattr(op, kind) if kind else None
        if kind is None or sub is None:
            return ("request_error", "UNKNOWN", "empty operation")
        action = sub.WhichOneof("operation")
        mask = list(sub.update_mask.paths)
        if action == "update" and not mask:
            return ("field_mask_error", "FIELD_MASK_MISSING", "The update mask is missing.")
        if kind == "campaign_budget_operation" and action == "update":
            budget_id = _tail_id(sub.update.resource_name, prefix + "campaignBudgets/")
            budget = self._state.budgets.get(budget_id) if budget_id is not None else None
            if budget is None:
                return ("mutate_error", "RESOURCE_NOT_FOUND", f"{sub.update.resource_name} not found")
            bad = _bad_mask(mask, {"amount_micros", "total_amount_micros", "name", "resource_name"})
            if bad:
                return bad
            # campaign_budget_error.proto: BUDGET_AMOUNT_MUST_BE_UNSET_FOR_CUSTOM_BUDGET_PERIOD and
            # TOTAL_BUDGET_AMOUNT_MUST_BE_UNSET_FOR_BUDGET_PERIOD_DAILY.
            if "amount_micros" in mask and budget.period == "CUSTOM_PERIOD":
                return (
                    "campaign_budget_error",
                    "BUDGET_AMOUNT_MUST_BE_UNSET_FOR_CUSTOM_BUDGET_PERIOD",
                    "A custom-period budget has a total amount, not a daily amount.",
                )
            if "total_amount_micros" in mask and budget.period != "CUSTOM_PERIOD":
                return (
                    "campaign_budget_error",
                    "TOTAL_BUDGET_AMOUNT_MUST_BE_UNSET_FOR_BUDGET_PERIOD_DAILY",
                    "A daily budget has no total amount.",
                )
            for money_field in ("amount_micros", "total_amount_micros"):
                if money_field in mask and getattr(sub.update, money_field) % self._unit_micros:
                    return (
                        "campaign_budget_error",
                        "NON_MULTIPLE_OF_MINIMUM_CURRENCY_UNIT",
                        f"Not a multiple of the billable unit ({self._unit_micros} micros).",
                    )

            def apply_budget(result: Any, mutable: bool) -> None:
                if "amount_micros" in mask:
                    budget.amount_micros = sub.update.amount_micros
                if "total_amount_micros" in mask:
                    budget.total_amount_micros = sub.update.total_amount_micros
                if "name" in mask:
                    budget.name = sub.update.name
                result.campaign_budget_result.resource_name = sub.update.resource_name
                if mutable:
                    resource = result.campaign_budget_result.campaign_budget
                    resource.resource_name = sub.update.resource_name
                    resource.id = budget.id
                    set_row_field(resource, "period", budget.period)
                    if budget.period == "CUSTOM_PERIOD":
                        resource.total_amount_micros = budget.total_amount_micros
                    else:
                        resource.amount_micros = budget.amount_micros

            return (sub.update.resource_name, apply_budget)
        if kind == "ad_group_operation" and action == "update":
            ad_group_id = _tail_id(sub.update.resource_name, prefix + "adGroups/")
            group = self._state.ad_groups.get(ad_group_id) if ad_group_id is not None else None
            if group is None:
                return ("mutate_error", "RESOURCE_NOT_FOUND", f"{sub.update.resource_name} not found")
            bad = _bad_mask(mask, {"cpc_bid_micros", "status", "target_roas", "target_cpa_micros", "resource_name"})
            if bad:
                return bad
            if "cpc_bid_micros" in mask and sub.update.cpc_bid_micros % self._unit_micros:
                return ("bidding_error", "BID_TOO_MANY_FRACTIONAL_DIGITS", "Too many fractional digits.")
            campaign = self._state.campaigns[group.campaign_id]
            if "target_roas" in mask:
                # v26 AdGroup.target_roas: "If the campaign is using a portfolio bidding strategy, this field
                # cannot be set and attempting to do so will result in an error." (the proto names no code)
                if campaign.portfolio_id is not None:
                    return ("bidding_error", "INVALID_BIDDING_STRATEGY_TYPE", "Campaign uses a portfolio strategy.")
                bad_roas = _roas_range(sub.update.target_roas)
                if bad_roas:
                    return bad_roas

            def apply_group(result: Any, mutable: bool) -> None:
                if "cpc_bid_micros" in mask:
                    group.cpc_bid_micros = sub.update.cpc_bid_micros
                    if campaign.strategy_type not in _BID_TYPES:
                        self.ignored_bid_writes.append(sub.update.resource_name)
                if "status" in mask:
                    group.status = _enum_name(sub.update, "status")
                if "target_roas" in mask:
                    group.target_roas = sub.update.target_roas
                if "target_cpa_micros" in mask:
                    group.target_cpa_micros = sub.update.target_cpa_micros
                result.ad_group_result.resource_name = sub.update.resource_name
                if mutable:
                    resource = result.ad_group_result.ad_group
                    resource.resource_name = sub.update.resource_name
                    resource.id = group.id
                    resource.cpc_bid_micros = group.cpc_bid_micros
                    if group.target_roas is not None:
                        resource.target_roas = group.target_roas
                    if group.target_cpa_micros is not None:
                        resource.target_cpa_micros = group.target_cpa_micros
                    set_row_field(resource, "status", group.status)

            return (sub.update.resource_name, apply_group)
        if kind == "campaign_operation" and action == "update":
            return self._plan_campaign_update(sub, mask, prefix)
        if kind == "bidding_strategy_operation" and action == "update":
            return self._plan_portfolio_update(sub, mask, prefix)
        if kind == "ad_group_ad_operation" and action == "update":
            pair = _tail_pair(sub.update.resource_name, prefix + "adGroupAds/")
            ad = self._state.ads.get(pair) if pair is not None else None
            if ad is None:
                return ("mutate_error", "RESOURCE_NOT_FOUND", f"{sub.update.resource_name} not found")
            bad = _bad_mask(mask, {"status", "resource_name"})
            if bad:
                return bad

            def apply_ad(result: Any, mutable: bool) -> None:
                if "status" in mask:
                    ad.status = _enum_name(sub.update, "status")
                result.ad_group_ad_result.resource_name = sub.update.resource_name
                if mutable:
                    resource = result.ad_group_ad_result.ad_group_ad
                    resource.resource_name = sub.update.resource_name
                    set_row_field(resource, "status", ad.status)

            return (sub.update.resource_name, apply_ad)
        if kind == "ad_group_criterion_operation" and action == "update":
            pair = _tail_pair(sub.update.resource_name, prefix + "adGroupCriteria/")
            crit = self._state.criteria.get(pair) if pair is not None else None
            if crit is None:
                return ("mutate_error", "RESOURCE_NOT_FOUND", f"{sub.update.resource_name} not found")
            bad = _bad_mask(mask, {"cpc_bid_micros", "status", "resource_name"})
            if bad:
                return bad
            if "cpc_bid_micros" in mask and sub.update.cpc_bid_micros % self._unit_micros:
                return ("bidding_error", "BID_TOO_MANY_FRACTIONAL_DIGITS", "Too many fractional digits.")

            crit_campaign = self._state.campaigns[self._state.ad_groups[crit.parent_id].campaign_id]

            def apply_crit(result: Any, mutable: bool) -> None:
                if "cpc_bid_micros" in mask:
                    crit.cpc_bid_micros = sub.update.cpc_bid_micros
                    if crit_campaign.strategy_type not in _BID_TYPES:
                        self.ignored_bid_writes.append(sub.update.resource_name)
                if "status" in mask:
                    crit.status = _enum_name(sub.update, "status")
                result.ad_group_criterion_result.resource_name = sub.update.resource_name
                if mutable:
                    self._criterion_resource(result.ad_group_criterion_result.ad_group_criterion, crit)

            return (sub.update.resource_name, apply_crit)
        if kind == "ad_group_criterion_operation" and action == "create":
            create = sub.create
            ad_group_id = _tail_id(create.ad_group, prefix + "adGroups/")
            if ad_group_id is None or ad_group_id not in self._state.ad_groups:
                return ("mutate_error", "RESOURCE_NOT_FOUND", f"ad group {create.ad_group} not found")
            if not create.keyword.text.strip() or create.keyword.match_type < 2:
                return ("criterion_error", "KEYWORD_TEXT_EMPTY", "A keyword needs text and a match type.")
            match_type = _enum_name(create.keyword, "match_type")
            status = _enum_name(create, "status") if create.status else "ENABLED"
            key = f"{create.ad_group}/keywords/{_keyword_key(create.negative, match_type, create.keyword.text)}"

            def apply_create(result: Any, mutable: bool) -> None:
                crit = _Criterion(
                    next(self._ids), ad_group_id, create.keyword.text, match_type, create.negative, status,
                    create.cpc_bid_micros,
                )  # fmt: skip
                self._state.criteria[(ad_group_id, crit.id)] = crit
                name = f"{prefix}adGroupCriteria/{ad_group_id}~{crit.id}"
                campaign = self._state.campaigns[self._state.ad_groups[ad_group_id].campaign_id]
                if create.cpc_bid_micros and campaign.strategy_type not in _BID_TYPES:
                    self.ignored_bid_writes.append(name)
                result.ad_group_criterion_result.resource_name = name
                if mutable:
                    self._criterion_resource(result.ad_group_criterion_result.ad_group_criterion, crit)

            return (key, apply_create)
        if kind == "campaign_criterion_operation" and action == "create":
            create_c = sub.create
            campaign_id = _tail_id(create_c.campaign, prefix + "campaigns/")
            if campaign_id is None or campaign_id not in self._state.campaigns:
                return ("mutate_error", "RESOURCE_NOT_FOUND", f"campaign {create_c.campaign} not found")
            if not create_c.keyword.text.strip() or create_c.keyword.match_type < 2:
                return ("criterion_error", "KEYWORD_TEXT_EMPTY", "A keyword needs text and a match type.")
            match_type_c = _enum_name(create_c.keyword, "match_type")
            key_c = (
                f"{create_c.campaign}/keywords/{_keyword_key(create_c.negative, match_type_c, create_c.keyword.text)}"
            )

            def apply_campaign_negative(result: Any, mutable: bool) -> None:
                crit = _Criterion(next(self._ids), campaign_id, create_c.keyword.text, match_type_c, create_c.negative)
                self._state.campaign_criteria[(campaign_id, crit.id)] = crit
                name = f"{prefix}campaignCriteria/{campaign_id}~{crit.id}"
                result.campaign_criterion_result.resource_name = name
                if mutable:
                    resource = result.campaign_criterion_result.campaign_criterion
                    resource.resource_name = name
                    resource.criterion_id = crit.id
                    resource.negative = crit.negative
                    resource.keyword.text = crit.text
                    set_row_field(resource, "keyword.match_type", crit.match_type)

            return (key_c, apply_campaign_negative)
        return ("request_error", "UNKNOWN", f"{kind}.{action} is not supported by the fake")

    def _plan_campaign_update(self, sub: Any, mask: list[str], prefix: str) -> ErrorSpec | tuple[str, Any]:
        """A campaign's target: the strategy fields are one oneof, so another type's field switches the type."""
        campaign_id = _tail_id(sub.update.resource_name, prefix + "campaigns/")
        campaign = self._state.campaigns.get(campaign_id) if campaign_id is not None else None
        if campaign is None:
            return ("mutate_error", "RESOURCE_NOT_FOUND", f"{sub.update.resource_name} not found")
        bad = _bad_mask(mask, {*_TARGET_MASKS, "resource_name"})
        if bad:
            return bad
        targets = [path for path in mask if path in _TARGET_MASKS]
        if len(targets) > 1:
            return ("field_mask_error", "FIELD_HAS_SUBFIELDS", "One bidding scheme per campaign.")
        bad_roas = self._target_value_error(sub.update, targets)
        if bad_roas:
            return bad_roas

        def apply_campaign(result: Any, mutable: bool) -> None:
            for path in targets:
                new_type = _TARGET_MASKS[path]
                if new_type != campaign.strategy_type or campaign.portfolio_id is not None:
                    self.strategy_switches.append((campaign.id, campaign.strategy_type, new_type))
                    campaign.strategy_type, campaign.portfolio_id = new_type, None
                    campaign.target_roas = campaign.target_cpa_micros = None
                _set_target(campaign, sub.update, path)
            result.campaign_result.resource_name = sub.update.resource_name
            if mutable:
                resource = result.campaign_result.campaign
                resource.resource_name = sub.update.resource_name
                resource.id = campaign.id
                set_row_field(resource, "bidding_strategy_type", campaign.strategy_type)
                _write_target(resource, campaign.strategy_type, campaign.target_roas, campaign.target_cpa_micros)

        return (sub.update.resource_name, apply_campaign)

    def _plan_portfolio_update(self, sub: Any, mask: list[str], prefix: str) -> ErrorSpec | tuple[str, Any]:
        """A portfolio's target, on the field of its own type (its type cannot change)."""
        strategy_id = _tail_id(sub.update.resource_name, prefix + "biddingStrategies/")
        strategy = self._state.portfolios.get(strategy_id) if strategy_id is not None else None
        if strategy is None:
            return ("mutate_error", "RESOURCE_NOT_FOUND", f"{sub.update.resource_name} not found")
        bad = _bad_mask(mask, {*_TARGET_MASKS, "name", "resource_name"})
        if bad:
            return bad
        targets = [path for path in mask if path in _TARGET_MASKS]
        if any(_TARGET_MASKS[path] != strategy.strategy_type for path in targets):
            return (
                "bidding_strategy_error",
                "CANNOT_CHANGE_BIDDING_STRATEGY_TYPE",
                "The bidding strategy type cannot be changed.",
            )
        bad_roas = self._target_value_error(sub.update, targets)
        if bad_roas:
            return bad_roas

        def apply_portfolio(result: Any, mutable: bool) -> None:
            for path in targets:
                _set_target(strategy, sub.update, path)
            if "name" in mask:
                strategy.name = sub.update.name
            result.bidding_strategy_result.resource_name = sub.update.resource_name
            if mutable:
                resource = result.bidding_strategy_result.bidding_strategy
                resource.resource_name = sub.update.resource_name
                resource.id = strategy.id
                set_row_field(resource, "type", strategy.strategy_type)
                _write_target(resource, strategy.strategy_type, strategy.target_roas, strategy.target_cpa_micros)

        return (sub.update.resource_name, apply_portfolio)

    def _target_value_error(self, update: Any, targets: list[str]) -> ErrorSpec | None:
        for path in targets:
            holder, leaf = path.split(".")
            value = getattr(getattr(update, holder), leaf)
            if leaf == "target_roas":
                bad = _roas_range(value)
                if bad:
                    return bad
            elif value <= 0:
                return ("range_error", "TOO_LOW", "The target CPA must be positive.")
        return None

    def _criterion_resource(self, resource: Any, crit: _Criterion) -> None:
        resource.resource_name = f"customers/{self.customer_id}/adGroupCriteria/{crit.parent_id}~{crit.id}"
        resource.criterion_id = crit.id
        resource.negative = crit.negative
        resource.cpc_bid_micros = crit.cpc_bid_micros
        resource.keyword.text = crit.text
        set_row_field(resource, "keyword.match_type", crit.match_type)
        set_row_field(resource, "status", crit.status)


def _target_fields(prefix: str, strategy_type: str, roas: float | None, cpa: int | None) -> dict[str, Any]:
    """Return the GAQL fields of the target a strategy type keeps (none for types without a target)."""
    fields: dict[str, Any] = {}
    if strategy_type in _ROAS_FIELD and roas is not None:
        fields[f"{prefix}.{_ROAS_FIELD[strategy_type]}.target_roas"] = roas
    if strategy_type in _CPA_FIELD and cpa is not None:
        fields[f"{prefix}.{_CPA_FIELD[strategy_type]}.target_cpa_micros"] = cpa
    return fields


def _roas_range(value: float) -> ErrorSpec | None:
    """v26 common TargetRoas.target_roas: "Value must be between 0.01 and 1000.0, inclusive."."""
    if value < _ROAS_MIN:
        return ("range_error", "TOO_LOW", "Target ROAS below 0.01.")
    if value > _ROAS_MAX:
        return ("range_error", "TOO_HIGH", "Target ROAS above 1000.0.")
    return None


def _set_target(holder: _Campaign | _Portfolio, update: Any, path: str) -> None:
    scheme, leaf = path.split(".")
    value = getattr(getattr(update, scheme), leaf)
    if leaf == "target_roas":
        holder.target_roas = float(value)
    else:
        holder.target_cpa_micros = int(value)


def _write_target(resource: Any, strategy_type: str, roas: float | None, cpa: int | None) -> None:
    if strategy_type in _ROAS_FIELD and roas is not None:
        getattr(resource, _ROAS_FIELD[strategy_type]).target_roas = roas
    if strategy_type in _CPA_FIELD and cpa is not None:
        getattr(resource, _CPA_FIELD[strategy_type]).target_cpa_micros = cpa


def _ratio(bps: int | None) -> float | None:
    """Return bidloop's ROAS basis points as Google's `target_roas` ratio (a double: 3.5 is 350 %)."""
    return bps / 10_000 if bps else None


def _keyword_key(negative: bool, match_type: str, text: str) -> str:
    return f"{'negative' if negative else 'positive'}|{match_type.lower()}|{text.strip().lower()}"


def _enum_name(message: Any, field_name: str) -> str:
    fd = message.DESCRIPTOR.fields_by_name[field_name]
    return str(fd.enum_type.values_by_number[getattr(message, field_name)].name)


def _bad_mask(mask: list[str], allowed: set[str]) -> ErrorSpec | None:
    unknown = [path for path in mask if path not in allowed]
    if unknown:
        return ("field_mask_error", "FIELD_NOT_FOUND", f"The field mask names fields the fake cannot update: {unknown}")
    return None


def _tail_id(resource_name: str, prefix: str) -> int | None:
    tail = resource_name[len(prefix) :] if resource_name.startswith(prefix) else ""
    return int(tail) if tail.isdigit() else None


def _tail_pair(resource_name: str, prefix: str) -> tuple[int, int] | None:
    tail = resource_name[len(prefix) :] if resource_name.startswith(prefix) else ""
    left, sep, right = tail.partition("~")
    return (int(left), int(right)) if sep and left.isdigit() and right.isdigit() else None


def _digits(entity_id: str, what: str) -> int:
    if not entity_id.isdigit():
        raise InputError(f"{what} id {entity_id!r} is not a Google Ads id", hint="use digits only")
    return int(entity_id)


def _pair(entity_id: str, parent_id: str | None, what: str) -> tuple[int, int]:
    left, sep, right = entity_id.partition("~")
    if sep:
        return _digits(left, f"{what}'s ad group"), _digits(right, what)
    return _digits(parent_id or "", f"{what}'s ad group"), _digits(entity_id, what)


def _search_term_ad_group(term: EntityState, keyword_ad_groups: dict[str, int], ad_group_ids: set[str]) -> int:
    """Return the id of the ad group a search term is reported under.

    Args:
        term: The search term; its parent is the keyword it matched or its ad group.
        keyword_ad_groups: The snapshot's keyword ids, each with its ad group's id.
        ad_group_ids: The snapshot's ad group ids.

    Raises:
        InputError: If the term's parent is neither a keyword nor an ad group of the snapshot.
    """
    parent = term.parent_id or ""
    if parent in keyword_ad_groups:
        return keyword_ad_groups[parent]
    if parent in ad_group_ids:
        return _digits(parent, "search term's ad group")
    raise InputError(
        f"search term {term.ref.entity_id!r} has parent {term.parent_id!r}, "
        "which is neither a keyword nor an ad group of the snapshot",
        hint="set the search term's parent_id to the keyword it matched or to its ad group",
    )


def _sum(items: Any) -> Metrics:
    total = Metrics()
    for item in items:
        total = total + item
    return total


def _spread(total: Metrics, days: int) -> list[Metrics]:
    """Split a period's metrics over `days` days; integer counters add back up exactly."""

    def split(value: int) -> list[int]:
        base, extra = divmod(value, days)
        return [base + (1 if n < extra else 0) for n in range(days)]

    impressions, clicks = split(total.impressions), split(total.clicks)
    cost, value = split(total.cost_micros), split(total.conversion_value_micros)
    return [
        Metrics(
            impressions=impressions[n],
            clicks=clicks[n],
            cost_micros=cost[n],
            conversions=total.conversions / days,
            conversion_value_micros=value[n],
        )
        for n in range(days)
    ]


def demo_snapshot(account_id: str = "sim-google", *, now: datetime | None = None) -> Snapshot:
    """Return a small, fixed Google-shaped account (2 campaigns, 3 ad groups, keywords, ads, search terms)."""
    from bidloop.core.entities import EntityRef, EntityState, Platform

    as_of = now or datetime.now(ZoneInfo("UTC"))

    def ref(kind: EntityKind, entity_id: str) -> EntityRef:
        return EntityRef(platform=Platform.GOOGLE_ADS, account_id=account_id, kind=kind, entity_id=entity_id)

    def perf(scale: int) -> dict[str, Metrics]:
        return {
            "today": Metrics(
                impressions=400 * scale,
                clicks=20 * scale,
                cost_micros=9_000_000 * scale,
                conversions=1.0 * scale,
                conversion_value_micros=30_000_000 * scale,
            ),
            "trailing_7d": Metrics(
                impressions=7000 * scale,
                clicks=350 * scale,
                cost_micros=140_000_000 * scale,
                conversions=14.0 * scale,
                conversion_value_micros=420_000_000 * scale,
            ),
        }

    entities = [
        EntityState(ref=ref(EntityKind.CAMPAIGN, "111"), name="Brand", campaign_id="111",
                    daily_budget_micros=50_000_000, **perf(2)),
        EntityState(ref=ref(EntityKind.CAMPAIGN, "222"), name="Generic", campaign_id="222",
                    daily_budget_micros=30_000_000, **perf(1)),
        EntityState(ref=ref(EntityKind.AD_GROUP, "1001"), name="Brand exact", parent_id="111", campaign_id="111",
                    cpc_bid_micros=1_200_000, **perf(2)),
        EntityState(ref=ref(EntityKind.AD_GROUP, "2001"), name="Running shoes", parent_id="222", campaign_id="222",
                    cpc_bid_micros=800_000, **perf(1)),
        EntityState(ref=ref(EntityKind.KEYWORD, "1001~501"), name="acme shoes", text="acme shoes",
                    match_type=MatchType.EXACT, parent_id="1001", campaign_id="111", cpc_bid_micros=1_300_000,
                    **perf(2)),
        EntityState(ref=ref(EntityKind.KEYWORD, "2001~601"), name="running shoes", text="running shoes",
                    match_type=MatchType.PHRASE, parent_id="2001", campaign_id="222", cpc_bid_micros=900_000,
                    **perf(1)),
        EntityState(ref=ref(EntityKind.CREATIVE, "1001~701"), name="Brand ad A", parent_id="1001",
                    campaign_id="111", **perf(1)),
        EntityState(ref=ref(EntityKind.CREATIVE, "1001~702"), name="Brand ad B", parent_id="1001",
                    campaign_id="111", **perf(1)),
        EntityState(ref=ref(EntityKind.CREATIVE, "2001~801"), name="Shoes ad", parent_id="2001",
                    campaign_id="222", **perf(1)),
        EntityState(ref=ref(EntityKind.SEARCH_TERM, "cheap running shoes"), name="cheap running shoes",
                    text="cheap running shoes", parent_id="2001", campaign_id="222", **perf(1)),
    ]  # fmt: skip
    return Snapshot(
        account_id=account_id,
        platform=Platform.GOOGLE_ADS,
        as_of=as_of,
        account_daily_budget_micros=80_000_000,
        entities=entities,
    )


def _sim_snapshot(account_id: str, seed: int) -> Snapshot | None:
    """Return the simulated market's snapshot of `account_id` (imported lazily), or None without the sim."""
    try:
        fixtures = importlib.import_module("bidloop.tools.sim.fixtures")
        sim = importlib.import_module("bidloop.tools.sim")
    except ImportError:
        return None
    client = sim.SimClient(fixtures.default_market(seed=seed))
    snapshot = client.read_snapshot(account_id)
    return snapshot if isinstance(snapshot, Snapshot) else None


def _server_from_args(argv: Sequence[str] | None) -> tuple[FakeGoogleAdsServer, str]:
    """Build the (not yet started) fake that `main` serves, and name what it was seeded from.

    Raises:
        InputError: If the seed snapshot has ids Google would never return.
    """
    parser = argparse.ArgumentParser(description="Run a fake Google Ads API (gRPC, API v26) on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=8765, help="TCP port (0 picks a free one)")
    parser.add_argument("--account", default="sim-google", help="the simulated market's demo account to seed from")
    parser.add_argument("--seed", type=int, default=7, help="seed of the simulated market")
    parser.add_argument("--snapshot", type=Path, help="seed from a Snapshot JSON file instead")
    parser.add_argument("--customer-id", default="1234567890", help="the fake customer's 10-digit id")
    parser.add_argument("--manager-id", default=None, help="require this login-customer-id (manager routing)")
    args = parser.parse_args(argv)
    if args.snapshot is not None:
        snapshot = Snapshot.model_validate_json(args.snapshot.read_text(encoding="utf-8"))
        source = str(args.snapshot)
    else:
        sim_snapshot = _sim_snapshot(args.account, args.seed)
        snapshot = sim_snapshot or demo_snapshot(args.account)
        source = "the simulated market" if sim_snapshot is not None else "the built-in demo account"
    srv = FakeGoogleAdsServer.from_snapshot(
        snapshot, customer_id=args.customer_id, manager_id=args.manager_id, port=args.port
    )
    return srv, source


def main(argv: Sequence[str] | None = None) -> None:
    """Serve a fake Google Ads account until interrupted (Ctrl-C)."""
    srv, source = _server_from_args(argv)
    srv.start()
    sys.stdout.write(f"fake Google Ads API for customer {srv.customer_id} (seeded from {source}) on {srv.address}\n")
    sys.stdout.write(f"point an account at it: endpoint: {srv.address}, platform_account_id: {srv.customer_id}\n")
    sys.stdout.flush()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        srv.stop()


if __name__ == "__main__":
    main()

"""Serve a stateful fake of the Meta Graph API (Marketing API subset) on 127.0.0.1 for tests and demos.

It speaks the real wire protocol the facebook-business SDK uses (`/v26.0/...` over HTTP/JSON, form
bodies, Graph batch requests, cursor paging, errors as HTTP 400 JSON with `X-Business-Use-Case-Usage`),
so the real SDK code runs against it. State is kept: a write followed by a read shows the change.

It encodes Meta's rules from Meta's documentation, on its own (no helper from the client it tests):

* money in Meta's units, major x the currency's offset from Meta's currency table (HUF, JPY, ... 1);
* `effective_status` derived from the object's own status, its parents' and an ad's review
  (CAMPAIGN_PAUSED, ADSET_PAUSED, DISAPPROVED, ...);
* campaign budgets (CBO): an ad set inside one takes no budget, only spend limits, and the
  campaign's `bid_strategy` governs it; lifetime budgets with their flight (`stop_time` on
  campaigns, `end_time` on ad sets) and `budget_remaining`, never set below what was spent;
* `bid_amount` acted on only under LOWEST_COST_WITH_BID_CAP and COST_CAP: under other strategies
  the call is taken but changes nothing and is listed in `ignored_writes`; `bid_constraints`
  (`roas_average_floor`) only under LOWEST_COST_WITH_MIN_ROAS;
* the limit of 4 budget changes per ad set per hour (error 17).

    with FakeMetaServer.from_snapshot(snapshot) as srv:
        client = MetaClient.from_account(account.model_copy(update={"endpoint": srv.address}))

Run it for a demo (seeded from the simulated market's `sim-meta` account when available):

    python -m bidloop.testing.meta.fake_server --port 8765

Faults on demand, `srv.inject(fault, times=1, **params)`:

* `throttle`: Graph throttle error (`code`, default 80004) with `minutes` in the BUC usage header.
* `transient`: HTTP 5xx (`status`, default 500; Graph code 2, `is_transient`), before any change.
* `partial`: code 100 for the calls on `entities` (ids) or at batch `indices`; the others succeed.
* `timeout_after_write`: apply the request, then stall `stall_s` seconds (past the client timeout)
  or, with `drop=True`, close the connection without an answer.
* `expired_token`: code 190 / subcode 463 (session expired).
* `no_response`: a `null` entry in the batch answer for `entities` (the SDK's leftover batch).
* `usage_header`: successful answers carry a usage header asking to wait `minutes`.
* `account_usage`: successful answers carry `X-Ad-Account-Usage` with `pct` (acc_id_util_pct) and
  `reset_s` (reset_time_duration, seconds).
* `too_much_data`: code 1, "Please reduce the amount of data you're asking for, then retry your request"
  (Meta's answer to an insights call too large to serve synchronously).

`throttle`, `transient` and `no_response` also take `entities` to hit single write calls of a batch;
`endpoint` (`batch`, `update`, `read`, `insights`, `edge`, `adaccounts`) limits a request-level fault.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import threading
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from bidloop.core.entities import BiddingStrategy, BudgetPeriod, EntityKind, EntityRef, EntityState, Platform, Status
from bidloop.core.errors import InputError
from bidloop.core.metrics import Metrics
from bidloop.core.snapshot import Snapshot

__all__ = ["FAULTS", "FakeMetaServer", "RecordedRequest", "demo_snapshot", "main"]

FAULTS = (
    "throttle",
    "transient",
    "partial",
    "timeout_after_write",
    "expired_token",
    "no_response",
    "usage_header",
    "account_usage",
    "too_much_data",
)
"""The faults `FakeMetaServer.inject` understands."""

_API_VERSION_PREFIX = "v"
_BUDGET_FIELDS = ("daily_budget", "lifetime_budget")
_STATUS_TO_META = {Status.ENABLED: "ACTIVE", Status.PAUSED: "PAUSED", Status.REMOVED: "ARCHIVED"}
MICROS_PER_UNIT = 1_000_000
"""bidloop's micros per major unit (the fake keeps its own copy: it takes no helper from the client side)."""

OFFSET_ONE_CURRENCIES = frozenset({"CLP", "COP", "CRC", "HUF", "ISK", "IDR", "JPY", "KRW", "PYG", "TWD", "VND"})
"""Meta's currency table (developers.facebook.com/docs/marketing-api/currencies): these have offset 1,
every other currency offset 100. Budgets and bids travel as major units x offset."""

BID_STRATEGIES = (
    "LOWEST_COST_WITHOUT_CAP",
    "LOWEST_COST_WITH_BID_CAP",
    "COST_CAP",
    "LOWEST_COST_WITH_MIN_ROAS",
)
"""Meta's `bid_strategy` values (SDK `AdSet.BidStrategy`, `Campaign.BidStrategy`)."""
_BID_AMOUNT_STRATEGIES = ("LOWEST_COST_WITH_BID_CAP", "COST_CAP")
"""Strategies whose `bid_amount` Meta acts on (a bid cap, a cost per result); others ignore it."""

REVIEW_STATES = ("DISAPPROVED", "PENDING_REVIEW", "WITH_ISSUES", "IN_PROCESS", "PREAPPROVED", "PENDING_BILLING_INFO")
"""An ad's review outcomes that stop delivery; they show as its `effective_status` when nothing above it does."""

_STRATEGY_TO_META = {
    BiddingStrategy.MANUAL_CPC: "LOWEST_COST_WITH_BID_CAP",
    BiddingStrategy.BID_CAP: "LOWEST_COST_WITH_BID_CAP",
    BiddingStrategy.COST_CAP: "COST_CAP",
    BiddingStrategy.TARGET_CPA: "COST_CAP",
    BiddingStrategy.MIN_ROAS: "LOWEST_COST_WITH_MIN_ROAS",
    BiddingStrategy.TARGET_ROAS: "LOWEST_COST_WITH_MIN_ROAS",
}
_GRAPH_TIME = "%Y-%m-%dT%H:%M:%S%z"


def meta_offset(currency: str) -> int:
    """Return Meta's offset for `currency` (1 or 100), from the fake's own copy of Meta's table."""
    return 1 if currency.upper() in OFFSET_ONE_CURRENCIES else 100


def to_meta_units(micros: int, currency: str) -> int:
    """Convert micros to Meta's integer units (major x offset), rounding down."""
    return micros * meta_offset(currency) // MICROS_PER_UNIT


_KIND_EDGE = {"campaign": "campaigns", "adset": "adsets", "ad": "ads"}


@dataclass
class RecordedRequest:
    """One HTTP request the fake received (the access token is never recorded).

    Attributes:
        method: `GET` or `POST`.
        endpoint: `batch`, `update`, `read`, `insights`, `edge`, `adaccounts` or `account`.
        path: The path after the API version, e.g. `act_1/insights` or `123`.
        params: Query (GET) or form (POST) parameters, minus `access_token`.
        batch: For a batch request, its calls: `{"method", "path", "params"}`.
        token_in_header: Whether the token came in the Authorization header (not the URL).
    """

    method: str
    endpoint: str
    path: str
    params: dict[str, str]
    batch: list[dict[str, Any]] = field(default_factory=list)
    token_in_header: bool = False


@dataclass
class _Fault:
    kind: str
    remaining: int
    params: dict[str, Any]

    @property
    def per_item(self) -> bool:
        return bool(self.params.get("entities") or self.params.get("indices"))

    def hits_item(self, entity_id: str, index: int) -> bool:
        entities = {str(e) for e in self.params.get("entities") or ()}
        indices = set(self.params.get("indices") or ())
        return entity_id in entities or index in indices


class _Reply(Exception):
    """Raised inside request handling to answer with a Graph error."""

    def __init__(self, status: int, error: dict[str, Any], headers: Mapping[str, str] | None = None) -> None:
        super().__init__(error.get("message", ""))
        self.status = status
        self.error = error
        self.headers = dict(headers or {})


def _major(micros: int) -> str:
    return format((Decimal(micros) / MICROS_PER_UNIT).normalize(), "f")


def _split_metrics(total: Metrics, days: int) -> list[Metrics]:
    """Split a window's totals over `days` days exactly (the remainder lands on the last day)."""

    def parts(value: int) -> list[int]:
        base = value // days
        return [base] * (days - 1) + [value - base * (days - 1)]

    impressions, clicks = parts(total.impressions), parts(total.clicks)
    cost, value = parts(total.cost_micros), parts(total.conversion_value_micros)
    conversions = [total.conversions / days] * days
    return [
        Metrics(
            impressions=impressions[i],
            clicks=clicks[i],
            cost_micros=cost[i],
            conversions=conversions[i],
            conversion_value_micros=value[i],
        )
        for i in range(days)
    ]


class FakeMetaServer:
    """A stateful fake Graph API server on 127.0.0.1 (port 0 picks a free port).

    Args:
        account_id: The ad account id, `act_...`.
        name: The account's name.
        currency: ISO 4217 code (budgets are kept in its minor units, as Meta does).
        time_zone: The account's IANA time zone name.
        access_token: The only token accepted (in the Authorization header or `access_token`).
        today: The date insights call "today" (rows are kept per date).
        port: TCP port; 0 picks a free one.
        clock: Seconds, for the 4-budget-changes-per-hour rule (injectable).
        min_daily_budget: The ad account's `min_daily_budget`, in Meta units (None: not reported).
    """

    def __init__(
        self,
        *,
        account_id: str = "act_1000",
        name: str = "Fake Meta account",
        currency: str = "USD",
        time_zone: str = "UTC",
        access_token: str = "fake-meta-token",
        today: date | None = None,
        port: int = 0,
        clock: Callable[[], float] = time.monotonic,
        min_daily_budget: int | None = None,
    ) -> None:
        if not account_id.startswith("act_"):
            raise InputError(f"a Meta ad account id starts with act_, got {account_id!r}")
        self.account = {
            "id": account_id,
            "account_id": account_id.removeprefix("act_"),
            "name": name,
            "currency": currency,
            "timezone_name": time_zone,
            "account_status": 1,
        }
        if min_daily_budget is not None:
            self.account["min_daily_budget"] = min_daily_budget
        self.currency = currency
        self.today = today or datetime.now(UTC).date()
        self._token = access_token
        self._port = port
        self._clock = clock
        self.objects: dict[str, dict[str, Any]] = {}
        """Campaigns, ad sets and ads by id, with Meta's field names and string values."""
        self.daily: dict[str, dict[date, Metrics]] = defaultdict(dict)
        """Daily metrics of ad sets and ads (campaigns sum their ad sets)."""
        self.request_count = 0
        """HTTP requests received (a batch of 50 calls is one)."""
        self.requests_by_endpoint: Counter[str] = Counter()
        self.writes_by_entity: Counter[str] = Counter()
        """Applied (not validate-only) updates per object id: more than one for one action is a double write."""
        self.budget_changes_by_entity: Counter[str] = Counter()
        self.ignored_writes: list[tuple[str, str]] = []
        """(object id, field) of applied writes Meta accepts but does not act on (`bid_amount` where the
        bid strategy sets bids itself): a client should never cause one."""
        self.requests: list[RecordedRequest] = []
        self._faults: list[_Fault] = []
        self._budget_times: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ seeding

    @classmethod
    def from_snapshot(
        cls,
        snapshot: Snapshot,
        *,
        platform_account_id: str | None = None,
        access_token: str = "fake-meta-token",
        today: date | None = None,
        port: int = 0,
        clock: Callable[[], float] = time.monotonic,
        time_zone: str | None = None,
        min_daily_budget: int | None = None,
    ) -> FakeMetaServer:
        """Build a fake holding the snapshot's campaigns, ad sets (`AD_GROUP`) and ads (`CREATIVE`).

        Budgets and bids are stored in Meta's units of the currency (major x offset), with the fields
        the entity's settings mean on Meta: a lifetime budget with its flight and what it spent, the
        bid strategy with its `bid_amount` or ROAS floor, a creative's `delivery_blocked_by` review
        state (`DISAPPROVED`, `PENDING_REVIEW`, ...) as the ad's review. `time_zone` overrides the
        snapshot's. `today` metrics land on `today`
        (default: the snapshot's date), `daily_history` on the days before it, or, without history,
        `trailing_7d` spread evenly over the 7 days before it.
        """
        remote = platform_account_id or (snapshot.account_id if snapshot.account_id.startswith("act_") else "act_1000")
        server = cls(
            account_id=remote,
            name=f"{snapshot.account_id} (fake)",
            currency=snapshot.currency,
            time_zone=time_zone or snapshot.time_zone,
            access_token=access_token,
            today=today or snapshot.as_of.date(),
            port=port,
            clock=clock,
            min_daily_budget=min_daily_budget,
        )
        for entity in snapshot.entities:
            server.add_entity(entity)
        return server

    def add_entity(self, entity: EntityState) -> None:
        """Add one campaign, ad set or ad with its metrics; other kinds are ignored (Meta has none)."""
        kind = {EntityKind.CAMPAIGN: "campaign", EntityKind.AD_GROUP: "adset", EntityKind.CREATIVE: "ad"}.get(
            entity.ref.kind
        )
        if kind is None:
            return
        obj: dict[str, Any] = {
            "id": entity.ref.entity_id,
            "name": entity.name,
            "status": _STATUS_TO_META[entity.status],
            "_kind": kind,
        }
        if kind == "campaign":
            obj["campaign_id"] = entity.ref.entity_id
        else:
            obj["campaign_id"] = entity.campaign_id or entity.parent_id
        if kind == "ad":
            obj["adset_id"] = entity.parent_id
            if entity.delivery_blocked_by in REVIEW_STATES:
                obj["_review"] = entity.delivery_blocked_by
        if kind in ("campaign", "adset"):
            self._seed_budget(obj, entity, "stop_time" if kind == "campaign" else "end_time")
        if kind == "adset":
            self._seed_bidding(obj, entity)
            for name, micros in (
                ("daily_min_spend_target", entity.daily_min_spend_micros),
                ("daily_spend_cap", entity.daily_spend_cap_micros),
            ):
                if micros is not None:
                    obj[name] = str(to_meta_units(micros, self.currency))
        elif kind == "campaign" and entity.bidding_strategy is not None and self._has_budget(obj):
            obj["bid_strategy"] = _STRATEGY_TO_META.get(entity.bidding_strategy, "LOWEST_COST_WITHOUT_CAP")
        with self._lock:
            self.objects[entity.ref.entity_id] = obj
            if kind == "campaign":
                return
            days = self.daily[entity.ref.entity_id]
            days[self.today] = entity.today
            if entity.daily_history:
                for back, metrics in enumerate(reversed(entity.daily_history), start=1):
                    days[self.today - timedelta(days=back)] = metrics
            elif entity.trailing_7d != Metrics():
                for back, metrics in enumerate(reversed(_split_metrics(entity.trailing_7d, 7)), start=1):
                    days[self.today - timedelta(days=back)] = metrics

    @staticmethod
    def _has_budget(obj: Mapping[str, Any]) -> bool:
        return bool(obj.get("daily_budget") or obj.get("lifetime_budget"))

    def _seed_budget(self, obj: dict[str, Any], entity: EntityState, end_field: str) -> None:
        if entity.budget_period is BudgetPeriod.LIFETIME and entity.lifetime_budget_micros is not None:
            lifetime = to_meta_units(entity.lifetime_budget_micros, self.currency)
            remaining = entity.budget_remaining_micros
            spent = lifetime - to_meta_units(remaining, self.currency) if remaining is not None else 0
            obj["lifetime_budget"] = str(lifetime)
            obj["_spent"] = max(0, spent)
            if entity.flight_start is not None:
                obj["start_time"] = entity.flight_start.strftime(_GRAPH_TIME)
            if entity.flight_end is not None:
                obj[end_field] = entity.flight_end.strftime(_GRAPH_TIME)
        elif entity.daily_budget_micros is not None:
            obj["daily_budget"] = str(to_meta_units(entity.daily_budget_micros, self.currency))

    def _seed_bidding(self, obj: dict[str, Any], entity: EntityState) -> None:
        strategy = entity.bidding_strategy
        if strategy is None:  # an entity from before strategies: a bid means a bid cap
            strategy = BiddingStrategy.BID_CAP if entity.cpc_bid_micros is not None else BiddingStrategy.LOWEST_COST
        meta = _STRATEGY_TO_META.get(strategy, "LOWEST_COST_WITHOUT_CAP")
        obj["bid_strategy"] = meta
        if meta == "LOWEST_COST_WITH_BID_CAP" and entity.cpc_bid_micros is not None:
            obj["bid_amount"] = str(to_meta_units(entity.cpc_bid_micros, self.currency))
        elif meta == "COST_CAP" and entity.target_cpa_micros is not None:
            obj["bid_amount"] = str(to_meta_units(entity.target_cpa_micros, self.currency))
        elif meta == "LOWEST_COST_WITH_MIN_ROAS" and entity.target_roas_bps is not None:
            obj["bid_constraints"] = {"roas_average_floor": entity.target_roas_bps}

    def effective_status(self, entity_id: str) -> str:
        """Return an object's `effective_status` as Meta derives it: its own status, then its parents', then review.

        Effective status "reflects whether an object is actually delivering, taking into account its own
        status and the status of its parents" (Meta's effective-status page); a paused campaign shows on
        its active ad sets and ads as CAMPAIGN_PAUSED, a paused ad set on its active ads as ADSET_PAUSED.
        """
        with self._lock:
            obj = self.objects[entity_id]
            own = str(obj.get("status"))
            if obj["_kind"] == "ad" and own == "PAUSED" and obj.get("_review") == "DISAPPROVED":
                return "DISAPPROVED"  # a rejected ad shows as rejected whatever its own switch
            if own != "ACTIVE" or obj["_kind"] == "campaign":
                return own
            campaign = self.objects.get(str(obj.get("campaign_id")), {})
            if campaign.get("status", "ACTIVE") != "ACTIVE":
                return "CAMPAIGN_PAUSED"
            if obj["_kind"] == "ad":
                adset = self.objects.get(str(obj.get("adset_id")), {})
                if adset.get("status", "ACTIVE") != "ACTIVE":
                    return "ADSET_PAUSED"
                return str(obj.get("_review") or "ACTIVE")
            return "ACTIVE"

    def strategy_in_force(self, entity_id: str) -> str:
        """Return the `bid_strategy` that governs an ad set: its campaign's under a campaign budget."""
        with self._lock:
            obj = self.objects[entity_id]
            campaign = self.objects.get(str(obj.get("campaign_id")), {})
            if self._has_budget(campaign) and campaign.get("bid_strategy"):
                return str(campaign["bid_strategy"])
            return str(obj.get("bid_strategy") or "LOWEST_COST_WITHOUT_CAP")

    def set_review(self, ad_id: str, state: str | None) -> None:
        """Set an ad's review outcome (`DISAPPROVED`, `PENDING_REVIEW`, ...; None: approved)."""
        with self._lock:
            if state is None:
                self.objects[ad_id].pop("_review", None)
            else:
                self.objects[ad_id]["_review"] = state

    def _view(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Return an object with its derived fields (`effective_status`, `budget_remaining`)."""
        view = {k: v for k, v in obj.items() if not k.startswith("_")}
        if obj.get("_kind") in _KIND_EDGE:
            view["effective_status"] = self.effective_status(str(obj["id"]))
        if obj.get("lifetime_budget"):
            view["budget_remaining"] = str(max(0, int(obj["lifetime_budget"]) - int(obj.get("_spent", 0))))
        return view

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeMetaServer:
        """Start serving in a background thread; returns self."""
        server = self

        class Handler(_GraphHandler):
            fake = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", self._port), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name="fake-meta", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port (stalled answers are cut short)."""
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeMetaServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """Return the TCP port (after `start`)."""
        if self._httpd is None:
            raise InputError("the fake server is not started", hint="use `with FakeMetaServer(...) as srv:`")
        return int(self._httpd.server_address[1])

    @property
    def address(self) -> str:
        """Return the base URL to use as `FacebookSession.GRAPH` / `AccountConfig.endpoint`."""
        return f"http://127.0.0.1:{self.port}"

    # ------------------------------------------------------------------ test helpers

    def inject(self, fault: str, times: int = 1, **params: Any) -> None:
        """Make the next `times` matching requests fail with `fault` (see the module docstring).

        Raises:
            InputError: If the fault is unknown.
        """
        if fault not in FAULTS:
            raise InputError(f"unknown fault {fault!r}", hint=f"use one of: {', '.join(FAULTS)}")
        with self._lock:
            self._faults.append(_Fault(fault, times, dict(params)))

    def object(self, entity_id: str) -> dict[str, Any]:
        """Return a copy of one object's current fields (Meta's names, string values)."""
        with self._lock:
            return {k: v for k, v in self.objects[entity_id].items() if not k.startswith("_")}

    @contextlib.contextmanager
    def unrecorded(self) -> Iterator[None]:
        """Serve without injected faults and without recording requests (a test's setup reads).

        Faults injected before stay pending for the requests after the block.
        """
        with self._lock:
            faults, self._faults = self._faults, []
            recorded = (list(self.requests), self.request_count, Counter(self.requests_by_endpoint))
        try:
            yield
        finally:
            with self._lock:
                self._faults = faults + self._faults
                self.requests, self.request_count, self.requests_by_endpoint = recorded

    def batch_sizes(self) -> list[int]:
        """Return the number of calls in each batch request received, in order."""
        with self._lock:
            return [len(r.batch) for r in self.requests if r.endpoint == "batch"]

    # ------------------------------------------------------------------ request handling

    def _take_fault(self, *, endpoint: str, is_write: bool) -> _Fault | None:
        for fault in self._faults:
            if fault.remaining <= 0 or fault.per_item:
                continue
            if fault.kind in ("partial", "no_response", "usage_header", "account_usage"):
                continue
            if fault.kind == "timeout_after_write" and not is_write:
                continue
            wanted = fault.params.get("endpoint")
            if wanted is not None and wanted != endpoint:
                continue
            fault.remaining -= 1
            return fault
        return None

    def _item_faults(self, items: list[tuple[str, int]]) -> dict[int, _Fault]:
        """Return, per call index, the per-item fault hitting it; each fault is used once per request."""
        hits: dict[int, _Fault] = {}
        for fault in self._faults:
            if fault.remaining <= 0 or not (fault.per_item or fault.kind == "partial"):
                continue
            used = False
            for entity_id, index in items:
                if index not in hits and fault.hits_item(entity_id, index):
                    hits[index] = fault
                    used = True
            if used:
                fault.remaining -= 1
        return hits

    def _usage_header(self, minutes: float) -> dict[str, str]:
        usage = {
            self.account["account_id"]: [
                {
                    "type": "ads_management",
                    "call_count": 100,
                    "total_cputime": 40,
                    "total_time": 60,
                    "estimated_time_to_regain_access": minutes,
                }
            ]
        }
        return {"X-Business-Use-Case-Usage": json.dumps(usage)}

    def _fault_reply(self, fault: _Fault) -> _Reply:
        if fault.kind == "throttle":
            code = int(fault.params.get("code", 80004))
            return _Reply(
                400,
                {
                    "message": f"(#{code}) There have been too many calls to this ad-account.",
                    "type": "OAuthException",
                    "code": code,
                    "is_transient": True,
                    "fbtrace_id": "FAKE",
                },
                self._usage_header(float(fault.params.get("minutes", 1))),
            )
        if fault.kind == "transient":
            return _Reply(
                int(fault.params.get("status", 500)),
                {"message": "An unknown error occurred", "type": "OAuthException", "code": 2, "is_transient": True},
            )
        if fault.kind == "too_much_data":
            return _Reply(
                500,
                {
                    "message": "Please reduce the amount of data you're asking for, then retry your request",
                    "type": "OAuthException",
                    "code": 1,
                    "fbtrace_id": "FAKE",
                },
            )
        if fault.kind == "expired_token":
            return _Reply(
                400,
                {
                    "message": "Error validating access token: Session has expired.",
                    "type": "OAuthException",
                    "code": 190,
                    "error_subcode": 463,
                },
            )
        return _Reply(
            400, {"message": "(#100) Invalid parameter", "type": "OAuthException", "code": 100, "is_transient": False}
        )

    def _budget_change_allowed(self, entity_id: str) -> bool:
        now = self._clock()
        times = self._budget_times[entity_id]
        while times and times[0] <= now - 3600:
            times.popleft()
        return len(times) < 4

    def _update(self, entity_id: str, params: Mapping[str, str]) -> dict[str, Any]:
        obj = self.objects.get(entity_id)
        if obj is None:
            raise _Reply(
                400,
                {
                    "message": f"Unsupported post request. Object with ID '{entity_id}' does not exist",
                    "type": "GraphMethodException",
                    "code": 100,
                    "error_subcode": 33,
                },
            )
        options = json.loads(params.get("execution_options", "[]") or "[]")
        validate_only = "validate_only" in options
        kind = obj["_kind"]

        def reject(message: str) -> _Reply:
            return _Reply(400, {"message": f"(#100) {message}", "type": "OAuthException", "code": 100})

        changes: dict[str, Any] = {}
        ignored: list[str] = []
        for name in (*_BUDGET_FIELDS, "bid_amount", "daily_min_spend_target", "daily_spend_cap"):
            if name not in params:
                continue
            if kind == "ad" or (name != "daily_budget" and name != "lifetime_budget" and kind != "adset"):
                raise reject(f"Param {name} is not valid here")
            try:
                value = int(params[name])
            except ValueError:
                value = -1
            if value <= 0:
                raise reject(f"Param {name} must be a positive integer")
            changes[name] = str(value)
        if "bid_constraints" in params:
            if kind != "adset":
                raise reject("Param bid_constraints is not valid here")
            try:
                constraints = json.loads(params["bid_constraints"])
                floor = int(constraints["roas_average_floor"])
            except (ValueError, TypeError, KeyError):
                raise reject('Param bid_constraints must be {"roas_average_floor": <int>}') from None
            if self.strategy_in_force(entity_id) != "LOWEST_COST_WITH_MIN_ROAS":
                raise reject("roas_average_floor needs bid_strategy LOWEST_COST_WITH_MIN_ROAS")
            if floor <= 0:
                raise reject("roas_average_floor must be a positive integer (ROAS x 10,000)")
            changes["bid_constraints"] = {"roas_average_floor": floor}
        if "status" in params:
            if params["status"] not in ("ACTIVE", "PAUSED", "ARCHIVED", "DELETED"):
                raise reject("Param status must be one of ACTIVE, PAUSED, ARCHIVED, DELETED")
            changes["status"] = params["status"]
        if "daily_budget" in changes and obj.get("lifetime_budget"):
            raise reject("This object has a lifetime budget")
        if "lifetime_budget" in changes and obj.get("daily_budget"):
            raise reject("This object has a daily budget")
        if "lifetime_budget" in changes and int(changes["lifetime_budget"]) <= int(obj.get("_spent", 0)):
            raise reject("The lifetime budget must be more than what the object has already spent")
        campaign = self.objects.get(str(obj.get("campaign_id")), {})
        if kind == "adset" and self._has_budget(campaign):
            if any(name in changes for name in _BUDGET_FIELDS):
                raise reject("This ad set is in a campaign with a campaign budget: set the budget on the campaign")
        elif any(name in changes for name in ("daily_min_spend_target", "daily_spend_cap")):
            raise reject("Ad set spend limits need a campaign budget")
        if "bid_amount" in changes and self.strategy_in_force(entity_id) not in _BID_AMOUNT_STRATEGIES:
            # Meta takes the call but bids automatically: the amount has no effect on delivery.
            ignored.append("bid_amount")
            del changes["bid_amount"]
        budget_change = any(name in changes and changes[name] != obj.get(name) for name in _BUDGET_FIELDS)
        if budget_change and not validate_only and not self._budget_change_allowed(entity_id):
            raise _Reply(
                400,
                {
                    "message": "(#17) User request limit reached: the budget of this ad set changed too often",
                    "type": "OAuthException",
                    "code": 17,
                    "is_transient": True,
                },
            )
        if validate_only:
            return {"success": True}
        obj.update(changes)
        self.writes_by_entity[entity_id] += 1
        self.ignored_writes.extend((entity_id, name) for name in ignored)
        if budget_change:
            self.budget_changes_by_entity[entity_id] += 1
            self._budget_times[entity_id].append(self._clock())
        fields = [f for f in params.get("fields", "").split(",") if f]
        if fields:
            view = self._view(obj)
            return {f: view[f] for f in ("id", *fields) if f in view}
        return {"success": True}

    def _read(self, entity_id: str, params: Mapping[str, str]) -> dict[str, Any]:
        if entity_id == self.account["id"]:
            account_fields = [f for f in params.get("fields", "").split(",") if f] or ["id"]
            return {f: self.account[f] for f in ("id", *account_fields) if f in self.account}
        obj = self.objects.get(entity_id)
        if obj is None:
            raise _Reply(
                400,
                {
                    "message": f"Object with ID '{entity_id}' does not exist or cannot be loaded",
                    "type": "GraphMethodException",
                    "code": 100,
                    "error_subcode": 33,
                },
            )
        fields = [f for f in params.get("fields", "").split(",") if f] or ["id", "name"]
        view = self._view(obj)
        return {f: view[f] for f in ("id", *fields) if f in view}

    def _page(self, rows: list[dict[str, Any]], params: Mapping[str, str], path: str) -> dict[str, Any]:
        limit = max(1, int(params.get("limit", 25)))
        start = int(params.get("after", 0) or 0)
        end = min(start + limit, len(rows))
        cursors = {"before": str(start), "after": str(end)}
        body: dict[str, Any] = {"data": rows[start:end], "paging": {"cursors": cursors}}
        if end < len(rows):
            body["paging"]["next"] = f"{self.address}/v26.0/{path}?after={end}&limit={limit}"
        return body

    def _edge(self, edge: str, params: Mapping[str, str], path: str) -> dict[str, Any]:
        kind = {v: k for k, v in _KIND_EDGE.items()}.get(edge)
        if kind is None:
            raise _Reply(400, {"message": f"(#100) Unknown edge {edge}", "code": 100})
        fields = [f for f in params.get("fields", "").split(",") if f] or ["id"]
        views = [
            self._view(obj) for obj in self.objects.values() if obj["_kind"] == kind and obj["status"] != "DELETED"
        ]
        rows = [{f: view[f] for f in ("id", *fields) if f in view} for view in views]
        return self._page(rows, params, path)

    def _insights(self, params: Mapping[str, str], path: str) -> dict[str, Any]:
        level = params.get("level", "account")
        time_range = json.loads(params.get("time_range", "{}") or "{}")
        since = date.fromisoformat(time_range.get("since", self.today.isoformat()))
        until = date.fromisoformat(time_range.get("until", self.today.isoformat()))
        fields = [f for f in params.get("fields", "").split(",") if f]
        per_entity: dict[str, dict[date, Metrics]] = {}
        if level in ("adset", "ad"):
            per_entity = {i: self.daily.get(i, {}) for i, obj in self.objects.items() if obj["_kind"] == level}
        elif level == "campaign":
            for i, obj in self.objects.items():
                if obj["_kind"] != "adset":
                    continue
                days = per_entity.setdefault(str(obj.get("campaign_id")), {})
                for day, metrics in self.daily.get(i, {}).items():
                    days[day] = days[day] + metrics if day in days else metrics
        else:
            raise _Reply(400, {"message": f"(#100) level must be campaign, adset or ad, got {level}", "code": 100})
        rows: list[dict[str, Any]] = []
        for entity_id, days in per_entity.items():
            obj = self.objects.get(entity_id, {})
            for day in sorted(days):
                metrics = days[day]
                if not since <= day <= until or metrics == Metrics():
                    continue
                value = _major(metrics.conversion_value_micros)
                row: dict[str, Any] = {
                    "campaign_id": str(obj.get("campaign_id", entity_id)),
                    "adset_id": str(obj.get("adset_id", entity_id)) if level == "ad" else entity_id,
                    "ad_id": entity_id,
                    "date_start": day.isoformat(),
                    "date_stop": day.isoformat(),
                    "spend": _major(metrics.cost_micros),
                    "impressions": str(metrics.impressions),
                    "clicks": str(metrics.clicks),
                    "frequency": "1.3" if metrics.impressions else "0",
                    "actions": [{"action_type": "omni_purchase", "value": repr(metrics.conversions)}],
                    "action_values": [{"action_type": "omni_purchase", "value": value}],
                }
                if metrics.clicks:
                    row["cpc"] = format(
                        (Decimal(metrics.cost_micros) / metrics.clicks / MICROS_PER_UNIT).quantize(Decimal("0.000001")),
                        "f",
                    )
                if metrics.cost_micros:
                    roas = Decimal(metrics.conversion_value_micros) / Decimal(metrics.cost_micros)
                    row["purchase_roas"] = [
                        {"action_type": "omni_purchase", "value": format(roas.quantize(Decimal("0.000001")), "f")}
                    ]
                keep = {"date_start", "date_stop", *fields}
                rows.append({k: v for k, v in row.items() if k in keep})
        return self._page(rows, params, path)

    def _dispatch(self, method: str, path: str, params: Mapping[str, str]) -> tuple[str, dict[str, Any]]:
        """Answer one Graph call (outside any batch wrapper): (endpoint name, body)."""
        parts = [p for p in path.split("/") if p]
        if method == "POST" and len(parts) == 1:
            return "update", self._update(parts[0], params)
        if method == "GET" and parts == ["me", "adaccounts"]:
            return "adaccounts", self._page([dict(self.account)], params, path)
        if method == "GET" and len(parts) == 2 and parts[0] == self.account["id"]:
            if parts[1] == "insights":
                return "insights", self._insights(params, path)
            return "edge", self._edge(parts[1], params, path)
        if method == "GET" and len(parts) == 1:
            return "read", self._read(parts[0], params)
        raise _Reply(400, {"message": f"(#100) Unsupported {method} request to /{path}", "code": 100})

    @staticmethod
    def _parse_batch(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
        parsed = []
        for call in calls:
            url = urlsplit(str(call.get("relative_url", "")))
            parts = [p for p in url.path.split("/") if p]
            if parts and parts[0].startswith(_API_VERSION_PREFIX) and "." in parts[0]:
                parts = parts[1:]
            params = dict(parse_qsl(url.query, keep_blank_values=True))
            params.update(parse_qsl(str(call.get("body", "")), keep_blank_values=True))
            parsed.append({"method": str(call.get("method", "GET")).upper(), "path": "/".join(parts), "params": params})
        return parsed

    def _batch(self, parsed: list[dict[str, Any]]) -> list[Any]:
        # Per-call faults hit writes (POST) only, so a read-back of the same object still works.
        hits = self._item_faults([(c["path"].split("/")[0], i) for i, c in enumerate(parsed) if c["method"] == "POST"])
        answers: list[Any] = []
        for index, call in enumerate(parsed):
            fault = hits.get(index)
            if fault is not None and fault.kind == "no_response":
                answers.append(None)
                continue
            headers: dict[str, str] = {"Content-Type": "application/json"}
            try:
                if fault is not None:
                    raise self._fault_reply(fault)
                _endpoint, body = self._dispatch(call["method"], call["path"], call["params"])
                status = 200
                headers.update(self._success_headers())
            except _Reply as reply:
                status, body = reply.status, {"error": reply.error}
                headers.update(reply.headers)
            listed = [{"name": k, "value": v} for k, v in headers.items()]
            answers.append({"code": status, "headers": listed, "body": json.dumps(body)})
        return answers

    def _success_headers(self) -> dict[str, str]:
        for fault in self._faults:
            if fault.kind == "account_usage" and fault.remaining > 0:
                fault.remaining -= 1
                usage = {
                    "acc_id_util_pct": float(fault.params.get("pct", 100)),
                    "reset_time_duration": int(fault.params.get("reset_s", 300)),
                    "ads_api_access_tier": "standard_access",
                }
                return {"X-Ad-Account-Usage": json.dumps(usage)}
            if fault.kind == "usage_header" and fault.remaining > 0:
                fault.remaining -= 1
                return self._usage_header(float(fault.params.get("minutes", 1)))
        return {}

    def handle(
        self, method: str, raw_path: str, params: dict[str, str], token: str | None, token_in_header: bool
    ) -> tuple[int, dict[str, str], Any, _Fault | None]:
        """Answer one HTTP request: (status, headers, JSON body, fault to apply after answering)."""
        url = urlsplit(raw_path)
        parts = [p for p in url.path.split("/") if p]
        if parts and parts[0].startswith(_API_VERSION_PREFIX) and "." in parts[0]:
            parts = parts[1:]
        path = "/".join(parts)
        is_batch = method == "POST" and not parts and "batch" in params
        if is_batch:
            endpoint = "batch"
        elif method == "POST":
            endpoint = "update"
        elif len(parts) == 2 and parts[1] == "insights":
            endpoint = "insights"
        elif parts == ["me", "adaccounts"]:
            endpoint = "adaccounts"
        else:
            endpoint = "edge" if len(parts) == 2 else "read"
        with self._lock:
            self.request_count += 1
            self.requests_by_endpoint[endpoint] += 1
            record = RecordedRequest(method, endpoint, path, dict(params), token_in_header=token_in_header)
            if is_batch:
                record.batch = self._parse_batch(json.loads(params["batch"]))
            self.requests.append(record)
            headers: dict[str, str] = {}
            try:
                if token != self._token:
                    raise _Reply(
                        400,
                        {"message": "Invalid OAuth access token - Cannot parse access token", "code": 190},
                    )
                fault = self._take_fault(endpoint=endpoint, is_write=method == "POST")
                after: _Fault | None = None
                if fault is not None and fault.kind == "timeout_after_write":
                    after = fault
                elif fault is not None:
                    raise self._fault_reply(fault)
                body: Any
                if is_batch:
                    body = self._batch(record.batch)
                else:
                    _endpoint, body = self._dispatch(method, path, params)
                    headers.update(self._success_headers())
                return 200, headers, body, after
            except _Reply as reply:
                headers.update(reply.headers)
                return reply.status, headers, {"error": reply.error}, None


class _GraphHandler(BaseHTTPRequestHandler):
    """Translate HTTP requests to `FakeMetaServer.handle` and its answers back."""

    fake: FakeMetaServer
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet (the default writes every request to stderr)."""

    def _serve(self, method: str) -> None:
        url = urlsplit(self.path)
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        if method == "POST":
            length = int(self.headers.get("Content-Length", 0) or 0)
            raw = self.rfile.read(length).decode("utf-8") if length else ""
            params.update(parse_qsl(raw, keep_blank_values=True))
        token = params.pop("access_token", None)
        params.pop("appsecret_proof", None)
        auth = self.headers.get("Authorization", "")
        token_in_header = False
        if auth.split(" ", 1)[0] in ("OAuth", "Bearer") and " " in auth:
            token, token_in_header = auth.split(" ", 1)[1].strip(), True
        status, headers, body, after = self.fake.handle(method, self.path, params, token, token_in_header)
        if after is not None:
            if after.params.get("drop"):
                self.close_connection = True
                return
            self.fake._stopping.wait(float(after.params.get("stall_s", 2.0)))
        payload = json.dumps(body).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (its timeout passed); the write was applied all the same.
            return

    def do_GET(self) -> None:
        """Serve a Graph GET."""
        self._serve("GET")

    def do_POST(self) -> None:
        """Serve a Graph POST (update or batch)."""
        self._serve("POST")


def demo_snapshot(account_id: str = "sim-meta", *, currency: str = "USD") -> Snapshot:
    """Return a small hand-built Meta account with 7 days of data, run as Meta accounts are.

    Campaigns 9001 and 9002 hold no budget; their ad sets 115-118 have daily budgets and bid caps.
    Campaign 9003 holds a lifetime campaign budget (CBO) over a 30-day flight on its 20th day, with
    one cost-cap ad set (119, spend limits, no budget of its own). Ad 706 is disapproved.
    """
    now = datetime.now(UTC).replace(hour=10, minute=0, second=0, microsecond=0)
    midnight = now.replace(hour=0)
    entities: list[EntityState] = []

    def ref(kind: EntityKind, entity_id: str) -> EntityRef:
        return EntityRef(platform=Platform.META, account_id=account_id, kind=kind, entity_id=entity_id)

    def week(budget_units: int, roas: float) -> tuple[Metrics, Metrics]:
        cost = budget_units * 7 * 900_000
        trailing = Metrics(
            impressions=cost // 2_000,
            clicks=cost // 800_000,
            cost_micros=cost,
            conversions=round(cost * roas / 40_000_000, 2),
            conversion_value_micros=int(cost * roas),
        )
        today = Metrics(impressions=trailing.impressions // 20, clicks=trailing.clicks // 20, cost_micros=cost // 20)
        return trailing, today

    for campaign_id, name in (("9001", "Prospecting"), ("9002", "Retargeting")):
        entities.append(EntityState(ref=ref(EntityKind.CAMPAIGN, campaign_id), name=name, campaign_id=campaign_id))
    entities.append(
        EntityState(
            ref=ref(EntityKind.CAMPAIGN, "9003"),
            name="Summer sale (Advantage campaign budget)",
            campaign_id="9003",
            budget_period=BudgetPeriod.LIFETIME,
            lifetime_budget_micros=3_000 * MICROS_PER_UNIT,
            budget_remaining_micros=1_100 * MICROS_PER_UNIT,
            flight_start=midnight - timedelta(days=19),
            flight_end=midnight + timedelta(days=10, hours=23, minutes=59),
            bidding_strategy=BiddingStrategy.COST_CAP,
        )
    )
    specs = [("115", "9001", 50, 3.8), ("116", "9001", 40, 1.2), ("117", "9002", 30, 5.1), ("118", "9002", 25, 2.0)]
    for adset_id, campaign_id, budget_units, roas in specs:
        trailing, today = week(budget_units, roas)
        entities.append(
            EntityState(
                ref=ref(EntityKind.AD_GROUP, adset_id),
                name=f"Ad set {adset_id}",
                parent_id=campaign_id,
                campaign_id=campaign_id,
                daily_budget_micros=budget_units * MICROS_PER_UNIT,
                bidding_strategy=BiddingStrategy.BID_CAP,
                cpc_bid_micros=1_250_000,
                today=today,
                trailing_7d=trailing,
            )
        )
    trailing, today = week(100, 3.0)
    entities.append(
        EntityState(
            ref=ref(EntityKind.AD_GROUP, "119"),
            name="Ad set 119 (cost cap)",
            parent_id="9003",
            campaign_id="9003",
            bidding_strategy=BiddingStrategy.COST_CAP,
            target_cpa_micros=35 * MICROS_PER_UNIT,
            daily_min_spend_micros=20 * MICROS_PER_UNIT,
            daily_spend_cap_micros=150 * MICROS_PER_UNIT,
            today=today,
            trailing_7d=trailing,
        )
    )
    for n, (adset_id, campaign_id) in enumerate(
        [("115", "9001"), ("115", "9001"), ("116", "9001"), ("117", "9002"), ("117", "9002"), ("118", "9002")]
    ):
        entities.append(
            EntityState(
                ref=ref(EntityKind.CREATIVE, f"70{n}"),
                name=f"Ad {n}",
                parent_id=adset_id,
                campaign_id=campaign_id,
            )
        )
    entities.append(
        EntityState(
            ref=ref(EntityKind.CREATIVE, "706"),
            name="Ad 6 (disapproved)",
            parent_id="119",
            campaign_id="9003",
            delivery_blocked_by="DISAPPROVED",
        )
    )
    return Snapshot(account_id=account_id, platform=Platform.META, currency=currency, as_of=now, entities=entities)


def _seed_snapshot(account_id: str) -> Snapshot:
    """Return the simulated market's matching demo account, or the small built-in one."""
    try:
        from bidloop.tools.sim.client import SimClient  # lazy: the sim is optional for this module
        from bidloop.tools.sim.fixtures import default_market
    except ImportError:
        return demo_snapshot(account_id)
    return SimClient(default_market()).read_snapshot(account_id)


def main(argv: list[str] | None = None) -> int:
    """Run the fake server until interrupted (`python -m bidloop.testing.meta.fake_server --port 8765`)."""
    parser = argparse.ArgumentParser(description="Serve a fake Meta Graph API on 127.0.0.1 for demos and tests.")
    parser.add_argument("--port", type=int, default=8765, help="TCP port (0 picks a free one)")
    parser.add_argument("--account", default="sim-meta", help="bidloop account id to seed from the sim")
    parser.add_argument("--platform-account-id", default="act_1000", help="the fake's ad account id")
    parser.add_argument("--token", default="fake-meta-token", help="the access token the fake accepts")
    args = parser.parse_args(argv)
    snapshot = _seed_snapshot(args.account)
    server = FakeMetaServer.from_snapshot(
        snapshot, platform_account_id=args.platform_account_id, access_token=args.token, port=args.port
    ).start()
    sys.stdout.write(
        f"fake Meta Graph API on {server.address} ({len(server.objects)} objects, account "
        f"{args.platform_account_id})\n"
        f"  export META_ACCESS_TOKEN={args.token}\n"
        f"  bidloop.yaml: accounts: [{{id: {args.account}, platform: meta, backend: live, "
        f"platform_account_id: {args.platform_account_id}, endpoint: '{server.address}', "
        f"currency: {snapshot.currency}, time_zone: {snapshot.time_zone}}}]\n"
    )
    sys.stdout.flush()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

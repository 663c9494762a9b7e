"""Serve a stateful fake of the Amazon Ads API (Sponsored Products v3) on 127.0.0.1, with faults on demand.

It speaks the wire protocol python-amazon-ad-api uses, so the real SDK runs against it:

* `POST /auth/o2/token` (Login with Amazon refresh-token exchange), `GET /v2/profiles`;
* `POST /sp/{campaigns,adGroups,keywords,negativeKeywords}/list` with id/state filters and `nextToken`;
* `PUT /sp/{campaigns,adGroups,keywords}` and `POST /sp/{keywords,negativeKeywords}` answering 207
  Multi-Status bodies (`{"keywords": {"success": [...], "error": [...]}}`), with the entity when
  `Prefer: return=representation` is sent;
* v3 reports: `POST /reporting/reports`, `GET /reporting/reports/{id}`, and the gzipped JSON rows at
  the report's `url`. As on Amazon, a report takes several polls (`report_polls_until_ready`), a
  request identical to an earlier one is answered HTTP 425 `{"code": "425", "detail": "The Request is a
  duplicate of : <reportId>"}`, and same-day rows lag: today's row holds what was spent up to
  `as_of - report_lag_s` ("Report generation can take as long as 3 hours", python-amazon-ad-api
  `Reports.get_report`), spend assumed even over the day so far;
* `POST /sp/campaigns/budget/usage` (`application/vnd.spcampaignbudgetusage.v1+json`, at most 100
  `campaignIds`): `{"success": [{campaignId, index, budget, budgetUsagePercent, usageUpdatedTimestamp}],
  "error": [{campaignId, index, code, details}]}`, today's spend up to `as_of - budget_usage_lag_s`.

Campaigns carry `dynamicBidding` (`strategy`, `placementBidding`); money limits are enforced in USD
only (bid 0.02-1000, budget >= 1; the minor unit is checked in every currency: JPY has none). Per-item
errors of a 207 body use the SP v3 selector shape `{"errorType": "throttledError", "errorValue":
{"throttledError": {"reason": "THROTTLED", "message": ...}}}`. The fake converts money itself and takes
no helper from the client it tests.

Every request must carry the bearer token, the client id and, for profile-scoped paths, the
`Amazon-Advertising-API-Scope` header of the seeded profile; SP paths must send their versioned
`application/vnd.sp*.v3+json` content type. State is kept (a write then a read shows it); the server
counts requests per endpoint and applied writes per entity, and injects faults:

==================== =====================================================================
fault                effect
==================== =====================================================================
throttle             429 with `Retry-After: retry_after_s` (default 1)
server_error         a transient 5xx (`status`, default 503)
partial_failure      the next write fails for the given `ids` (entity ids) or `indices` in the 207 body;
                     `reason` THROTTLED gives `throttledError`, INTERNAL_ERROR `internalServerError`
timeout_after_write  the next write is applied, then the connection is dropped (`mode="drop"`) or
                     the answer stalls `stall_s` seconds (`mode="stall"`, beyond the client timeout), or a
                     5xx `status` (default 502) answers it (`mode="status"`)
expired_token        401 UNAUTHORIZED on API calls
revoked_refresh_token  the LWA token exchange answers 400 `invalid_grant`
==================== =====================================================================

`revoke_access_tokens()` rejects every access token accepted so far, before its `expires_in` (Amazon
revoked or rotated them): calls carrying one answer 401 until the client exchanges its refresh token again.

Run it for a demo: `python -m bidloop.testing.amazon_ads.fake_server --port 8765`.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import random
import re
import sys
import threading
import time as clock
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

from bidloop.core.entities import EntityKind, EntityRef, EntityState, MatchType, Platform, Status
from bidloop.core.errors import InputError
from bidloop.core.metrics import Metrics
from bidloop.core.snapshot import Snapshot

__all__ = ["FAULTS", "FakeAmazonAdsServer", "RecordedRequest", "demo_snapshot", "main", "market_snapshot"]

FAULTS = (
    "throttle",
    "server_error",
    "partial_failure",
    "timeout_after_write",
    "expired_token",
    "revoked_refresh_token",
)

_RESOURCES = {
    "campaigns": ("campaignId", "campaign", "spCampaign"),
    "adGroups": ("adGroupId", "adGroup", "spAdGroup"),
    "keywords": ("keywordId", "keyword", "spKeyword"),
    "negativeKeywords": ("negativeKeywordId", "negativeKeyword", "spNegativeKeyword"),
    "productAds": ("adId", "productAd", "spProductAd"),
}
_REPORT_LEVELS = {
    "spCampaigns": "campaign",
    "spTargeting": "targeting",
    "spSearchTerm": "search_term",
    "spAdvertisedProduct": "product_ad",
}
_STATE_TO_AMAZON = {Status.ENABLED: "ENABLED", Status.PAUSED: "PAUSED", Status.REMOVED: "ARCHIVED"}
_USD_LIMITS = {"bid": (0.02, 1000.0), "budget": (1.0, None)}
"""US bid and daily-budget limits in dollars (minimum CPC $0.02: https://kdp.amazon.com/en_US/help/topic/G201506370)."""
_DECIMALS = {"JPY": 0, "KRW": 0}
"""Digits after the point of amounts in the currency (two elsewhere)."""
_ERROR_SELECTOR = {"THROTTLED": "throttledError", "INTERNAL_ERROR": "internalServerError"}
"""SP v3 error selectors per reason: `SponsoredProductsThrottledErrorReason = THROTTLED` under
`throttledError`, `SponsoredProductsInternalServerErrorReason = INTERNAL_ERROR` under `internalServerError`."""
_USAGE_TYPE = "application/vnd.spcampaignbudgetusage.v1+json"
_MICROS = 1_000_000


def _major(micros: int) -> float:
    """Return an amount in micros as Amazon's major-unit float (the fake's own conversion)."""
    return round(micros / _MICROS, 6)


@dataclass
class RecordedRequest:
    """One request as the fake received it (the Authorization header is left out)."""

    method: str
    path: str
    endpoint: str
    headers: dict[str, str]
    body: Any


@dataclass
class _Fault:
    name: str
    times: int | None
    path: str | None
    probability: float | None
    params: dict[str, Any]
    rng: random.Random = field(default_factory=random.Random)


def _endpoint_key(method: str, path: str) -> str:
    path = re.sub(r"^/reporting/reports/[^/]+$", "/reporting/reports/{id}", path)
    path = re.sub(r"^/download/[^/]+$", "/download/{id}", path)
    return f"{method} {path}"


def _error_item(index: int, error_type: str, reason: str, message: str) -> dict[str, Any]:
    return {
        "index": index,
        "errors": [{"errorType": error_type, "errorValue": {error_type: {"reason": reason, "message": message}}}],
    }


class _Dropped(Exception):
    """Close the connection without an answer (a fault)."""


class FakeAmazonAdsServer:
    """A stateful Amazon Ads API fake on 127.0.0.1 for one advertiser profile.

    Args:
        profile_id: The profile the fake serves (the `Amazon-Advertising-API-Scope` it accepts).
        currency: The profile's currency (listed by `/v2/profiles`).
        time_zone: The profile's time zone.
        today: The date whose rows are "today" in reports (default: today in `time_zone`).
        access_token: A bearer token accepted without an LWA exchange.
        as_of: The moment the seeded `today` metrics were spent up to (default: now, or the end of `today`).
        report_polls_until_ready: Status polls that answer PENDING before a report completes.
        report_lag_s: How far today's report row lags `as_of` (default 3 hours).
        budget_usage_lag_s: How far the budget-usage reading lags `as_of` (default 15 minutes).
        page_size: Entities per page of the list endpoints (`nextToken` beyond).
        listed_profile_ids: Profiles `/v2/profiles` lists (default: only `profile_id`); any other
            than `profile_id` is listed but answers 403 (visible, no access).
        port: 0 picks a free port.
    """

    def __init__(
        self,
        *,
        profile_id: str = "1000000001",
        account_name: str = "Fake Amazon seller",
        currency: str = "USD",
        time_zone: str = "UTC",
        today: date | None = None,
        access_token: str = "fake-access-token",
        as_of: datetime | None = None,
        report_polls_until_ready: int = 2,
        report_lag_s: float = 3 * 3600.0,
        budget_usage_lag_s: float = 900.0,
        page_size: int = 100,
        listed_profile_ids: tuple[str, ...] = (),
        port: int = 0,
    ) -> None:
        self.profile_id = profile_id
        self.listed_profile_ids = listed_profile_ids or (profile_id,)
        self.account_name = account_name
        self.currency = currency
        self.time_zone = time_zone
        zone = ZoneInfo(time_zone)
        if as_of is None:
            now = datetime.now(zone)
            as_of = now if today is None or today == now.date() else datetime.combine(today, time(23, 59), zone)
        self.as_of = as_of.astimezone(zone)
        self.today = today or self.as_of.date()
        self.report_polls_until_ready = report_polls_until_ready
        self.report_lag_s = report_lag_s
        self.budget_usage_lag_s = budget_usage_lag_s
        self.page_size = page_size
        self.entities: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in _RESOURCES}
        self.rows: list[dict[str, Any]] = []
        self.reports: dict[str, dict[str, Any]] = {}
        self.requests: list[RecordedRequest] = []
        self.requests_by_endpoint: Counter[str] = Counter()
        self.writes_by_entity: Counter[str] = Counter()
        self._valid_tokens = {access_token}
        self._revoked_tokens: set[str] = set()
        self._issued_tokens: list[str] = []
        self._faults: list[_Fault] = []
        self._ids = itertools.count(900_000_001)
        self._lock = threading.RLock()
        self._port = port
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ seeding

    @classmethod
    def from_snapshot(cls, snapshot: Snapshot, *, profile_id: str | None = None, **kwargs: Any) -> FakeAmazonAdsServer:
        """Build a fake holding a snapshot's campaigns, ad groups, keywords and their daily metrics.

        `today` is the snapshot's date; `daily_history` fills the days before it where it has
        entries, else `trailing_7d` is spread evenly over the 7 days before it. Creatives become
        product ads, search terms search-term rows under their parent keyword.
        """
        kwargs.setdefault("currency", snapshot.currency)
        kwargs.setdefault("time_zone", snapshot.time_zone)
        kwargs.setdefault("today", snapshot.as_of.date())
        kwargs.setdefault("as_of", snapshot.as_of)
        server = cls(profile_id=profile_id or "1000000001", **kwargs)
        for entity in snapshot.entities:
            server.add_entity(entity)
        return server

    def add_entity(self, entity: EntityState) -> None:
        """Add one campaign, ad group, keyword or search term (with its metrics) to the fake's state."""
        kind, entity_id = entity.ref.kind, entity.ref.entity_id
        state = _STATE_TO_AMAZON[entity.status]
        ids: dict[str, Any]
        if kind is EntityKind.CAMPAIGN:
            budget = _major(entity.daily_budget_micros or 0)
            self.entities["campaigns"][entity_id] = {
                "campaignId": entity_id,
                "name": entity.name,
                "state": state,
                "targetingType": "MANUAL",
                "budget": {"budgetType": "DAILY", "budget": budget},
                # Amazon's default strategy for a new SP campaign: dynamic bids, down only.
                "dynamicBidding": {"strategy": "LEGACY_FOR_SALES", "placementBidding": []},
            }
            ids, level = {"campaignId": entity_id}, "campaign"
        elif kind is EntityKind.AD_GROUP:
            group: dict[str, Any] = {
                "adGroupId": entity_id,
                "campaignId": entity.parent_id or entity.campaign_id,
                "name": entity.name,
                "state": state,
            }
            if entity.cpc_bid_micros is not None:
                group["defaultBid"] = _major(entity.cpc_bid_micros)
            self.entities["adGroups"][entity_id] = group
            return
        elif kind is EntityKind.KEYWORD:
            keyword: dict[str, Any] = {
                "keywordId": entity_id,
                "adGroupId": entity.parent_id,
                "campaignId": entity.campaign_id,
                "keywordText": entity.text or entity.name,
                "matchType": (entity.match_type or MatchType.EXACT).value.upper(),
                "state": state,
            }
            if entity.cpc_bid_micros is not None:
                keyword["bid"] = _major(entity.cpc_bid_micros)
            self.entities["keywords"][entity_id] = keyword
            ids = {"campaignId": entity.campaign_id, "adGroupId": entity.parent_id, "keywordId": entity_id}
            level = "targeting"
        elif kind is EntityKind.CREATIVE:
            asin = re.search(r"\(([A-Z0-9]{10})\)", entity.text or entity.name)
            self.entities["productAds"][entity_id] = {
                "adId": entity_id,
                "adGroupId": entity.parent_id,
                "campaignId": entity.campaign_id,
                "asin": asin.group(1) if asin else (entity.text or entity.name),
                "state": state,
            }
            ids = {"campaignId": entity.campaign_id, "adGroupId": entity.parent_id, "adId": entity_id}
            level = "product_ad"
        elif kind is EntityKind.SEARCH_TERM:
            parent_keyword = self.entities["keywords"].get(entity.parent_id or "")
            ids = {
                "campaignId": entity.campaign_id,
                "adGroupId": parent_keyword.get("adGroupId") if parent_keyword else None,
                "keywordId": entity.parent_id,
                "searchTerm": entity.text or entity_id,
            }
            level = "search_term"
        else:
            return
        self._add_rows(level, ids, entity)

    def _add_rows(self, level: str, ids: dict[str, Any], entity: EntityState) -> None:
        days: dict[date, Metrics] = {self.today: entity.today}
        history = entity.daily_history
        if history:
            for offset, metrics in enumerate(reversed(history), start=1):
                days[self.today - timedelta(days=offset)] = metrics
        else:
            total = entity.trailing_7d
            for offset in range(1, 8):
                last = offset == 1

                def part(value: int, last: bool = last) -> int:
                    return value // 7 + (value % 7 if last else 0)

                days[self.today - timedelta(days=offset)] = Metrics(
                    impressions=part(total.impressions),
                    clicks=part(total.clicks),
                    cost_micros=part(total.cost_micros),
                    conversions=total.conversions / 7,
                    conversion_value_micros=part(total.conversion_value_micros),
                )
        for day, metrics in days.items():
            self.add_row(level, day, ids, metrics)

    def add_row(self, level: str, day: date, ids: dict[str, Any], metrics: Metrics) -> None:
        """Add one day of metrics for one entity (`level`: campaign, targeting, search_term or product_ad)."""
        self.rows.append(
            {
                "level": level,
                "date": day.isoformat(),
                **{k: v for k, v in ids.items() if v is not None},
                "impressions": metrics.impressions,
                "clicks": metrics.clicks,
                "cost": _major(metrics.cost_micros),
                "purchases7d": metrics.conversions,
                "sales7d": _major(metrics.conversion_value_micros),
            }
        )

    def set_dynamic_bidding(self, campaign_id: str, strategy: str, placements: dict[str, int] | None = None) -> None:
        """Give a campaign its `dynamicBidding`: a strategy and placement adjustments (percentages, 0-900)."""
        bidding = [{"placement": p, "percentage": int(pct)} for p, pct in (placements or {}).items()]
        with self._lock:
            self.entities["campaigns"][campaign_id]["dynamicBidding"] = {
                "strategy": strategy,
                "placementBidding": bidding,
            }

    def _visible_share(self, lag_s: float) -> float:
        """Return the share of today's seeded spend that is visible with a lag of `lag_s` behind `as_of`."""
        midnight = datetime.combine(self.as_of.date(), time(0), self.as_of.tzinfo)
        elapsed = (self.as_of - midnight).total_seconds()
        if elapsed <= 0:
            return 1.0
        return min(max((elapsed - lag_s) / elapsed, 0.0), 1.0)

    # ------------------------------------------------------------------ lifecycle

    @property
    def address(self) -> str:
        """Return the base URL, e.g. `http://127.0.0.1:54321`."""
        if self._httpd is None:
            raise InputError("the fake server is not started", hint="use `with FakeAmazonAdsServer(...) as srv:`")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def port(self) -> int:
        """Return the TCP port the server listens on."""
        return int(self.address.rsplit(":", 1)[1])

    def start(self) -> FakeAmazonAdsServer:
        """Start serving on a background thread."""
        handler = _make_handler(self)
        self._httpd = _QuietServer(("127.0.0.1", self._port), handler)
        self._httpd.daemon_threads = True
        httpd = self._httpd
        self._thread = threading.Thread(
            target=lambda: httpd.serve_forever(poll_interval=0.02), name="fake-amazon-ads", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FakeAmazonAdsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ faults and counters

    def inject(
        self,
        fault: str,
        times: int | None = 1,
        *,
        path: str | None = None,
        probability: float | None = None,
        seed: int = 0,
        **params: Any,
    ) -> None:
        """Make the next matching request(s) fail.

        Args:
            fault: One of `FAULTS`.
            times: How many requests it hits; None for every matching request.
            path: Only requests whose `"METHOD /path"` starts with this (default: writes for
                `partial_failure` / `timeout_after_write`, any API call otherwise).
            probability: Hit each matching request with this chance, e.g. 0.2.
            seed: Seed of the chance draws, so a benchmark is repeatable.
            **params: `retry_after_s`, `status`, `ids`, `indices`, `mode`, `stall_s`, `reason`.

        Raises:
            InputError: If the fault is unknown.
        """
        if fault not in FAULTS:
            raise InputError(f"unknown fault {fault!r}", hint=f"use one of: {', '.join(FAULTS)}")
        with self._lock:
            self._faults.append(_Fault(fault, times, path, probability, params, random.Random(seed)))

    def clear_faults(self) -> None:
        """Remove every pending fault."""
        with self._lock:
            self._faults.clear()

    def revoke_access_tokens(self) -> int:
        """Reject every access token accepted so far (issued by LWA, or the fixed one) before it expires.

        API calls carrying a revoked token answer 401 `UNAUTHORIZED`; tokens issued by later
        exchanges are accepted. Returns how many tokens were revoked.
        """
        with self._lock:
            revoked = len(self._valid_tokens)
            self._revoked_tokens |= self._valid_tokens
            self._valid_tokens = set()
        return revoked

    @property
    def issued_access_tokens(self) -> list[str]:
        """Return the access tokens the LWA exchange issued, oldest first (revoked ones included)."""
        with self._lock:
            return list(self._issued_tokens)

    @property
    def request_count(self) -> int:
        """Return the number of requests received (all endpoints, the token exchange included)."""
        return sum(self.requests_by_endpoint.values())

    @property
    def write_request_count(self) -> int:
        """Return the number of write requests (PUT, and POST creates) received."""
        return sum(n for key, n in self.requests_by_endpoint.items() if _is_write(key))

    def _take_fault(self, endpoint: str, names: set[str]) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.name not in names:
                    continue
                if fault.path is not None and not endpoint.startswith(fault.path):
                    continue
                writes_only = fault.name in {"partial_failure", "timeout_after_write"}
                if fault.path is None and writes_only and not _is_write(endpoint):
                    continue
                api_only = fault.name in {"throttle", "server_error", "expired_token"}
                if fault.path is None and api_only and endpoint.startswith(("POST /auth", "GET /download")):
                    continue
                if fault.probability is not None and fault.rng.random() >= fault.probability:
                    continue
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                return fault
        return None

    # ------------------------------------------------------------------ request handling

    def handle(
        self, method: str, raw_path: str, headers: dict[str, str], raw_body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """Answer one request: (status, headers, body). Raises `_Dropped` to close without answering."""
        parts = urlsplit(raw_path)
        path = parts.path.rstrip("/") or "/"
        endpoint = _endpoint_key(method, path)
        body: Any = None
        if raw_body:
            try:
                body = json.loads(raw_body)
            except ValueError:
                body = {k: v[0] for k, v in parse_qs(raw_body.decode()).items()}
        with self._lock:
            self.requests_by_endpoint[endpoint] += 1
            visible = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            self.requests.append(RecordedRequest(method, path, endpoint, visible, body))

        if endpoint == "POST /auth/o2/token":
            return self._token(body or {})
        if endpoint == "GET /download/{id}":
            return self._download(path.rsplit("/", 1)[1])
        fault = self._take_fault(endpoint, {"throttle", "server_error", "expired_token"})
        if fault is not None:
            if fault.name == "throttle":
                wait = fault.params.get("retry_after_s", 1)
                return _json(
                    429, {"code": "TOO_MANY_REQUESTS", "details": "Request throttled"}, {"Retry-After": str(wait)}
                )
            if fault.name == "server_error":
                status = int(fault.params.get("status", 503))
                return _json(status, {"code": "INTERNAL_ERROR", "details": "Transient failure, retry later"})
            return _json(401, {"code": "UNAUTHORIZED", "details": "The access token has expired"})
        auth_error = self._check_auth(endpoint, headers)
        if auth_error is not None:
            return auth_error
        if endpoint == "GET /v2/profiles":
            return _json(200, [self._profile(pid) for pid in self.listed_profile_ids])
        if endpoint == "POST /reporting/reports":
            return self._create_report(body or {})
        if endpoint == "GET /reporting/reports/{id}":
            return self._report_status(path.rsplit("/", 1)[1])
        if endpoint == "POST /sp/campaigns/budget/usage":
            if headers.get("content-type", "").split(";")[0].strip() != _USAGE_TYPE:
                return _json(415, {"code": "UNSUPPORTED_MEDIA_TYPE", "details": f"Content-Type must be {_USAGE_TYPE}"})
            return self._budget_usage(body or {})
        match = re.fullmatch(r"/sp/(campaigns|adGroups|keywords|negativeKeywords|productAds)(/list)?", path)
        if match is None:
            return _json(404, {"code": "NOT_FOUND", "details": f"no route {endpoint}"})
        resource, is_list = match.group(1), bool(match.group(2))
        expected_type = f"application/vnd.{_RESOURCES[resource][2]}.v3+json"
        if headers.get("content-type", "").split(";")[0].strip() != expected_type:
            return _json(415, {"code": "UNSUPPORTED_MEDIA_TYPE", "details": f"Content-Type must be {expected_type}"})
        if is_list and method == "POST":
            return self._list(resource, body or {})
        prefer = "return=representation" in headers.get("prefer", "")
        if method == "PUT" and resource != "negativeKeywords":
            return self._write(resource, body or {}, prefer, endpoint, create=False)
        if method == "POST" and resource in {"keywords", "negativeKeywords"}:
            return self._write(resource, body or {}, prefer, endpoint, create=True)
        return _json(405, {"code": "METHOD_NOT_ALLOWED", "details": endpoint})

    def _check_auth(self, endpoint: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes] | None:
        token = headers.get("authorization", "")
        if token.startswith("Bearer ") and token[7:] in self._revoked_tokens:
            return _json(401, {"code": "UNAUTHORIZED", "details": "The access token has been revoked"})
        if not token.startswith("Bearer ") or token[7:] not in self._valid_tokens:
            return _json(401, {"code": "UNAUTHORIZED", "details": "Invalid or missing access token"})
        if not headers.get("amazon-advertising-api-clientid"):
            return _json(400, {"code": "400", "details": "Amazon-Advertising-API-ClientId header is missing"})
        if endpoint == "GET /v2/profiles":
            return None
        scope = headers.get("amazon-advertising-api-scope")
        if not scope:
            return _json(400, {"code": "400", "details": "Amazon-Advertising-API-Scope header is missing"})
        if scope != self.profile_id:
            return _json(403, {"code": "FORBIDDEN", "details": f"No access to profile {scope}"})
        return None

    def _token(self, form: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        if self._take_fault("POST /auth/o2/token", {"revoked_refresh_token"}) is not None:
            return _json(
                400, {"error": "invalid_grant", "error_description": "The refresh token is invalid or revoked"}
            )
        if not form.get("refresh_token") or not form.get("client_id") or not form.get("client_secret"):
            return _json(400, {"error": "invalid_request", "error_description": "missing parameter"})
        token = f"Atza|fake-{next(self._ids)}"
        with self._lock:
            self._valid_tokens.add(token)
            self._issued_tokens.append(token)
        return _json(
            200,
            {"access_token": token, "refresh_token": form["refresh_token"], "token_type": "bearer", "expires_in": 3600},
        )

    def _profile(self, profile_id: str) -> dict[str, Any]:
        return {
            "profileId": int(profile_id) if profile_id.isdigit() else profile_id,
            "countryCode": "US",
            "currencyCode": self.currency,
            "timezone": self.time_zone,
            "accountInfo": {
                "marketplaceStringId": "ATVPDKIKX0DER",
                "id": "A1FAKESELLER",
                "type": "seller",
                "name": self.account_name,
            },
        }

    def _list(self, resource: str, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        id_field = _RESOURCES[resource][0]
        filters = {
            "campaignId": body.get("campaignIdFilter"),
            "adGroupId": body.get("adGroupIdFilter"),
            id_field: body.get(f"{id_field}Filter"),
        }
        states = (body.get("stateFilter") or {}).get("include")
        with self._lock:
            matching = []
            for entity in self.entities[resource].values():
                if states and entity.get("state") not in states:
                    continue
                ok = all(
                    str(entity.get(key)) in {str(x) for x in flt.get("include", [])}
                    for key, flt in filters.items()
                    if isinstance(flt, dict) and "include" in flt
                )
                if ok:
                    matching.append(dict(entity))
        size = min(int(body.get("maxResults") or self.page_size), self.page_size)
        start = int(body.get("nextToken") or 0)
        page = matching[start : start + size]
        answer: dict[str, Any] = {resource: page, "totalResults": len(matching)}
        if start + size < len(matching):
            answer["nextToken"] = str(start + size)
        return _json(200, answer)

    def _write(
        self, resource: str, body: dict[str, Any], prefer: bool, endpoint: str, *, create: bool
    ) -> tuple[int, dict[str, str], bytes]:
        id_field, singular, _ = _RESOURCES[resource]
        items = body.get(resource)
        if not isinstance(items, list) or not items:
            return _json(400, {"code": "INVALID_ARGUMENT", "details": f"body must hold a non-empty '{resource}' list"})
        if len(items) > 1000:
            return _json(400, {"code": "INVALID_ARGUMENT", "details": "at most 1000 items per request"})
        partial = self._take_fault(endpoint, {"partial_failure"})
        after = self._take_fault(endpoint, {"timeout_after_write"})
        success: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        with self._lock:
            for index, item in enumerate(items):
                if partial is not None and (
                    index in partial.params.get("indices", ())
                    or str(item.get(id_field, item.get("adGroupId"))) in {str(i) for i in partial.params.get("ids", ())}
                ):
                    reason = str(partial.params.get("reason", "INVALID_ARGUMENT"))
                    selector = _ERROR_SELECTOR.get(reason, "otherError")
                    errors.append(_error_item(index, selector, reason, "rejected by injected partial failure"))
                    continue
                outcome = self._create_one(resource, item) if create else self._update_one(resource, item)
                if isinstance(outcome, dict) and "errors" in outcome:
                    outcome["index"] = index
                    errors.append(outcome)
                    continue
                entity = outcome
                self.writes_by_entity[str(entity[id_field])] += 1
                entry = {"index": index, id_field: entity[id_field]}
                if prefer:
                    entry[singular] = dict(entity)
                success.append(entry)
        if after is not None:
            if after.params.get("mode", "drop") == "status":
                # A gateway's 5xx although the write was executed (what makes a 5xx after a write ambiguous).
                status = int(after.params.get("status", 502))
                return _json(status, {"code": str(status), "details": "Bad Gateway"})
            if after.params.get("mode", "drop") == "stall":
                clock.sleep(float(after.params.get("stall_s", 2.0)))
            else:
                raise _Dropped
        return _json(207, {resource: {"success": success, "error": errors}})

    def _update_one(self, resource: str, item: dict[str, Any]) -> dict[str, Any]:
        id_field = _RESOURCES[resource][0]
        entity = self.entities[resource].get(str(item.get(id_field)))
        if entity is None:
            return _error_item(
                0, "entityNotFoundError", "ENTITY_NOT_FOUND", f"{id_field} {item.get(id_field)} not found"
            )
        problem = _money_problem(item, self.currency)
        if problem:
            return _error_item(0, *problem)
        for key, value in item.items():
            if key != id_field:
                entity[key] = value
        return entity

    def _create_one(self, resource: str, item: dict[str, Any]) -> dict[str, Any]:
        id_field = _RESOURCES[resource][0]
        group = self.entities["adGroups"].get(str(item.get("adGroupId")))
        if group is None or str(group.get("campaignId")) != str(item.get("campaignId")):
            return _error_item(0, "entityNotFoundError", "ENTITY_NOT_FOUND", "ad group not found in that campaign")
        problem = _money_problem(item, self.currency)
        if problem:
            return _error_item(0, *problem)
        text = str(item.get("keywordText", "")).casefold()
        for existing in self.entities[resource].values():
            same = (
                existing.get("adGroupId"),
                existing.get("matchType"),
                str(existing.get("keywordText", "")).casefold(),
            )
            if same == (item.get("adGroupId"), item.get("matchType"), text):
                return _error_item(0, "duplicateValueError", "DUPLICATE_VALUE", "the keyword already exists")
        entity = {**item, id_field: str(next(self._ids))}
        self.entities[resource][entity[id_field]] = entity
        return entity

    def _create_report(self, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        config = body.get("configuration") or {}
        level = _REPORT_LEVELS.get(str(config.get("reportTypeId")))
        if level is None or config.get("timeUnit") != "DAILY" or not config.get("columns"):
            return _json(400, {"code": "INVALID_ARGUMENT", "details": "unsupported report configuration"})
        request_key = json.dumps(
            {"startDate": body.get("startDate"), "endDate": body.get("endDate"), "configuration": config},
            sort_keys=True,
        )
        with self._lock:
            for known_id, known in self.reports.items():
                if known["request"] == request_key:
                    # Reporting v3's answer to a request identical to an earlier one.
                    return _json(425, {"code": "425", "detail": f"The Request is a duplicate of : {known_id}"})
            report_id = f"rep-{next(self._ids)}"
            self.reports[report_id] = {
                "level": level,
                "columns": list(config["columns"]),
                "start": body.get("startDate"),
                "end": body.get("endDate"),
                "polls": 0,
                "request": request_key,
                "created": self.as_of,
            }
        return _json(200, {"reportId": report_id, "status": "PENDING"})

    def _report_status(self, report_id: str) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            report = self.reports.get(report_id)
            if report is None:
                return _json(404, {"code": "NOT_FOUND", "details": f"report {report_id} not found"})
            report["polls"] += 1
            ready = report["polls"] > self.report_polls_until_ready
        created = report["created"].astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        answer = {"reportId": report_id, "status": "COMPLETED" if ready else "PENDING", "createdAt": created}
        if ready:
            answer["url"] = f"{self.address}/download/{report_id}.json.gz"
        return _json(200, answer)

    def _download(self, name: str) -> tuple[int, dict[str, str], bytes]:
        report = self.reports.get(name.split(".")[0])
        if report is None:
            return 404, {"Content-Type": "text/plain"}, b"not found"
        share = self._visible_share(self.report_lag_s)
        today = self.today.isoformat()
        rows = []
        for row in self.rows:
            if row["level"] != report["level"] or not report["start"] <= row["date"] <= report["end"]:
                continue
            shown = _scaled_row(row, share) if row["date"] == today else row
            rows.append({col: shown.get(col) for col in report["columns"] if col in shown})
        return 200, {"Content-Type": "application/octet-stream"}, gzip.compress(json.dumps(rows).encode())

    def _budget_usage(self, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        ids = body.get("campaignIds")
        if not isinstance(ids, list) or not ids or len(ids) > 100:
            return _json(400, {"code": "INVALID_ARGUMENT", "details": "campaignIds must hold 1 to 100 ids"})
        share = self._visible_share(self.budget_usage_lag_s)
        read_at = (self.as_of - timedelta(seconds=self.budget_usage_lag_s)).astimezone(ZoneInfo("UTC"))
        today = self.today.isoformat()
        success: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        with self._lock:
            for index, campaign_id in enumerate(ids):
                campaign = self.entities["campaigns"].get(str(campaign_id))
                if campaign is None:
                    errors.append(
                        {"campaignId": campaign_id, "index": index, "code": "404", "details": "campaign not found"}
                    )
                    continue
                budget = float((campaign.get("budget") or {}).get("budget") or 0.0)
                spent = sum(
                    float(r.get("cost") or 0.0)
                    for r in self.rows
                    if r["level"] == "campaign" and r["date"] == today and str(r.get("campaignId")) == str(campaign_id)
                )
                percent = round(100.0 * spent * share / budget, 4) if budget > 0 else 0.0
                success.append(
                    {
                        "campaignId": str(campaign_id),
                        "index": index,
                        "budget": budget,
                        "budgetUsagePercent": percent,
                        "usageUpdatedTimestamp": read_at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                    }
                )
        answer: dict[str, Any] = {"success": success}
        if errors:
            answer["error"] = errors
        return _json(207 if errors else 200, answer)


def _scaled_row(row: dict[str, Any], share: float) -> dict[str, Any]:
    """Return a report row as far as it is known: counts and money scaled by `share` (spend even over the day)."""
    if share >= 1.0:
        return row
    out = dict(row)
    for col in ("impressions", "clicks"):
        out[col] = int(int(row.get(col) or 0) * share)
    for col in ("cost", "sales7d"):
        out[col] = round(float(row.get(col) or 0.0) * share, 2)
    out["purchases7d"] = float(row.get("purchases7d") or 0.0) * share
    return out


def _is_write(endpoint: str) -> bool:
    method, path = endpoint.split(" ", 1)
    if not path.startswith("/sp/") or path.endswith("/list"):
        return False
    return method in {"PUT", "POST"}


def _money_problem(item: dict[str, Any], currency: str) -> tuple[str, str, str] | None:
    """Return (SP v3 error selector, reason, message) for a bid or budget Amazon would refuse, or None."""
    checks = []
    if "bid" in item:
        checks.append(("bid", item["bid"], "bid"))
    if "defaultBid" in item:
        checks.append(("defaultBid", item["defaultBid"], "bid"))
    budget = item.get("budget")
    if isinstance(budget, dict) and "budget" in budget:
        checks.append(("budget", budget["budget"], "budget"))
    digits = _DECIMALS.get(currency, 2)
    for name, value, kind in checks:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "malformedValueError", "MALFORMED_VALUE", f"{name} must be a number in major currency units"
        if round(value, digits) != value:
            message = f"{name} {value} has more than {digits} decimal places for {currency}"
            return "malformedValueError", "MALFORMED_VALUE", message
        if value <= 0:
            return "rangeError", "TOO_LOW", f"{name} {value} is too low"
        if currency == "USD":
            low, high = _USD_LIMITS[kind]
            if value < low:
                return "rangeError", "TOO_LOW", f"{name} {value} is too low (minimum {low} USD)"
            if high is not None and value > high:
                return "rangeError", "TOO_HIGH", f"{name} {value} is too high (maximum {high} USD)"
    return None


def _json(status: int, payload: Any, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(payload).encode()


class _QuietServer(ThreadingHTTPServer):
    """A threading HTTP server that does not print a traceback when a client hangs up first."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore connections the client closed (a timed-out client); report anything else."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def _make_handler(server: FakeAmazonAdsServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            """Stay quiet: tests capture logs and the fake should not add noise."""

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                status, out_headers, payload = server.handle(self.command, self.path, headers, raw)
            except _Dropped:
                self.close_connection = True
                return
            self.send_response(status)
            for key, value in out_headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

    return Handler


def market_snapshot(account_id: str = "sim-amazon") -> Snapshot:
    """Return the simulated market's Amazon demo account, or the small built-in one without the sim."""
    try:
        from bidloop.tools.sim.client import SimClient  # lazy: the fake works without the simulated market
        from bidloop.tools.sim.fixtures import default_market
    except ImportError:
        return demo_snapshot()
    return SimClient(default_market()).read_snapshot(account_id)


def demo_snapshot(*, today: date | None = None, time_zone: str = "UTC") -> Snapshot:
    """Return a small built-in Amazon account: 2 campaigns, 2 ad groups, 3 keywords, 1 search term."""
    day = today or datetime.now(ZoneInfo(time_zone)).date()
    as_of = datetime.combine(day, datetime.min.time(), tzinfo=ZoneInfo(time_zone)) + timedelta(hours=10)

    def ref(kind: EntityKind, entity_id: str) -> EntityRef:
        return EntityRef(platform=Platform.AMAZON_ADS, account_id="amazon-demo", kind=kind, entity_id=entity_id)

    def metrics(scale: int) -> Metrics:
        return Metrics(
            impressions=900 * scale,
            clicks=30 * scale,
            cost_micros=24_000_000 * scale,
            conversions=3.0 * scale,
            conversion_value_micros=81_000_000 * scale,
        )

    entities = [
        EntityState(
            ref=ref(EntityKind.CAMPAIGN, "101"),
            name="SP - Espresso",
            campaign_id="101",
            daily_budget_micros=50_000_000,
            today=metrics(1),
            trailing_7d=metrics(7),
        ),
        EntityState(
            ref=ref(EntityKind.CAMPAIGN, "102"),
            name="SP - Grinders",
            campaign_id="102",
            daily_budget_micros=30_000_000,
            today=metrics(1),
            trailing_7d=metrics(6),
        ),
        EntityState(
            ref=ref(EntityKind.AD_GROUP, "201"),
            name="Espresso exact",
            parent_id="101",
            campaign_id="101",
            cpc_bid_micros=750_000,
        ),
        EntityState(
            ref=ref(EntityKind.AD_GROUP, "202"),
            name="Grinders broad",
            parent_id="102",
            campaign_id="102",
            cpc_bid_micros=600_000,
        ),
    ]
    for n, (text, group, campaign) in enumerate(
        [("espresso machine", "201", "101"), ("espresso maker", "201", "101"), ("coffee grinder", "202", "102")]
    ):
        entities.append(
            EntityState(
                ref=ref(EntityKind.KEYWORD, str(301 + n)),
                name=text,
                parent_id=group,
                campaign_id=campaign,
                cpc_bid_micros=800_000 + 100_000 * n,
                text=text,
                match_type=MatchType.EXACT,
                today=metrics(1),
                trailing_7d=metrics(6),
            )
        )
    entities.append(
        EntityState(
            ref=ref(EntityKind.SEARCH_TERM, "cheap espresso machine"),
            name="cheap espresso machine",
            parent_id="201",
            campaign_id="101",
            text="cheap espresso machine",
            today=metrics(1),
            trailing_7d=metrics(4),
        )
    )
    return Snapshot(
        account_id="amazon-demo", platform=Platform.AMAZON_ADS, time_zone=time_zone, as_of=as_of, entities=entities
    )


def main(argv: list[str] | None = None) -> None:
    """Run the fake until interrupted: `python -m bidloop.testing.amazon_ads.fake_server --port 8765`."""
    parser = argparse.ArgumentParser(description="Serve a fake Amazon Ads API (SP v3) on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--profile-id", default="1000000001")
    parser.add_argument("--access-token", default="fake-access-token")
    parser.add_argument("--account", default="sim-amazon", help="the simulated market's account to seed from")
    parser.add_argument("--builtin", action="store_true", help="seed the small built-in account instead of the sim")
    args = parser.parse_args(argv)
    snapshot = demo_snapshot() if args.builtin else market_snapshot(args.account)
    server = FakeAmazonAdsServer.from_snapshot(
        snapshot, profile_id=args.profile_id, access_token=args.access_token, port=args.port, report_polls_until_ready=0
    )
    with server:
        sys.stdout.write(
            f"fake Amazon Ads API for profile {args.profile_id} at {server.address} (Ctrl-C stops)\n"
            f"bidloop.yaml: {{id: {snapshot.account_id}, platform: amazon_ads, backend: live, "
            f"platform_account_id: '{args.profile_id}', marketplace: NA, currency: {snapshot.currency}, "
            f"time_zone: {snapshot.time_zone}, endpoint: '{server.address}'}}\n"
            f"env: AD_API_CLIENT_ID=demo AD_API_CLIENT_SECRET=demo AD_API_REFRESH_TOKEN=demo\n"
        )
        sys.stdout.flush()
        try:
            while True:
                clock.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()

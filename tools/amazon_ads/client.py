"""Talk to the Amazon Ads API (Sponsored Products v3) through python-amazon-ad-api, behind bidloop's platform protocol.

What this client does, and how:

* **Reads** campaigns, ad groups, keywords and product ads (bidloop's creatives) with the SP v3 list
  endpoints (`nextToken` paging) and performance with four asynchronous v3 reports (campaigns,
  targeting, search terms, advertised products; DAILY, today and the 14 days before), polled with
  an injected `sleep`. Every snapshot first checks the profile's `currencyCode` and `timezone`
  (`GET /v2/profiles`) against bidloop.yaml (`AccountMismatchError` naming both values).
* **Today is partial on Amazon**: report rows of the current day lag by up to hours, so today's spend
  per enabled campaign comes from the budget-usage API where it answers, the snapshot is marked
  `today_complete=False`, and pace (`expected_spend_fraction`) is taken at `today_through`, the
  oldest moment the numbers are known up to, never at the wall clock.
* **Reports are never asked for twice**: a request Amazon calls a duplicate (HTTP 425) reuses the
  pending report it names, and reports still pending after `report_max_wait_s` are remembered by the
  client, so the next snapshot polls them. Rather than block for hours or act on a snapshot without
  history, a read whose reports are not ready fails with a retryable error that says so.
* **Bid multipliers**: each campaign's `dynamicBidding` (strategy and placement adjustments) becomes
  `bid_multiplier_max` on the campaign, its ad groups and keywords; SP bids are `MANUAL_CPC`.
* **Writes** keyword bids (`PUT /sp/keywords`), ad-group default bids (`PUT /sp/adGroups`), campaign
  daily budgets (`PUT /sp/campaigns`), product-ad state (`PUT /sp/productAds`, pause/enable), new
  keywords (`POST /sp/keywords`) and ad-group negative keywords (`POST /sp/negativeKeywords`), at
  most `MAX_ITEMS_PER_REQUEST` items a request. Money goes out in major units (floats), rounded down
  to the currency's minor unit. Every 207 Multi-Status body is read item by item: an item the
  platform did not list as a success is never reported applied.
* **Retries** in the one layer (`bidloop.tools._retry`): 429 and 5xx only, `Retry-After` as the
  floor of the wait; a wait beyond the policy's `defer_above_s` comes back as `deferred`. After a
  5xx, a timeout or a dropped connection the batch is read back first, and only the items not yet at
  their target are sent again (no double write, and no duplicate keyword from a repeated create).
  Items a 207 body reports as `throttledError` are sent again on their own; `internalServerError`
  items are final ("non-retryable", says the SP v3 schema).
* **A rejected access token** (HTTP 401) obtained from the refresh token is dropped from the
  wrapper's process-wide token cache and the refresh token exchanged again, once per call; a fixed
  `AD_API_ACCESS_TOKEN` cannot be renewed that way, so its 401 is final.
* **Dry runs**: SP v3 has no validate-only flag, so `validate_only=True` sends nothing at all; each
  action is checked locally and reported `validated` with a message saying so.
* **Scope**: every request carries `Amazon-Advertising-API-Scope` = the account's profile id
  (`platform_account_id`), and the marketplace is always explicit (no wrapper default).

Audiences: the seeds' `amazonAds.createAudience` maps to nothing in Sponsored Products (SP has no
audience targeting; audiences belong to Sponsored Display and DSP), and bidloop's action set has no
audience action yet, so `AddKeyword` is the targeting this client creates.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from ad_api.api import Profiles, Reports
from ad_api.api import sponsored_products as sp
from ad_api.auth import AccessTokenClient
from ad_api.auth import access_token_client as lwa_token_client
from ad_api.base import AdvertisingApiException
from pydantic import BaseModel, ConfigDict, Field

from bidloop.core.actions import (
    Action,
    AddKeyword,
    AddNegativeKeyword,
    EnableCreative,
    PauseCreative,
    SetBid,
    SetBudget,
)
from bidloop.core.clearance import Clearance, verify_clearance
from bidloop.core.decisions import WriteResult, WriteStatus
from bidloop.core.entities import (
    AccountInfo,
    BiddingStrategy,
    EntityKind,
    EntityRef,
    EntityState,
    MatchType,
    Platform,
    Status,
)
from bidloop.core.errors import (
    AccountMismatchError,
    BidloopError,
    ConfigError,
    PlatformAuthError,
    PlatformError,
    RateLimitedError,
    UnknownAccountError,
)
from bidloop.core.metrics import Metrics
from bidloop.core.money import (
    major_to_micros,
    micros_to_major,
    round_down_to_currency_unit,
)
from bidloop.core.settings import AccountConfig
from bidloop.core.snapshot import Snapshot
from bidloop.tools._retry import RetryPolicy, RetryStats, call_with_retries
from bidloop.tools.amazon_ads._credentials import AmazonCredentials, load_credentials, resolve_marketplace
from bidloop.tools.amazon_ads._failures import SDK_ERRORS, classify_failure, duplicate_report_id, to_platform_error
from bidloop.tools.amazon_ads._operations import (
    API_OF_RESOURCE,
    LIST_FILTERS,
    OPERATIONS,
    Operation,
    PendingItem,
    Refused,
    chunks,
    item_error_message,
    write_result,
)
from bidloop.tools.amazon_ads._reports import (
    HISTORY_DAYS,
    REPORT_SPECS,
    daily_metrics,
    report_request_body,
    window_metrics,
)

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "MAX_ITEMS_PER_REQUEST",
    "AccessCheck",
    "AmazonAdsClient",
    "AmazonApis",
    "check_access",
    "classify_failure",
]

PLATFORM = Platform.AMAZON_ADS.value
MAX_ITEMS_PER_REQUEST = 1000
"""Items per SP v3 create/update request (the v3 schemas' `maxItems`; also the list filters' limit)."""
DEFAULT_TIMEOUT_S = 30.0
"""Seconds before any single HTTP call is abandoned (the wrapper's own default is no timeout)."""
MIN_DAILY_BUDGET_MAJOR = {"USD": 1.0}
"""Smallest SP daily budget per currency, in major units (local pre-check; Amazon has the final word). Only
USD is known here; other currencies are left to Amazon rather than refused on a guess."""
MIN_BID_MAJOR = {"USD": 0.02}
"""Smallest SP bid per currency, in major units: US $0.02 (Amazon's KDP ads help, "Minimum bid")."""
DEFAULT_REPORT_LAG_S = 3 * 3600.0
"""How far behind the clock same-day report rows may be: "Report generation can take as long as 3 hours"
(python-amazon-ad-api `Reports.get_report` docstring, quoting Amazon's reporting v3 reference)."""
BUDGET_USAGE_BATCH = 100
"""Campaign ids per `POST /sp/campaigns/budget/usage` (the request schema's `campaignIds` `maxItems: 100`)."""
_DYNAMIC_UP = {"AUTO_FOR_SALES": (2.0, 1.5), "RULE_BASED": (2.0, 1.5)}
"""Factors dynamic bidding may apply on top of the bid: (top of search, other placements). Up and down
(`AUTO_FOR_SALES`) raises bids "by a maximum of 100% for top of search and 50% for other placements"
(Amazon's console text for the strategy); rule-based bidding has no documented cap, so it is taken as
the same. `LEGACY_FOR_SALES` (down only) and `MANUAL` (fixed) never raise a bid."""

log = logging.getLogger("bidloop.tools.amazon_ads")

_STATUS_FROM_AMAZON = {"ENABLED": Status.ENABLED, "PAUSED": Status.PAUSED, "ARCHIVED": Status.REMOVED}
_MATCH_FROM_AMAZON = {"EXACT": MatchType.EXACT, "PHRASE": MatchType.PHRASE, "BROAD": MatchType.BROAD}


# --------------------------------------------------------------------------------------------------
# The SDK objects


@dataclass
class AmazonApis:
    """The python-amazon-ad-api objects one account needs; each is its own HTTP client.

    Tests build them pointed at the fake server (`endpoint=`); `from_account` builds them from
    credentials. Every object carries the same profile id, marketplace and timeout.
    """

    campaigns: Any
    ad_groups: Any
    keywords: Any
    negative_keywords: Any
    product_ads: Any
    reports: Any
    profiles: Any
    budget_usage: Any = None
    """`POST /sp/campaigns/budget/usage` (near-real-time spend of today); None where it is not built."""

    def all(self) -> list[Any]:
        """Return every SDK object."""
        apis = [
            self.campaigns,
            self.ad_groups,
            self.keywords,
            self.negative_keywords,
            self.product_ads,
            self.reports,
            self.profiles,
        ]
        return apis + ([self.budget_usage] if self.budget_usage is not None else [])

    @classmethod
    def build(
        cls,
        credentials: AmazonCredentials,
        *,
        profile_id: str,
        marketplace: Any,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        endpoint: str | None = None,
    ) -> AmazonApis:
        """Create the SDK objects for one profile.

        Args:
            credentials: LWA credentials; with an `access_token` the token exchange is skipped.
            profile_id: The Amazon profile id, sent as `Amazon-Advertising-API-Scope`.
            marketplace: A `ad_api.base.Marketplaces` member (never the wrapper's default).
            timeout_s: Seconds per HTTP call.
            endpoint: Base URL replacing the marketplace's host (e.g. the fake server); the LWA token
                exchange is sent there too, so a fake can serve the whole credential flow. Without it the
                token exchange goes to the marketplace's region: NA `api.amazon.com`, EU
                `api.amazon.co.uk`, FE `api.amazon.co.jp` (the wrapper's own `token_url` per marketplace).
        """
        sdk_credentials = credentials.sdk_dict(profile_id)
        access_token = credentials.access_token.get_secret_value() if credentials.access_token else None
        objects = []
        classes = (
            sp.CampaignsV3,
            sp.AdGroupsV3,
            sp.KeywordsV3,
            sp.NegativeKeywordsV3,
            sp.ProductAdsV3,
            Reports,
            Profiles,
            sp.CampaignsBudgetUsage,
        )
        token_url = str(getattr(marketplace, "value", {}).get("token_url") or "")
        for api_class in classes:
            api = api_class(
                credentials=dict(sdk_credentials),
                marketplace=marketplace,
                timeout=timeout_s,  # type: ignore[arg-type]  # requests takes float seconds
                access_token=access_token,
                verify_additional_credentials=False,
            )
            # The wrapper prefers AD_API_* environment variables over the credentials passed in (and
            # AD_API_PROFILE_ID over our profile); pin both to what this account configured.
            api.credentials = dict(sdk_credentials)
            api._auth = AccessTokenClient(credentials=api.credentials, timeout=timeout_s)
            if endpoint:
                api.endpoint = endpoint.rstrip("/")
                parts = urlsplit(endpoint)
                api._auth.scheme = f"{parts.scheme}://"
                api._auth.host = parts.netloc
            elif token_url:
                # The wrapper's AccessTokenClient always posts to api.amazon.com; EU and FE advertisers
                # exchange their refresh tokens at their own region's LWA host.
                host, _, path = token_url.partition("/")
                api._auth.host = host
                api._auth.path = f"/{path}" if path else api._auth.path
            objects.append(api)
        return cls(*objects)


# --------------------------------------------------------------------------------------------------
# accounts check


class AccessCheck(BaseModel):
    """The outcome of `bidloop accounts check` for one Amazon account.

    Attributes:
        account_id: bidloop's id of the account checked.
        ok: True when the credentials work and the profile is visible and readable.
        message: One sentence for people.
        hint: What to do about a failure.
        error_code: The `ErrorCode` value of the failure, if any.
        accounts: The profiles these credentials can see.
    """

    model_config = ConfigDict(extra="forbid")

    platform: Literal["amazon_ads"] = "amazon_ads"
    account_id: str
    ok: bool
    message: str
    hint: str | None = None
    error_code: str | None = None
    accounts: list[AccountInfo] = Field(default_factory=list)


def check_access(account: AccountConfig, *, client: AmazonAdsClient | None = None) -> AccessCheck:
    """Verify credentials and access for one Amazon account and list the profiles it can see.

    Never raises for a platform or configuration failure: each becomes `ok=False` with a message
    and a hint (missing credentials, missing marketplace, refused refresh token, expired access
    token, a profile these credentials cannot see or read).
    """
    try:
        client = client or AmazonAdsClient.from_account(account)
        accounts = client.list_accounts()
        profile = account.remote_id
        visible = [info for info in accounts if info.account_id == profile]
        if not visible:
            known = ", ".join(f"{info.account_id} ({info.name})" for info in accounts) or "none"
            return AccessCheck(
                account_id=account.id,
                ok=False,
                message=f"profile {profile} is not visible to these credentials",
                hint=f"set platform_account_id to one of: {known}",
                error_code=PlatformAuthError.code.value,
                accounts=accounts,
            )
        client.probe_profile()
        client.check_identity(accounts)
    except BidloopError as exc:
        return AccessCheck(
            account_id=account.id,
            ok=False,
            message=exc.message,
            hint=exc.hint,
            error_code=exc.code.value,
        )
    return AccessCheck(
        account_id=account.id,
        ok=True,
        message=f"credentials work; profile {profile} ({visible[0].name}) is readable",
        accounts=accounts,
    )


# --------------------------------------------------------------------------------------------------
# The client


class AmazonAdsClient:
    """bidloop's `PlatformClient` for one Amazon Ads profile (Sponsored Products v3).

    Args:
        account: The configured account (its `platform_account_id` is the Amazon profile id).
        apis: The wrapper's SDK objects (injected by tests, built by `from_account`).
        timeout_s: Seconds per HTTP call; applied to any SDK object that has none.
        sleep: Called for every wait (retries, report polling); tests pass a recorder.
        retry_policy: Limits of the retry loop (attempts, waits, the deferral threshold).
        now: Returns the current time (aware); the account's time zone decides "today".
        report_poll_interval_s: Seconds between report status polls.
        report_max_wait_s: Polling time after which a snapshot read fails (retryable); the pending
            reports are kept, and the next snapshot of the same range polls them instead of asking again.
        report_lag_s: How far same-day report rows may lag the clock; today's metrics are taken as known
            up to `as_of - report_lag_s` where the budget-usage API does not say better.

    Raises:
        ConfigError: If the account is not an Amazon account, has no marketplace, or its profile
            id is not a number.
    """

    name = PLATFORM

    def __init__(
        self,
        account: AccountConfig,
        apis: AmazonApis,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        sleep: Callable[[float], None] = time.sleep,
        retry_policy: RetryPolicy | None = None,
        now: Callable[[], datetime] | None = None,
        report_poll_interval_s: float = 10.0,
        report_max_wait_s: float = 180.0,
        report_lag_s: float = DEFAULT_REPORT_LAG_S,
    ) -> None:
        if account.platform is not Platform.AMAZON_ADS:
            raise ConfigError(f"account {account.id!r} is a {account.platform.value} account, not amazon_ads")
        resolve_marketplace(account)
        profile_id = account.remote_id
        if not profile_id.isdigit():
            raise ConfigError(
                f"Amazon account {account.id!r} has profile id {profile_id!r}, which is not a number",
                hint="set platform_account_id to the Amazon Ads profile id; `bidloop accounts check` lists them",
            )
        self.account = account
        self.profile_id = profile_id
        self._apis = apis
        for api in apis.all():
            if getattr(api, "timeout", None) is None:
                api.timeout = timeout_s
            api.debug = False  # the wrapper's debug mode logs the Authorization header
            credentials = getattr(api, "credentials", None)
            if isinstance(credentials, dict) and credentials.get("profile_id") != profile_id:
                api.credentials = {**credentials, "profile_id": profile_id}
        self._sleep = sleep
        self._policy = retry_policy or RetryPolicy()
        self._now = now or (lambda: datetime.now(ZoneInfo("UTC")))
        self._zone = ZoneInfo(account.time_zone)
        self._poll_interval_s = report_poll_interval_s
        self._report_max_wait_s = report_max_wait_s
        self._report_lag_s = max(report_lag_s, 0.0)
        self._pending_reports: dict[str, str] = {}
        """Report ids asked for and not yet downloaded, keyed by the request's configuration and dates."""
        self._campaign_of_ad_group: dict[str, str] = {}
        self.retry_stats = RetryStats()
        """Attempts, retries and read-back reconciliations over this client's life (for benchmarks)."""

    @classmethod
    def from_account(
        cls,
        account: AccountConfig,
        *,
        environ: dict[str, str] | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        **kwargs: Any,
    ) -> AmazonAdsClient:
        """Build a client from the account's settings and the usual credential places.

        Credentials: `AD_API_CLIENT_ID`, `AD_API_CLIENT_SECRET`, `AD_API_REFRESH_TOKEN` (optional
        `AD_API_ACCESS_TOKEN`), else python-ad-api's credentials.yml. `account.endpoint` redirects
        every call (and the LWA token exchange) to another host, e.g. the fake server.

        Raises:
            PlatformAuthError: If credentials are missing (the hint names the variables).
            ConfigError: If the marketplace is missing or unknown, or the profile id is not a number.
        """
        marketplace = resolve_marketplace(account)
        credentials = load_credentials(environ)
        apis = AmazonApis.build(
            credentials,
            profile_id=account.remote_id,
            marketplace=marketplace,
            timeout_s=timeout_s,
            endpoint=account.endpoint,
        )
        return cls(account, apis, timeout_s=timeout_s, **kwargs)

    # ---------------------------------------------------------------- plumbing

    def _check_account(self, account_id: str) -> None:
        if account_id != self.account.id:
            raise UnknownAccountError(
                f"this Amazon Ads client serves account {self.account.id!r}, not {account_id!r}",
                hint="build one client per Amazon profile (AmazonAdsClient.from_account)",
            )

    def _call(self, send: Callable[[], Any], *, reconcile: Callable[[], Any] | None = None) -> tuple[Any, RetryStats]:
        """Send one SDK call through the retry layer; after a 401, renew the LWA access token and send it once more.

        Raises:
            AdvertisingApiException: The SDK's error when the call fails for good (a second 401 included).
            AuthorizationError: If Login with Amazon refuses the token exchange.
            RateLimitedError: If Amazon asked for a wait beyond the policy's `defer_above_s`.
        """
        stats = RetryStats()

        def through_retry_layer() -> Any:
            return call_with_retries(
                send,
                classify=classify_failure,
                platform=PLATFORM,
                policy=self._policy,
                reconcile=reconcile,
                sleep=self._sleep,
                stats=stats,
            )

        try:
            try:
                return through_retry_layer(), stats
            except AdvertisingApiException as exc:
                if exc.code != 401 or not self._drop_cached_access_token():
                    raise
            # Amazon answers 401 before executing a request, so sending the same one again cannot apply
            # a write twice. Only once: a second 401 is not a stale cache entry, and raises.
            return through_retry_layer(), stats
        finally:
            self.retry_stats.attempts += stats.attempts
            self.retry_stats.retries += stats.retries
            self.retry_stats.reconciled += stats.reconciled

    def _drop_cached_access_token(self) -> bool:
        """Forget the cached LWA access token of these credentials so the next call exchanges the refresh token.

        python-amazon-ad-api keeps exchanged tokens in a process-wide cache for 3200 s whatever Amazon
        does with them; without this a revoked token fails every call until the entry expires.

        Returns:
            False when no SDK object exchanges a refresh token (a fixed access token: nothing to renew).
        """
        cache_keys = set()
        for api in self._apis.all():
            auth = getattr(api, "_auth", None)
            if isinstance(auth, AccessTokenClient) and getattr(api, "_access_token", None) is None:
                cache_keys.add(auth._get_cache_key())  # the wrapper's own key: a hash of the refresh token
        for key in cache_keys:
            lwa_token_client.cache.pop(key, None)
        if cache_keys:
            log.debug(
                "amazon_ads profile %s: access token rejected (HTTP 401); dropped it, exchanging the refresh "
                "token for a new one and sending the call once more",
                self.profile_id,
            )
        return bool(cache_keys)

    def _uses_fixed_access_token(self) -> bool:
        return any(getattr(api, "_access_token", None) is not None for api in self._apis.all())

    def _platform_error(self, exc: BaseException, *, entity_id: str | None = None) -> PlatformError:
        """Turn an SDK failure into bidloop's error; a rejected fixed access token gets a hint to renew it."""
        error = to_platform_error(exc, account=self.account, entity_id=entity_id)
        if isinstance(exc, AdvertisingApiException) and exc.code == 401 and self._uses_fixed_access_token():
            error.hint = (
                "the access token in AD_API_ACCESS_TOKEN is used as is and cannot be refreshed: renew it, or "
                "unset AD_API_ACCESS_TOKEN so the client exchanges AD_API_REFRESH_TOKEN for fresh ones "
                "(and check the token was issued to AD_API_CLIENT_ID)"
            )
        return error

    def _read(self, send: Callable[[], Any], entity_id: str | None = None) -> Any:
        """Send one read with retries; raise `PlatformError` (with a hint) when it fails for good."""
        try:
            response, _ = self._call(send)
        except RateLimitedError:
            raise
        except SDK_ERRORS as exc:
            raise self._platform_error(exc, entity_id=entity_id) from exc
        return response.payload

    def _list_all(self, api: Any, method: str, resource: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        """Return every entity of a v3 list endpoint, following `nextToken`."""
        out: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page_body = dict(body, nextToken=token) if token else dict(body)
            payload = self._read(functools.partial(getattr(api, method), body=page_body))
            if not isinstance(payload, dict):
                raise PlatformError(
                    f"Amazon Ads {method} returned {type(payload).__name__}, not an object",
                    platform=PLATFORM,
                    account_id=self.account.id,
                )
            out.extend(e for e in payload.get(resource) or [] if isinstance(e, dict))
            token = payload.get("nextToken")
            if not token:
                return out

    def _list_by_ids(self, op_resource: str, ids: Sequence[str]) -> list[dict[str, Any]]:
        api_attr, method = API_OF_RESOURCE[op_resource]
        out: list[dict[str, Any]] = []
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), MAX_ITEMS_PER_REQUEST):
            chunk = unique[start : start + MAX_ITEMS_PER_REQUEST]
            body = {LIST_FILTERS[op_resource]: {"include": chunk}}
            out.extend(self._list_all(getattr(self._apis, api_attr), method, op_resource, body))
        return out

    # ---------------------------------------------------------------- PlatformClient: reads

    def list_accounts(self) -> list[AccountInfo]:
        """Return the advertising profiles these credentials can see (`GET /v2/profiles`).

        Raises:
            PlatformAuthError: If the credentials are refused (with a hint per kind of failure).
            PlatformError: If Amazon fails after retries.
        """
        payload = self._read(lambda: self._apis.profiles.list_profiles())
        infos: list[AccountInfo] = []
        for profile in payload if isinstance(payload, list) else []:
            if not isinstance(profile, dict) or profile.get("profileId") is None:
                continue
            info = profile.get("accountInfo") or {}
            name = info.get("name") or f"{profile.get('countryCode', '')} {info.get('type', 'profile')}".strip()
            infos.append(
                AccountInfo(
                    account_id=str(profile["profileId"]),
                    platform=Platform.AMAZON_ADS,
                    name=str(name),
                    currency=str(profile.get("currencyCode") or "USD"),
                    time_zone=str(profile.get("timezone") or "UTC"),
                )
            )
        return infos

    def probe_profile(self) -> None:
        """Read one page of campaigns in the account's profile, to prove the scope grants access.

        Raises:
            PlatformAuthError: If the profile refuses these credentials.
        """
        self._read(lambda: self._apis.campaigns.list_campaigns(body={"maxResults": 10}))

    def check_identity(self, profiles: Sequence[AccountInfo] | None = None) -> None:
        """Compare the profile's currency and time zone (`GET /v2/profiles`) with the account's configuration.

        Args:
            profiles: The profiles already listed (`list_accounts`), to save a request.

        Raises:
            AccountMismatchError: If Amazon reports another `currencyCode` or `timezone`; it names both values.
            PlatformAuthError: If the profile is not among those these credentials can see.
        """
        listed = list(profiles) if profiles is not None else self.list_accounts()
        mine = next((info for info in listed if info.account_id == self.profile_id), None)
        if mine is None:
            raise PlatformAuthError(
                f"profile {self.profile_id} is not visible to these credentials",
                platform=PLATFORM,
                account_id=self.account.id,
                hint="check platform_account_id in bidloop.yaml; `bidloop accounts check` lists the visible profiles",
            )
        for field, configured, reported in (
            ("currency", self.account.currency, mine.currency),
            ("time_zone", self.account.time_zone, mine.time_zone),
        ):
            if reported and configured != reported:
                raise AccountMismatchError(self.account.id, field, configured, reported, platform=PLATFORM)

    def read_snapshot(self, account_id: str) -> Snapshot:
        """Read campaigns, ad groups, keywords and search terms with today's and trailing metrics.

        Requests: the profile list (currency and time zone are checked first), the SP v3 list endpoints
        (one per page), four DAILY reports covering today and the 14 days before (create, poll,
        download), and the budget-usage API for today's spend of the enabled campaigns. Ad-group
        metrics are the sum of the targeting report's rows (keywords and product targets). Product ads
        are the creatives. Search terms are keyed by their text; `parent_id` is the keyword (or target)
        through which the term drew most clicks, as in the simulated market.

        Today is never complete on Amazon: report rows of the current day lag by up to hours. The
        snapshot says so (`today_complete=False`), `today_through` is the moment today's numbers are
        known up to (the oldest budget-usage reading, or `as_of - report_lag_s` where a campaign's
        spend comes from the report), and `expected_spend_fraction` is taken at that moment, so pace
        is judged on what is known rather than on the clock.

        Raises:
            UnknownAccountError: If `account_id` is not this client's account.
            AccountMismatchError: If the profile's currency or time zone differs from the configuration.
            PlatformAuthError: If the credentials are refused.
            PlatformError: If a call fails after retries, or a report fails or is not ready in time.
        """
        self._check_account(account_id)
        self.check_identity()
        as_of = self._now().astimezone(self._zone)
        today = as_of.date()
        midnight = datetime.combine(today, datetime.min.time(), tzinfo=self._zone)
        active = {"stateFilter": {"include": ["ENABLED", "PAUSED"]}}
        campaigns = self._list_all(self._apis.campaigns, "list_campaigns", "campaigns", active)
        ad_groups = self._list_all(self._apis.ad_groups, "list_ad_groups", "adGroups", active)
        keywords = self._list_all(self._apis.keywords, "list_keywords", "keywords", active)
        product_ads = self._list_all(self._apis.product_ads, "list_product_ads", "productAds", active)
        rows, reports_created = self._fetch_reports(start=today - timedelta(days=HISTORY_DAYS), end=today)
        # Report rows of today are known up to the report's creation, less the generation lag.
        report_through = max(
            min(as_of, reports_created or as_of) - timedelta(seconds=self._report_lag_s), midnight
        ).astimezone(self._zone)
        notes: list[str] = []

        per_campaign = daily_metrics(rows["campaigns"], "campaignId")
        per_keyword = daily_metrics(rows["targeting"], "keywordId")
        per_ad_group = daily_metrics(rows["targeting"], "adGroupId")
        per_ad = daily_metrics(rows["product_ads"], "adId")

        account_ref = self._ref(EntityKind.ACCOUNT, self.account.id)
        entities: list[EntityState] = []
        account_today, account_trailing = Metrics(), Metrics()
        budget_total = 0
        campaign_states = [self._campaign_state(c) for c in campaigns]
        enabled_ids = [c.ref.entity_id for c in campaign_states if c.status is Status.ENABLED]
        usage = self._budget_usage(enabled_ids, midnight=midnight, as_of=as_of, notes=notes)
        knowns: list[datetime] = []
        multipliers: dict[str, float | None] = {}
        for state in campaign_states:
            campaign_id = state.ref.entity_id
            multipliers[campaign_id] = state.bid_multiplier_max
            today_m, trailing_m, history = window_metrics(per_campaign.get(campaign_id, {}), today)
            reading = usage.get(campaign_id)
            if reading is not None and reading[1] > report_through:
                spent_micros, read_at = reading
                today_m = today_m.model_copy(update={"cost_micros": max(spent_micros, today_m.cost_micros)})
                if state.status is Status.ENABLED:
                    knowns.append(read_at)
            elif state.status is Status.ENABLED:
                knowns.append(report_through)
            state = state.model_copy(update={"today": today_m, "trailing_7d": trailing_m, "daily_history": history})
            entities.append(state)
            account_today, account_trailing = account_today + today_m, account_trailing + trailing_m
            if state.status is Status.ENABLED and state.daily_budget_micros is not None:
                budget_total += state.daily_budget_micros
        default_bids: dict[str, int | None] = {}
        for group in ad_groups:
            state = self._ad_group_state(group, multipliers)
            default_bids[state.ref.entity_id] = state.cpc_bid_micros
            today_m, trailing_m, _ = window_metrics(per_ad_group.get(state.ref.entity_id, {}), today)
            entities.append(state.model_copy(update={"today": today_m, "trailing_7d": trailing_m}))
        for keyword in keywords:
            state = self._keyword_state(keyword, default_bids, multipliers)
            today_m, trailing_m, _ = window_metrics(per_keyword.get(state.ref.entity_id, {}), today)
            entities.append(state.model_copy(update={"today": today_m, "trailing_7d": trailing_m}))
        for ad in product_ads:
            state = self._product_ad_state(ad)
            today_m, trailing_m, history = window_metrics(per_ad.get(state.ref.entity_id, {}), today)
            entities.append(
                state.model_copy(update={"today": today_m, "trailing_7d": trailing_m, "daily_history": history})
            )
        entities.extend(self._search_term_states(rows["search_terms"], today))
        account_state = EntityState(
            ref=account_ref,
            name=self.account.name or f"Amazon profile {self.profile_id}",
            today=account_today,
            trailing_7d=account_trailing,
        )
        # The oldest moment any delivering campaign's spend is known up to: judging pace there can only
        # make the account look ahead of pace, never behind it because of lag.
        today_through = min(knowns, default=report_through)
        notes.append(
            f"Amazon: today's numbers are known up to {today_through:%H:%M} ({self.account.time_zone}); report rows "
            f"of today lag up to {self._report_lag_s / 3600:g} h, so pace is judged at that moment"
        )
        return Snapshot(
            account_id=self.account.id,
            platform=Platform.AMAZON_ADS,
            currency=self.account.currency,
            time_zone=self.account.time_zone,
            as_of=as_of,
            expected_spend_fraction=_day_fraction(today_through, midnight),
            account_daily_budget_micros=budget_total,
            today_complete=False,
            today_through=today_through,
            notes=notes,
            entities=[account_state, *entities],
        )

    def _budget_usage(
        self, campaign_ids: Sequence[str], *, midnight: datetime, as_of: datetime, notes: list[str]
    ) -> dict[str, tuple[int, datetime]]:
        """Return {campaign id: (today's spend in micros, when Amazon evaluated it)} from the budget-usage API.

        `budgetUsagePercent` is spend over the campaign's `budget` (major units); `usageUpdatedTimestamp`
        is "Last evaluation time for budget usage". A reading from before today's midnight is
        yesterday's figure and is dropped. Where the API fails (or the wrapper raises on a batch that
        holds an `error` list), those campaigns keep their report numbers and a note says so.
        """
        out: dict[str, tuple[int, datetime]] = {}
        if self._apis.budget_usage is None or not campaign_ids:
            return out
        for start in range(0, len(campaign_ids), BUDGET_USAGE_BATCH):
            chunk = list(campaign_ids[start : start + BUDGET_USAGE_BATCH])
            send = functools.partial(self._apis.budget_usage.list_campaigns_budget_usage, body={"campaignIds": chunk})
            try:
                payload = self._read(send)
            except PlatformError as exc:
                log.warning("amazon_ads profile %s: budget usage unavailable: %s", self.profile_id, exc.message)
                notes.append(
                    f"Amazon budget usage unavailable for {len(chunk)} campaigns ({exc.message}); "
                    "their spend today comes from the lagging reports"
                )
                continue
            for item in (payload.get("success") or []) if isinstance(payload, dict) else []:
                reading = _usage_reading(item, midnight=midnight, as_of=as_of)
                if reading is not None:
                    out[str(item.get("campaignId"))] = reading
        return out

    def read_back(self, account_id: str, refs: Sequence[EntityRef]) -> dict[str, EntityState]:
        """Read the current settings (no metrics) of campaigns, ad groups, keywords and product ads, keyed by ref key.

        Entities Amazon does not return (deleted, or never existed) are absent from the result.

        Raises:
            UnknownAccountError: If `account_id` is not this client's account.
            PlatformError: If a call fails after retries.
        """
        self._check_account(account_id)
        wanted = {kind: [r.entity_id for r in refs if r.kind is kind] for kind in EntityKind}
        states: list[EntityState] = []
        if wanted[EntityKind.CAMPAIGN]:
            states += [self._campaign_state(c) for c in self._list_by_ids("campaigns", wanted[EntityKind.CAMPAIGN])]
        default_bids: dict[str, int | None] = {}
        if wanted[EntityKind.AD_GROUP]:
            for group in self._list_by_ids("adGroups", wanted[EntityKind.AD_GROUP]):
                state = self._ad_group_state(group)
                default_bids[state.ref.entity_id] = state.cpc_bid_micros
                states.append(state)
        if wanted[EntityKind.KEYWORD]:
            states += [
                self._keyword_state(k, default_bids) for k in self._list_by_ids("keywords", wanted[EntityKind.KEYWORD])
            ]
        if wanted[EntityKind.CREATIVE]:
            states += [self._product_ad_state(a) for a in self._list_by_ids("productAds", wanted[EntityKind.CREATIVE])]
        requested = {r.key for r in refs}
        return {s.ref.key: s for s in states if s.ref.key in requested}

    # ---------------------------------------------------------------- reports

    def _request_report(self, name: str, *, start: date, end: date) -> str:
        """Return the id of a report for this range: a pending one this client asked for, else a new one.

        Amazon answers a request identical to a pending one with HTTP 425 ("The Request is a duplicate
        of : <reportId>"); that id is used instead of failing.
        """
        spec = REPORT_SPECS[name]
        key = f"{spec.report_type_id}|{start.isoformat()}|{end.isoformat()}"
        if key in self._pending_reports:
            return self._pending_reports[key]
        body = report_request_body(spec, start=start, end=end)
        try:
            response, _ = self._call(functools.partial(self._apis.reports.post_report, body=body))
            payload = response.payload
        except RateLimitedError:
            raise
        except SDK_ERRORS as exc:
            duplicate_of = duplicate_report_id(exc)
            if duplicate_of is None:
                raise self._platform_error(exc) from exc
            log.info(
                "amazon_ads profile %s: %s is a duplicate of report %s; reusing it", self.profile_id, key, duplicate_of
            )
            payload = {"reportId": duplicate_of}
        report_id = payload.get("reportId") if isinstance(payload, dict) else None
        if not report_id:
            raise PlatformError(
                f"Amazon Ads did not return a report id for {spec.report_type_id}",
                platform=PLATFORM,
                account_id=self.account.id,
                retryable=True,
            )
        self._pending_reports[key] = str(report_id)
        return str(report_id)

    def _forget_report(self, report_id: str) -> None:
        for key in [k for k, v in self._pending_reports.items() if v == report_id]:
            del self._pending_reports[key]

    def _fetch_reports(self, *, start: date, end: date) -> tuple[dict[str, list[dict[str, Any]]], datetime | None]:
        """Return each report's rows and the earliest creation time Amazon gave for them (None if none said).

        Polls for at most `report_max_wait_s`; reports still pending then stay remembered, so the next
        snapshot of the same range polls them instead of asking again.

        Raises:
            PlatformError: Retryable, if a report failed or is not ready in time.
        """
        report_ids = {name: self._request_report(name, start=start, end=end) for name in REPORT_SPECS}
        urls: dict[str, str] = {}
        created: list[datetime] = []
        waited_s = 0.0
        while True:
            for name, report_id in report_ids.items():
                if name in urls:
                    continue
                status = self._read(functools.partial(self._apis.reports.get_report, report_id))
                state = str(status.get("status", "")).upper() if isinstance(status, dict) else ""
                if state == "COMPLETED" and status.get("url"):
                    urls[name] = str(status["url"])
                    created_at = _parse_timestamp(status.get("createdAt"))
                    if created_at is not None:
                        created.append(created_at)
                elif state in {"FAILED", "CANCELLED"}:
                    self._forget_report(report_id)
                    raise PlatformError(
                        f"Amazon Ads report {report_id} ({REPORT_SPECS[name].report_type_id}) {state.lower()}: "
                        f"{status.get('failureReason') or 'no reason given'}",
                        platform=PLATFORM,
                        account_id=self.account.id,
                        retryable=True,
                        hint="run again; if it keeps failing, check the report columns against Amazon's v3 docs",
                    )
            if len(urls) == len(report_ids):
                break
            if waited_s >= self._report_max_wait_s:
                pending = ", ".join(report_ids[n] for n in report_ids if n not in urls)
                raise PlatformError(
                    f"Amazon Ads reports not ready after {waited_s:.0f} s (still pending: {pending})",
                    platform=PLATFORM,
                    account_id=self.account.id,
                    retryable=True,
                    hint="Amazon can take up to 3 hours to generate a report; run again later: the next snapshot "
                    "polls the pending reports instead of asking for new ones (or raise report_max_wait_s)",
                )
            self._sleep(self._poll_interval_s)
            waited_s += self._poll_interval_s
        rows = {name: self._download(url) for name, url in urls.items()}
        for report_id in report_ids.values():
            self._forget_report(report_id)
        return rows, min(created, default=None)

    def _download(self, url: str) -> list[dict[str, Any]]:
        payload = self._read(lambda: self._apis.reports.download_report(url=url, format="data"))
        if isinstance(payload, dict) and payload.get("success") is False:
            # The wrapper turns transport failures of a download into a payload instead of raising.
            raise PlatformError(
                f"Amazon Ads report download failed (HTTP {payload.get('code')})",
                platform=PLATFORM,
                account_id=self.account.id,
                retryable=True,
                hint="report URLs expire; run again to request a fresh report",
            )
        if not isinstance(payload, list):
            raise PlatformError(
                f"Amazon Ads report had {type(payload).__name__} rows, expected a list",
                platform=PLATFORM,
                account_id=self.account.id,
            )
        return [row for row in payload if isinstance(row, dict)]

    # ---------------------------------------------------------------- entity mapping

    def _ref(self, kind: EntityKind, entity_id: Any) -> EntityRef:
        return EntityRef(platform=Platform.AMAZON_ADS, account_id=self.account.id, kind=kind, entity_id=str(entity_id))

    def _money_in(self, major: Any) -> int | None:
        if major is None:
            return None
        return major_to_micros(major)

    @staticmethod
    def _status(state: Any) -> Status:
        # A missing or unknown state fails closed: never count something as live that Amazon did not say is.
        return _STATUS_FROM_AMAZON.get(str(state or "").upper(), Status.PAUSED)

    def _campaign_state(self, campaign: dict[str, Any]) -> EntityState:
        budget = campaign.get("budget") or {}
        amount = budget.get("budget") if isinstance(budget, dict) else budget
        campaign_id = str(campaign["campaignId"])
        return EntityState(
            ref=self._ref(EntityKind.CAMPAIGN, campaign_id),
            name=str(campaign.get("name") or campaign_id),
            parent_id=self.account.id,
            campaign_id=campaign_id,
            status=self._status(campaign.get("state")),
            daily_budget_micros=self._money_in(amount),
            bidding_strategy=BiddingStrategy.MANUAL_CPC,
            bid_multiplier_max=bid_multiplier_max(campaign.get("dynamicBidding")),
        )

    def _ad_group_state(self, group: dict[str, Any], multipliers: dict[str, float | None] | None = None) -> EntityState:
        group_id = str(group["adGroupId"])
        campaign_id = str(group.get("campaignId")) if group.get("campaignId") is not None else None
        if campaign_id:
            self._campaign_of_ad_group[group_id] = campaign_id
        return EntityState(
            ref=self._ref(EntityKind.AD_GROUP, group_id),
            name=str(group.get("name") or group_id),
            parent_id=campaign_id,
            campaign_id=campaign_id,
            status=self._status(group.get("state")),
            cpc_bid_micros=self._money_in(group.get("defaultBid")),
            bidding_strategy=BiddingStrategy.MANUAL_CPC,
            bid_multiplier_max=(multipliers or {}).get(campaign_id or ""),
        )

    def _keyword_state(
        self,
        keyword: dict[str, Any],
        default_bids: dict[str, int | None],
        multipliers: dict[str, float | None] | None = None,
    ) -> EntityState:
        keyword_id = str(keyword["keywordId"])
        group_id = str(keyword.get("adGroupId")) if keyword.get("adGroupId") is not None else None
        bid = self._money_in(keyword.get("bid"))
        if bid is None and group_id is not None:
            bid = default_bids.get(group_id)
        campaign_id = str(keyword.get("campaignId")) if keyword.get("campaignId") is not None else None
        return EntityState(
            ref=self._ref(EntityKind.KEYWORD, keyword_id),
            name=str(keyword.get("keywordText") or keyword_id),
            parent_id=group_id,
            campaign_id=campaign_id,
            status=self._status(keyword.get("state")),
            # SP keyword bids are manual; dynamic bidding is a multiplier on them, not a strategy of its own.
            bidding_strategy=BiddingStrategy.MANUAL_CPC,
            bid_multiplier_max=(multipliers or {}).get(campaign_id or ""),
            cpc_bid_micros=bid,
            text=keyword.get("keywordText"),
            match_type=_MATCH_FROM_AMAZON.get(str(keyword.get("matchType") or "").upper()),
        )

    def _product_ad_state(self, ad: dict[str, Any]) -> EntityState:
        ad_id = str(ad["adId"])
        product = ad.get("asin") or ad.get("sku") or ad_id
        return EntityState(
            ref=self._ref(EntityKind.CREATIVE, ad_id),
            name=str(product),
            parent_id=str(ad.get("adGroupId")) if ad.get("adGroupId") is not None else None,
            campaign_id=str(ad.get("campaignId")) if ad.get("campaignId") is not None else None,
            status=self._status(ad.get("state")),
            text=str(product),
        )

    def _search_term_states(self, rows: list[dict[str, Any]], today: date) -> list[EntityState]:
        per_term = daily_metrics(rows, "searchTerm")
        clicks_by_keyword: dict[str, dict[tuple[str, str], int]] = {}
        for row in rows:
            term, keyword = row.get("searchTerm"), row.get("keywordId") or row.get("adGroupId")
            if term is None or keyword is None:
                continue
            counts = clicks_by_keyword.setdefault(str(term), {})
            key = (str(keyword), str(row.get("campaignId") or ""))
            counts[key] = counts.get(key, 0) + int(row.get("clicks") or 0)
        states = []
        for term, per_day in per_term.items():
            today_m, trailing_m, _ = window_metrics(per_day, today)
            counts = clicks_by_keyword.get(term, {})
            keyword_id, campaign_id = max(counts, key=lambda k: counts[k]) if counts else (None, "")
            states.append(
                EntityState(
                    ref=self._ref(EntityKind.SEARCH_TERM, term),
                    name=term,
                    parent_id=keyword_id,
                    campaign_id=campaign_id or None,
                    text=term,
                    today=today_m,
                    trailing_7d=trailing_m,
                )
            )
        return states

    # ---------------------------------------------------------------- PlatformClient: writes

    def apply(
        self, account_id: str, clearances: Sequence[Clearance], *, validate_only: bool = False
    ) -> list[WriteResult]:
        """Send cleared actions in as few requests as SP v3 allows; one result per action, in order.

        Supported: `SetBid` on keywords and ad groups (default bid), `SetBudget` on campaigns,
        `PauseCreative` / `EnableCreative` on product ads, `AddKeyword` and `AddNegativeKeyword` on
        ad groups. Anything else fails with a message, unsent.
        With `validate_only`, nothing is sent (SP v3 has no dry-run flag): actions are checked locally.

        Raises:
            UnfilteredActionError: If any item is not a valid clearance; nothing is sent then.
            UnknownAccountError: If `account_id` is not this client's account.
        """
        actions = [verify_clearance(c) for c in clearances]
        self._check_account(account_id)
        results: list[WriteResult | None] = [None] * len(actions)
        by_op: dict[str, list[PendingItem]] = {}
        for index, action in enumerate(actions):
            try:
                op_key, item = self._prepare(index, action)
            except Refused as refused:
                results[index] = write_result(action, WriteStatus.FAILED, refused.message)
                continue
            by_op.setdefault(op_key, []).append(item)
        if validate_only:
            for items in by_op.values():
                for item in items:
                    results[item.index] = write_result(
                        item.action,
                        WriteStatus.VALIDATED,
                        "validated locally; nothing was sent (Amazon SP v3 has no validate-only mode): "
                        + self._describe(item),
                        attempts=0,
                    )
            return [r for r in results if r is not None]
        self._fill_campaign_ids(by_op)
        for op_key, items in by_op.items():
            op = OPERATIONS[op_key]
            sendable = []
            for item in items:
                if op.creates and not item.payload.get("campaignId"):
                    results[item.index] = write_result(
                        item.action,
                        WriteStatus.FAILED,
                        f"ad group {item.ad_group_id} was not found in profile {self.profile_id}; nothing sent",
                    )
                else:
                    sendable.append(item)
            for chunk in chunks(sendable, MAX_ITEMS_PER_REQUEST):
                for index, result in self._send_batch(op, chunk).items():
                    results[index] = result
        return [r for r in results if r is not None]

    def _describe(self, item: PendingItem) -> str:
        if item.target_state is not None:
            return f"product ad {item.entity_id} -> {item.target_state.lower()}"
        if item.target_micros is not None and item.text is None:
            return f"{item.entity_id} -> {micros_to_major(item.target_micros):.2f} {self.account.currency}"
        return f"{item.match_type} '{item.text}' in ad group {item.ad_group_id}"

    def _target(self, micros: int, *, what: str, minimum_major: float | None = None) -> int:
        rounded = round_down_to_currency_unit(micros, self.account.currency)
        if rounded <= 0:
            raise Refused(f"{what} of {micros} micros rounds down to 0 {self.account.currency}; nothing sent")
        if minimum_major is not None and rounded < major_to_micros(minimum_major):
            raise Refused(
                f"{what} {micros_to_major(rounded):.2f} {self.account.currency} is below Amazon's minimum "
                f"of {minimum_major:.2f}; nothing sent"
            )
        return rounded

    def _prepare(self, index: int, action: Action) -> tuple[str, PendingItem]:
        ref = action.entity
        if ref.platform is not Platform.AMAZON_ADS or ref.account_id != self.account.id:
            raise Refused(f"action targets {ref.key}, not Amazon account {self.account.id}; nothing sent")
        if isinstance(action, SetBid) and ref.kind in (EntityKind.KEYWORD, EntityKind.AD_GROUP):
            target = self._target(
                action.new_cpc_bid_micros, what="bid", minimum_major=MIN_BID_MAJOR.get(self.account.currency)
            )
            major = micros_to_major(target)
            if ref.kind is EntityKind.KEYWORD:
                payload = {"keywordId": ref.entity_id, "bid": major}
                return "keyword_bid", PendingItem(index, action, ref.entity_id, payload, target)
            payload = {"adGroupId": ref.entity_id, "defaultBid": major}
            return "ad_group_bid", PendingItem(index, action, ref.entity_id, payload, target)
        if isinstance(action, SetBudget) and ref.kind is EntityKind.CAMPAIGN:
            target = self._target(
                action.new_daily_budget_micros,
                what="daily budget",
                minimum_major=MIN_DAILY_BUDGET_MAJOR.get(self.account.currency),
            )
            payload = {
                "campaignId": ref.entity_id,
                "budget": {"budgetType": "DAILY", "budget": micros_to_major(target)},
            }
            return "campaign_budget", PendingItem(index, action, ref.entity_id, payload, target)
        if isinstance(action, PauseCreative | EnableCreative) and ref.kind is EntityKind.CREATIVE:
            state = "PAUSED" if isinstance(action, PauseCreative) else "ENABLED"
            payload = {"adId": ref.entity_id, "state": state}
            return "product_ad_state", PendingItem(index, action, ref.entity_id, payload, target_state=state)
        if isinstance(action, AddKeyword) and ref.kind is EntityKind.AD_GROUP:
            target = self._target(
                action.cpc_bid_micros, what="bid", minimum_major=MIN_BID_MAJOR.get(self.account.currency)
            )
            match = action.match_type.value.upper()
            payload = {
                "adGroupId": ref.entity_id,
                "keywordText": action.text,
                "matchType": match,
                "state": "ENABLED",
                "bid": micros_to_major(target),
            }
            item = PendingItem(index, action, ref.entity_id, payload, target, None, ref.entity_id, action.text, match)
            return "add_keyword", item
        if isinstance(action, AddNegativeKeyword) and ref.kind is EntityKind.AD_GROUP:
            match = f"NEGATIVE_{action.match_type.value.upper()}"
            payload = {"adGroupId": ref.entity_id, "keywordText": action.text, "matchType": match, "state": "ENABLED"}
            item = PendingItem(index, action, ref.entity_id, payload, None, None, ref.entity_id, action.text, match)
            return "add_negative_keyword", item
        raise Refused(
            f"Amazon Ads (Sponsored Products) does not support {action.kind} on {ref.kind.value} entities; "
            "nothing sent (supported: set_bid on keywords/ad groups, set_budget on campaigns, pause/enable_creative on "
            "product ads, add_keyword and add_negative_keyword on ad groups)"
        )

    def _fill_campaign_ids(self, by_op: dict[str, list[PendingItem]]) -> None:
        """Creates need the ad group's campaign id; look up the ones the last snapshot did not show."""
        creating = [item for key in ("add_keyword", "add_negative_keyword") for item in by_op.get(key, [])]
        missing = sorted(
            {i.ad_group_id for i in creating if i.ad_group_id and i.ad_group_id not in self._campaign_of_ad_group}
        )
        if missing:
            try:
                for group in self._list_by_ids("adGroups", missing):
                    self._ad_group_state(group)
            except BidloopError as exc:
                log.warning("amazon_ads: cannot look up campaigns of %d ad groups: %s", len(missing), exc.message)
        for item in creating:
            campaign_id = self._campaign_of_ad_group.get(item.ad_group_id or "")
            if campaign_id:
                item.payload["campaignId"] = campaign_id

    def _landed(self, op: Operation, pending: list[PendingItem]) -> dict[int, str]:
        """Read back the pending items; return {item index: read-back text} for those already at target."""
        if op.creates:
            groups = sorted({i.ad_group_id for i in pending if i.ad_group_id})
            api = getattr(self._apis, op.api_attr)
            created = self._list_all(api, op.list_method, op.resource, {"adGroupIdFilter": {"include": groups}})
            found = {
                (
                    str(e.get("adGroupId")),
                    str(e.get("matchType", "")).upper(),
                    str(e.get("keywordText", "")).casefold(),
                ): str(e.get(op.id_field))
                for e in created
            }
            out = {}
            for item in pending:
                key = (str(item.ad_group_id), str(item.match_type), str(item.text).casefold())
                if key in found:
                    out[item.index] = f"{op.id_field}={found[key]}"
            return out
        listed = {str(e.get(op.id_field)): e for e in self._list_by_ids(op.resource, [i.entity_id for i in pending])}
        out = {}
        for item in pending:
            entity = listed.get(item.entity_id)
            if entity is None:
                continue
            if item.target_state is not None:
                if str(entity.get("state", "")).upper() == item.target_state:
                    out[item.index] = item.target_state.lower()
                continue
            value = self._value_micros(op, entity)
            if value is not None and value == item.target_micros:
                out[item.index] = str(value)
        return out

    def _value_micros(self, op: Operation, entity: dict[str, Any] | None) -> int | None:
        if not isinstance(entity, dict):
            return None
        if op.key == "campaign_budget":
            budget = entity.get("budget")
            raw = budget.get("budget") if isinstance(budget, dict) else budget
        elif op.key == "ad_group_bid":
            raw = entity.get("defaultBid")
        else:
            raw = entity.get("bid")
        return self._money_in(raw) if raw is not None else None

    def _send_batch(self, op: Operation, chunk: list[PendingItem], *, round_: int = 1) -> dict[int, WriteResult]:
        """Send one request of items; items Amazon throttled one by one (207 `throttledError`) are sent again alone."""
        api = getattr(self._apis, op.api_attr)
        pending = list(chunk)
        sent: list[PendingItem] = []
        results: dict[int, WriteResult] = {}
        reconciled_marker = object()

        def send() -> Any:
            sent[:] = pending
            body = {op.resource: [item.payload for item in pending]}
            return getattr(api, op.method)(body=body, prefer=True)

        def reconcile() -> Any:
            landed = self._landed(op, pending)
            for item in pending:
                if item.index in landed:
                    results[item.index] = write_result(
                        item.action,
                        WriteStatus.APPLIED,
                        "confirmed by read-back after an ambiguous failure; not sent again",
                        read_back=landed[item.index],
                    )
            pending[:] = [item for item in pending if item.index not in landed]
            return reconciled_marker if not pending else None

        try:
            response, stats = self._call(send, reconcile=reconcile)
        except RateLimitedError as exc:
            for item in pending:
                results[item.index] = write_result(
                    item.action,
                    WriteStatus.DEFERRED,
                    f"Amazon asked to wait {exc.retry_after_s:.0f} s; handed back for a later run",
                    retryable=True,
                    retry_after_s=exc.retry_after_s,
                )
            return results
        except SDK_ERRORS as exc:
            error = self._platform_error(exc)
            for item in pending:
                results[item.index] = write_result(
                    item.action, WriteStatus.FAILED, str(error), retryable=error.retryable
                )
            return results
        log.debug("amazon_ads %s: %d items, %d attempts", op.key, len(chunk), stats.attempts)
        if response is reconciled_marker:
            return results
        outcome, throttled = self._parse_multi_status(op, sent, response.payload, stats.attempts)
        results.update(outcome)
        if throttled and round_ < self._policy.max_attempts:
            wait_s = min(self._policy.initial_wait_s * 2 ** (round_ - 1), self._policy.max_wait_s)
            log.info("amazon_ads %s: %d items throttled; sending them again in %.0f s", op.key, len(throttled), wait_s)
            self._sleep(wait_s)
            results.update(self._send_batch(op, throttled, round_=round_ + 1))
        return results

    def _parse_multi_status(
        self, op: Operation, sent: list[PendingItem], payload: Any, attempts: int
    ) -> tuple[dict[int, WriteResult], list[PendingItem]]:
        """Read a 207 body item by item; an item Amazon did not list as a success is a failure.

        Returns:
            The result per action index, and the items Amazon throttled (worth sending again alone).
        """
        body = payload.get(op.resource) if isinstance(payload, dict) else None
        body = body if isinstance(body, dict) else {}
        outcome: dict[int, WriteResult] = {}
        throttled: list[PendingItem] = []
        for entry in body.get("error") or []:
            position = entry.get("index") if isinstance(entry, dict) else None
            if not isinstance(position, int) or not 0 <= position < len(sent):
                continue
            message, resend = item_error_message(entry)
            item = sent[position]
            if resend and item not in throttled:
                throttled.append(item)
            outcome[item.index] = write_result(
                item.action, WriteStatus.FAILED, f"Amazon refused: {message}", retryable=resend, attempts=attempts
            )
        for entry in body.get("success") or []:
            position = entry.get("index") if isinstance(entry, dict) else None
            if not isinstance(position, int) or not 0 <= position < len(sent):
                continue
            item = sent[position]
            if item.index in outcome:
                continue
            outcome[item.index] = self._applied(op, item, entry, attempts)
        for item in sent:
            if item.index not in outcome:
                outcome[item.index] = write_result(
                    item.action,
                    WriteStatus.FAILED,
                    "Amazon's multi-status answer did not mention this item; check it with read_back before retrying",
                    retryable=True,
                    attempts=attempts,
                )
        return outcome, throttled

    def _applied(self, op: Operation, item: PendingItem, entry: dict[str, Any], attempts: int) -> WriteResult:
        if op.creates:
            new_id = entry.get(op.id_field)
            return write_result(
                item.action,
                WriteStatus.APPLIED,
                f"created {op.id_field}={new_id}",
                read_back=f"{op.id_field}={new_id}" if new_id is not None else None,
                attempts=attempts,
            )
        if item.target_state is not None:
            entity = entry.get(op.representation)
            state = str(entity.get("state", "")).lower() if isinstance(entity, dict) else None
            return write_result(item.action, WriteStatus.APPLIED, "applied", read_back=state or None, attempts=attempts)
        value = self._value_micros(op, entry.get(op.representation))
        message = "applied"
        if value is not None and value != item.target_micros:
            message = f"applied, but Amazon now holds {value} micros instead of {item.target_micros}"
        return write_result(
            item.action,
            WriteStatus.APPLIED,
            message,
            read_back=str(value) if value is not None else None,
            attempts=attempts,
        )


def _parse_timestamp(value: Any) -> datetime | None:
    """Return an aware datetime from Amazon's ISO-8601 text (or epoch milliseconds), or None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value) / 1000.0, tz=ZoneInfo("UTC"))
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=ZoneInfo("UTC"))


def _usage_reading(item: Any, *, midnight: datetime, as_of: datetime) -> tuple[int, datetime] | None:
    """Turn one budget-usage `success` item into (spend micros, evaluated at), or None if it is not today's."""
    if not isinstance(item, dict) or item.get("campaignId") is None:
        return None
    read_at = _parse_timestamp(item.get("usageUpdatedTimestamp"))
    percent, budget = item.get("budgetUsagePercent"), item.get("budget")
    if read_at is None or percent is None or budget is None:
        return None
    if read_at < midnight:
        return None  # yesterday's final figure, read before Amazon reset the day
    try:
        spent = major_to_micros(float(percent) * float(budget) / 100.0)
    except (BidloopError, TypeError, ValueError):
        return None
    return max(spent, 0), min(read_at.astimezone(midnight.tzinfo), as_of)


def _day_fraction(moment: datetime, midnight: datetime) -> float:
    """Return the share of the day elapsed at `moment` (0..1)."""
    return min(max((moment - midnight).total_seconds() / 86_400, 0.0), 1.0)


def bid_multiplier_max(dynamic_bidding: Any) -> float | None:
    """Return the largest factor Amazon may apply to a keyword's bid in a campaign, or None if unknown.

    SP v3 campaigns carry `dynamicBidding = {strategy, placementBidding: [{placement, percentage}],
    shopperCohortBidding: [{percentage, ...}]}`. A placement adjustment raises the bid for that placement
    ("a 50% adjustment on a $1.00 bid would increase the bid to $1.50"); up-and-down dynamic bidding
    may then double it on top of search (x1.5 elsewhere); a shopper-cohort adjustment applies on top of
    both. The result is the maximum over placements of the product of those factors.
    """
    if not isinstance(dynamic_bidding, dict):
        return None
    strategy = str(dynamic_bidding.get("strategy") or "").upper()
    top_up, other_up = _DYNAMIC_UP.get(strategy, (1.0, 1.0))
    placements: dict[str, float] = {"PLACEMENT_TOP": 0.0, "PLACEMENT_REST_OF_SEARCH": 0.0}
    for adjustment in dynamic_bidding.get("placementBidding") or []:
        if isinstance(adjustment, dict) and adjustment.get("placement"):
            percentage = _percentage(adjustment.get("percentage"))
            placements[str(adjustment["placement"]).upper()] = percentage
    cohort = max(
        (
            _percentage(c.get("percentage"))
            for c in dynamic_bidding.get("shopperCohortBidding") or []
            if isinstance(c, dict)
        ),
        default=0.0,
    )
    best = max(
        (1.0 + pct / 100.0) * (top_up if placement == "PLACEMENT_TOP" else other_up)
        for placement, pct in placements.items()
    )
    return round(best * (1.0 + cohort / 100.0), 6)


def _percentage(value: Any) -> float:
    try:
        return max(float(value), 0.0)
    except (TypeError, ValueError):
        return 0.0

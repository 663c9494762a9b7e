"""Talk to Google Ads through the official `google-ads` SDK behind bidloop's `PlatformClient` protocol.

Reads are GAQL `search_stream` queries (one operation each, whatever the row count): the customer's
currency and time zone (checked against bidloop.yaml on every read), structure, bidding strategies and
daily performance of campaigns, ad groups, keywords and ads, portfolio strategies, and search terms.
Writes go through
`GoogleAdsService.Mutate`, which takes every supported operation type in one request, so a run sends
ceil(actions / 10,000) mutate requests (plus one GAQL lookup of campaign budgets when budgets change).
Each request has `partial_failure=True` (decoded per action), `validate_only` for dry runs,
`response_content_type=MUTABLE_RESOURCE` (the mutated value comes back as the read-back) and a timeout.

Units: `cost_micros` and all bids/budgets are micros already; `conversions_value` is a double in
currency units and is converted with `bidloop.core.money.major_to_micros`. Ids: keywords and ads are
`"{ad_group_id}~{criterion_or_ad_id}"` (Google's own composite), search terms are their text.
"""

from __future__ import annotations

import logging
import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from google.ads.googleads.client import GoogleAdsClient
from google.ads.googleads.v26.enums.types.response_content_type import ResponseContentTypeEnum
from google.ads.googleads.v26.errors.types.errors import GoogleAdsFailure
from google.ads.googleads.v26.services.types.google_ads_service import (
    MutateGoogleAdsRequest,
    MutateGoogleAdsResponse,
)
from google.auth import exceptions as auth_exceptions
from pydantic import BaseModel, ConfigDict, Field

from bidloop.core.actions import Action, AddKeyword, SetBid, SetBudget, SetTargetCpa, SetTargetRoas
from bidloop.core.clearance import Clearance, verify_clearance
from bidloop.core.decisions import WriteResult, WriteStatus
from bidloop.core.entities import (
    AccountInfo,
    BiddingStrategy,
    BudgetPeriod,
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
from bidloop.core.money import major_to_micros
from bidloop.core.settings import AccountConfig
from bidloop.core.snapshot import Snapshot
from bidloop.tools._retry import RetryPolicy, RetryStats, call_with_retries
from bidloop.tools.google_ads._channel import (
    API_VERSION,
    LocalServiceFactory,
    SdkServiceFactory,
    ServiceFactory,
    is_loopback_endpoint,
)
from bidloop.tools.google_ads._errors import (
    AuthProblem,
    auth_problem,
    classify,
    describe,
    error_code,
    is_retryable_error,
    request_id,
)
from bidloop.tools.google_ads._operations import (
    MANUAL_CPC_TYPES,
    MAX_OPERATIONS_PER_MUTATE,
    CustomPeriodBudget,
    PlannedOperation,
    StrategyContext,
    UnsupportedActionError,
    bidding_strategy_of,
    keyword_key,
    masked_value,
    plan_operation,
    read_back_text,
    result_resource_name,
    roas_to_bps,
    update_mask_paths,
)

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "PLATFORM",
    "AccessProblem",
    "AccessReport",
    "GoogleAdsPlatformClient",
]

PLATFORM = Platform.GOOGLE_ADS.value
DEFAULT_TIMEOUT_S = 60.0
"""Seconds allowed for each API call (a whole search stream, or one mutate request)."""
HISTORY_DAYS = 14
PER_OPERATION_RETRY_ROUNDS = 2
"""How many times operations that failed with a retryable error inside a partial failure are resent."""
_IN_LIST_CHUNK = 1_000
_LOCAL_TOKEN = "local-fake-server"  # not a secret: stands in for OAuth on a loopback fake
_CREDENTIAL_VARIABLES = (
    "GOOGLE_ADS_DEVELOPER_TOKEN, GOOGLE_ADS_CLIENT_ID, GOOGLE_ADS_CLIENT_SECRET, GOOGLE_ADS_REFRESH_TOKEN "
    "(and GOOGLE_ADS_LOGIN_CUSTOMER_ID for manager access), or a google-ads.yaml file at "
    "GOOGLE_ADS_CONFIGURATION_FILE_PATH or ~/google-ads.yaml"
)

log = logging.getLogger("bidloop.tools.google_ads")

_METRICS = "metrics.impressions, metrics.clicks, metrics.cost_micros, metrics.conversions, metrics.conversions_value"
_CAMPAIGN_FIELDS = (
    "campaign.id, campaign.name, campaign.status, campaign.bidding_strategy_type, campaign.bidding_strategy, "
    "campaign.target_roas.target_roas, campaign.target_cpa.target_cpa_micros, "
    "campaign.maximize_conversion_value.target_roas, campaign.maximize_conversions.target_cpa_micros, "
    "campaign.start_date_time, campaign.end_date_time, campaign_budget.id, campaign_budget.amount_micros, "
    "campaign_budget.period, campaign_budget.total_amount_micros"
)
"""What a campaign is read with: its strategy and target (v26 `Campaign` oneof `campaign_bidding_strategy`),
its flight, and its budget with the budget's period (`CUSTOM_PERIOD` budgets hold `total_amount_micros`)."""
_AD_GROUP_FIELDS = (
    "ad_group.id, ad_group.name, ad_group.status, ad_group.cpc_bid_micros, ad_group.target_roas, "
    "ad_group.target_cpa_micros, campaign.id, campaign.bidding_strategy_type, campaign.bidding_strategy"
)
_PORTFOLIO_FIELDS = (
    "bidding_strategy.id, bidding_strategy.name, bidding_strategy.status, bidding_strategy.type, "
    "bidding_strategy.target_roas.target_roas, bidding_strategy.target_cpa.target_cpa_micros, "
    "bidding_strategy.maximize_conversion_value.target_roas, bidding_strategy.maximize_conversions.target_cpa_micros"
)
_GOOGLE_DATE_TIME = "%Y-%m-%d %H:%M:%S"
"""`campaign.start_date_time` / `end_date_time`: "in the customer's time zone and in "yyyy-MM-dd HH:mm:ss"
format" (v26 `Campaign`)."""
_STATUS = {"ENABLED": Status.ENABLED, "PAUSED": Status.PAUSED, "REMOVED": Status.REMOVED}
_MATCH = {"EXACT": MatchType.EXACT, "PHRASE": MatchType.PHRASE, "BROAD": MatchType.BROAD}


class AccessProblem(BaseModel):
    """One thing wrong with the credentials or the access to one account."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    account_id: str | None = None
    """bidloop's account id, or None when the credentials as a whole are refused."""
    kind: str
    """`expired_token`, `missing_developer_token`, `developer_token_not_approved`, `no_access`,
    `customer_not_found`, `auth_failed`, `unreachable`, `currency_mismatch` or `time_zone_mismatch`."""
    message: str
    hint: str


class AccessReport(BaseModel):
    """What `bidloop accounts check` shows for Google Ads."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ok: bool
    visible_customer_ids: list[str] = Field(default_factory=list)
    """Customers the OAuth user can reach directly (`ListAccessibleCustomers`)."""
    accounts: list[AccountInfo] = Field(default_factory=list)
    """The configured accounts that answered, with their name, currency and time zone."""
    problems: list[AccessProblem] = Field(default_factory=list)


def _status(name: str) -> Status:
    # Unknown or unspecified statuses are treated as paused: bidloop never assumes something serves.
    return _STATUS.get(name, Status.PAUSED)


def _metrics_from_row(row: Any) -> Metrics:
    m = row.metrics
    return Metrics(
        impressions=int(m.impressions),
        clicks=int(m.clicks),
        cost_micros=int(m.cost_micros),
        conversions=max(0.0, float(m.conversions)),
        # conversions_value is in currency units (a double), not micros; adjustments can make it negative.
        conversion_value_micros=major_to_micros(max(0.0, float(m.conversions_value))),
    )


def _sum(metrics: Iterable[Metrics]) -> Metrics:
    total = Metrics()
    for item in metrics:
        total = total + item
    return total


def _uses_bids(strategy: BiddingStrategy | None) -> bool:
    return strategy is not None and strategy.uses_bids


def _portfolio_id(resource_name: str) -> str | None:
    """Return the id of `customers/{cid}/biddingStrategies/{id}`, or None for a standard strategy."""
    return resource_name.rsplit("/", 1)[-1] if resource_name else None


def _targets(type_name: str, holder: Any) -> dict[str, Any]:
    """Return the ROAS/CPA target that the strategy type reads from a Campaign or BiddingStrategy."""
    roas = 0.0
    cpa = 0
    if type_name == "TARGET_ROAS":
        roas = float(holder.target_roas.target_roas)
    elif type_name == "MAXIMIZE_CONVERSION_VALUE":
        roas = float(holder.maximize_conversion_value.target_roas)
    elif type_name == "TARGET_CPA":
        cpa = int(holder.target_cpa.target_cpa_micros)
    elif type_name == "MAXIMIZE_CONVERSIONS":
        cpa = int(holder.maximize_conversions.target_cpa_micros)
    return {
        "target_roas_bps": roas_to_bps(roas) if roas > 0 else None,
        "target_cpa_micros": cpa if cpa > 0 else None,
    }


def _ad_group_state(row: Any, platform_ref: dict[str, Any]) -> EntityState:
    """Build an ad group from an `_AD_GROUP_FIELDS` row: the campaign's strategy, its own overrides."""
    type_name = row.campaign.bidding_strategy_type.name
    strategy = bidding_strategy_of(type_name)
    group = row.ad_group
    roas = float(group.target_roas)
    return EntityState(
        ref=EntityRef(kind=EntityKind.AD_GROUP, entity_id=str(group.id), **platform_ref),
        name=group.name,
        parent_id=str(row.campaign.id),
        campaign_id=str(row.campaign.id),
        status=_status(group.status.name),
        bidding_strategy=strategy,
        bidding_strategy_id=_portfolio_id(row.campaign.bidding_strategy),
        # v26 AdGroup.cpc_bid_micros: "used when the ad group's effective bidding strategy is Manual CPC".
        cpc_bid_micros=(int(group.cpc_bid_micros) or None) if type_name in MANUAL_CPC_TYPES else None,
        # Overrides of the campaign's target (v26 AdGroup.target_roas / target_cpa_micros), where set.
        target_roas_bps=roas_to_bps(roas) if roas > 0 and strategy.uses_target_roas else None,
        target_cpa_micros=(int(group.target_cpa_micros) or None) if strategy.uses_target_cpa else None,
    )


def _parse_flight(text: str, zone: ZoneInfo) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.strptime(text, _GOOGLE_DATE_TIME).replace(tzinfo=zone)
    except ValueError:
        try:
            return datetime.combine(date.fromisoformat(text[:10]), datetime.min.time(), tzinfo=zone)
        except ValueError:
            return None


def _days_left(end: datetime, today: date) -> int:
    """Days left in a flight that ends on `end`'s day, today included (at least 1)."""
    return max(1, (end.date() - today).days + 1)


class _Window:
    """The days a snapshot covers, in the account's time zone."""

    def __init__(self, now_local: datetime) -> None:
        self.today = now_local.date()
        self.first_history_day = self.today - timedelta(days=HISTORY_DAYS)
        self.first_trailing_day = self.today - timedelta(days=7)

    def between(self, first: date) -> str:
        return f"segments.date BETWEEN '{first.isoformat()}' AND '{self.today.isoformat()}'"

    def fold(self, by_day: dict[date, Metrics], *, with_history: bool) -> dict[str, Any]:
        history = [by_day.get(self.today - timedelta(days=n), Metrics()) for n in range(HISTORY_DAYS, 0, -1)]
        return {
            "today": by_day.get(self.today, Metrics()),
            "trailing_7d": _sum(history[-7:]),
            "daily_history": history if with_history else [],
        }


class GoogleAdsPlatformClient:
    """A `PlatformClient` for Google Ads accounts, built on an injected `GoogleAdsClient`.

    Args:
        sdk_client: A configured `google.ads.googleads.client.GoogleAdsClient` (`use_proto_plus=True`).
        accounts: The Google Ads accounts this client serves (bidloop's `AccountConfig`s).
        timeout_s: Deadline of every API call, in seconds.
        retry_policy: Limits of the one retry layer (`bidloop.tools._retry`).
        sleep: Called with seconds to wait between retries (inject a recorder in tests).
        now: Returns the current time (aware); the day boundaries use each account's time zone.
        service_factory: Builds SDK services; default `SdkServiceFactory` (TLS, via `get_service`).
    """

    name = PLATFORM

    def __init__(
        self,
        sdk_client: GoogleAdsClient,
        accounts: Sequence[AccountConfig],
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        retry_policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] | None = None,
        service_factory: ServiceFactory | None = None,
    ) -> None:
        if timeout_s <= 0:
            raise ConfigError(f"timeout_s must be positive, got {timeout_s}", hint="use e.g. 60 seconds")
        if not getattr(sdk_client, "use_proto_plus", False):
            raise ConfigError(
                "the GoogleAdsClient must be built with use_proto_plus=True",
                hint="set `use_proto_plus: True` in google-ads.yaml or GOOGLE_ADS_USE_PROTO_PLUS=True",
            )
        self._accounts: dict[str, AccountConfig] = {}
        for account in accounts:
            if account.platform is not Platform.GOOGLE_ADS:
                raise ConfigError(
                    f"account {account.id!r} is a {account.platform.value} account, not a Google Ads one",
                    hint="build one client per platform",
                )
            customer_id = account.remote_id.replace("-", "")
            if not (customer_id.isdigit() and len(customer_id) == 10):
                raise ConfigError(
                    f"account {account.id!r}: Google Ads customer id {account.remote_id!r} is not 10 digits",
                    hint="set platform_account_id to the customer id shown in Google Ads, e.g. 1234567890",
                )
            self._accounts[account.id] = account
        self._services = service_factory or SdkServiceFactory(sdk_client)
        self._timeout_s = timeout_s
        self._policy = retry_policy or RetryPolicy()
        self._sleep = sleep
        self._now = now or (lambda: datetime.now(UTC))
        self.retry_stats = RetryStats()
        """Attempts, retries and reconciliations over this client's lifetime (for benchmarks)."""
        self._units: dict[str, int] = {}
        """Currency code -> `currency_constant.billable_unit_micros`, looked up once per client."""

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_account(
        cls,
        account: AccountConfig,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        retry_policy: RetryPolicy | None = None,
    ) -> GoogleAdsPlatformClient:
        """Build a client for one account from the SDK's usual credential places.

        Credentials come from the file named by `GOOGLE_ADS_CONFIGURATION_FILE_PATH`, else
        `~/google-ads.yaml`, else `GOOGLE_ADS_*` environment variables. When `account.endpoint` is on
        127.0.0.1 (a local fake server), no credentials are needed or sent: the client uses a
        placeholder token over a plaintext channel.

        Raises:
            PlatformAuthError: If no credentials are found, or Google refuses to refresh them.
            ConfigError: If the credentials file is malformed, or an endpoint is given that is not
                a Google host and not on the loopback interface.
        """
        if account.endpoint and is_loopback_endpoint(account.endpoint):
            from google.oauth2.credentials import Credentials

            sdk = GoogleAdsClient(
                credentials=Credentials(token=_LOCAL_TOKEN),
                developer_token=os.environ.get("GOOGLE_ADS_DEVELOPER_TOKEN") or _LOCAL_TOKEN,
                endpoint=account.endpoint,
                login_customer_id=account.login_customer_id,
                use_proto_plus=True,
                version=API_VERSION,
            )
            return cls(sdk, [account], timeout_s=timeout_s, retry_policy=retry_policy,
                       service_factory=LocalServiceFactory(sdk))  # fmt: skip
        config = _load_sdk_config(account)
        try:
            sdk = GoogleAdsClient.load_from_dict(config, version=API_VERSION)
        except auth_exceptions.RefreshError:
            raise PlatformAuthError(
                "Google refused to refresh the OAuth token (expired or revoked refresh token)",
                platform=PLATFORM,
                account_id=account.id,
                hint="create a new refresh token and update google-ads.yaml or GOOGLE_ADS_REFRESH_TOKEN",
            ) from None
        except auth_exceptions.GoogleAuthError as exc:
            raise PlatformAuthError(
                f"Google authentication failed while loading credentials ({type(exc).__name__})",
                platform=PLATFORM,
                account_id=account.id,
                retryable=isinstance(exc, auth_exceptions.TransportError),
                hint="check network access to accounts.google.com and the OAuth client id/secret",
            ) from None
        except ValueError as exc:
            # The SDK's ValueErrors name the missing or malformed key, never a value.
            raise ConfigError(f"Google Ads configuration is invalid: {exc}", hint=_CREDENTIAL_VARIABLES) from None
        if account.endpoint:
            sdk.endpoint = account.endpoint
        return cls(sdk, [account], timeout_s=timeout_s, retry_policy=retry_policy)

    # ------------------------------------------------------------------ protocol: accounts

    def _account(self, account_id: str) -> AccountConfig:
        try:
            return self._accounts[account_id]
        except KeyError:
            known = ", ".join(sorted(self._accounts)) or "(none)"
            raise UnknownAccountError(
                f"account {account_id!r} is not served by this Google Ads client",
                hint=f"use one of: {known}",
            ) from None

    @staticmethod
    def _customer_id(account: AccountConfig) -> str:
        return account.remote_id.replace("-", "")

    def check_access(self) -> AccessReport:
        """Verify the credentials and each configured account's access; never raises for access problems.

        Sends `CustomerService.ListAccessibleCustomers`, then one `customer` GAQL query per account
        (through its `login_customer_id`). Each failure becomes an `AccessProblem` with a hint.
        """
        problems: list[AccessProblem] = []
        visible: list[str] = []
        first_login = next((a.login_customer_id for a in self._accounts.values()), None)
        try:
            service = self._services.get("CustomerService", first_login)
            response = self._call(
                lambda: service.list_accessible_customers(request={}, timeout=self._timeout_s),
                account=None,
            )
            visible = [name.rsplit("/", 1)[-1] for name in response.resource_names]
        except BidloopError as exc:
            problems.append(_problem(None, exc))
            if isinstance(exc, PlatformAuthError):
                return AccessReport(ok=False, problems=problems)
        infos: list[AccountInfo] = []
        for account in self._accounts.values():
            try:
                rows = self._search(
                    account,
                    "SELECT customer.id, customer.descriptive_name, customer.currency_code, customer.time_zone "
                    "FROM customer LIMIT 1",
                )
            except BidloopError as exc:
                problems.append(_problem(account.id, exc))
                continue
            for row in rows:
                infos.append(
                    AccountInfo(
                        account_id=account.id,
                        platform=Platform.GOOGLE_ADS,
                        name=row.customer.descriptive_name or account.name or account.id,
                        currency=row.customer.currency_code or account.currency,
                        time_zone=row.customer.time_zone or account.time_zone,
                    )
                )
                if row.customer.currency_code and row.customer.currency_code != account.currency:
                    problems.append(
                        AccessProblem(
                            account_id=account.id,
                            kind="currency_mismatch",
                            message=f"Google Ads reports currency {row.customer.currency_code}, "
                            f"bidloop.yaml says {account.currency}",
                            hint="fix `currency` of this account in bidloop.yaml: all money is in the account currency",
                        )
                    )
                if row.customer.time_zone and row.customer.time_zone != account.time_zone:
                    problems.append(
                        AccessProblem(
                            account_id=account.id,
                            kind="time_zone_mismatch",
                            message=f"Google Ads reports time zone {row.customer.time_zone}, "
                            f"bidloop.yaml says {account.time_zone}",
                            hint="fix `time_zone` of this account in bidloop.yaml: days are cut in the account's zone",
                        )
                    )
        return AccessReport(ok=not problems, visible_customer_ids=visible, accounts=infos, problems=problems)

    def list_accounts(self) -> list[AccountInfo]:
        """Return the configured accounts these credentials can reach.

        Raises:
            PlatformAuthError: If the credentials are refused and no account answered.
        """
        report = self.check_access()
        if not report.accounts and report.problems:
            first = report.problems[0]
            raise PlatformAuthError(first.message, platform=PLATFORM, account_id=first.account_id, hint=first.hint)
        return report.accounts

    # ------------------------------------------------------------------ calls

    def _call(
        self,
        send: Callable[[], Any],
        *,
        account: AccountConfig | None,
        reconcile: Callable[[], Any] | None = None,
        stats: RetryStats | None = None,
    ) -> Any:
        """Send through the retry layer and turn the SDK's final exception into a bidloop error."""
        local = stats if stats is not None else RetryStats()
        try:
            return call_with_retries(
                send,
                classify=classify,
                platform=PLATFORM,
                policy=self._policy,
                reconcile=reconcile,
                sleep=self._sleep,
                stats=local,
            )
        except RateLimitedError as exc:
            exc.account_id = account.id if account else None
            raise
        except BidloopError:
            raise
        except Exception as exc:
            raise _platform_error(exc, account) from None
        finally:
            self.retry_stats.attempts += local.attempts
            self.retry_stats.retries += local.retries
            self.retry_stats.reconciled += local.reconciled

    def _search(self, account: AccountConfig, query: str) -> list[Any]:
        """Run one GAQL query with `search_stream` and return all rows (the whole stream is retried)."""
        service = self._services.get("GoogleAdsService", account.login_customer_id)
        customer_id = self._customer_id(account)

        def consume() -> list[Any]:
            stream = service.search_stream(customer_id=customer_id, query=query, timeout=self._timeout_s)
            return [row for batch in stream for row in batch.results]

        log.debug("google_ads search %s: %s", account.id, query)
        return self._call(consume, account=account)  # type: ignore[no-any-return]

    def _search_in(self, account: AccountConfig, template: str, values: Sequence[str]) -> list[Any]:
        """Run `template` (with one `{values}` slot for an IN list) over `values`, in chunks."""
        rows: list[Any] = []
        for start in range(0, len(values), _IN_LIST_CHUNK):
            chunk = values[start : start + _IN_LIST_CHUNK]
            rows.extend(self._search(account, template.format(values=", ".join(chunk))))
        return rows

    # ------------------------------------------------------------------ protocol: reads

    def read_snapshot(self, account_id: str) -> Snapshot:
        """Read structure and performance of one account: today so far, trailing 7 days, 14 days of history.

        Sends 10 GAQL `search_stream` queries: the customer's currency and time zone (compared with
        bidloop.yaml first), structure and daily metrics of campaigns, ad groups, keywords and ads, and
        search terms; plus one for the portfolio strategies the campaigns use (if any) and one per
        CUSTOM_PERIOD budget (its cost since the start).

        Each campaign, ad group and keyword carries the bidding strategy in force; a CPC bid only where
        that is manual CPC; targets where the strategy has one (a portfolio's on its `BIDDING_STRATEGY`
        entity). A CUSTOM_PERIOD budget is a lifetime budget over the campaign's flight.

        Raises:
            UnknownAccountError: If the account is not served by this client.
            PlatformAuthError: If the credentials are refused.
            RateLimitedError: If Google asks for a wait beyond the retry policy (e.g. the daily quota).
            PlatformError: If a query still fails after retries.
            AccountMismatchError: If the account's currency or time zone is not the configured one.
        """
        account = self._account(account_id)
        self._check_identity(account)
        zone = ZoneInfo(account.time_zone)
        now_local = self._now().astimezone(zone)
        window = _Window(now_local)
        history = window.between(window.first_history_day)
        kw_filter = "ad_group_criterion.status != 'REMOVED' AND ad_group_criterion.negative = FALSE"

        campaigns = self._search(account, f"SELECT {_CAMPAIGN_FIELDS} FROM campaign WHERE campaign.status != 'REMOVED'")
        campaign_perf = self._search(
            account, f"SELECT campaign.id, segments.date, {_METRICS} FROM campaign WHERE {history}"
        )
        ad_groups = self._search(
            account,
            f"SELECT {_AD_GROUP_FIELDS} FROM ad_group "
            "WHERE ad_group.status != 'REMOVED' AND campaign.status != 'REMOVED'",
        )
        ad_group_perf = self._search(
            account, f"SELECT ad_group.id, segments.date, {_METRICS} FROM ad_group WHERE {history}"
        )
        keywords = self._search(
            account,
            "SELECT ad_group_criterion.criterion_id, ad_group_criterion.keyword.text, "
            "ad_group_criterion.keyword.match_type, ad_group_criterion.status, ad_group_criterion.cpc_bid_micros, "
            f"ad_group.id, campaign.id FROM keyword_view WHERE {kw_filter} AND ad_group.status != 'REMOVED'",
        )
        keyword_perf = self._search(
            account,
            f"SELECT ad_group_criterion.criterion_id, ad_group.id, segments.date, {_METRICS} "
            f"FROM keyword_view WHERE {history}",
        )
        ads = self._search(
            account,
            "SELECT ad_group_ad.ad.id, ad_group_ad.ad.name, ad_group_ad.status, ad_group.id, campaign.id "
            "FROM ad_group_ad WHERE ad_group_ad.status != 'REMOVED' AND ad_group.status != 'REMOVED'",
        )
        ad_perf = self._search(
            account,
            f"SELECT ad_group_ad.ad.id, ad_group.id, segments.date, {_METRICS} FROM ad_group_ad WHERE {history}",
        )
        search_terms = self._search(
            account,
            f"SELECT search_term_view.search_term, ad_group.id, campaign.id, segments.date, {_METRICS} "
            f"FROM search_term_view WHERE {window.between(window.first_trailing_day)}",
        )

        def daily(rows: list[Any], key: Callable[[Any], str]) -> dict[str, dict[date, Metrics]]:
            out: dict[str, dict[date, Metrics]] = defaultdict(dict)
            for row in rows:
                day = date.fromisoformat(row.segments.date)
                by_day = out[key(row)]
                by_day[day] = by_day.get(day, Metrics()) + _metrics_from_row(row)
            return out

        platform_ref = {"platform": Platform.GOOGLE_ADS, "account_id": account.id}
        entities: list[EntityState] = []
        campaign_daily = daily(campaign_perf, lambda r: str(r.campaign.id))
        campaign_states = self._campaign_states(account, campaigns, now_local, platform_ref)
        campaign_states = [
            state.model_copy(update=window.fold(campaign_daily.get(state.ref.entity_id, {}), with_history=True))
            for state in campaign_states
        ]
        budget_by_id: dict[int, int] = {}
        for row, state in zip(campaigns, campaign_states, strict=True):
            if row.campaign_budget.id and state.status is Status.ENABLED:
                budget_by_id[row.campaign_budget.id] = state.daily_budget_micros or 0
        strategy_by_campaign = {c.ref.entity_id: c.bidding_strategy for c in campaign_states}
        customer_id = self._customer_id(account)
        entities.append(
            EntityState(
                ref=EntityRef(kind=EntityKind.ACCOUNT, entity_id=customer_id, **platform_ref),
                name=account.name or account.id,
                today=_sum(c.today for c in campaign_states),
                trailing_7d=_sum(c.trailing_7d for c in campaign_states),
            )
        )
        entities.extend(campaign_states)
        entities.extend(self._portfolio_states(account, campaign_states, platform_ref))

        ad_group_daily = daily(ad_group_perf, lambda r: str(r.ad_group.id))
        for row in ad_groups:
            state = _ad_group_state(row, platform_ref)
            entities.append(
                state.model_copy(update=window.fold(ad_group_daily.get(state.ref.entity_id, {}), with_history=False))
            )

        keyword_daily = daily(keyword_perf, lambda r: f"{r.ad_group.id}~{r.ad_group_criterion.criterion_id}")
        for row in keywords:
            kid = f"{row.ad_group.id}~{row.ad_group_criterion.criterion_id}"
            crit = row.ad_group_criterion
            strategy = strategy_by_campaign.get(str(row.campaign.id))
            entities.append(
                EntityState(
                    ref=EntityRef(kind=EntityKind.KEYWORD, entity_id=kid, **platform_ref),
                    name=crit.keyword.text,
                    text=crit.keyword.text,
                    match_type=_MATCH.get(crit.keyword.match_type.name),
                    parent_id=str(row.ad_group.id),
                    campaign_id=str(row.campaign.id),
                    status=_status(crit.status.name),
                    bidding_strategy=strategy,
                    cpc_bid_micros=(int(crit.cpc_bid_micros) or None) if _uses_bids(strategy) else None,
                    **window.fold(keyword_daily.get(kid, {}), with_history=False),
                )
            )

        ad_daily = daily(ad_perf, lambda r: f"{r.ad_group.id}~{r.ad_group_ad.ad.id}")
        for row in ads:
            aid = f"{row.ad_group.id}~{row.ad_group_ad.ad.id}"
            entities.append(
                EntityState(
                    ref=EntityRef(kind=EntityKind.CREATIVE, entity_id=aid, **platform_ref),
                    name=row.ad_group_ad.ad.name or f"ad {row.ad_group_ad.ad.id}",
                    parent_id=str(row.ad_group.id),
                    campaign_id=str(row.campaign.id),
                    status=_status(row.ad_group_ad.status.name),
                    **window.fold(ad_daily.get(aid, {}), with_history=True),
                )
            )

        entities.extend(self._search_term_states(search_terms, window, platform_ref))
        return Snapshot(
            account_id=account.id,
            platform=Platform.GOOGLE_ADS,
            currency=account.currency,
            time_zone=account.time_zone,
            as_of=now_local,
            expected_spend_fraction=_day_fraction(now_local),
            account_daily_budget_micros=sum(budget_by_id.values()),
            money_unit_micros=self._billable_unit_micros(account),
            entities=entities,
        )

    def _check_identity(self, account: AccountConfig) -> None:
        """Compare the account's currency and time zone with bidloop.yaml (one `customer` query).

        Raises:
            AccountMismatchError: If either differs; the message names both values.
        """
        rows = self._search(account, "SELECT customer.currency_code, customer.time_zone FROM customer LIMIT 1")
        for row in rows:
            reported_currency = row.customer.currency_code
            if reported_currency and reported_currency != account.currency:
                raise AccountMismatchError(
                    account.id, "currency", account.currency, reported_currency, platform=PLATFORM
                )
            reported_zone = row.customer.time_zone
            if reported_zone and reported_zone != account.time_zone:
                raise AccountMismatchError(account.id, "time_zone", account.time_zone, reported_zone, platform=PLATFORM)

    def _spent_since(self, account: AccountConfig, campaign_id: str, start: date, today: date) -> int:
        """Return a campaign's cost (micros) from `start` through `today` (one query)."""
        rows = self._search(
            account,
            f"SELECT campaign.id, metrics.cost_micros FROM campaign WHERE campaign.id = {int(campaign_id)} "
            f"AND segments.date BETWEEN '{start.isoformat()}' AND '{today.isoformat()}'",
        )
        return sum(int(row.metrics.cost_micros) for row in rows)

    def _campaign_states(
        self, account: AccountConfig, rows: list[Any], now_local: datetime, platform_ref: dict[str, Any]
    ) -> list[EntityState]:
        """Build campaigns from `_CAMPAIGN_FIELDS` rows: strategy, target, budget and its period.

        A CUSTOM_PERIOD ("total") budget becomes a lifetime budget over the campaign's flight: its
        `daily_budget_micros` is what remains (total minus cost since the start, one query each) over
        the days left, today included.
        """
        zone = ZoneInfo(account.time_zone)
        today = now_local.date()
        states = []
        for row in rows:
            cid = str(row.campaign.id)
            type_name = row.campaign.bidding_strategy_type.name
            portfolio = _portfolio_id(row.campaign.bidding_strategy)
            fields: dict[str, Any] = {
                "bidding_strategy": bidding_strategy_of(type_name),
                "bidding_strategy_id": portfolio,
                # A portfolio's target is on the BIDDING_STRATEGY entity, not on each campaign it serves.
                **(_targets(type_name, row.campaign) if portfolio is None else {}),
            }
            has_budget = bool(row.campaign_budget.id)
            if has_budget and row.campaign_budget.period.name == "CUSTOM_PERIOD":
                start = _parse_flight(row.campaign.start_date_time, zone)
                end = _parse_flight(row.campaign.end_date_time, zone)
                total = int(row.campaign_budget.total_amount_micros)
                spent = self._spent_since(account, cid, start.date(), today) if start is not None else 0
                remaining = max(0, total - spent)
                fields.update(
                    budget_period=BudgetPeriod.LIFETIME,
                    lifetime_budget_micros=total,
                    budget_remaining_micros=remaining,
                    flight_start=start,
                    flight_end=end,
                    daily_budget_micros=remaining // _days_left(end, today) if end is not None else None,
                )
                if end is not None and end.date() < today:
                    fields["delivery_blocked_by"] = "ENDED"
            elif has_budget:
                fields["daily_budget_micros"] = int(row.campaign_budget.amount_micros)
            states.append(
                EntityState(
                    ref=EntityRef(kind=EntityKind.CAMPAIGN, entity_id=cid, **platform_ref),
                    name=row.campaign.name,
                    campaign_id=cid,
                    status=_status(row.campaign.status.name),
                    **fields,
                )
            )
        return states

    def _portfolio_states(
        self, account: AccountConfig, campaigns: list[EntityState], platform_ref: dict[str, Any]
    ) -> list[EntityState]:
        """Read the portfolio strategies the campaigns use (one query, only if any does).

        Each is a `BIDDING_STRATEGY` entity with its target; its metrics are those of its campaigns.
        """
        serving: dict[str, list[EntityState]] = defaultdict(list)
        for campaign in campaigns:
            if campaign.bidding_strategy_id:
                serving[campaign.bidding_strategy_id].append(campaign)
        if not serving:
            return []
        rows = self._search_in(
            account,
            f"SELECT {_PORTFOLIO_FIELDS} FROM bidding_strategy WHERE bidding_strategy.id IN ({{values}})",
            sorted(i for i in serving if i.isdigit()),
        )
        states = []
        for row in rows:
            sid = str(row.bidding_strategy.id)
            type_name = row.bidding_strategy.type_.name
            members = serving.get(sid, [])
            states.append(
                EntityState(
                    ref=EntityRef(kind=EntityKind.BIDDING_STRATEGY, entity_id=sid, **platform_ref),
                    name=row.bidding_strategy.name or f"portfolio {sid}",
                    status=_status(row.bidding_strategy.status.name),
                    bidding_strategy=bidding_strategy_of(type_name),
                    bidding_strategy_id=sid,
                    **_targets(type_name, row.bidding_strategy),
                    today=_sum(c.today for c in members),
                    trailing_7d=_sum(c.trailing_7d for c in members),
                )
            )
        return states

    @staticmethod
    def _search_term_states(rows: list[Any], window: _Window, platform_ref: dict[str, Any]) -> list[EntityState]:
        """Fold search-term rows into one entity per term text, parented to the ad group with most clicks."""
        by_term: dict[str, dict[tuple[str, str], dict[date, Metrics]]] = defaultdict(lambda: defaultdict(dict))
        for row in rows:
            term = row.search_term_view.search_term
            if not term:
                continue
            by_day = by_term[term][(str(row.ad_group.id), str(row.campaign.id))]
            day = date.fromisoformat(row.segments.date)
            by_day[day] = by_day.get(day, Metrics()) + _metrics_from_row(row)
        states = []
        for term, by_group in by_term.items():
            folded = {group: window.fold(days, with_history=False) for group, days in by_group.items()}
            (ad_group_id, campaign_id) = max(
                folded,
                key=lambda g: (folded[g]["trailing_7d"].clicks + folded[g]["today"].clicks, g),
            )
            states.append(
                EntityState(
                    ref=EntityRef(kind=EntityKind.SEARCH_TERM, entity_id=term, **platform_ref),
                    name=term,
                    text=term,
                    parent_id=ad_group_id,
                    campaign_id=campaign_id,
                    today=_sum(f["today"] for f in folded.values()),
                    trailing_7d=_sum(f["trailing_7d"] for f in folded.values()),
                )
            )
        return states

    def read_back(self, account_id: str, refs: Sequence[EntityRef]) -> dict[str, EntityState]:
        """Read the current settings (status, budget, bid) of the given entities, keyed by `EntityRef.key`.

        Entities Google does not return (removed, or ids of another account) are absent from the result.

        Raises:
            UnknownAccountError: If the account is not served by this client.
            PlatformError: If a query fails after retries.
        """
        account = self._account(account_id)
        wanted: dict[EntityKind, list[EntityRef]] = defaultdict(list)
        for ref in refs:
            if ref.account_id == account.id and ref.platform is Platform.GOOGLE_ADS:
                wanted[ref.kind].append(ref)
        out: dict[str, EntityState] = {}
        platform_ref = {"platform": Platform.GOOGLE_ADS, "account_id": account.id}

        def numeric(ids: Iterable[str]) -> list[str]:
            return sorted({i for i in ids if i.isdigit()})

        now_local = self._now().astimezone(ZoneInfo(account.time_zone))
        campaign_ids = numeric(r.entity_id for r in wanted[EntityKind.CAMPAIGN])
        campaign_rows = self._search_in(
            account, f"SELECT {_CAMPAIGN_FIELDS} FROM campaign WHERE campaign.id IN ({{values}})", campaign_ids
        )
        for state in self._campaign_states(account, campaign_rows, now_local, platform_ref):
            out[state.ref.key] = state
        ad_group_ids = numeric(r.entity_id for r in wanted[EntityKind.AD_GROUP])
        for row in self._search_in(
            account, f"SELECT {_AD_GROUP_FIELDS} FROM ad_group WHERE ad_group.id IN ({{values}})", ad_group_ids
        ):
            state = _ad_group_state(row, platform_ref)
            out[state.ref.key] = state
        portfolio_ids = numeric(r.entity_id for r in wanted[EntityKind.BIDDING_STRATEGY])
        for row in self._search_in(
            account,
            f"SELECT {_PORTFOLIO_FIELDS} FROM bidding_strategy WHERE bidding_strategy.id IN ({{values}})",
            portfolio_ids,
        ):
            sid = str(row.bidding_strategy.id)
            type_name = row.bidding_strategy.type_.name
            state = EntityState(
                ref=EntityRef(kind=EntityKind.BIDDING_STRATEGY, entity_id=sid, **platform_ref),
                name=row.bidding_strategy.name or f"portfolio {sid}",
                status=_status(row.bidding_strategy.status.name),
                bidding_strategy=bidding_strategy_of(type_name),
                bidding_strategy_id=sid,
                **_targets(type_name, row.bidding_strategy),
            )
            out[state.ref.key] = state
        customer_id = self._customer_id(account)
        keyword_names = [
            f"'customers/{customer_id}/adGroupCriteria/{r.entity_id}'"
            for r in wanted[EntityKind.KEYWORD]
            if _is_pair(r.entity_id)
        ]
        for row in self._search_in(
            account,
            "SELECT ad_group_criterion.criterion_id, ad_group_criterion.keyword.text, "
            "ad_group_criterion.keyword.match_type, ad_group_criterion.status, ad_group_criterion.cpc_bid_micros, "
            "ad_group.id, campaign.id, campaign.bidding_strategy_type FROM ad_group_criterion "
            "WHERE ad_group_criterion.resource_name IN ({values})",
            keyword_names,
        ):
            crit = row.ad_group_criterion
            type_name = row.campaign.bidding_strategy_type.name
            state = EntityState(
                ref=EntityRef(
                    kind=EntityKind.KEYWORD, entity_id=f"{row.ad_group.id}~{crit.criterion_id}", **platform_ref
                ),
                name=crit.keyword.text,
                text=crit.keyword.text,
                match_type=_MATCH.get(crit.keyword.match_type.name),
                parent_id=str(row.ad_group.id),
                campaign_id=str(row.campaign.id),
                status=_status(crit.status.name),
                bidding_strategy=bidding_strategy_of(type_name),
                cpc_bid_micros=(int(crit.cpc_bid_micros) or None) if type_name in MANUAL_CPC_TYPES else None,
            )
            out[state.ref.key] = state
        ad_names = [
            f"'customers/{customer_id}/adGroupAds/{r.entity_id}'"
            for r in wanted[EntityKind.CREATIVE]
            if _is_pair(r.entity_id)
        ]
        for row in self._search_in(
            account,
            "SELECT ad_group_ad.ad.id, ad_group_ad.ad.name, ad_group_ad.status, ad_group.id, campaign.id "
            "FROM ad_group_ad WHERE ad_group_ad.resource_name IN ({values})",
            ad_names,
        ):
            state = EntityState(
                ref=EntityRef(
                    kind=EntityKind.CREATIVE, entity_id=f"{row.ad_group.id}~{row.ad_group_ad.ad.id}", **platform_ref
                ),
                name=row.ad_group_ad.ad.name or f"ad {row.ad_group_ad.ad.id}",
                parent_id=str(row.ad_group.id),
                campaign_id=str(row.campaign.id),
                status=_status(row.ad_group_ad.status.name),
            )
            out[state.ref.key] = state
        return out

    # ------------------------------------------------------------------ protocol: writes

    def apply(
        self, account_id: str, clearances: Sequence[Clearance], *, validate_only: bool = False
    ) -> list[WriteResult]:
        """Send cleared actions in as few `GoogleAdsService.Mutate` requests as possible (10,000 per request).

        Every clearance is verified before anything is sent. Actions that cannot be expressed on
        Google Ads (wrong entity kind, another account, a shared budget) fail alone, unsent. Each
        request uses `partial_failure=True`; operations that fail with a retryable error are resent
        (alone) up to twice. After an ambiguous failure (timeout, dropped connection) the targets are
        read back first and only operations that did not land are resent. A wait beyond the retry
        policy (daily quota, long throttle) returns `deferred` results instead of blocking.

        Returns:
            One `WriteResult` per clearance, in order: `applied` (with the value Google reports as
            `read_back`), `validated` (dry run), `failed`, or `deferred`.

        Raises:
            UnfilteredActionError: If any item is not a valid clearance (nothing is sent).
            UnknownAccountError: If the account is not served by this client.
        """
        actions = [verify_clearance(c) for c in clearances]
        account = self._account(account_id)
        results: dict[int, WriteResult] = {}
        planned: list[tuple[int, PlannedOperation]] = []

        budgets: dict[str, str] = {}
        shared: dict[str, str] = {}
        custom: dict[str, CustomPeriodBudget] = {}
        budget_campaigns = sorted(
            {
                a.entity.entity_id
                for a in actions
                if isinstance(a, SetBudget) and a.entity.kind is EntityKind.CAMPAIGN and a.entity.entity_id.isdigit()
            }
        )
        if budget_campaigns:
            try:
                budgets, shared, custom = self._budget_resources(account, budget_campaigns)
            except BidloopError as exc:
                for index, action in enumerate(actions):
                    if isinstance(action, SetBudget):
                        results[index] = _error_result(action, exc, "could not look up the campaign budget")

        strategies: StrategyContext | None = None
        if any(isinstance(a, SetBid | SetTargetRoas | SetTargetCpa | AddKeyword) for a in actions):
            try:
                strategies = self._strategy_context(account, actions)
            except BidloopError as exc:
                for index, action in enumerate(actions):
                    if isinstance(action, SetBid | SetTargetRoas | SetTargetCpa) and index not in results:
                        results[index] = _error_result(action, exc, "could not look up the bidding strategy")

        unit_micros = 0
        if any(_is_money(a) for a in actions):
            try:
                unit_micros = self._billable_unit_micros(account)
            except BidloopError as exc:
                for index, action in enumerate(actions):
                    if _is_money(action) and index not in results:
                        results[index] = _error_result(action, exc, "could not look up the currency's billable unit")

        customer_id = self._customer_id(account)
        for index, action in enumerate(actions):
            if index in results:
                continue
            if action.entity.platform is not Platform.GOOGLE_ADS or action.entity.account_id != account.id:
                results[index] = WriteResult(
                    action_id=action.action_id,
                    status=WriteStatus.FAILED,
                    message=f"action targets {action.entity.key}, not Google Ads account {account.id}",
                )
                continue
            if isinstance(action, SetBudget) and action.entity.entity_id in shared:
                results[index] = WriteResult(
                    action_id=action.action_id,
                    status=WriteStatus.FAILED,
                    message=f"campaign {action.entity.entity_id} uses shared budget {shared[action.entity.entity_id]};"
                    " changing it would change every campaign sharing it, so bidloop does not",
                )
                continue
            try:
                op = plan_operation(
                    action,
                    customer_id=customer_id,
                    unit_micros=unit_micros,
                    budget_resource_by_campaign=budgets,
                    strategies=strategies,
                    custom_period_budgets=custom,
                )
            except UnsupportedActionError as exc:
                results[index] = WriteResult(action_id=action.action_id, status=WriteStatus.FAILED, message=str(exc))
                continue
            planned.append((index, op))

        stop: BidloopError | None = None
        for start in range(0, len(planned), MAX_OPERATIONS_PER_MUTATE):
            chunk = planned[start : start + MAX_OPERATIONS_PER_MUTATE]
            if stop is not None:
                for index, op in chunk:
                    results[index] = _error_result(op.action, stop, "not sent")
                continue
            try:
                chunk_results = self._send_chunk(account, [op for _, op in chunk], validate_only=validate_only)
            except BidloopError as exc:
                if isinstance(exc, RateLimitedError | PlatformAuthError):
                    stop = exc  # the rest would meet the same wall: do not send it
                chunk_results = [_error_result(op.action, exc) for _, op in chunk]
            for (index, _), result in zip(chunk, chunk_results, strict=True):
                results[index] = result
        return [results[i] for i in range(len(actions))]

    def _budget_resources(
        self, account: AccountConfig, campaign_ids: list[str]
    ) -> tuple[dict[str, str], dict[str, str], dict[str, CustomPeriodBudget]]:
        """Return campaign id -> budget resource name, -> shared budget name, -> CUSTOM_PERIOD budget.

        A CUSTOM_PERIOD budget comes with its cost since the campaign's start (one more query each).
        """
        budgets: dict[str, str] = {}
        shared: dict[str, str] = {}
        custom: dict[str, CustomPeriodBudget] = {}
        rows = self._search_in(
            account,
            "SELECT campaign.id, campaign.start_date_time, campaign.end_date_time, campaign_budget.resource_name, "
            "campaign_budget.name, campaign_budget.explicitly_shared, campaign_budget.period "
            "FROM campaign WHERE campaign.id IN ({values})",
            campaign_ids,
        )
        zone = ZoneInfo(account.time_zone)
        today = self._now().astimezone(zone).date()
        for row in rows:
            if not row.campaign_budget.resource_name:
                continue
            cid = str(row.campaign.id)
            budgets[cid] = row.campaign_budget.resource_name
            if row.campaign_budget.explicitly_shared:
                shared[cid] = row.campaign_budget.name or row.campaign_budget.resource_name
            if row.campaign_budget.period.name == "CUSTOM_PERIOD":
                start = _parse_flight(row.campaign.start_date_time, zone)
                end = _parse_flight(row.campaign.end_date_time, zone)
                if start is None or end is None:
                    budgets.pop(cid)  # no flight to spread a total over: refused as "no campaign budget"
                    continue
                spent = self._spent_since(account, cid, start.date(), today)
                custom[cid] = CustomPeriodBudget(spent_micros=spent, days_left=_days_left(end, today))
        return budgets, shared, custom

    def _strategy_context(self, account: AccountConfig, actions: Sequence[Action]) -> StrategyContext:
        """Look up the strategies in force for the bid and target actions (up to three queries)."""
        campaign_ids: set[str] = set()
        ad_group_ids: set[str] = set()
        portfolio_ids: set[str] = set()
        for action in actions:
            if not isinstance(action, SetBid | SetTargetRoas | SetTargetCpa | AddKeyword):
                continue
            ref = action.entity
            head = ref.entity_id.partition("~")[0]
            if ref.kind is EntityKind.CAMPAIGN and ref.entity_id.isdigit():
                campaign_ids.add(ref.entity_id)
            elif ref.kind in (EntityKind.AD_GROUP, EntityKind.KEYWORD) and head.isdigit():
                ad_group_ids.add(head)
            elif ref.kind is EntityKind.BIDDING_STRATEGY and ref.entity_id.isdigit():
                portfolio_ids.add(ref.entity_id)
        types: dict[str, str] = {}
        portfolios: dict[str, str] = {}
        ad_group_campaigns: dict[str, str] = {}

        def note(campaign: Any) -> None:
            types[str(campaign.id)] = campaign.bidding_strategy_type.name
            portfolio = _portfolio_id(campaign.bidding_strategy)
            if portfolio:
                portfolios[str(campaign.id)] = portfolio

        for row in self._search_in(
            account,
            "SELECT ad_group.id, campaign.id, campaign.bidding_strategy_type, campaign.bidding_strategy "
            "FROM ad_group WHERE ad_group.id IN ({values})",
            sorted(ad_group_ids),
        ):
            ad_group_campaigns[str(row.ad_group.id)] = str(row.campaign.id)
            note(row.campaign)
        for row in self._search_in(
            account,
            "SELECT campaign.id, campaign.bidding_strategy_type, campaign.bidding_strategy "
            "FROM campaign WHERE campaign.id IN ({values})",
            sorted(campaign_ids),
        ):
            note(row.campaign)
        portfolio_types: dict[str, str] = {}
        for row in self._search_in(
            account,
            "SELECT bidding_strategy.id, bidding_strategy.type FROM bidding_strategy "
            "WHERE bidding_strategy.id IN ({values})",
            sorted(portfolio_ids),
        ):
            portfolio_types[str(row.bidding_strategy.id)] = row.bidding_strategy.type_.name
        return StrategyContext(types, portfolios, ad_group_campaigns, portfolio_types)

    def _billable_unit_micros(self, account: AccountConfig) -> int:
        """Return the account currency's `currency_constant.billable_unit_micros` (queried once, cached).

        Raises:
            PlatformError: If Google has no currency constant for the account currency.
        """
        code = account.currency
        if code not in self._units:
            rows = self._search(
                account,
                "SELECT currency_constant.code, currency_constant.billable_unit_micros FROM currency_constant "
                f"WHERE currency_constant.code = '{code}'",
            )
            units = [int(row.currency_constant.billable_unit_micros) for row in rows]
            if not units or units[0] <= 0:
                raise PlatformError(
                    f"Google Ads has no billable unit for currency {code}",
                    platform=PLATFORM,
                    account_id=account.id,
                    hint="check `currency` of this account in bidloop.yaml",
                )
            self._units[code] = units[0]
        return self._units[code]

    def _send_chunk(
        self, account: AccountConfig, ops: list[PlannedOperation], *, validate_only: bool
    ) -> list[WriteResult]:
        """Send up to 10,000 operations; resend only retryable per-operation failures; one result per op."""
        results: dict[int, WriteResult] = {}
        pending = list(range(len(ops)))
        attempts = dict.fromkeys(pending, 0)
        for round_number in range(PER_OPERATION_RETRY_ROUNDS + 1):
            if round_number:
                self._sleep(self._policy.initial_wait_s * 2 ** (round_number - 1))
            outcome = self._mutate(account, ops, pending, attempts, validate_only=validate_only)
            retry: list[int] = []
            for index, (result, retryable) in outcome.items():
                if result.status is WriteStatus.FAILED and retryable and round_number < PER_OPERATION_RETRY_ROUNDS:
                    retry.append(index)
                else:
                    results[index] = result
            if not retry:
                break
            self.retry_stats.retries += 1
            pending = sorted(retry)
        return [results[i] for i in range(len(ops))]

    def _mutate(
        self,
        account: AccountConfig,
        ops: list[PlannedOperation],
        indices: list[int],
        attempts: dict[int, int],
        *,
        validate_only: bool,
    ) -> dict[int, tuple[WriteResult, bool]]:
        """Send the operations at `indices` in one request (retried as a whole by the retry layer).

        Returns index -> (result, whether a failure is worth resending alone).
        """
        service = self._services.get("GoogleAdsService", account.login_customer_id)
        customer_id = self._customer_id(account)
        pending = list(indices)
        landed: dict[int, tuple[WriteResult, bool]] = {}

        def send() -> dict[int, tuple[WriteResult, bool]]:
            for index in pending:
                attempts[index] += 1
            request = MutateGoogleAdsRequest(
                customer_id=customer_id,
                mutate_operations=[ops[i].operation for i in pending],
                partial_failure=True,
                validate_only=validate_only,
                response_content_type=ResponseContentTypeEnum.ResponseContentType.MUTABLE_RESOURCE,
            )
            response = service.mutate(request=request, timeout=self._timeout_s)
            return self._decode(ops, pending, response, attempts, validate_only=validate_only)

        def reconcile() -> dict[int, tuple[WriteResult, bool]] | None:
            found = self._landed(account, [ops[i] for i in pending])
            for position, index in list(enumerate(pending)):
                value = found.get(position)
                if value is not None:
                    landed[index] = (
                        WriteResult(
                            action_id=ops[index].action.action_id,
                            status=WriteStatus.APPLIED,
                            message="confirmed by read-back after an ambiguous failure; not resent",
                            read_back=value,
                            attempts=attempts[index],
                        ),
                        False,
                    )
            pending[:] = [i for i in pending if i not in landed]
            log.info("google_ads %s: %d operation(s) had landed, %d to resend", account.id, len(landed), len(pending))
            return {} if not pending else None

        try:
            sent = self._call(send, account=account, reconcile=None if validate_only else reconcile)
        except BidloopError as exc:
            failed = {i: (_error_result(ops[i].action, exc, attempts=attempts[i]), False) for i in pending}
            return {**landed, **failed}
        return {**landed, **sent}

    def _decode(
        self,
        ops: list[PlannedOperation],
        sent: list[int],
        response: MutateGoogleAdsResponse,
        attempts: dict[int, int],
        *,
        validate_only: bool,
    ) -> dict[int, tuple[WriteResult, bool]]:
        """Turn one mutate response into per-operation results (partial failures decoded per index)."""
        errors: dict[int, list[tuple[str, str, str]]] = defaultdict(list)
        unplaced: list[tuple[str, str, str]] = []
        status = response.partial_failure_error
        rid = ""
        if status is not None and status.code != 0:
            for detail in status.details:
                failure = GoogleAdsFailure.deserialize(detail.value)
                rid = failure.request_id or rid
                for err in failure.errors:
                    category, name = error_code(err)
                    path = err.location.field_path_elements
                    entry = (category, name, err.message)
                    if path and path[0].field_name == "mutate_operations" and "index" in path[0]:
                        errors[int(path[0].index)].append(entry)
                    else:
                        unplaced.append(entry)
        partial_failed = status is not None and status.code != 0
        responses = list(response.mutate_operation_responses)
        out: dict[int, tuple[WriteResult, bool]] = {}
        for position, index in enumerate(sent):
            op = ops[index]
            result = responses[position] if position < len(responses) else None
            has_result = result is not None and bool(result_resource_name(result))
            op_errors = errors.get(position) or []
            if not op_errors and unplaced and (validate_only or not has_result):
                op_errors = unplaced
            if not op_errors and not validate_only and not has_result:
                reason = "partial failure without details" if partial_failed else "no result for this operation"
                op_errors = [("unknown", "NO_RESULT", f"Google Ads returned {reason}")]
            if op_errors:
                retryable = all(is_retryable_error((c, n)) for c, n, _ in op_errors)
                out[index] = (
                    WriteResult(
                        action_id=op.action.action_id,
                        status=WriteStatus.FAILED,
                        message="; ".join(f"{c}.{n}: {m}" for c, n, m in op_errors)
                        + (f" (request_id {rid})" if rid else ""),
                        retryable=retryable,
                        attempts=attempts[index],
                    ),
                    retryable,
                )
                continue
            if validate_only:
                out[index] = (
                    WriteResult(
                        action_id=op.action.action_id,
                        status=WriteStatus.VALIDATED,
                        message="Google Ads validated the operation (validate_only); nothing changed",
                        attempts=attempts[index],
                    ),
                    False,
                )
                continue
            value = read_back_text(op, result) if result is not None else None
            if value is not None and value != op.expected:
                out[index] = (
                    WriteResult(
                        action_id=op.action.action_id,
                        status=WriteStatus.FAILED,
                        message=f"Google Ads reports {value} after the write, expected {op.expected}",
                        read_back=value,
                        attempts=attempts[index],
                    ),
                    False,
                )
                continue
            out[index] = (
                WriteResult(
                    action_id=op.action.action_id,
                    status=WriteStatus.APPLIED,
                    message=f"set on {op.resource_name}",
                    read_back=value,
                    attempts=attempts[index],
                ),
                False,
            )
        return out

    def _landed(self, account: AccountConfig, ops: list[PlannedOperation]) -> dict[int, str]:
        """Read back the targets of `ops`; return position -> read-back text for those already at target."""
        found: dict[int, str] = {}
        current: dict[str, str] = {}
        by_kind: dict[str, list[str]] = defaultdict(list)
        creates_ad_group: set[str] = set()
        creates_campaign: set[str] = set()
        for op in ops:
            if op.is_create:
                parent_id = op.resource_name.rsplit("/", 1)[-1]
                (creates_campaign if "/campaigns/" in op.resource_name else creates_ad_group).add(parent_id)
            else:
                kind = op.resource_name.split("/")[2]
                by_kind[kind].append(f"'{op.resource_name}'")
        queries = {
            "campaignBudgets": (
                "SELECT campaign_budget.resource_name, campaign_budget.amount_micros, "
                "campaign_budget.total_amount_micros FROM campaign_budget "
                "WHERE campaign_budget.resource_name IN ({values})",
                "campaign_budget",
            ),
            "campaigns": (
                "SELECT campaign.resource_name, campaign.target_roas.target_roas, "
                "campaign.target_cpa.target_cpa_micros, campaign.maximize_conversion_value.target_roas, "
                "campaign.maximize_conversions.target_cpa_micros "
                "FROM campaign WHERE campaign.resource_name IN ({values})",
                "campaign",
            ),
            "biddingStrategies": (
                "SELECT bidding_strategy.resource_name, bidding_strategy.target_roas.target_roas, "
                "bidding_strategy.target_cpa.target_cpa_micros, "
                "bidding_strategy.maximize_conversion_value.target_roas, "
                "bidding_strategy.maximize_conversions.target_cpa_micros FROM bidding_strategy "
                "WHERE bidding_strategy.resource_name IN ({values})",
                "bidding_strategy",
            ),
            "adGroups": (
                "SELECT ad_group.resource_name, ad_group.cpc_bid_micros, ad_group.target_roas, "
                "ad_group.target_cpa_micros FROM ad_group WHERE ad_group.resource_name IN ({values})",
                "ad_group",
            ),
            "adGroupCriteria": (
                "SELECT ad_group_criterion.resource_name, ad_group_criterion.cpc_bid_micros FROM ad_group_criterion "
                "WHERE ad_group_criterion.resource_name IN ({values})",
                "ad_group_criterion",
            ),
            "adGroupAds": (
                "SELECT ad_group_ad.resource_name, ad_group_ad.status FROM ad_group_ad "
                "WHERE ad_group_ad.resource_name IN ({values})",
                "ad_group_ad",
            ),
        }
        resources: dict[str, Any] = {}
        for kind, names in by_kind.items():
            template, field = queries[kind]
            for row in self._search_in(account, template, sorted(set(names))):
                resource = getattr(row, field)
                resources[resource.resource_name] = resource
        for op in ops:
            found_resource = resources.get(op.resource_name)
            if op.is_create or found_resource is None:
                continue
            if "ad_group_ad_operation" in op.operation:
                current[op.resource_name] = found_resource.status.name.lower()
            else:
                current[op.resource_name] = masked_value(found_resource, update_mask_paths(op.operation))
        existing: set[tuple[str, str]] = set()
        for row in self._search_in(
            account,
            "SELECT ad_group.resource_name, ad_group_criterion.negative, ad_group_criterion.keyword.text, "
            "ad_group_criterion.keyword.match_type FROM ad_group_criterion "
            "WHERE ad_group_criterion.type = 'KEYWORD' AND ad_group_criterion.status != 'REMOVED' "
            "AND ad_group.id IN ({values})",
            sorted(creates_ad_group),
        ):
            crit = row.ad_group_criterion
            key = keyword_key(crit.negative, crit.keyword.match_type.name, crit.keyword.text)
            existing.add((row.ad_group.resource_name, key))
        for row in self._search_in(
            account,
            "SELECT campaign.resource_name, campaign_criterion.negative, campaign_criterion.keyword.text, "
            "campaign_criterion.keyword.match_type FROM campaign_criterion "
            "WHERE campaign_criterion.type = 'KEYWORD' AND campaign_criterion.status != 'REMOVED' "
            "AND campaign.id IN ({values})",
            sorted(creates_campaign),
        ):
            crit_c = row.campaign_criterion
            key = keyword_key(crit_c.negative, crit_c.keyword.match_type.name, crit_c.keyword.text)
            existing.add((row.campaign.resource_name, key))
        for position, op in enumerate(ops):
            if op.is_create:
                if (op.resource_name, op.expected) in existing:
                    found[position] = op.expected
            elif current.get(op.resource_name) == op.expected:
                found[position] = op.expected
        return found


def _is_money(action: Action) -> bool:
    return isinstance(action, SetBudget | SetBid | SetTargetCpa) or action.kind == "add_keyword"


def _is_pair(entity_id: str) -> bool:
    parent, sep, child = entity_id.partition("~")
    return bool(sep) and parent.isdigit() and child.isdigit()


def _day_fraction(now_local: datetime) -> float:
    midnight = now_local.replace(hour=0, minute=0, second=0, microsecond=0)
    return min(1.0, max(0.0, (now_local - midnight).total_seconds() / 86_400))


def _platform_error(exc: BaseException, account: AccountConfig | None) -> PlatformError:
    """Turn an SDK exception into bidloop's error: codes, messages and Google's request id, nothing else.

    The request id is logged and kept in the message ("used for debugging purposes", v26
    `GoogleAdsFailure.request_id`); no header or token is.
    """
    account_id = account.id if account else None
    rid = request_id(exc)
    if rid:
        log.warning("google_ads %s: call failed, request_id %s", account_id or "-", rid)
    problem: AuthProblem | None = auth_problem(exc)
    if problem is not None:
        message = f"Google Ads: {problem.message} [{problem.kind}]"
        return PlatformAuthError(message, platform=PLATFORM, account_id=account_id, hint=problem.hint)
    failure = classify(exc)
    return PlatformError(
        f"Google Ads call failed: {describe(exc)}",
        platform=PLATFORM,
        account_id=account_id,
        retryable=failure.retryable,
        hint="retry later" if failure.retryable else "the request was refused as sent; see the error codes",
    )


def _problem(account_id: str | None, exc: BidloopError) -> AccessProblem:
    kind = "unreachable"
    message = exc.message
    if isinstance(exc, PlatformAuthError) and message.endswith("]"):
        kind = message.rsplit("[", 1)[-1].rstrip("]")
    return AccessProblem(account_id=account_id, kind=kind, message=message, hint=exc.hint or "")


def _error_result(action: Action, exc: BidloopError, prefix: str = "", *, attempts: int = 1) -> WriteResult:
    text = f"{prefix}: {exc.message}" if prefix else exc.message
    if isinstance(exc, RateLimitedError):
        return WriteResult(
            action_id=action.action_id,
            status=WriteStatus.DEFERRED,
            message=text,
            retryable=True,
            retry_after_s=exc.retry_after_s,
            attempts=attempts,
        )
    retryable = isinstance(exc, PlatformError) and exc.retryable
    return WriteResult(
        action_id=action.action_id, status=WriteStatus.FAILED, message=text, retryable=retryable, attempts=attempts
    )


def _load_sdk_config(account: AccountConfig) -> dict[str, Any]:
    """Read the SDK configuration from google-ads.yaml or GOOGLE_ADS_* variables (never logged).

    Raises:
        PlatformAuthError: If neither holds a developer token and OAuth credentials.
        ConfigError: If the YAML file cannot be parsed.
    """
    path = Path(os.environ.get("GOOGLE_ADS_CONFIGURATION_FILE_PATH") or Path.home() / "google-ads.yaml")
    config: dict[str, Any] = {}
    if path.is_file():
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read Google Ads configuration {path} ({type(exc).__name__})") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path} must hold a mapping of Google Ads settings", hint=_CREDENTIAL_VARIABLES)
        config = dict(loaded)
    else:
        for key in (
            "developer_token",
            "client_id",
            "client_secret",
            "refresh_token",
            "json_key_file_path",
            "impersonated_email",
            "login_customer_id",
            "linked_customer_id",
            "use_application_default_credentials",
        ):
            value = os.environ.get(f"GOOGLE_ADS_{key.upper()}")
            if value:
                config[key] = value
    has_oauth = all(config.get(k) for k in ("client_id", "client_secret", "refresh_token"))
    has_service_account = bool(config.get("json_key_file_path"))
    has_adc = str(config.get("use_application_default_credentials", "")).lower() in ("true", "1", "yes")
    if not config.get("developer_token") or not (has_oauth or has_service_account or has_adc):
        missing = "developer token" if not config.get("developer_token") else "OAuth credentials"
        raise PlatformAuthError(
            f"no Google Ads credentials found for account {account.id!r} ({missing} missing)",
            platform=PLATFORM,
            account_id=account.id,
            hint=f"set {_CREDENTIAL_VARIABLES}",
        )
    config["use_proto_plus"] = True
    if account.login_customer_id:
        config["login_customer_id"] = account.login_customer_id
    return config

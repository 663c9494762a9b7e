"""Speak to the Meta Marketing API (facebook-business SDK) behind bidloop's `PlatformClient` protocol.

Reads the ad account (its currency and time zone must match bidloop.yaml), structure (campaigns,
ad sets, ads, with what their budget and bid fields mean: see `_levers`) and daily insights; writes
budgets of the holders (ad sets, or campaigns with a campaign budget; daily or lifetime), the lever
each bid strategy listens to (bid cap, cost cap, ROAS floor) and ad status, in Meta's currency units
(`_currency`), in Graph batch requests of at most 50 calls. A write Meta would ignore or refuse
(a bid under a strategy that sets bids itself, a budget on an ad set inside a campaign budget) is
answered `failed` and never sent. Every call has a timeout and goes through the one retry layer
(`bidloop.tools._retry`):
throttles wait at least what `X-Business-Use-Case-Usage` asks, long waits come back as `deferred`,
and after a timeout or dropped connection the client reads back before it sends again. The limit
of 4 budget changes per ad set per hour is enforced before sending.

The access token travels in the `Authorization` header, not the URL, so that no request log line
(urllib3 logs URLs at DEBUG) can carry it; crash reporting (`CrashReporter`) is never enabled.
"""

from __future__ import annotations

import logging
import math
import os
import time
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any, Literal
from zoneinfo import ZoneInfo

import requests
from facebook_business.adobjects.ad import Ad
from facebook_business.adobjects.adaccount import AdAccount
from facebook_business.adobjects.adset import AdSet
from facebook_business.adobjects.campaign import Campaign
from facebook_business.adobjects.user import User
from facebook_business.api import Cursor, FacebookAdsApi, FacebookResponse
from facebook_business.exceptions import FacebookError, FacebookRequestError
from facebook_business.session import FacebookSession
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from bidloop.core.actions import (
    Action,
    EnableCreative,
    PauseCreative,
    SetBid,
    SetBudget,
    SetTargetCpa,
    SetTargetRoas,
)
from bidloop.core.clearance import Clearance, verify_clearance
from bidloop.core.decisions import WriteResult, WriteStatus
from bidloop.core.entities import (
    AccountInfo,
    BiddingStrategy,
    BudgetPeriod,
    EntityKind,
    EntityRef,
    EntityState,
    Platform,
    Status,
)
from bidloop.core.errors import (
    AccountMismatchError,
    ConfigError,
    PlatformAuthError,
    PlatformError,
    RateLimitedError,
    UnknownAccountError,
)
from bidloop.core.metrics import Metrics
from bidloop.core.settings import AccountConfig
from bidloop.core.snapshot import Snapshot
from bidloop.tools._retry import RetryPolicy, RetryStats, call_with_retries
from bidloop.tools.meta._budget_rate import BudgetChangeTracker
from bidloop.tools.meta._currency import meta_units_to_micros, micros_to_meta_units
from bidloop.tools.meta._failures import (
    AUTH_ERROR_CODES,
    BUDGET_LOCK_S,
    ItemsPendingError,
    classify,
    describe_error,
    regain_access_s,
)
from bidloop.tools.meta._insights import INSIGHTS_FIELDS, InsightsRow, parse_row
from bidloop.tools.meta._levers import BudgetShape, Lever, describe, units

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "ENV_ACCESS_TOKEN",
    "ENV_APP_ID",
    "ENV_APP_SECRET",
    "META_BATCH_LIMIT",
    "AccessCheck",
    "MetaClient",
    "MetaCredentials",
    "build_session",
]

log = logging.getLogger("bidloop.tools.meta")

META_BATCH_LIMIT = 50
"""Most calls Meta accepts in one Graph batch request."""

DEFAULT_TIMEOUT_S = 30.0
"""Seconds every HTTP call may take (the SDK has no default timeout)."""

ENV_ACCESS_TOKEN = "META_ACCESS_TOKEN"
ENV_APP_ID = "META_APP_ID"
ENV_APP_SECRET = "META_APP_SECRET"

_HISTORY_DAYS = 14
_PAGE_SIZE = 500

_ACCOUNT_FIELDS = ("id", "currency", "timezone_name", "min_daily_budget")
_CAMPAIGN_FIELDS = (
    "id",
    "name",
    "status",
    "effective_status",
    "daily_budget",
    "lifetime_budget",
    "budget_remaining",
    "start_time",
    "stop_time",
    "bid_strategy",
)
_ADSET_FIELDS = (
    "id",
    "name",
    "campaign_id",
    "status",
    "effective_status",
    "daily_budget",
    "lifetime_budget",
    "budget_remaining",
    "daily_min_spend_target",
    "daily_spend_cap",
    "bid_amount",
    "bid_strategy",
    "bid_constraints",
    "start_time",
    "end_time",
)
_AD_FIELDS = ("id", "name", "adset_id", "campaign_id", "status", "effective_status")

_STATUS_FROM_META = {"ACTIVE": Status.ENABLED, "PAUSED": Status.PAUSED}
_STATUS_TO_META = {Status.ENABLED: "ACTIVE", Status.PAUSED: "PAUSED"}

_ObjectClass = type[AdSet] | type[Ad] | type[Campaign]


class MetaCredentials(BaseModel):
    """Meta credentials; secrets are `SecretStr` so they never show in a repr or a log.

    Attributes:
        access_token: A (long-lived or system-user) access token with ads_management / ads_read.
        app_id: The app's id (optional; needed only with `app_secret`).
        app_secret: The app's secret; when given, every call carries an `appsecret_proof`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    access_token: SecretStr
    app_id: str | None = None
    app_secret: SecretStr | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> MetaCredentials:
        """Read META_ACCESS_TOKEN (required), META_APP_ID and META_APP_SECRET from the environment.

        Raises:
            PlatformAuthError: If META_ACCESS_TOKEN is missing or empty (the hint names the variables).
        """
        source = os.environ if env is None else env
        token = source.get(ENV_ACCESS_TOKEN, "").strip()
        if not token:
            raise PlatformAuthError(
                f"no Meta access token: {ENV_ACCESS_TOKEN} is not set",
                platform="meta",
                hint=f"export {ENV_ACCESS_TOKEN}=<token with ads_management>; optionally {ENV_APP_ID} and "
                f"{ENV_APP_SECRET} to sign calls with appsecret_proof",
            )
        secret = source.get(ENV_APP_SECRET, "").strip()
        return cls(
            access_token=SecretStr(token),
            app_id=source.get(ENV_APP_ID, "").strip() or None,
            app_secret=SecretStr(secret) if secret else None,
        )


def _harden_session(session: FacebookSession, timeout_s: float) -> FacebookSession:
    """Move the token from the URL into the Authorization header and make sure a timeout is set."""
    token = session.requests.params.pop("access_token", None)
    if token:
        session.requests.headers["Authorization"] = f"OAuth {token}"
    if session.timeout is None:
        session.timeout = timeout_s
    return session


def build_session(
    credentials: MetaCredentials, *, endpoint: str | None = None, timeout_s: float = DEFAULT_TIMEOUT_S
) -> FacebookSession:
    """Build a `FacebookSession` with a timeout, the token in a header, and optionally a local endpoint.

    `endpoint` (e.g. `http://127.0.0.1:8765`) replaces `FacebookSession.GRAPH` on this session only,
    which is how `bidloop run` talks to the fake server; no process-wide state is changed.
    """
    secret = credentials.app_secret.get_secret_value() if credentials.app_secret else None
    session = FacebookSession(
        app_id=credentials.app_id,
        app_secret=secret,
        access_token=credentials.access_token.get_secret_value(),
        timeout=timeout_s,
    )
    if endpoint:
        session.GRAPH = endpoint.rstrip("/")
    return _harden_session(session, timeout_s)


class AccessCheck(BaseModel):
    """What `bidloop accounts check` reports for Meta.

    Attributes:
        ok: True when the token works and every configured account is visible.
        accounts: The ad accounts the token can see (bidloop's id where configured, else `act_...`).
        problem: What is wrong, in one sentence, when not ok.
        hint: What to do about it.
        error_code: Meta's error code, when Meta answered with one.
    """

    model_config = ConfigDict(extra="forbid")

    platform: Literal["meta"] = "meta"
    ok: bool
    accounts: list[AccountInfo] = Field(default_factory=list)
    problem: str | None = None
    hint: str | None = None
    error_code: int | None = None


@dataclass
class _Write:
    """One action turned into one Graph update call."""

    index: int
    action: Action
    object_class: _ObjectClass
    entity_id: str
    params: dict[str, Any]
    field: str
    target: str
    """The value the field must read back as, in Meta's units, as text."""
    is_budget: bool
    attempts: int = 0
    ambiguous: bool = False


def _remote_account_id(account: AccountConfig) -> str:
    remote = account.remote_id
    return remote if remote.startswith("act_") else f"act_{remote}"


def _field_text(field: str, raw: object) -> str:
    """Return a read field as the text a write targets (`bid_constraints` by its ROAS floor)."""
    if field == "bid_constraints":
        return str(raw.get("roas_average_floor")) if isinstance(raw, Mapping) else ""
    return str(raw)


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class MetaClient:
    """A `PlatformClient` for Meta ad accounts, built on the facebook-business SDK.

    Args:
        session: A `FacebookSession` (tests inject one pointed at the fake server). Its token is moved
            into the Authorization header and a timeout is set if it has none.
        accounts: The Meta accounts this client serves (bidloop ids map to `act_...` ids).
        timeout_s: Timeout of every HTTP call, used when the session has none.
        retry_policy: Limits of the retry layer; waits above `defer_above_s` become `deferred`.
        sleep: Injected in tests so nothing really sleeps.
        clock: Returns the current time (timezone-aware); used for "today" and pacing.
        monotonic: Seconds for the budget-change tracker (injectable to test the hourly limit).
        budget_tracker: Share one between clients of a process; default: a new one.
        batch_limit: Calls per Graph batch (at most 50).
    """

    name = "meta"

    def __init__(
        self,
        session: FacebookSession,
        accounts: Sequence[AccountConfig],
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        retry_policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        budget_tracker: BudgetChangeTracker | None = None,
        batch_limit: int = META_BATCH_LIMIT,
    ) -> None:
        if not 1 <= batch_limit <= META_BATCH_LIMIT:
            raise ConfigError(f"batch_limit must be 1..{META_BATCH_LIMIT}, got {batch_limit}")
        self._session = _harden_session(session, timeout_s)
        self._api = FacebookAdsApi(self._session)
        self._accounts: dict[str, AccountConfig] = {}
        for account in accounts:
            if account.platform is not Platform.META:
                raise ConfigError(
                    f"account {account.id!r} is on {account.platform.value}, not meta",
                    hint="give MetaClient only accounts with platform: meta",
                )
            self._accounts[account.id] = account
        self._policy = retry_policy or RetryPolicy()
        self._sleep = sleep
        self._clock = clock or (lambda: datetime.now(UTC))
        self._budget_tracker = budget_tracker or BudgetChangeTracker(monotonic)
        self._batch_limit = batch_limit
        self._levers: dict[tuple[str, str], Lever] = {}
        self._spent_today_micros: dict[tuple[str, str], int] = {}
        """Today's spend of each lifetime holder at the last snapshot: read-backs have no insights."""
        """What each object read so far means for writes (budget shape, strategy), by (account, id)."""
        self.stats = RetryStats()
        """Attempts, retries and read-back reconciliations of every call this client made."""

    @classmethod
    def from_account(
        cls,
        account: AccountConfig,
        *,
        env: Mapping[str, str] | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        **kwargs: Any,
    ) -> MetaClient:
        """Build a client for one account from META_* environment variables.

        `account.endpoint` (a fake server's address) replaces graph.facebook.com for this client.

        Raises:
            PlatformAuthError: If META_ACCESS_TOKEN is missing (the hint names the variables).
            ConfigError: If the account is not a Meta account.
        """
        if account.platform is not Platform.META:
            raise ConfigError(f"account {account.id!r} is on {account.platform.value}, not meta")
        try:
            credentials = MetaCredentials.from_env(env)
        except PlatformAuthError as exc:
            raise PlatformAuthError(exc.message, platform="meta", account_id=account.id, hint=exc.hint) from None
        session = build_session(credentials, endpoint=account.endpoint, timeout_s=timeout_s)
        return cls(session, [account], timeout_s=timeout_s, **kwargs)

    # ------------------------------------------------------------------ helpers

    def _account(self, account_id: str) -> AccountConfig:
        try:
            return self._accounts[account_id]
        except KeyError:
            known = ", ".join(self._accounts) or "(none)"
            raise UnknownAccountError(
                f"no Meta account {account_id!r} is configured for this client", hint=f"use one of: {known}"
            ) from None

    def _call(self, send: Callable[[], Any], *, account_id: str | None = None) -> Any:
        """Send one read with retries; turn the SDK's failure into a `PlatformError` without secrets."""
        try:
            return call_with_retries(
                send, classify=classify, platform="meta", policy=self._policy, sleep=self._sleep, stats=self.stats
            )
        except RateLimitedError as exc:
            raise RateLimitedError(
                exc.message, platform="meta", retry_after_s=exc.retry_after_s, account_id=account_id
            ) from None
        except (FacebookError, requests.RequestException) as exc:
            message, hint = describe_error(exc)
            failure = classify(exc)
            error_class = (
                PlatformAuthError
                if isinstance(exc, FacebookRequestError) and exc.api_error_code() in AUTH_ERROR_CODES
                else PlatformError
            )
            raise error_class(
                message, platform="meta", account_id=account_id, retryable=failure.retryable, hint=hint
            ) from None

    def _read_edge(self, make_cursor: Callable[[], Cursor], *, account_id: str | None) -> list[dict[str, Any]]:
        """Read every page of an edge, retrying each page on its own (a cursor keeps its place)."""
        cursor: Cursor = self._call(make_cursor, account_id=account_id)
        items: list[dict[str, Any]] = []
        while True:
            while len(cursor):
                items.append(next(cursor).export_all_data())
            if not self._call(cursor.load_next_page, account_id=account_id):
                return items

    def _local_now(self, account: AccountConfig) -> datetime:
        return self._clock().astimezone(ZoneInfo(account.time_zone))

    def _mismatch(self, account: AccountConfig, currency: object, time_zone: object) -> AccountMismatchError | None:
        """Return the first difference between bidloop.yaml and what Meta reports for the account."""
        if currency and str(currency).upper() != account.currency.upper():
            return AccountMismatchError(account.id, "currency", account.currency, str(currency), platform="meta")
        if time_zone and str(time_zone) != account.time_zone:
            return AccountMismatchError(account.id, "time_zone", account.time_zone, str(time_zone), platform="meta")
        return None

    def _read_account(self, account: AccountConfig) -> dict[str, Any]:
        """Read the ad account's currency, time zone and minimum daily budget; stop on a mismatch.

        Raises:
            AccountMismatchError: If bidloop.yaml's currency or time zone differs from Meta's (both named).
            PlatformError: If the call fails after retries.
        """
        remote = AdAccount(_remote_account_id(account), api=self._api)
        raw = self._call(lambda: remote.api_get(fields=list(_ACCOUNT_FIELDS)), account_id=account.id)
        data: dict[str, Any] = raw.export_all_data() if hasattr(raw, "export_all_data") else dict(raw)
        mismatch = self._mismatch(account, data.get("currency"), data.get("timezone_name"))
        if mismatch is not None:
            raise mismatch
        return data

    def _remember(self, account: AccountConfig, entity_id: str, lever: Lever) -> None:
        self._levers[(account.id, entity_id)] = lever

    def _from_day_start(
        self, account: AccountConfig, entity: EntityState, spent_today_micros: int | None = None
    ) -> EntityState:
        """Read a lifetime budget's daily rate from what remained when the day began.

        `budget_remaining` falls as today spends, so remaining / days left would drift between two reads
        with no write in between (and a rollback would see a change nobody made). What remained at the
        day's start (remaining + today's spend) over the days left, today included, holds still all day,
        and a write of `spent before today + new rate x days left` changes it by exactly the action's step.
        """
        lever = self._levers.get((account.id, entity.ref.entity_id))
        if (
            entity.budget_period is not BudgetPeriod.LIFETIME
            or lever is None
            or lever.shape is None
            or lever.shape.field != "lifetime_budget"
        ):
            return entity
        shape = lever.shape
        key = (account.id, entity.ref.entity_id)
        if spent_today_micros is None:
            spent_today_micros = entity.today.cost_micros
            self._spent_today_micros[key] = spent_today_micros
        spent_today_units = min(micros_to_meta_units(spent_today_micros, account.currency), shape.spent_units)
        spent_before_today = shape.spent_units - spent_today_units
        lifetime_units = micros_to_meta_units(entity.lifetime_budget_micros or 0, account.currency)
        left_at_day_start = meta_units_to_micros(max(0, lifetime_units - spent_before_today), account.currency)
        self._remember(
            account, entity.ref.entity_id, replace(lever, shape=replace(shape, spent_units=spent_before_today))
        )
        return entity.model_copy(update={"daily_budget_micros": left_at_day_start // shape.days_left})

    # ------------------------------------------------------------------ reads

    def list_accounts(self) -> list[AccountInfo]:
        """Return the ad accounts the token can see (bidloop's id where the account is configured).

        Raises:
            PlatformAuthError: If the token is expired, invalid or lacks permission.
            PlatformError: If the call fails after retries.
        """
        rows = self._read_edge(
            lambda: User(fbid="me", api=self._api).get_ad_accounts(
                fields=["account_id", "name", "currency", "timezone_name"], params={"limit": _PAGE_SIZE}
            ),
            account_id=None,
        )
        by_remote = {_remote_account_id(a): a for a in self._accounts.values()}
        infos = []
        for row in rows:
            remote = str(row.get("id") or f"act_{row.get('account_id')}")
            configured = by_remote.get(remote)
            infos.append(
                AccountInfo(
                    account_id=configured.id if configured else remote,
                    platform=Platform.META,
                    name=str(row.get("name") or remote),
                    currency=str(row.get("currency") or "USD"),
                    time_zone=str(row.get("timezone_name") or "UTC"),
                )
            )
        return infos

    def check_access(self) -> AccessCheck:
        """Verify the token and that every configured account is visible; never raises for platform errors."""
        try:
            infos = self.list_accounts()
        except PlatformError as exc:
            code = None
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, FacebookRequestError):
                code = cause.api_error_code()
            return AccessCheck(ok=False, problem=exc.message, hint=exc.hint, error_code=code)
        visible = {info.account_id: info for info in infos}
        missing = [a for a in self._accounts.values() if a.id not in visible]
        if missing:
            names = ", ".join(f"{a.id} ({_remote_account_id(a)})" for a in missing)
            return AccessCheck(
                ok=False,
                accounts=infos,
                problem=f"the token cannot see these configured ad accounts: {names}",
                hint="check platform_account_id in bidloop.yaml, and give the token's user or system user "
                "access to the ad account in Business Manager",
            )
        for account in self._accounts.values():
            info = visible[account.id]
            mismatch = self._mismatch(account, info.currency, info.time_zone)
            if mismatch is not None:
                return AccessCheck(ok=False, accounts=infos, problem=mismatch.message, hint=mismatch.hint)
        return AccessCheck(ok=True, accounts=infos)

    def read_snapshot(self, account_id: str) -> Snapshot:
        """Read campaigns, ad sets and ads with today's and the trailing 7 days' metrics (account time zone).

        The ad account's currency and time zone are read first and must match bidloop.yaml. Budget
        holders are CBO campaigns and ad sets with their own budget; a lifetime budget is read as what
        remains over the days left in its flight. `bid_amount` is read as the lever the bid strategy
        makes of it (a bid cap, a cost cap) and left out where Meta ignores it. Objects whose own status
        is active but whose `effective_status` is not carry it in `delivery_blocked_by` and do not count
        in `account_daily_budget_micros`. Insights are read at the ad set and ad levels with daily rows
        for 14 days plus today; campaigns sum their ad sets.

        Raises:
            UnknownAccountError: If the account is not configured for this client.
            AccountMismatchError: If the account's currency or time zone differs from bidloop.yaml's.
            PlatformError: If a call fails after retries (PlatformAuthError for token problems).
        """
        account = self._account(account_id)
        account_data = self._read_account(account)
        min_daily = units(account_data.get("min_daily_budget"))
        remote = AdAccount(_remote_account_id(account), api=self._api)
        page = {"limit": _PAGE_SIZE}
        campaigns = self._read_edge(
            lambda: remote.get_campaigns(fields=list(_CAMPAIGN_FIELDS), params=page), account_id=account_id
        )
        adsets = self._read_edge(
            lambda: remote.get_ad_sets(fields=list(_ADSET_FIELDS), params=page), account_id=account_id
        )
        ads = self._read_edge(lambda: remote.get_ads(fields=list(_AD_FIELDS), params=page), account_id=account_id)

        now = self._local_now(account)
        today = now.date()
        first_day = today - timedelta(days=_HISTORY_DAYS)
        rows: dict[str, dict[str, dict[date, Metrics]]] = {}
        for level in ("adset", "ad"):
            params = {
                "level": level,
                "time_range": {"since": first_day.isoformat(), "until": today.isoformat()},
                "time_increment": 1,
                "limit": _PAGE_SIZE,
            }
            raw_rows = self._read_edge(
                partial(remote.get_insights, fields=list(INSIGHTS_FIELDS), params=params), account_id=account_id
            )
            by_entity: dict[str, dict[date, Metrics]] = defaultdict(dict)
            for raw in raw_rows:
                row: InsightsRow = parse_row(raw, level)
                previous = by_entity[row.entity_id].get(row.day)
                by_entity[row.entity_id][row.day] = row.metrics if previous is None else previous + row.metrics
            rows[level] = by_entity

        campaign_days: dict[str, dict[date, Metrics]] = defaultdict(dict)
        for adset in adsets:
            campaign_id = str(adset.get("campaign_id"))
            for day, metrics in rows["adset"].get(str(adset["id"]), {}).items():
                previous = campaign_days[campaign_id].get(day)
                campaign_days[campaign_id][day] = metrics if previous is None else previous + metrics

        def windows(days: Mapping[date, Metrics]) -> dict[str, Any]:
            history = [days.get(first_day + timedelta(days=i), Metrics()) for i in range(_HISTORY_DAYS)]
            trailing = Metrics()
            for metrics in history[-7:]:
                trailing = trailing + metrics
            return {"today": days.get(today, Metrics()), "trailing_7d": trailing, "daily_history": history}

        def ref(kind: EntityKind, entity_id: object) -> EntityRef:
            return EntityRef(platform=Platform.META, account_id=account.id, kind=kind, entity_id=str(entity_id))

        campaigns_by_id = {str(c["id"]): c for c in campaigns}
        adset_entities: list[EntityState] = []
        strategies: dict[str, set[BiddingStrategy]] = defaultdict(set)
        for adset in adsets:
            campaign_id = str(adset.get("campaign_id"))
            fields, lever = describe(
                EntityKind.AD_GROUP,
                adset,
                currency=account.currency,
                now=now,
                campaign=campaigns_by_id.get(campaign_id),
                min_daily_budget_units=min_daily,
            )
            self._remember(account, str(adset["id"]), lever)
            if lever.strategy is not None:
                strategies[campaign_id].add(lever.strategy)
            adset_entities.append(
                self._from_day_start(
                    account,
                    EntityState(
                        ref=ref(EntityKind.AD_GROUP, adset["id"]),
                        name=str(adset.get("name") or adset["id"]),
                        parent_id=campaign_id,
                        campaign_id=campaign_id,
                        **fields,
                        **windows(rows["adset"].get(str(adset["id"]), {})),
                    ),
                )
            )
        entities: list[EntityState] = []
        for campaign in campaigns:
            campaign_id = str(campaign["id"])
            fields, lever = describe(
                EntityKind.CAMPAIGN,
                campaign,
                currency=account.currency,
                now=now,
                child_strategies=strategies.get(campaign_id),
                min_daily_budget_units=min_daily,
            )
            self._remember(account, campaign_id, lever)
            entities.append(
                self._from_day_start(
                    account,
                    EntityState(
                        ref=ref(EntityKind.CAMPAIGN, campaign_id),
                        name=str(campaign.get("name") or campaign_id),
                        campaign_id=campaign_id,
                        **fields,
                        **windows(campaign_days.get(campaign_id, {})),
                    ),
                )
            )
        entities.extend(adset_entities)
        for ad in ads:
            fields, lever = describe(EntityKind.CREATIVE, ad, currency=account.currency, now=now)
            self._remember(account, str(ad["id"]), lever)
            entities.append(
                EntityState(
                    ref=ref(EntityKind.CREATIVE, ad["id"]),
                    name=str(ad.get("name") or ad["id"]),
                    parent_id=str(ad.get("adset_id")),
                    campaign_id=str(ad.get("campaign_id")),
                    **fields,
                    **windows(rows["ad"].get(str(ad["id"]), {})),
                )
            )
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        fraction = min(1.0, max(0.0, (now - midnight).total_seconds() / 86400))
        account_budget = sum(
            e.daily_budget_micros for e in entities if e.daily_budget_micros is not None and e.is_delivering
        )
        log.debug("meta snapshot of %s: %d entities", account.id, len(entities))
        return Snapshot(
            account_id=account.id,
            platform=Platform.META,
            currency=account.currency,
            time_zone=account.time_zone,
            as_of=now,
            expected_spend_fraction=fraction,
            account_daily_budget_micros=account_budget,
            money_unit_micros=meta_units_to_micros(1, account.currency),
            entities=entities,
        )

    def _fetch_chunk(self, chunk: Sequence[tuple[_ObjectClass, str, Sequence[str]]]) -> dict[str, dict[str, Any]]:
        """Read up to 50 objects in one batch request, once (no retries); unknown ids are left out.

        Raises:
            ItemsPendingError: If Meta answered some calls with no response (ambiguous: read again).
            FacebookRequestError: If the batch request itself failed.
        """
        batch = self._api.new_batch()
        answers: dict[str, dict[str, Any]] = {}
        for object_class, entity_id, fields in chunk:

            def keep(resp: FacebookResponse, entity_id: str = entity_id) -> None:
                body = resp.json()
                if isinstance(body, dict):
                    answers[entity_id] = body

            # A per-object error (an unknown or deleted id) leaves that object out of the answer.
            object_class(entity_id, api=self._api).api_get(
                fields=list(fields), batch=batch, success=keep, failure=lambda resp: None
            )
        leftover = batch.execute()
        if leftover is not None and len(leftover):
            raise ItemsPendingError(len(leftover), wait_hint_s=None, ambiguous=True)
        return answers

    def _get_objects(
        self, account_id: str, wanted: Sequence[tuple[_ObjectClass, str, Sequence[str]]]
    ) -> dict[str, dict[str, Any]]:
        """Read objects by id in batches of up to 50 GETs, each batch with retries.

        Raises:
            PlatformError: If a batch fails after retries.
        """
        found: dict[str, dict[str, Any]] = {}
        for chunk in _chunks(wanted, self._batch_limit):
            found.update(self._call(partial(self._fetch_chunk, chunk), account_id=account_id))
        return found

    def read_back(self, account_id: str, refs: Sequence[EntityRef]) -> dict[str, EntityState]:
        """Read the current settings (status, budget, strategy and its lever) of the given entities.

        Keyed by `EntityRef.key`; values are read as `read_snapshot` reads them (ad sets with their
        campaign, so a campaign budget's strategy applies). Entities Meta does not return (unknown or
        deleted ids) are missing from the result.

        Raises:
            UnknownAccountError: If the account is not configured for this client.
            PlatformError: If a call fails after retries.
        """
        account = self._account(account_id)
        classes: dict[EntityKind, tuple[_ObjectClass, tuple[str, ...]]] = {
            EntityKind.CAMPAIGN: (Campaign, _CAMPAIGN_FIELDS),
            EntityKind.AD_GROUP: (AdSet, _ADSET_FIELDS),
            EntityKind.CREATIVE: (Ad, _AD_FIELDS),
        }
        wanted = [r for r in refs if r.kind in classes]
        raw = self._get_objects(account_id, [(classes[r.kind][0], r.entity_id, classes[r.kind][1]) for r in wanted])
        campaign_ids = sorted(
            {
                str(data["campaign_id"])
                for r in wanted
                if r.kind is EntityKind.AD_GROUP
                and (data := raw.get(r.entity_id)) is not None
                and data.get("campaign_id")
                and str(data["campaign_id"]) not in raw
            }
        )
        campaigns = self._get_objects(account_id, [(Campaign, c, _CAMPAIGN_FIELDS) for c in campaign_ids])
        campaigns.update({k: v for k, v in raw.items() if k not in campaigns})
        now = self._local_now(account)
        states: dict[str, EntityState] = {}
        for entity in wanted:
            data = raw.get(entity.entity_id)
            if data is None:
                continue
            campaign_id = str(data.get("campaign_id") or data.get("id"))
            fields, lever = describe(
                entity.kind,
                data,
                currency=account.currency,
                now=now,
                campaign=campaigns.get(campaign_id) if entity.kind is EntityKind.AD_GROUP else None,
            )
            self._remember(account, entity.entity_id, lever)
            parent = data.get("campaign_id") if entity.kind is EntityKind.AD_GROUP else data.get("adset_id")
            states[entity.key] = self._from_day_start(
                account,
                EntityState(
                    ref=entity,
                    name=str(data.get("name") or entity.entity_id),
                    parent_id=str(parent) if parent and entity.kind is not EntityKind.CAMPAIGN else None,
                    campaign_id=campaign_id,
                    **fields,
                ),
                self._spent_today_micros.get((account.id, entity.entity_id), 0),
            )
        return states

    # ------------------------------------------------------------------ writes

    def _plan(self, account: AccountConfig, index: int, action: Action) -> _Write | WriteResult:
        """Turn an action into one Graph update, or a `failed` result (nothing sent) when Meta would not act on it."""

        def failed(message: str) -> WriteResult:
            return WriteResult(action_id=action.action_id, status=WriteStatus.FAILED, message=message, attempts=0)

        entity = action.entity
        if entity.platform is not Platform.META or entity.account_id != account.id:
            return failed(f"action targets {entity.key}, not Meta account {account.id}")
        lever = self._levers.get((account.id, entity.entity_id))
        currency = account.currency
        if isinstance(action, SetBudget) and entity.kind in (EntityKind.AD_GROUP, EntityKind.CAMPAIGN):
            if lever is not None and lever.budget_holder_id is not None:
                return failed(
                    f"not sent: ad set {entity.entity_id} has no budget of its own; campaign "
                    f"{lever.budget_holder_id} holds it (Advantage campaign budget): change the campaign's budget"
                )
            if lever is not None and lever.shape is None:
                return failed(f"not sent: {entity.kind.value} {entity.entity_id} holds no budget on Meta")
            shape = lever.shape if lever is not None and lever.shape is not None else BudgetShape("daily_budget")
            added = micros_to_meta_units(action.new_daily_budget_micros * shape.days_left, currency)
            if added <= 0:
                return failed(f"budget {action.new_daily_budget_micros} micros rounds to 0 {currency}")
            # A lifetime budget keeps what it has spent; the new daily rate applies to each day left.
            value = shape.spent_units + added if shape.field == "lifetime_budget" else added
            object_class: _ObjectClass = AdSet if entity.kind is EntityKind.AD_GROUP else Campaign
            return _Write(
                index, action, object_class, entity.entity_id, {shape.field: value}, shape.field, str(value), True
            )
        if isinstance(action, SetBid | SetTargetCpa | SetTargetRoas) and entity.kind is EntityKind.AD_GROUP:
            strategy = lever.strategy if lever is not None else None
            if strategy is None:
                return failed(f"not sent: the bid strategy of ad set {entity.entity_id} could not be read")
            if isinstance(action, SetBid) and not strategy.uses_bids:
                lever_hint = {
                    BiddingStrategy.COST_CAP: "its bid_amount is a cost per result: use set_target_cpa",
                    BiddingStrategy.MIN_ROAS: "it bids to a ROAS floor: use set_target_roas",
                }.get(strategy, "Meta sets every bid itself")
                return failed(f"not sent: ad set {entity.entity_id} bids with {strategy.value}; {lever_hint}")
            if isinstance(action, SetTargetCpa) and strategy is not BiddingStrategy.COST_CAP:
                return failed(
                    f"not sent: ad set {entity.entity_id} bids with {strategy.value}; only a cost cap "
                    "(COST_CAP) takes a cost-per-result target on Meta"
                )
            if isinstance(action, SetTargetRoas):
                if strategy is not BiddingStrategy.MIN_ROAS:
                    return failed(
                        f"not sent: ad set {entity.entity_id} bids with {strategy.value}; only "
                        "LOWEST_COST_WITH_MIN_ROAS takes a ROAS floor on Meta"
                    )
                bps = action.new_target_roas_bps
                params: dict[str, Any] = {"bid_constraints": {"roas_average_floor": bps}}
                return _Write(index, action, AdSet, entity.entity_id, params, "bid_constraints", str(bps), False)
            micros = action.new_cpc_bid_micros if isinstance(action, SetBid) else action.new_target_cpa_micros
            amount = micros_to_meta_units(micros, currency)
            if amount <= 0:
                return failed(f"{action.kind} {micros} micros rounds to 0 {currency}")
            return _Write(
                index, action, AdSet, entity.entity_id, {"bid_amount": amount}, "bid_amount", str(amount), False
            )
        if isinstance(action, PauseCreative | EnableCreative) and entity.kind is EntityKind.CREATIVE:
            if isinstance(action, EnableCreative) and lever is not None and lever.review_block is not None:
                return failed(
                    f"not sent: ad {entity.entity_id} is {lever.review_block} on Meta; enabling it would not deliver"
                )
            status = _STATUS_TO_META[action.new_status]
            return _Write(index, action, Ad, entity.entity_id, {"status": status}, "status", status, False)
        return failed(
            f"Meta does not support {action.kind} on a {entity.kind.value}; supported: set_budget on budget "
            "holders (ad sets, or campaigns with a campaign budget), set_bid on bid-cap ad sets, set_target_cpa "
            "on cost-cap ad sets, set_target_roas on minimum-ROAS ad sets, pause/enable on ads"
        )

    def _read_back_text(self, account: AccountConfig, write: _Write, raw: object) -> str | None:
        """Return a read value in bidloop's units as text: micros (daily-equivalent), basis points or a status."""
        if raw is None:
            return None
        if write.field == "status":
            return _STATUS_FROM_META.get(str(raw), Status.REMOVED).value
        value = units(_field_text(write.field, raw))
        if value is None:
            return None
        if write.field == "bid_constraints":
            return str(value)
        if write.field == "lifetime_budget":
            lever = self._levers.get((account.id, write.entity_id))
            shape = lever.shape if lever is not None and lever.shape is not None else BudgetShape("lifetime_budget")
            left = meta_units_to_micros(max(0, value - shape.spent_units), account.currency)
            return str(left // shape.days_left)
        return str(meta_units_to_micros(value, account.currency))

    def _learn(self, account: AccountConfig, actions: Sequence[Action]) -> None:
        """Read the objects of actions this client has not read yet (budget shape, strategy, review)."""
        needs_reading = ("set_budget", "set_bid", "set_target_cpa", "set_target_roas", "enable_creative")
        unknown = {
            a.entity.key: a.entity
            for a in actions
            if a.kind in needs_reading
            and a.entity.account_id == account.id
            and (account.id, a.entity.entity_id) not in self._levers
        }
        if not unknown:
            return
        try:
            if any(a.kind == "set_budget" for a in actions):
                # A lifetime budget's write needs today's spend, which only a snapshot reads.
                self.read_snapshot(account.id)
            self.read_back(account.id, list(unknown.values()))
        except PlatformError as exc:
            log.warning("meta: could not read %d object(s) before writing: %s", len(unknown), exc.message)

    def apply(
        self, account_id: str, clearances: Sequence[Clearance], *, validate_only: bool = False
    ) -> list[WriteResult]:
        """Send cleared actions in Graph batches of at most 50 calls; one result per action, in order.

        Budgets and bids go out in the account currency's minor units (rounded down). With
        `validate_only`, every call carries `execution_options=["validate_only"]` and nothing changes.
        A fifth budget change of an ad set within an hour is not sent: it comes back `deferred`.

        Raises:
            UnfilteredActionError: If any item is not a valid clearance (nothing is sent).
            UnknownAccountError: If the account is not configured for this client.
        """
        actions = [verify_clearance(c) for c in clearances]
        account = self._account(account_id)
        self._learn(account, actions)
        results: list[WriteResult | None] = [None] * len(actions)
        writes: list[_Write] = []
        budget_changes_planned: Counter[str] = Counter()
        for index, action in enumerate(actions):
            planned = self._plan(account, index, action)
            if isinstance(planned, WriteResult):
                results[index] = planned
                continue
            if planned.is_budget and not validate_only:
                wait_s = self._budget_tracker.wait_s(
                    planned.entity_id, pending=budget_changes_planned[planned.entity_id]
                )
                if wait_s > 0:
                    results[index] = WriteResult(
                        action_id=action.action_id,
                        status=WriteStatus.DEFERRED,
                        message=f"not sent: Meta allows 4 budget changes per ad set per hour; "
                        f"retry in {wait_s / 60:.0f} min",
                        retryable=True,
                        retry_after_s=wait_s,
                        attempts=0,
                    )
                    continue
                budget_changes_planned[planned.entity_id] += 1
            writes.append(planned)

        stop: WriteResult | None = None
        for chunk in _chunks(writes, self._batch_limit):
            if stop is not None:
                for write in chunk:
                    results[write.index] = stop.model_copy(update={"action_id": write.action.action_id, "attempts": 0})
                continue
            stop = self._send_chunk(account, chunk, validate_only, results)
        log.debug(
            "meta apply on %s: %d actions, %d sent in %d batch(es)",
            account.id,
            len(actions),
            len(writes),
            math.ceil(len(writes) / self._batch_limit),
        )
        return [r for r in results if r is not None]

    def _send_chunk(
        self, account: AccountConfig, chunk: Sequence[_Write], validate_only: bool, results: list[WriteResult | None]
    ) -> WriteResult | None:
        """Send one batch (with retries of the calls still pending); fill `results`.

        Returns a template result for the remaining chunks when they must not be sent (the account
        is throttled for long, or the token failed), else None.
        """
        pending: dict[int, _Write] = {w.index: w for w in chunk}
        pause_s: list[float] = []

        def settle(write: _Write, status: WriteStatus, message: str = "", **extra: Any) -> None:
            results[write.index] = WriteResult(
                action_id=write.action.action_id,
                status=status,
                message=message,
                attempts=write.attempts,
                **extra,
            )
            pending.pop(write.index, None)
            if status is WriteStatus.APPLIED and write.is_budget:
                self._budget_tracker.record(write.entity_id)

        def on_success(write: _Write, resp: FacebookResponse) -> None:
            wait = regain_access_s(resp.headers())
            if wait:
                pause_s.append(wait)
            if validate_only:
                settle(write, WriteStatus.VALIDATED, "validated by Meta (validate_only); nothing changed")
                return
            body = resp.json()
            raw = body.get(write.field) if isinstance(body, dict) else None
            read_back = self._read_back_text(account, write, raw)
            message = ""
            if raw is not None and _field_text(write.field, raw) != write.target:
                message = f"Meta reports {write.field}={raw}, not the target {write.target}"
            settle(write, WriteStatus.APPLIED, message, read_back=read_back)

        hints: list[float] = []

        def on_failure(write: _Write, resp: FacebookResponse) -> None:
            error = resp.error()
            if error is None:  # pragma: no cover - the SDK calls failure only for failed responses
                return
            body = error.body() if isinstance(error.body(), dict) else {}
            original = body.get("error", {}).get("original_response") if isinstance(body.get("error"), dict) else None
            if original and not validate_only:
                # Read-after-write failed, but the update itself succeeded.
                settle(write, WriteStatus.APPLIED, "applied; Meta could not read the object back in the same call")
                return
            failure = classify(error)
            message, hint = describe_error(error)
            full = f"{message} ({hint})" if hint else message
            if write.is_budget and error.api_error_code() == 17 and not validate_only:
                wait = max(failure.wait_hint_s or 0.0, BUDGET_LOCK_S)
                self._budget_tracker.lock(write.entity_id, wait)
                message = f"budget locked by Meta: {full}"
                settle(write, WriteStatus.DEFERRED, message, retryable=True, retry_after_s=wait)
            elif failure.retryable and (failure.wait_hint_s or 0.0) > self._policy.defer_above_s:
                settle(write, WriteStatus.DEFERRED, full, retryable=True, retry_after_s=failure.wait_hint_s)
            elif failure.retryable:
                write.ambiguous = failure.ambiguous
                if failure.wait_hint_s:
                    hints.append(failure.wait_hint_s)
                results[write.index] = WriteResult(
                    action_id=write.action.action_id,
                    status=WriteStatus.FAILED,
                    message=full,
                    retryable=True,
                    attempts=write.attempts,
                )
            else:
                settle(write, WriteStatus.FAILED, full, retryable=False)

        def send() -> bool:
            hints.clear()
            batch = self._api.new_batch()
            sent = list(pending.values())
            for write in sent:
                params = dict(write.params)
                fields: list[str] | None = [write.field]
                if validate_only:
                    params["execution_options"] = ["validate_only"]
                    fields = None
                write.attempts += 1
                write.ambiguous = True  # until Meta answers for it, the call may or may not have landed
                with warnings.catch_warnings():
                    # The SDK types bid_constraints as map<string, Object> and warns on its int
                    # roas_average_floor (AdCampaignBidConstraint types it 'int'); Graph takes it.
                    warnings.filterwarnings("ignore", message="value of bid_constraints", category=UserWarning)
                    write.object_class(write.entity_id, api=self._api).api_update(
                        params=params,
                        fields=fields,
                        batch=batch,
                        success=lambda resp, w=write: on_success(w, resp),
                        failure=lambda resp, w=write: on_failure(w, resp),
                    )
            batch.execute()
            if pending:
                ambiguous = any(w.ambiguous for w in pending.values())
                raise ItemsPendingError(len(pending), wait_hint_s=max(hints) if hints else None, ambiguous=ambiguous)
            return True

        def reconcile() -> bool | None:
            unsure = [w for w in pending.values() if w.ambiguous]
            if not unsure or validate_only:
                return None
            # One raw read (no nested retries): if it fails, the retry layer classifies it and reconciles again.
            seen = self._fetch_chunk([(w.object_class, w.entity_id, [w.field]) for w in unsure])
            for write in unsure:
                raw = seen.get(write.entity_id, {}).get(write.field)
                if raw is not None and _field_text(write.field, raw) == write.target:
                    settle(
                        write,
                        WriteStatus.APPLIED,
                        "confirmed by read-back after an ambiguous failure; not sent again",
                        read_back=self._read_back_text(account, write, raw),
                    )
                else:
                    write.ambiguous = False
            return True if not pending else None

        try:
            call_with_retries(
                send,
                classify=classify,
                platform="meta",
                policy=self._policy,
                reconcile=reconcile,
                sleep=self._sleep,
                stats=self.stats,
            )
        except RateLimitedError as exc:
            message = f"{exc.message} (Meta asked to wait {exc.retry_after_s / 60:.0f} min)"
            for write in list(pending.values()):
                settle(write, WriteStatus.DEFERRED, message, retryable=True, retry_after_s=exc.retry_after_s)
            return WriteResult(
                action_id="-",
                status=WriteStatus.DEFERRED,
                message=message,
                retryable=True,
                retry_after_s=exc.retry_after_s,
            )
        except (FacebookError, requests.RequestException, ItemsPendingError, PlatformError) as exc:
            failure = classify(exc)
            message, hint = describe_error(exc)
            if isinstance(exc, ItemsPendingError):
                message, hint = "gave up after retries", None
            full = f"{message} ({hint})" if hint else message
            for write in list(pending.values()):
                previous = results[write.index]
                detail = previous.message if previous is not None and previous.message else full
                settle(
                    write,
                    WriteStatus.FAILED,
                    f"{detail}; gave up after {write.attempts} attempt(s)",
                    retryable=failure.retryable,
                )
            if isinstance(exc, FacebookRequestError) and exc.api_error_code() in AUTH_ERROR_CODES:
                return WriteResult(action_id="-", status=WriteStatus.FAILED, message=f"not sent: {full}")
            return None

        wait = max(pause_s, default=0.0)
        if wait > self._policy.defer_above_s:
            message = f"not sent: Meta's usage header asks to wait {wait / 60:.0f} min before more calls"
            return WriteResult(
                action_id="-", status=WriteStatus.DEFERRED, message=message, retryable=True, retry_after_s=wait
            )
        if wait > 0:
            self._sleep(wait)
        return None

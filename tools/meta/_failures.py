"""Classify Graph API failures for the retry layer and turn them into messages a person can act on.

Meta signals throttling with error codes in an HTTP 400 JSON body (never 429) and tells how long to
wait in the `X-Business-Use-Case-Usage` header (`estimated_time_to_regain_access`, in minutes) and the
`X-Ad-Account-Usage` header (`acc_id_util_pct` reaching 100 with `reset_time_duration`, in seconds).
The one-hour budget lock (more than 4 budget changes per ad set per hour) is also code 17. Code 1 is
an unknown, transient error, except when Meta asks to "reduce the amount of data": asking again for
the same data fails the same way, so that one is final.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import requests
from facebook_business.exceptions import FacebookRequestError

from bidloop.core.errors import PlatformError
from bidloop.tools._retry import Failure

__all__ = [
    "AUTH_ERROR_CODES",
    "BUDGET_LOCK_S",
    "THROTTLE_CODES",
    "TOO_MUCH_DATA",
    "ItemsPendingError",
    "classify",
    "describe_error",
    "header_value",
    "regain_access_s",
]

THROTTLE_CODES: frozenset[int] = frozenset({4, 17, 32, 613, *range(80000, 80015)})
"""Graph error codes that mean "too many calls": wait, then retry."""

_TRANSIENT_CODES: frozenset[int] = frozenset({1, 2})
"""Unknown / temporary errors: retry, but the write may have landed."""

AUTH_ERROR_CODES: frozenset[int] = frozenset({102, 190, 10, *range(200, 300)})
"""Session, token and permission errors: never retried."""

BUDGET_LOCK_S = 3600.0
"""Meta blocks budget changes of an ad set for one hour after the fourth change within an hour."""

_BUC_HEADER = "x-business-use-case-usage"
_ACCOUNT_HEADER = "x-ad-account-usage"
TOO_MUCH_DATA = "reduce the amount of data"
"""Words of Meta's code-1 answer to a request too large to serve synchronously."""


class ItemsPendingError(Exception):
    """Raised inside a batch send when some calls must be sent again (retryable failures, no response).

    It is private to the Meta client: the retry layer sees it, classifies it with the largest wait the
    platform asked for, and calls the send again with only the calls still pending.
    """

    def __init__(self, pending: int, *, wait_hint_s: float | None, ambiguous: bool) -> None:
        super().__init__(f"{pending} call(s) of the batch need another attempt")
        self.pending = pending
        self.wait_hint_s = wait_hint_s
        self.ambiguous = ambiguous


def header_value(headers: object, name: str) -> str | None:
    """Return one header's value from a requests header mapping or a batch's `[{name, value}]` list."""
    wanted = name.lower()
    if isinstance(headers, Mapping):
        for key, value in headers.items():
            if str(key).lower() == wanted:
                return str(value)
        return None
    if isinstance(headers, Iterable) and not isinstance(headers, str | bytes):
        for item in headers:
            if isinstance(item, Mapping) and str(item.get("name", "")).lower() == wanted:
                return str(item.get("value"))
    return None


def _account_usage_wait_s(headers: object) -> float | None:
    """Return `reset_time_duration` (seconds) when `X-Ad-Account-Usage` says the account is used up."""
    raw = header_value(headers, _ACCOUNT_HEADER)
    if not raw:
        return None
    try:
        usage = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(usage, Mapping):
        return None
    pct, reset = usage.get("acc_id_util_pct"), usage.get("reset_time_duration")
    if not isinstance(pct, int | float) or not isinstance(reset, int | float) or isinstance(pct, bool):
        return None
    if float(pct) < 100.0 or float(reset) <= 0:
        return None
    return float(reset)


def regain_access_s(headers: object) -> float | None:
    """Return how long Meta's usage headers ask to wait, in seconds (None: no wait asked).

    The longest `estimated_time_to_regain_access` of `X-Business-Use-Case-Usage` (Meta gives minutes),
    or `reset_time_duration` of `X-Ad-Account-Usage` (seconds) when its `acc_id_util_pct` reached 100,
    whichever is longer. A malformed header never blocks a run.
    """
    account_wait = _account_usage_wait_s(headers)
    buc_wait = _buc_wait_s(headers)
    waits = [w for w in (account_wait, buc_wait) if w is not None]
    return max(waits) if waits else None


def _buc_wait_s(headers: object) -> float | None:
    raw = header_value(headers, _BUC_HEADER)
    if not raw:
        return None
    try:
        usage = json.loads(raw)
    except ValueError:
        return None
    minutes: list[float] = []
    if isinstance(usage, Mapping):
        for entries in usage.values():
            if not isinstance(entries, list):
                continue
            for entry in entries:
                if isinstance(entry, Mapping):
                    value = entry.get("estimated_time_to_regain_access")
                    if isinstance(value, int | float) and not isinstance(value, bool):
                        minutes.append(float(value))
    return max(minutes) * 60.0 if minutes else None


def classify(exc: BaseException) -> Failure:
    """Map an exception from the SDK (or `requests` below it) to a retry `Failure`.

    Throttles are retryable with the header's wait as the floor; transient codes, `is_transient` and
    HTTP 5xx are retryable and ambiguous (the write may have landed); timeouts after connecting and
    dropped connections are ambiguous; token, permission and parameter errors are final.
    """
    if isinstance(exc, ItemsPendingError):
        return Failure(retryable=True, wait_hint_s=exc.wait_hint_s, ambiguous=exc.ambiguous)
    if isinstance(exc, FacebookRequestError):
        code = exc.api_error_code()
        status = exc.http_status() or 0
        if code in THROTTLE_CODES:
            return Failure(retryable=True, wait_hint_s=regain_access_s(exc.http_headers()), ambiguous=False)
        if code in AUTH_ERROR_CODES:
            return Failure(retryable=False)
        if code == 1 and TOO_MUCH_DATA in str(_error_body(exc).get("message") or "").lower():
            return Failure(retryable=False)
        if code in _TRANSIENT_CODES or exc.api_transient_error() or status >= 500:
            return Failure(retryable=True, wait_hint_s=regain_access_s(exc.http_headers()), ambiguous=True)
        return Failure(retryable=False)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return Failure(retryable=True, ambiguous=False)
    if isinstance(exc, requests.exceptions.Timeout | requests.exceptions.ConnectionError):
        return Failure(retryable=True, ambiguous=True)
    return Failure(retryable=False)


def _error_body(exc: FacebookRequestError) -> dict[str, Any]:
    body = exc.body()
    if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
        return dict(body["error"])
    return {}


def describe_error(exc: BaseException) -> tuple[str, str | None]:
    """Return (message, hint) for a failure, never including a credential.

    The SDK's own `str(exc)` is avoided: it repeats the request, and `requests` errors repeat the
    URL. Only the Graph error's code, subcode, type and message are used.
    """
    if isinstance(exc, FacebookRequestError):
        code = exc.api_error_code()
        subcode = exc.api_error_subcode()
        text = _error_body(exc).get("message") or exc.get_message() or "request failed"
        where = f"Meta error {code}" + (f"/{subcode}" if subcode else "")
        if code == 190 or code == 102:
            return (
                f"{where}: the access token is expired or invalid ({text})",
                "create a new long-lived token (Business Manager system user) and set META_ACCESS_TOKEN",
            )
        if code == 10 or (code is not None and 200 <= code < 300):
            return (
                f"{where}: the token lacks permission for this ad account ({text})",
                "grant ads_management (and ads_read) to the app and give the user or system user access "
                "to the ad account in Business Manager",
            )
        if code == 100 and subcode == 33:
            return (
                f"{where}: the object does not exist or this token cannot see it ({text})",
                "check platform_account_id in bidloop.yaml (it starts with act_) and the token's access",
            )
        if code == 1 and TOO_MUCH_DATA in str(text).lower():
            return (
                f"{where}: Meta will not serve this much data in one call ({text})",
                "the account is too large for synchronous insights; read fewer days or fewer levels "
                "(an asynchronous insights report is not implemented yet)",
            )
        if code in THROTTLE_CODES:
            wait = regain_access_s(exc.http_headers())
            after = f"; Meta asks to wait {wait / 60:.0f} min" if wait else ""
            return f"{where}: rate limited ({text}){after}", "retry later; bidloop defers long waits to a later run"
        return f"{where}: {text}", None
    if isinstance(exc, PlatformError):
        return exc.message, exc.hint
    if isinstance(exc, requests.exceptions.Timeout):
        return "Meta did not answer within the timeout", "check the network or raise the client timeout"
    if isinstance(exc, requests.exceptions.ConnectionError):
        return "cannot reach the Meta Graph API (connection failed or dropped)", "check the network or endpoint"
    return f"Meta call failed ({type(exc).__name__})", None

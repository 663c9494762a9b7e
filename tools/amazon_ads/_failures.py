"""Classify python-amazon-ad-api failures for the retry layer and turn them into bidloop errors with hints.

This is the one place that knows the wrapper's exceptions: `AdvertisingApiException` (HTTP status in
`.code`, response headers in `.headers`), LWA's `AuthorizationError`, and `requests` transport errors.
"""

from __future__ import annotations

import re
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests

# ad_api.base must be imported before ad_api.auth: importing the auth package first hits a circular import.
from ad_api.base import AdvertisingApiException

# isort: split
from ad_api.auth.exceptions import AuthorizationError

from bidloop.core.entities import Platform
from bidloop.core.errors import PlatformAuthError, PlatformError, RateLimitedError
from bidloop.core.settings import AccountConfig
from bidloop.tools._retry import Failure

__all__ = ["SDK_ERRORS", "classify_failure", "duplicate_report_id", "to_platform_error"]

PLATFORM = Platform.AMAZON_ADS.value
_RETRYABLE_STATUS = {429, 500, 502, 503, 504}
_AMBIGUOUS_STATUS = {500, 502, 503, 504}
"""A 5xx may come from a gateway after Amazon executed the request: a write is read back before any resend."""
DUPLICATE_REPORT_STATUS = 425
"""Reporting v3 answers a request identical to a pending one with HTTP 425 and the pending report's id."""
_DUPLICATE_OF = re.compile(r"duplicate of\s*:?\s*([A-Za-z0-9._-]+)", re.IGNORECASE)


def _retry_after_s(headers: Any) -> float | None:
    if not headers:
        return None
    value = headers.get("Retry-After") if hasattr(headers, "get") else None
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except (TypeError, ValueError):
        pass
    try:
        when = parsedate_to_datetime(str(value))
    except (TypeError, ValueError):
        return None
    return max((when - datetime.now(when.tzinfo)).total_seconds(), 0.0)


def classify_failure(exc: BaseException) -> Failure:
    """Classify one exception from the wrapper for the retry layer.

    429 and 5xx are retryable (`Retry-After` is the wait hint); a 5xx is also ambiguous (a gateway may
    answer 502/504 after Amazon executed a write, so writes are read back before they are resent); a
    connect timeout is retryable and unambiguous (nothing was sent); a read timeout or dropped
    connection is retryable but ambiguous. Everything else (400/401/403/404/422, 425, LWA errors) is final.
    """
    if isinstance(exc, AdvertisingApiException):
        try:
            status = int(exc.code)
        except (TypeError, ValueError):
            return Failure(retryable=False)
        if status in _RETRYABLE_STATUS:
            return Failure(
                retryable=True, wait_hint_s=_retry_after_s(exc.headers), ambiguous=status in _AMBIGUOUS_STATUS
            )
        return Failure(retryable=False)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return Failure(retryable=True)
    if isinstance(exc, requests.exceptions.Timeout | requests.exceptions.ConnectionError):
        return Failure(retryable=True, ambiguous=True)
    return Failure(retryable=False)


def duplicate_report_id(exc: BaseException) -> str | None:
    """Return the pending report's id from a reporting v3 HTTP 425 answer, or None for any other failure.

    The body is `{"code": "425", "detail": "The Request is a duplicate of : <reportId>"}`.
    """
    if not isinstance(exc, AdvertisingApiException):
        return None
    try:
        status = int(exc.code)
    except (TypeError, ValueError):
        return None
    if status != DUPLICATE_REPORT_STATUS:
        return None
    body = exc.error
    text = (
        " ".join(str(body.get(k) or "") for k in ("detail", "details", "message"))
        if isinstance(body, dict)
        else str(body)
    )
    match = _DUPLICATE_OF.search(text)
    return match.group(1) if match else None


def _body_detail(error: Any) -> str:
    if isinstance(error, dict):
        detail = error.get("details") or error.get("detail") or error.get("message") or error.get("code")
        return str(detail) if detail else ""
    return ""


def to_platform_error(exc: BaseException, *, account: AccountConfig, entity_id: str | None = None) -> PlatformError:
    """Turn a wrapper or transport exception into a `PlatformError` with a message and a hint.

    Messages name the profile and the HTTP status, never a header or a credential.
    """
    profile = account.remote_id
    common: dict[str, Any] = {"platform": PLATFORM, "account_id": account.id, "entity_id": entity_id}
    if isinstance(exc, AuthorizationError):
        if exc.error_code == "invalid_grant":
            return PlatformAuthError(
                "Login with Amazon refused the refresh token (expired, revoked, or issued to another app)",
                hint="re-authorize the advertiser with your LWA app and update AD_API_REFRESH_TOKEN",
                **common,
            )
        if exc.error_code in {"invalid_client", "unauthorized_client"}:
            return PlatformAuthError(
                "Login with Amazon refused the client id or secret",
                hint="check AD_API_CLIENT_ID and AD_API_CLIENT_SECRET against your LWA security profile",
                **common,
            )
        return PlatformAuthError(
            f"Login with Amazon token exchange failed ({exc.error_code or exc.status_code})",
            hint="check AD_API_CLIENT_ID, AD_API_CLIENT_SECRET and AD_API_REFRESH_TOKEN",
            **common,
        )
    if isinstance(exc, AdvertisingApiException):
        status = exc.code
        detail = _body_detail(exc.error)
        suffix = f": {detail}" if detail else ""
        if status == 401:
            return PlatformAuthError(
                f"Amazon Ads rejected the access token (HTTP 401{suffix})",
                hint="the token expired or belongs to another client id: check AD_API_CLIENT_ID and refresh "
                "AD_API_REFRESH_TOKEN (drop AD_API_ACCESS_TOKEN if you set one)",
                **common,
            )
        if status == 403:
            return PlatformAuthError(
                f"no access to Amazon Ads profile {profile} (HTTP 403{suffix})",
                hint="check platform_account_id in bidloop.yaml; `bidloop accounts check` lists the profiles "
                "these credentials can see",
                **common,
            )
        if status == 429:
            wait = _retry_after_s(exc.headers)
            return RateLimitedError(
                "Amazon Ads kept throttling (HTTP 429) after retries",
                retry_after_s=wait if wait is not None else 60.0,
                hint="run again later; Amazon's limits depend on overall load",
                **common,
            )
        retryable = isinstance(status, int) and status in _RETRYABLE_STATUS
        return PlatformError(
            f"Amazon Ads answered HTTP {status}{suffix}",
            retryable=retryable,
            hint="Amazon had a transient problem; run again later" if retryable else None,
            **common,
        )
    if isinstance(exc, requests.exceptions.RequestException):
        return PlatformError(
            f"no answer from Amazon Ads ({type(exc).__name__})",
            retryable=True,
            hint="check the network (and `endpoint:` in bidloop.yaml if you set one)",
            **common,
        )
    return PlatformError(f"Amazon Ads call failed ({type(exc).__name__})", **common)


SDK_ERRORS = (AdvertisingApiException, AuthorizationError, requests.exceptions.RequestException)

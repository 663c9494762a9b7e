"""Classify Google Ads API failures: retryable or not, the server's wait hint, and credential problems.

Failures surface in two shapes (reference/platform-apis.md §1.4): `GoogleAdsException` carrying a
`GoogleAdsFailure`, or, for gRPC INTERNAL and RESOURCE_EXHAUSTED (and for transport problems such as
timeouts), a `google.api_core.exceptions.GoogleAPICallError` whose trailers may still carry the
failure. Both are decoded to the same list of `(category, name)` error codes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import grpc
from google.ads.googleads.errors import GoogleAdsException
from google.ads.googleads.v26.errors.types.errors import GoogleAdsError, GoogleAdsFailure
from google.api_core import exceptions as api_exceptions
from google.auth import exceptions as auth_exceptions

from bidloop.core.errors import BidloopError
from bidloop.tools._retry import Failure

__all__ = [
    "DAILY_QUOTA_WAIT_S",
    "FAILURE_TRAILER_KEY",
    "QUOTA_CODES",
    "AuthProblem",
    "ErrorCodeName",
    "auth_problem",
    "classify",
    "decode_failure",
    "describe",
    "error_code",
    "is_daily_quota",
    "is_retryable_error",
    "request_id",
]

FAILURE_TRAILER_KEY = "google.ads.googleads.v26.errors.googleadsfailure-bin"
"""The gRPC trailer that carries a serialized `GoogleAdsFailure`."""

DAILY_QUOTA_WAIT_S = 86_400.0
"""Wait reported for the daily operations quota when Google gives no `retry_delay`: retry tomorrow."""

ErrorCodeName = tuple[str, str]
"""An error code as `(category, name)`, e.g. `("quota_error", "RESOURCE_TEMPORARILY_EXHAUSTED")`."""

_RETRYABLE_CODES: frozenset[ErrorCodeName] = frozenset(
    {
        ("internal_error", "INTERNAL_ERROR"),
        ("internal_error", "TRANSIENT_ERROR"),
        ("internal_error", "DEADLINE_EXCEEDED"),
        ("quota_error", "RESOURCE_TEMPORARILY_EXHAUSTED"),
        ("quota_error", "EXCESSIVE_SHORT_TERM_QUERY_RESOURCE_CONSUMPTION"),
        ("database_error", "CONCURRENT_MODIFICATION"),
    }
)
QUOTA_CODES: frozenset[ErrorCodeName] = frozenset(
    {
        # QuotaError (v26 errors/types/quota_error.py): "Too many requests." -- the daily operations
        # limit, but also short-term limits; which one is in `QuotaErrorDetails` (rate_scope, rate_name,
        # retry_delay: "Backoff period that customers should wait before sending next request").
        ("quota_error", "RESOURCE_EXHAUSTED"),
        # "Too many requests in a short amount of time."
        ("quota_error", "RESOURCE_TEMPORARILY_EXHAUSTED"),
        # "Too many expensive requests from query pattern over a short amount of time."
        ("quota_error", "EXCESSIVE_SHORT_TERM_QUERY_RESOURCE_CONSUMPTION"),
        # "... over an extended duration of time": retried only when Google gives a delay (then deferred).
        ("quota_error", "EXCESSIVE_LONG_TERM_QUERY_RESOURCE_CONSUMPTION"),
    }
)
_SHORT_TERM_QUOTA: frozenset[ErrorCodeName] = frozenset(
    {
        ("quota_error", "RESOURCE_TEMPORARILY_EXHAUSTED"),
        ("quota_error", "EXCESSIVE_SHORT_TERM_QUERY_RESOURCE_CONSUMPTION"),
    }
)
_DAILY_QUOTA: ErrorCodeName = ("quota_error", "RESOURCE_EXHAUSTED")
# Words of a `rate_name` that name the daily operations bucket (the quotas guide counts "operations"
# per day per developer token: https://developers.google.com/google-ads/api/docs/best-practices/quotas),
# and words that name a short-term bucket instead (e.g. "Requests per developer token per second").
_DAILY_RATE_WORDS = ("operation", "day", "daily")
_SHORT_RATE_WORDS = ("second", "minute", "hour")
# Transport-level outcomes where the request may have reached the server and been applied.
_AMBIGUOUS_GRPC_CODES = frozenset({grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE})


def error_code(error: GoogleAdsError) -> ErrorCodeName:
    """Return the `(category, name)` of one `GoogleAdsError`, e.g. `("range_error", "TOO_HIGH")`."""
    pb = type(error.error_code).pb(error.error_code)
    category = pb.WhichOneof("error_code") or "unknown"
    if category == "unknown":
        return ("unknown", "UNKNOWN")
    number = getattr(pb, category)
    enum_descriptor = pb.DESCRIPTOR.fields_by_name[category].enum_type
    value = enum_descriptor.values_by_number.get(number) if enum_descriptor is not None else None
    return (category, value.name if value is not None else str(number))


def is_retryable_error(code: ErrorCodeName) -> bool:
    """Return True if Google documents this error code as worth retrying unchanged."""
    return code in _RETRYABLE_CODES


def decode_failure(exc: BaseException) -> GoogleAdsFailure | None:
    """Return the `GoogleAdsFailure` carried by an SDK exception, or None if it carries none."""
    if isinstance(exc, GoogleAdsException):
        return exc.failure
    call = getattr(exc, "response", None) if isinstance(exc, api_exceptions.GoogleAPICallError) else exc
    trailing = getattr(call, "trailing_metadata", None)
    if not callable(trailing):
        return None
    try:
        metadata = trailing() or ()
    except (grpc.RpcError, ValueError, TypeError):
        return None
    for key, value in metadata:
        if key == FAILURE_TRAILER_KEY and isinstance(value, bytes):
            return GoogleAdsFailure.deserialize(value)
    return None


def _codes(failure: GoogleAdsFailure | None) -> list[ErrorCodeName]:
    return [error_code(e) for e in failure.errors] if failure is not None else []


def _retry_delay_s(errors: Iterable[GoogleAdsError]) -> float | None:
    delays = []
    for err in errors:
        delay = err.details.quota_error_details.retry_delay
        # proto-plus hands a Duration over as a `timedelta`; raw protobuf keeps seconds/nanos.
        if hasattr(delay, "total_seconds"):
            seconds = delay.total_seconds()
        else:
            seconds = delay.seconds + delay.nanos / 1e9 if delay is not None else 0.0
        if seconds > 0:
            delays.append(seconds)
    return max(delays) if delays else None


def is_daily_quota(error: GoogleAdsError) -> bool:
    """Return True if a quota error's details name the daily operations limit of the developer token.

    Only `QuotaError.RESOURCE_EXHAUSTED` whose `QuotaErrorDetails.rate_scope` is `DEVELOPER` ("Per
    project quota (formerly developer token quota)", v26 errors.proto) and whose `rate_name` names an
    operations or per-day bucket. Anything else is a rate limit that passes within its `retry_delay`.
    """
    if error_code(error) != _DAILY_QUOTA:
        return False
    details = error.details.quota_error_details
    scope = getattr(details.rate_scope, "name", str(details.rate_scope))
    name = (details.rate_name or "").lower()
    if scope != "DEVELOPER" or any(word in name for word in _SHORT_RATE_WORDS):
        return False
    return any(word in name for word in _DAILY_RATE_WORDS)


def _quota_failure(errors: list[GoogleAdsError]) -> Failure:
    """Classify quota errors by their details: wait what Google says, defer only the daily limit.

    A `retry_delay` is always the wait (the retry layer defers it when it is longer than the policy
    allows). Without one: the daily operations limit waits a day; short-term limits back off and
    retry; a long-term query-consumption limit is not retried.
    """
    delay = _retry_delay_s(errors)
    if delay is not None:
        return Failure(retryable=True, wait_hint_s=delay)
    if any(is_daily_quota(err) for err in errors):
        return Failure(retryable=True, wait_hint_s=DAILY_QUOTA_WAIT_S)
    codes = [error_code(err) for err in errors]
    if all(code in _SHORT_TERM_QUOTA or code == _DAILY_QUOTA for code in codes):
        return Failure(retryable=True)
    return Failure(retryable=False)


def request_id(exc: BaseException) -> str | None:
    """Return the request id Google gave a failed call ("used for debugging purposes"), if any."""
    failure = decode_failure(exc)
    if failure is not None and failure.request_id:
        return str(failure.request_id)
    rid = getattr(exc, "request_id", None)
    if isinstance(exc, GoogleAdsException) and rid:
        return str(rid)
    call = getattr(exc, "response", None) if isinstance(exc, api_exceptions.GoogleAPICallError) else exc
    trailing = getattr(call, "trailing_metadata", None)
    if callable(trailing):
        try:
            for key, value in trailing() or ():
                if key == "request-id" and value:
                    return str(value)
        except (grpc.RpcError, ValueError, TypeError):
            return None
    return None


def _grpc_code(exc: BaseException) -> grpc.StatusCode | None:
    if isinstance(exc, api_exceptions.GoogleAPICallError):
        return exc.grpc_status_code
    code = getattr(exc, "code", None)
    if isinstance(exc, grpc.RpcError) and callable(code):
        result = code()
        return result if isinstance(result, grpc.StatusCode) else None
    return None


def classify(exc: BaseException) -> Failure:
    """Map an exception from a Google Ads call to a `Failure` for `call_with_retries`.

    Retryable: Google's transient internal errors, quota errors classified by their details (see
    `_quota_failure`: the `retry_delay` Google gives is the wait; only the daily operations limit
    waits a day, which the retry layer defers), concurrent modification, and transport
    timeouts/unavailability. A timeout or an UNAVAILABLE without a decoded failure is ambiguous: the
    write may have been applied. Everything else (validation, auth, bidloop's own errors) is not
    retryable.
    """
    if isinstance(exc, BidloopError):
        return Failure(retryable=False)
    failure = decode_failure(exc)
    codes = _codes(failure)
    if codes and failure is not None:
        quota = [err for err, code in zip(failure.errors, codes, strict=True) if code in QUOTA_CODES]
        if quota:
            return _quota_failure(quota)
        if all(is_retryable_error(code) for code in codes):
            return Failure(retryable=True, wait_hint_s=_retry_delay_s(failure.errors))
        return Failure(retryable=False)
    status = _grpc_code(exc)
    if status in _AMBIGUOUS_GRPC_CODES:
        return Failure(retryable=True, ambiguous=True)
    if status is grpc.StatusCode.RESOURCE_EXHAUSTED:
        return Failure(retryable=True)
    if status in (grpc.StatusCode.INTERNAL, grpc.StatusCode.ABORTED, grpc.StatusCode.UNKNOWN):
        # No failure details: we cannot tell whether the server got as far as writing.
        return Failure(retryable=True, ambiguous=True)
    return Failure(retryable=False)


def describe(exc: BaseException) -> str:
    """Return a one-line description of a failure: error codes, messages and Google's request id.

    The request id is kept ("used for debugging purposes", `GoogleAdsFailure.request_id`); no other
    request metadata (headers, tokens) is ever included.
    """
    failure = decode_failure(exc)
    rid = request_id(exc)
    suffix = f" (request_id {rid})" if rid else ""
    if failure is not None and failure.errors:
        pairs = zip(failure.errors, _codes(failure), strict=True)
        return "; ".join(f"{cat}.{name}: {err.message}" for err, (cat, name) in pairs) + suffix
    status = _grpc_code(exc)
    if status is not None:
        return f"gRPC {status.name}{suffix}"
    return type(exc).__name__ + suffix


AuthProblemKind = Literal[
    "expired_token",
    "missing_developer_token",
    "developer_token_not_approved",
    "no_access",
    "customer_not_found",
    "auth_failed",
]


@dataclass(frozen=True)
class AuthProblem:
    """A credential or access problem, with what a person should do about it."""

    kind: AuthProblemKind
    message: str
    hint: str


_TOKEN_HINT = (
    "create a new OAuth refresh token (the `refresh_token` key of google-ads.yaml, or GOOGLE_ADS_REFRESH_TOKEN) "
    "and check GOOGLE_ADS_CLIENT_ID / GOOGLE_ADS_CLIENT_SECRET belong to the same OAuth client"
)
_DEV_TOKEN_HINT = "set `developer_token` in google-ads.yaml or GOOGLE_ADS_DEVELOPER_TOKEN (Google Ads UI > API Center)"
_ACCESS_HINT = (
    "set `login_customer_id` of this account in bidloop.yaml to the 10-digit id (no dashes) of the manager "
    "account that links to it, and check the OAuth user can see that manager"
)

_AUTH_CODES: dict[ErrorCodeName, tuple[AuthProblemKind, str, str]] = {
    ("authentication_error", "OAUTH_TOKEN_EXPIRED"): ("expired_token", "the OAuth access token expired", _TOKEN_HINT),
    ("authentication_error", "OAUTH_TOKEN_REVOKED"): ("expired_token", "the OAuth token was revoked", _TOKEN_HINT),
    ("authentication_error", "OAUTH_TOKEN_INVALID"): ("expired_token", "the OAuth token is invalid", _TOKEN_HINT),
    ("authentication_error", "OAUTH_TOKEN_DISABLED"): ("expired_token", "the OAuth token is disabled", _TOKEN_HINT),
    ("request_error", "DEVELOPER_TOKEN_PARAMETER_MISSING"): (
        "missing_developer_token",
        "no developer token was sent",
        _DEV_TOKEN_HINT,
    ),
    ("authentication_error", "DEVELOPER_TOKEN_INVALID"): (
        "missing_developer_token",
        "the developer token is not valid",
        _DEV_TOKEN_HINT,
    ),
    ("authorization_error", "DEVELOPER_TOKEN_NOT_APPROVED"): (
        "developer_token_not_approved",
        "the developer token is only approved for test accounts",
        "use a test account, or apply for Basic access in the API Center",
    ),
    ("authorization_error", "DEVELOPER_TOKEN_PROHIBITED"): (
        "developer_token_not_approved",
        "the developer token may not be used with this Google Cloud project",
        "use the developer token that belongs to this OAuth client's project",
    ),
    ("authorization_error", "USER_PERMISSION_DENIED"): (
        "no_access",
        "the OAuth user has no access to this customer through the given manager account",
        _ACCESS_HINT,
    ),
    ("authorization_error", "INVALID_LOGIN_CUSTOMER_ID_SERVING_CUSTOMER_ID_COMBINATION"): (
        "no_access",
        "the manager account (login_customer_id) does not manage this customer",
        _ACCESS_HINT,
    ),
    ("header_error", "INVALID_LOGIN_CUSTOMER_ID"): ("no_access", "the login_customer_id is not valid", _ACCESS_HINT),
    ("request_error", "LOGIN_CUSTOMER_ID_PARAMETER_MISSING"): (
        "no_access",
        "this customer is only reachable through a manager account, and none was given",
        _ACCESS_HINT,
    ),
    ("authorization_error", "CUSTOMER_NOT_ENABLED"): (
        "customer_not_found",
        "the customer account is not enabled (cancelled or not yet set up)",
        "check `platform_account_id` in bidloop.yaml, or re-enable the account in Google Ads",
    ),
    ("authentication_error", "CUSTOMER_NOT_FOUND"): (
        "customer_not_found",
        "no Google Ads customer has this id",
        "check `platform_account_id` in bidloop.yaml: 10 digits, no dashes",
    ),
    ("authentication_error", "CLIENT_CUSTOMER_ID_INVALID"): (
        "customer_not_found",
        "the customer id is not valid",
        "check `platform_account_id` in bidloop.yaml: 10 digits, no dashes",
    ),
    ("authentication_error", "NOT_ADS_USER"): (
        "auth_failed",
        "the Google account behind the OAuth token has no Google Ads access",
        "authorize with a Google account that is a user of the Ads account",
    ),
}


def auth_problem(exc: BaseException) -> AuthProblem | None:
    """Return the credential/access problem an exception reports, or None if it is not one."""
    if isinstance(exc, auth_exceptions.RefreshError):
        return AuthProblem("expired_token", "Google refused to refresh the OAuth token (expired/revoked)", _TOKEN_HINT)
    if isinstance(exc, auth_exceptions.GoogleAuthError):
        return AuthProblem("auth_failed", f"Google authentication failed ({type(exc).__name__})", _TOKEN_HINT)
    for code in _codes(decode_failure(exc)):
        known = _AUTH_CODES.get(code)
        if known is not None:
            return AuthProblem(*known)
        if code[0] in ("authentication_error", "authorization_error"):
            return AuthProblem("auth_failed", f"Google Ads refused the credentials ({code[0]}.{code[1]})", _TOKEN_HINT)
    if _grpc_code(exc) is grpc.StatusCode.UNAUTHENTICATED:
        return AuthProblem("expired_token", "Google Ads did not accept the credentials", _TOKEN_HINT)
    return None

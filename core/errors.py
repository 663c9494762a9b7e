"""Define bidloop's one exception tree, each error with a stable code and a hint on how to fix it.

The hierarchy (catch the narrowest class that fits):

* BidloopError
  x ConfigError              -- bidloop.yaml or an environment variable is wrong
    + AccountMismatchError   -- bidloop.yaml's currency or time zone differs from the platform's
  x InputError               -- a command-line argument is wrong
    + UnknownAccountError    -- an account id that is not configured
  x StoreError               -- the database cannot be opened or written
  x MoneyError               -- a money amount cannot be represented exactly (NaN, float micros, ...)
  x GuardrailError           -- the safe-action filter refused to work (fail closed)
    + UnfilteredActionError  -- a write was attempted with an action that never passed the filter
    + WritesPausedError      -- the kill switch is on
  x PolicyError              -- a policy file is missing, corrupt or has the wrong observation spec
  x PlatformError            -- an ad platform call failed (carries platform, account, entity, retryable)
    + PlatformAuthError      -- credentials are missing, expired or lack access
    + RateLimitedError       -- the platform asked us to wait (carries retry_after_s)
  x RunError                 -- a run cannot start or resume (locked, unknown run id, ...)
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "AccountMismatchError",
    "BidloopError",
    "ConfigError",
    "ErrorCode",
    "GuardrailError",
    "InputError",
    "MoneyError",
    "PlatformAuthError",
    "PlatformError",
    "PolicyError",
    "RateLimitedError",
    "RunError",
    "StoreError",
    "UnfilteredActionError",
    "UnknownAccountError",
    "WritesPausedError",
]


class ErrorCode(StrEnum):
    """Stable codes: scripts may match on them; messages may change."""

    CONFIG_INVALID = "CONFIG_INVALID"
    ACCOUNT_MISMATCH = "ACCOUNT_MISMATCH"
    INPUT_INVALID = "INPUT_INVALID"
    UNKNOWN_ACCOUNT = "UNKNOWN_ACCOUNT"
    STORE_UNAVAILABLE = "STORE_UNAVAILABLE"
    MONEY_INVALID = "MONEY_INVALID"
    GUARDRAIL_FAILED = "GUARDRAIL_FAILED"
    UNFILTERED_ACTION = "UNFILTERED_ACTION"
    WRITES_PAUSED = "WRITES_PAUSED"
    POLICY_INVALID = "POLICY_INVALID"
    PLATFORM_FAILED = "PLATFORM_FAILED"
    PLATFORM_AUTH = "PLATFORM_AUTH"
    RATE_LIMITED = "RATE_LIMITED"
    RUN_FAILED = "RUN_FAILED"


class BidloopError(Exception):
    """Base of every error bidloop raises on purpose.

    Attributes:
        message: What went wrong, in one sentence.
        hint: What the user can do about it.
        code: A stable `ErrorCode`.
    """

    code: ErrorCode = ErrorCode.RUN_FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        text = f"[{self.code.value}] {self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class ConfigError(BidloopError):
    """The configuration (bidloop.yaml or BIDLOOP_* variables) is invalid."""

    code = ErrorCode.CONFIG_INVALID


class AccountMismatchError(ConfigError):
    """An account's currency or time zone in bidloop.yaml differs from what the platform reports.

    Raised by a client's `read_snapshot` before anything is read into bidloop's units: money in the
    wrong currency or days cut at the wrong hour would make every guardrail wrong. The message names
    both values; the hint says which line of bidloop.yaml to change.
    """

    code = ErrorCode.ACCOUNT_MISMATCH

    def __init__(
        self, account_id: str, field: str, configured: str, reported: str, *, platform: str | None = None
    ) -> None:
        where = f" on {platform}" if platform else ""
        super().__init__(
            f"account {account_id!r}: bidloop.yaml says {field} {configured!r}, "
            f"but the account{where} reports {reported!r}",
            hint=f"set `{field}: {reported}` for account {account_id!r} in bidloop.yaml "
            "(or point it at the right account)",
        )
        self.account_id = account_id
        self.field = field
        self.configured = configured
        self.reported = reported


class InputError(BidloopError):
    """A command-line argument or API argument is invalid."""

    code = ErrorCode.INPUT_INVALID


class UnknownAccountError(InputError):
    """An account id was asked for that is not configured."""

    code = ErrorCode.UNKNOWN_ACCOUNT


class StoreError(BidloopError):
    """The database cannot be opened, created or written."""

    code = ErrorCode.STORE_UNAVAILABLE


class MoneyError(BidloopError, ValueError):
    """A money amount is not finite, not an integer number of micros, or out of range."""

    code = ErrorCode.MONEY_INVALID


class GuardrailError(BidloopError):
    """The safe-action filter could not decide; the action is treated as blocked."""

    code = ErrorCode.GUARDRAIL_FAILED


class UnfilteredActionError(GuardrailError):
    """A platform write was attempted with an action that carries no valid clearance."""

    code = ErrorCode.UNFILTERED_ACTION


class WritesPausedError(GuardrailError):
    """The kill switch is on: no write may reach a platform."""

    code = ErrorCode.WRITES_PAUSED


class PolicyError(BidloopError):
    """A policy cannot be loaded or does not match the observation spec."""

    code = ErrorCode.POLICY_INVALID


class PlatformError(BidloopError):
    """An ad platform call failed.

    Attributes:
        platform: The platform's name (`google_ads`, `meta`, `amazon_ads`, `sim`).
        account_id: The account the call was for, if any.
        entity_id: The entity the call was for, if any.
        retryable: Whether sending the same request again may succeed.
    """

    code = ErrorCode.PLATFORM_FAILED

    def __init__(
        self,
        message: str,
        *,
        platform: str,
        account_id: str | None = None,
        entity_id: str | None = None,
        retryable: bool = False,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.platform = platform
        self.account_id = account_id
        self.entity_id = entity_id
        self.retryable = retryable


class PlatformAuthError(PlatformError):
    """Credentials are missing, expired or do not grant access to the account."""

    code = ErrorCode.PLATFORM_AUTH


class RateLimitedError(PlatformError):
    """The platform throttled us and said how long to wait.

    Attributes:
        retry_after_s: Seconds the platform asked us to wait (the floor of any backoff).
    """

    code = ErrorCode.RATE_LIMITED

    def __init__(self, message: str, *, platform: str, retry_after_s: float, **kwargs: object) -> None:
        super().__init__(message, platform=platform, retryable=True, **kwargs)  # type: ignore[arg-type]
        self.retry_after_s = retry_after_s


class RunError(BidloopError):
    """A run cannot start, resume or be found."""

    code = ErrorCode.RUN_FAILED

"""Retry platform calls in one place (tenacity), only when retryable, never blindly after an ambiguous failure.

Every platform client wraps each SDK call in `call_with_retries`. The client supplies a classifier
that maps the SDK's exception to a `Failure` (retryable? how long did the platform ask us to wait?
could the write have happened anyway?). The rules:

* Not retryable: raise at once.
* Retryable: wait max(the platform's hint, exponential backoff with jitter), capped; give up after
  `max_attempts` or `max_total_s`.
* The platform asks for a wait longer than `defer_above_s` (a daily quota, Meta's one-hour budget
  lock): do not sleep; raise `RateLimitedError` so the caller hands the action back as deferred.
* Ambiguous (timeout or dropped connection after the request left): call `reconcile()` first; if
  it reports the write already landed, return that instead of sending again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    stop_any,
    wait_exponential_jitter,
)

from bidloop.core.errors import RateLimitedError

__all__ = ["Failure", "RetryPolicy", "RetryStats", "call_with_retries"]

T = TypeVar("T")
log = logging.getLogger("bidloop.tools.retry")


@dataclass(frozen=True)
class Failure:
    """How a client classifies one exception.

    Attributes:
        retryable: Sending the same request again may succeed.
        wait_hint_s: The platform's own wait hint in seconds (Retry-After, Meta's regain-access minutes
            converted, Google's retry_delay), or None.
        ambiguous: The request may have been applied although it failed (timeout, dropped connection).
    """

    retryable: bool
    wait_hint_s: float | None = None
    ambiguous: bool = False


@dataclass(frozen=True)
class RetryPolicy:
    """Limits of the retry loop. Seconds throughout."""

    max_attempts: int = 5
    initial_wait_s: float = 1.0
    max_wait_s: float = 60.0
    max_total_s: float = 300.0
    defer_above_s: float = 120.0


@dataclass
class RetryStats:
    """Counters a client may pass in to learn how many attempts and retries a call took."""

    attempts: int = 0
    retries: int = 0
    reconciled: int = 0


class _WaitWithHint:
    """Wait max(platform hint, exponential backoff with jitter), never more than the policy's cap."""

    def __init__(self, policy: RetryPolicy, classify: Callable[[BaseException], Failure]) -> None:
        self._backoff = wait_exponential_jitter(multiplier=policy.initial_wait_s, max=policy.max_wait_s, jitter=1)
        self._classify = classify
        self._cap = max(policy.max_wait_s, policy.defer_above_s)

    def __call__(self, state: RetryCallState) -> float:
        backoff = float(self._backoff(state))
        hint = None
        if state.outcome is not None and state.outcome.failed:
            exc = state.outcome.exception()
            if exc is not None:
                hint = self._classify(exc).wait_hint_s
        return min(max(backoff, hint or 0.0), self._cap)


def call_with_retries(
    send: Callable[[], T],
    *,
    classify: Callable[[BaseException], Failure],
    platform: str,
    policy: RetryPolicy | None = None,
    reconcile: Callable[[], T | None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    stats: RetryStats | None = None,
) -> T:
    """Call `send` until it succeeds, a non-retryable error occurs, or the policy gives up.

    Args:
        send: Sends the request once and returns the platform's answer.
        classify: Maps an exception raised by `send` to a `Failure`.
        platform: The platform's name, for errors and logs.
        policy: Limits; the default is 5 attempts within 300 s.
        reconcile: After an ambiguous failure, reads back and returns the answer to use if the write
            already landed, or None to send again.
        sleep: Injected for tests (pass `lambda s: None`).
        stats: Filled with attempt counts if given.

    Raises:
        RateLimitedError: If the platform asked for a wait beyond `policy.defer_above_s`.
        BaseException: The last exception from `send` when it is not retryable or retries ran out.
    """
    policy = policy or RetryPolicy()
    counters = stats if stats is not None else RetryStats()

    def _should_retry(exc: BaseException) -> bool:
        failure = classify(exc)
        if failure.retryable and failure.wait_hint_s is not None and failure.wait_hint_s > policy.defer_above_s:
            return False
        return failure.retryable

    def _before_sleep(state: RetryCallState) -> None:
        counters.retries += 1
        exc = state.outcome.exception() if state.outcome is not None else None
        log.warning("%s call failed (%s); retry %d", platform, type(exc).__name__, counters.retries)

    retrying = Retrying(
        retry=retry_if_exception(_should_retry),
        wait=_WaitWithHint(policy, classify),
        stop=stop_any(stop_after_attempt(policy.max_attempts), stop_after_delay(policy.max_total_s)),
        sleep=sleep,
        before_sleep=_before_sleep,
        reraise=True,
    )
    last_ambiguous = False
    for attempt in retrying:
        with attempt:
            if last_ambiguous and reconcile is not None:
                landed = reconcile()
                if landed is not None:
                    counters.reconciled += 1
                    return landed
            counters.attempts += 1
            try:
                return send()
            except BaseException as exc:
                failure = classify(exc)
                last_ambiguous = failure.ambiguous
                if failure.retryable and failure.wait_hint_s is not None and failure.wait_hint_s > policy.defer_above_s:
                    raise RateLimitedError(
                        f"{platform} asked to wait {failure.wait_hint_s:.0f} s; deferring instead of blocking the run",
                        platform=platform,
                        retry_after_s=failure.wait_hint_s,
                    ) from exc
                raise
    raise AssertionError("unreachable: tenacity either returns or re-raises")  # pragma: no cover

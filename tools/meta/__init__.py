"""Meta (Facebook/Instagram) ads behind bidloop's `PlatformClient` protocol, and a fake Graph API to test it.

`MetaClient` wraps the facebook-business SDK (batches of at most 50 calls, minor currency units at
the edge, throttling and the 4-budget-changes-per-hour limit honoured); `FakeMetaServer` speaks the
same wire protocol on 127.0.0.1 for tests and demos.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bidloop.tools.meta._budget_rate import BUDGET_CHANGES_PER_HOUR, BudgetChangeTracker
from bidloop.tools.meta.client import (
    DEFAULT_TIMEOUT_S,
    ENV_ACCESS_TOKEN,
    ENV_APP_ID,
    ENV_APP_SECRET,
    META_BATCH_LIMIT,
    AccessCheck,
    MetaClient,
    MetaCredentials,
    build_session,
)

if TYPE_CHECKING:
    from bidloop.tools.meta.fake_server import FakeMetaServer, RecordedRequest, demo_snapshot

_FAKE_SERVER_NAMES = ("FakeMetaServer", "RecordedRequest", "demo_snapshot")

__all__ = [
    "BUDGET_CHANGES_PER_HOUR",
    "DEFAULT_TIMEOUT_S",
    "ENV_ACCESS_TOKEN",
    "ENV_APP_ID",
    "ENV_APP_SECRET",
    "META_BATCH_LIMIT",
    "AccessCheck",
    "BudgetChangeTracker",
    "FakeMetaServer",
    "MetaClient",
    "MetaCredentials",
    "RecordedRequest",
    "build_session",
    "demo_snapshot",
]


def __getattr__(name: str) -> Any:
    """Import the fake server on first use, so `python -m bidloop.tools.meta.fake_server` runs it cleanly."""
    if name in _FAKE_SERVER_NAMES:
        from bidloop.tools.meta import fake_server

        return getattr(fake_server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

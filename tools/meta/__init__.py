"""Meta (Facebook/Instagram) ads behind bidloop's `PlatformClient` protocol, tested against `bidloop.testing.meta`.

`MetaClient` wraps the facebook-business SDK (batches of at most 50 calls, minor currency units at
the edge, throttling and the 4-budget-changes-per-hour limit honoured).
"""

from __future__ import annotations

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

__all__ = [
    "BUDGET_CHANGES_PER_HOUR",
    "DEFAULT_TIMEOUT_S",
    "ENV_ACCESS_TOKEN",
    "ENV_APP_ID",
    "ENV_APP_SECRET",
    "META_BATCH_LIMIT",
    "AccessCheck",
    "BudgetChangeTracker",
    "MetaClient",
    "MetaCredentials",
    "build_session",
]

"""Google Ads behind bidloop's `PlatformClient` protocol (google-ads SDK, API v26).

`GoogleAdsPlatformClient.from_account(account)` builds a client from google-ads.yaml or `GOOGLE_ADS_*`
variables; an account whose `endpoint` is on 127.0.0.1 talks to a local server such as
`bidloop.testing.google_ads.fake_server` instead.
"""

from __future__ import annotations

from bidloop.tools.google_ads._operations import MAX_OPERATIONS_PER_MUTATE
from bidloop.tools.google_ads.client import (
    DEFAULT_TIMEOUT_S,
    AccessProblem,
    AccessReport,
    GoogleAdsPlatformClient,
)

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "MAX_OPERATIONS_PER_MUTATE",
    "AccessProblem",
    "AccessReport",
    "GoogleAdsPlatformClient",
]

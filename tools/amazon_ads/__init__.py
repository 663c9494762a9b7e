"""Amazon Ads (Sponsored Products v3) behind bidloop's platform protocol, and a local fake of its API.

`AmazonAdsClient.from_account(account)` builds a client from bidloop.yaml and the LWA variables;
`FakeAmazonAdsServer` serves the same wire protocol on 127.0.0.1 for tests and demos.
"""

from __future__ import annotations

from typing import Any

from bidloop.tools.amazon_ads._credentials import CREDENTIAL_ENV_VARS, AmazonCredentials, load_credentials
from bidloop.tools.amazon_ads._failures import classify_failure
from bidloop.tools.amazon_ads.client import (
    DEFAULT_TIMEOUT_S,
    MAX_ITEMS_PER_REQUEST,
    AccessCheck,
    AmazonAdsClient,
    AmazonApis,
    check_access,
)

__all__ = [
    "CREDENTIAL_ENV_VARS",
    "DEFAULT_TIMEOUT_S",
    "FAULTS",
    "MAX_ITEMS_PER_REQUEST",
    "AccessCheck",
    "AmazonAdsClient",
    "AmazonApis",
    "AmazonCredentials",
    "FakeAmazonAdsServer",
    "check_access",
    "classify_failure",
    "load_credentials",
]


def __getattr__(name: str) -> Any:
    # The fake server is imported on first use, so `python -m bidloop.tools.amazon_ads.fake_server`
    # does not find its module already imported by this package (runpy warns about that).
    if name in {"FAULTS", "FakeAmazonAdsServer"}:
        from bidloop.tools.amazon_ads import fake_server

        return getattr(fake_server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

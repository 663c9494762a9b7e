"""Amazon Ads (Sponsored Products v3) behind bidloop's platform protocol.

`AmazonAdsClient.from_account(account)` builds a client from bidloop.yaml and the LWA variables;
`bidloop.testing.amazon_ads` serves the same wire protocol on 127.0.0.1 for tests and demos.
"""

from __future__ import annotations

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
    "MAX_ITEMS_PER_REQUEST",
    "AccessCheck",
    "AmazonAdsClient",
    "AmazonApis",
    "AmazonCredentials",
    "check_access",
    "classify_failure",
    "load_credentials",
]

"""Read-only checks against a real Amazon Ads profile; skipped unless credentials and a profile are set.

Set `AD_API_CLIENT_ID`, `AD_API_CLIENT_SECRET`, `AD_API_REFRESH_TOKEN`, plus
`BIDLOOP_AMAZON_PROFILE_ID` and `BIDLOOP_AMAZON_MARKETPLACE` (NA, EU or FE) and optionally
`BIDLOOP_AMAZON_CURRENCY` / `BIDLOOP_AMAZON_TIME_ZONE`. Nothing here writes: the only apply call is a
`validate_only` dry run, which sends nothing on Amazon.
"""

from __future__ import annotations

import os

import pytest

from bidloop.core.actions import AgentName, SetBid
from bidloop.core.clearance import _issue_clearance
from bidloop.core.decisions import WriteStatus
from bidloop.core.entities import EntityKind, Platform
from bidloop.core.settings import AccountConfig
from bidloop.tools.amazon_ads import AmazonAdsClient, check_access

_NEEDED = (
    "AD_API_CLIENT_ID",
    "AD_API_CLIENT_SECRET",
    "AD_API_REFRESH_TOKEN",
    "BIDLOOP_AMAZON_PROFILE_ID",
    "BIDLOOP_AMAZON_MARKETPLACE",
)
_MISSING = [name for name in _NEEDED if not os.environ.get(name)]

pytestmark = pytest.mark.skipif(
    bool(_MISSING), reason=f"live Amazon Ads test: set {', '.join(_MISSING)} to run it against a real profile"
)


@pytest.fixture
def account() -> AccountConfig:
    return AccountConfig(
        id="amazon-live",
        platform=Platform.AMAZON_ADS,
        backend="live",
        platform_account_id=os.environ.get("BIDLOOP_AMAZON_PROFILE_ID"),
        marketplace=os.environ.get("BIDLOOP_AMAZON_MARKETPLACE"),
        currency=os.environ.get("BIDLOOP_AMAZON_CURRENCY", "USD"),
        time_zone=os.environ.get("BIDLOOP_AMAZON_TIME_ZONE", "UTC"),
    )


def test_accounts_check_sees_the_profile(account: AccountConfig) -> None:
    report = check_access(account)
    assert report.ok, f"{report.message} (hint: {report.hint})"


def test_a_snapshot_reads_and_a_dry_run_sends_nothing(account: AccountConfig) -> None:
    client = AmazonAdsClient.from_account(account, report_poll_interval_s=15.0, report_max_wait_s=1800.0)
    snapshot = client.read_snapshot(account.id)
    assert snapshot.platform is Platform.AMAZON_ADS
    keywords = [k for k in snapshot.of_kind(EntityKind.KEYWORD) if k.cpc_bid_micros]
    if not keywords:
        pytest.skip("the profile has no keyword with a bid to dry-run")
    keyword = keywords[0]
    assert keyword.cpc_bid_micros is not None
    action = SetBid(
        action_id="live-dry-run",
        entity=keyword.ref,
        agent=AgentName.OPERATOR,
        reason="integration dry run",
        old_cpc_bid_micros=keyword.cpc_bid_micros,
        new_cpc_bid_micros=keyword.cpc_bid_micros,
    )
    [result] = client.apply(
        account.id, [_issue_clearance(action, verdict="allowed", rule_id="test")], validate_only=True
    )
    assert result.status is WriteStatus.VALIDATED

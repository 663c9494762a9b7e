"""Read-only checks against a real Google Ads account; skipped unless credentials are present.

Set GOOGLE_ADS_DEVELOPER_TOKEN, GOOGLE_ADS_CLIENT_ID, GOOGLE_ADS_CLIENT_SECRET, GOOGLE_ADS_REFRESH_TOKEN and
BIDLOOP_TEST_GOOGLE_ADS_CUSTOMER_ID (10 digits; a test account is best), plus GOOGLE_ADS_LOGIN_CUSTOMER_ID for
manager access. Writes are only validated (validate_only=True): nothing changes on the account.
"""

from __future__ import annotations

import os

import pytest

from bidloop.core.actions import AgentName, SetBudget
from bidloop.core.clearance import _issue_clearance
from bidloop.core.decisions import WriteStatus
from bidloop.core.entities import EntityKind, Platform
from bidloop.core.settings import AccountConfig
from bidloop.tools.google_ads import GoogleAdsPlatformClient

_NEEDED = (
    "GOOGLE_ADS_DEVELOPER_TOKEN",
    "GOOGLE_ADS_CLIENT_ID",
    "GOOGLE_ADS_CLIENT_SECRET",
    "GOOGLE_ADS_REFRESH_TOKEN",
    "BIDLOOP_TEST_GOOGLE_ADS_CUSTOMER_ID",
)
_missing = [name for name in _NEEDED if not os.environ.get(name)]
pytestmark = pytest.mark.skipif(
    bool(_missing), reason=f"live Google Ads test needs credentials; missing: {', '.join(_missing)}"
)


@pytest.fixture(scope="module")
def client() -> GoogleAdsPlatformClient:
    account = AccountConfig(
        id="live-google",
        platform=Platform.GOOGLE_ADS,
        backend="live",
        platform_account_id=os.environ.get("BIDLOOP_TEST_GOOGLE_ADS_CUSTOMER_ID"),
        currency=os.environ.get("BIDLOOP_TEST_GOOGLE_ADS_CURRENCY", "USD"),
        login_customer_id=os.environ.get("GOOGLE_ADS_LOGIN_CUSTOMER_ID") or None,
    )
    return GoogleAdsPlatformClient.from_account(account, timeout_s=60)


def test_credentials_reach_the_account(client: GoogleAdsPlatformClient) -> None:
    report = client.check_access()
    assert report.ok, report.problems


def test_snapshot_reads_and_a_budget_change_validates(client: GoogleAdsPlatformClient) -> None:
    snapshot = client.read_snapshot("live-google")
    campaigns = [c for c in snapshot.of_kind(EntityKind.CAMPAIGN) if c.daily_budget_micros]
    if not campaigns:
        pytest.skip("the account has no campaign with a budget")
    campaign = campaigns[0]
    budget = campaign.daily_budget_micros or 0
    action = SetBudget(
        action_id="live-validate",
        entity=campaign.ref,
        agent=AgentName.OPERATOR,
        reason="integration test (validate only)",
        old_daily_budget_micros=budget,
        new_daily_budget_micros=budget,
    )
    clearance = _issue_clearance(action, verdict="allowed", rule_id="test")
    [result] = client.apply("live-google", [clearance], validate_only=True)
    assert result.status is WriteStatus.VALIDATED, result.message

"""Against a real Meta ad account: read-only checks, and a validate-only write. Skipped without credentials.

Set META_ACCESS_TOKEN and BIDLOOP_TEST_META_ACCOUNT (e.g. act_123); optionally META_APP_ID / META_APP_SECRET
and BIDLOOP_TEST_META_CURRENCY (default USD), BIDLOOP_TEST_META_TIME_ZONE (default UTC).
"""

from __future__ import annotations

import os

import pytest

from bidloop.core.actions import AgentName, SetBudget
from bidloop.core.clearance import _issue_clearance
from bidloop.core.decisions import WriteStatus
from bidloop.core.entities import EntityKind, Platform
from bidloop.core.settings import AccountConfig
from bidloop.tools.meta import ENV_ACCESS_TOKEN, MetaClient

pytestmark = pytest.mark.skipif(
    not (os.environ.get(ENV_ACCESS_TOKEN) and os.environ.get("BIDLOOP_TEST_META_ACCOUNT")),
    reason=f"live Meta test: set {ENV_ACCESS_TOKEN} and BIDLOOP_TEST_META_ACCOUNT (act_...) to run it",
)


@pytest.fixture(scope="module")
def client() -> MetaClient:
    account = AccountConfig(
        id="meta-live",
        platform=Platform.META,
        backend="live",
        platform_account_id=os.environ.get("BIDLOOP_TEST_META_ACCOUNT"),
        currency=os.environ.get("BIDLOOP_TEST_META_CURRENCY", "USD"),
        time_zone=os.environ.get("BIDLOOP_TEST_META_TIME_ZONE", "UTC"),
    )
    return MetaClient.from_account(account)


def test_live_access_check_sees_the_account(client: MetaClient) -> None:
    check = client.check_access()
    assert check.ok, f"{check.problem} ({check.hint})"


def test_live_snapshot_reads_ad_sets(client: MetaClient) -> None:
    snapshot = client.read_snapshot("meta-live")
    assert snapshot.platform is Platform.META
    assert all(e.ref.account_id == "meta-live" for e in snapshot.entities)


def test_live_validate_only_budget_change_changes_nothing(client: MetaClient) -> None:
    snapshot = client.read_snapshot("meta-live")
    holders = [e for e in snapshot.of_kind(EntityKind.AD_GROUP) if e.daily_budget_micros]
    if not holders:
        pytest.skip("the account has no ad set with a daily budget")
    adset = holders[0]
    old = adset.daily_budget_micros or 0
    action = SetBudget(
        action_id="live-validate",
        entity=adset.ref,
        agent=AgentName.OPERATOR,
        reason="live validate-only test",
        old_daily_budget_micros=old,
        new_daily_budget_micros=old + 1_000_000,
    )
    clearance = _issue_clearance(action, verdict="allowed", rule_id="test")
    (result,) = client.apply("meta-live", [clearance], validate_only=True)
    assert result.status is WriteStatus.VALIDATED, result.message
    after = client.read_back("meta-live", [adset.ref])[adset.ref.key]
    assert after.daily_budget_micros == old

"""`bidloop run` against a Google Ads account as people run it: every write it applies is one Google acts on.

The fake Google Ads API is seeded with a manual-CPC campaign, a target-ROAS campaign, a maximize-
conversions campaign with a target CPA, a portfolio target-ROAS strategy serving two campaigns, a
campaign on a CUSTOM_PERIOD (total) budget and a paused campaign, each with two weeks of data. The
Smart Bidding campaigns' ad groups and keywords still hold CPC bids, as real accounts often do after a
switch: Google stores them and ignores them (v26 `AdGroup.cpc_bid_micros`: "ignored if the ad group's
campaign is using a portfolio bidding strategy"), and so does the fake (`ignored_bid_writes`). The real CLI
path runs (`bidloop run --account ID --json`: real client, real SDK, real gRPC wire protocol).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from bidloop.cli.main import main as cli
from bidloop.core.entities import BiddingStrategy, BudgetPeriod, EntityKind, EntityRef, EntityState, Platform, Status
from bidloop.core.metrics import Metrics
from bidloop.core.snapshot import Snapshot
from bidloop.testing.google_ads.fake_server import FakeGoogleAdsServer

ACCOUNT = "live-google-as-run"
CUSTOMER = "1234567890"
UNIT = 1_000_000
MANUAL, TROAS, MAXCONV, PORT_A, PORT_B, TOTAL, PAUSED = "101", "102", "103", "104", "105", "106", "107"
PORTFOLIO = "9001"
SMART = {TROAS, MAXCONV, PORT_A, PORT_B, TOTAL}
"""Campaigns whose strategy sets each auction's bid itself."""


def _ref(kind: EntityKind, entity_id: str) -> EntityRef:
    return EntityRef(platform=Platform.GOOGLE_ADS, account_id=ACCOUNT, kind=kind, entity_id=entity_id)


def _history(daily_spend: int, roas: float, cpa: int, clicks: int) -> dict[str, Any]:
    day = Metrics(
        impressions=clicks * 20,
        clicks=clicks,
        cost_micros=daily_spend * UNIT,
        conversions=round(daily_spend / cpa, 2),
        conversion_value_micros=int(daily_spend * roas * UNIT),
    )
    today = Metrics(
        impressions=day.impressions // 3,
        clicks=day.clicks // 3,
        cost_micros=day.cost_micros // 3,
        conversions=round(day.conversions / 3, 2),
        conversion_value_micros=day.conversion_value_micros // 3,
    )
    return {"daily_history": [day] * 14, "trailing_7d": sum([day] * 7, Metrics()), "today": today}


def _campaign(cid: str, strategy: BiddingStrategy, perf: dict[str, Any], **fields: Any) -> list[EntityState]:
    """A campaign with one ad group and one keyword; bids stored on both whatever the strategy."""
    group, keyword = f"{cid}1", f"{cid}1~5{cid}"
    return [
        EntityState(
            ref=_ref(EntityKind.CAMPAIGN, cid), name=f"Campaign {cid}", campaign_id=cid, bidding_strategy=strategy,
            **perf, **fields,
        ),
        EntityState(
            ref=_ref(EntityKind.AD_GROUP, group), name=f"Group {cid}", parent_id=cid, campaign_id=cid,
            bidding_strategy=strategy, cpc_bid_micros=1_200_000, **perf,
        ),
        EntityState(
            ref=_ref(EntityKind.KEYWORD, keyword), name=f"keyword {cid}", text=f"keyword {cid}", parent_id=group,
            campaign_id=cid, bidding_strategy=strategy, cpc_bid_micros=1_300_000, **perf,
        ),
    ]  # fmt: skip


def _account_as_run(now: datetime) -> Snapshot:
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    entities = [
        EntityState(
            ref=_ref(EntityKind.BIDDING_STRATEGY, PORTFOLIO),
            name="Shared tROAS",
            bidding_strategy=BiddingStrategy.TARGET_ROAS,
            bidding_strategy_id=PORTFOLIO,
            target_roas_bps=25_000,
        ),
        *_campaign(MANUAL, BiddingStrategy.MANUAL_CPC, _history(95, 5.0, 20, 120), daily_budget_micros=100 * UNIT),
        *_campaign(
            TROAS, BiddingStrategy.TARGET_ROAS, _history(195, 6.0, 15, 300),
            daily_budget_micros=200 * UNIT, target_roas_bps=35_000,
        ),
        *_campaign(
            MAXCONV, BiddingStrategy.MAXIMIZE_CONVERSIONS, _history(148, 1.2, 40, 90),
            daily_budget_micros=150 * UNIT, target_cpa_micros=25 * UNIT,
        ),
        *_campaign(
            PORT_A, BiddingStrategy.TARGET_ROAS, _history(79, 4.0, 20, 110),
            daily_budget_micros=80 * UNIT, bidding_strategy_id=PORTFOLIO,
        ),
        *_campaign(
            PORT_B, BiddingStrategy.TARGET_ROAS, _history(79, 4.0, 20, 110),
            daily_budget_micros=80 * UNIT, bidding_strategy_id=PORTFOLIO,
        ),
        *_campaign(
            TOTAL, BiddingStrategy.MAXIMIZE_CONVERSION_VALUE, _history(50, 3.0, 25, 80),
            daily_budget_micros=50 * UNIT, budget_period=BudgetPeriod.LIFETIME, lifetime_budget_micros=3_000 * UNIT,
            budget_remaining_micros=1_000 * UNIT, flight_start=midnight - timedelta(days=19),
            flight_end=midnight + timedelta(days=19), target_roas_bps=30_000,
        ),
        *_campaign(
            PAUSED, BiddingStrategy.MANUAL_CPC, _history(40, 6.0, 10, 60),
            daily_budget_micros=60 * UNIT, status=Status.PAUSED,
        ),
    ]  # fmt: skip
    return Snapshot(account_id=ACCOUNT, platform=Platform.GOOGLE_ADS, as_of=now, entities=entities)


@pytest.fixture
def fake() -> Iterator[FakeGoogleAdsServer]:
    now = datetime.now(UTC)
    with FakeGoogleAdsServer.from_snapshot(_account_as_run(now), customer_id=CUSTOMER, today=now.date()) as server:
        yield server


def _config(tmp_path: Path, fake: FakeGoogleAdsServer, *, currency: str = "USD", time_zone: str = "UTC") -> Path:
    account = {
        "id": ACCOUNT,
        "platform": "google_ads",
        "backend": "live",
        "platform_account_id": CUSTOMER,
        "endpoint": fake.address,
        "currency": currency,
        "time_zone": time_zone,
    }
    path = tmp_path / "bidloop.yaml"
    settings = {"data_dir": str(tmp_path / "data"), "accounts": [account], "policy": "heuristic"}
    path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    return path


def _run(capsys: pytest.CaptureFixture[str], config: Path) -> tuple[int, dict[str, Any] | None, str]:
    code = cli(["--config", str(config), "run", "--account", ACCOUNT, "--json"])
    captured = capsys.readouterr()
    try:
        report = json.loads(captured.out)
    except ValueError:
        report = None
    return code, report, captured.out + captured.err


def _sent_operations(fake: FakeGoogleAdsServer) -> list[Any]:
    """Every operation of every applied (not validate-only) mutate the fake received."""
    return [
        op
        for r in fake.received
        if r.method == "Mutate" and not r.request.validate_only
        for op in r.request.mutate_operations
    ]


def _campaign_of(resource_name: str) -> str:
    """The campaign id of an ad group / criterion resource name of this account (ad groups are `{cid}1`)."""
    tail = resource_name.rsplit("/", 1)[-1].split("~", 1)[0]
    return tail[:-1]


def test_a_run_applies_only_writes_google_acts_on(
    fake: FakeGoogleAdsServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report, output = _run(capsys, _config(tmp_path, fake))

    assert code == 0 and report is not None and report["status"] == "completed", output
    ops = _sent_operations(fake)
    # Google ignored no CPC bid bidloop sent, and no write switched a campaign's bidding strategy.
    assert fake.ignored_bid_writes == []
    assert fake.strategy_switches == []
    bid_resources = [
        getattr(op, field).update.resource_name
        for op in ops
        for field in ("ad_group_operation", "ad_group_criterion_operation")
        if field in op and "cpc_bid_micros" in getattr(op, field).update_mask.paths
    ]
    assert all(_campaign_of(name) not in SMART for name in bid_resources), bid_resources
    # No write on the paused campaign's budget or bids.
    assert not [name for name in bid_resources if _campaign_of(name) == PAUSED]
    # Every applied line names an entity the fake received a write for, on the lever its strategy reads.
    for line in report["actions"]:
        if line.get("outcome") != "applied":
            continue
        kind, entity_id = line["entity"].split(":")[2], line["entity"].rsplit(":", 1)[-1]
        if line["kind"] == "set_bid":
            assert entity_id.split("~")[0][:-1] not in SMART, line
        if line["kind"] in ("set_target_roas", "set_target_cpa"):
            assert kind == "bidding_strategy" or entity_id in SMART or entity_id[:-1] in SMART, line
            assert not (kind == "campaign" and entity_id in (PORT_A, PORT_B)), line  # the portfolio holds it


def test_targets_proposed_on_smart_bidding_holders_are_written_where_google_reads_them(
    fake: FakeGoogleAdsServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report, output = _run(capsys, _config(tmp_path, fake))

    assert code == 0 and report is not None, output
    targets = [line for line in report["actions"] if line["kind"] in ("set_target_roas", "set_target_cpa")]
    # The bid shifter's lever under Smart Bidding is the target (issue 11): the account has five such holders.
    assert targets, [(line["kind"], line["entity"], line["verdict"]) for line in report["actions"]]
    paths = {
        path
        for op in _sent_operations(fake)
        for field in ("campaign_operation", "bidding_strategy_operation")
        if field in op
        for path in getattr(op, field).update_mask.paths
    }
    allowed = {
        "target_roas.target_roas",
        "target_cpa.target_cpa_micros",
        "maximize_conversion_value.target_roas",
        "maximize_conversions.target_cpa_micros",
    }
    assert paths <= allowed
    for line in targets:
        if line.get("outcome") != "applied":
            continue
        kind, entity_id = line["entity"].split(":")[2], line["entity"].rsplit(":", 1)[-1]
        roas, cpa = (
            fake.portfolio_target(int(entity_id))
            if kind == "bidding_strategy"
            else fake.campaign_target(int(entity_id))
        )
        if line["kind"] == "set_target_roas":
            assert roas is not None and roas != (2.5 if kind == "bidding_strategy" else None), line
        else:
            assert cpa is not None and cpa != 25 * UNIT, line


@pytest.mark.parametrize(
    ("currency", "time_zone", "configured", "reported"),
    [("EUR", "UTC", "'EUR'", "'USD'"), ("USD", "Europe/Berlin", "'Europe/Berlin'", "'UTC'")],
)
def test_a_currency_or_time_zone_that_differs_from_the_account_stops_it_naming_both_values(
    fake: FakeGoogleAdsServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    currency: str,
    time_zone: str,
    configured: str,
    reported: str,
) -> None:
    code, report, output = _run(capsys, _config(tmp_path, fake, currency=currency, time_zone=time_zone))

    assert configured in output and reported in output, output
    assert code != 0 or (report is not None and report.get("status") != "completed")
    assert fake.request_count["Mutate"] == 0
    assert sum(fake.writes_by_entity.values()) == 0

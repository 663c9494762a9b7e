"""A bidloop run against an Amazon account as Amazon runs it: lagging same-day reports, a duplicate report
request, up-and-down dynamic bidding, per-item throttling, and a profile in another currency.

The real pipeline (`run_cycle`: observe, agents, guardrails, apply, report) runs with the real client and
SDK against the fake server, which encodes Amazon's rules itself (see `bidloop.testing.amazon_ads`).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from bidloop.core.actions import AgentName, SetBid
from bidloop.core.entities import EntityKind, EntityRef, Platform
from bidloop.core.settings import Settings, load_settings
from bidloop.graph.runner import RunOutcome, run_cycle
from bidloop.testing.amazon_ads.fake_server import FakeAmazonAdsServer, demo_snapshot
from bidloop.tools.amazon_ads import AmazonAdsClient
from bidloop.tools.registry import ClientSet

ACCOUNT = "live-amazon"
PROFILE = "1000000007"
DAY = date(2026, 4, 14)
AS_OF = datetime(2026, 4, 14, 10, 0, tzinfo=UTC)  # the demo account's moment: 24.00 of 50.00 spent by 10:00
ENV = {"AD_API_CLIENT_ID": "amzn1.application-oa2-client.it", "AD_API_CLIENT_SECRET": "it", "AD_API_REFRESH_TOKEN": "r"}


def _fake(**kwargs: Any) -> FakeAmazonAdsServer:
    fake = FakeAmazonAdsServer.from_snapshot(demo_snapshot(today=DAY), profile_id=PROFILE, **kwargs)
    # Campaign 101 bids up and down with +50 % on top of search: Amazon may pay up to 3x its keyword bids.
    fake.set_dynamic_bidding("101", "AUTO_FOR_SALES", {"PLACEMENT_TOP": 50})
    return fake


def _settings(tmp_path: Path, fake: FakeAmazonAdsServer, *, currency: str = "USD") -> Settings:
    account = {
        "id": ACCOUNT,
        "platform": "amazon_ads",
        "backend": "live",
        "platform_account_id": PROFILE,
        "marketplace": "NA",
        "currency": currency,
        "time_zone": "UTC",
        "endpoint": fake.address,
    }
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "bidloop.yaml"
    data = {"data_dir": str(tmp_path / "data"), "accounts": [account], "policy": "heuristic"}
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return load_settings(path)


def _client(settings: Settings, sleeps: list[float], **kwargs: Any) -> AmazonAdsClient:
    return AmazonAdsClient.from_account(
        settings.account(ACCOUNT), environ=ENV, sleep=sleeps.append, now=lambda: AS_OF, **kwargs
    )


def _run(settings: Settings, client: AmazonAdsClient, *, mode: str = "dry-run", **kwargs: Any) -> RunOutcome:
    outcome = run_cycle(settings, mode=mode, clients=ClientSet(clients={ACCOUNT: client}), **kwargs)  # type: ignore[arg-type]
    assert outcome.status == "completed" and outcome.report is not None
    return outcome


def _raises(outcome: RunOutcome) -> set[str]:
    assert outcome.report is not None
    return {
        line.entity
        for line in outcome.report.actions
        if line.kind == "set_bid" and line.old_value and line.new_value and line.new_value > line.old_value
    }


@pytest.fixture(autouse=True)
def _own_token_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv("BIDLOOP_CONFIG", raising=False)
    # python-amazon-ad-api caches LWA tokens process-wide by refresh token: one per test's fake.
    ENV["AD_API_REFRESH_TOKEN"] = f"Atzr|it-{tmp_path.name}"


@pytest.fixture
def lagging() -> Iterator[FakeAmazonAdsServer]:
    # Amazon's defaults here: report rows 3 h late, several polls, budget usage 15 min late.
    with _fake() as fake:
        yield fake


def test_report_lag_does_not_make_an_on_pace_account_look_behind_nor_lift_bids(
    lagging: FakeAmazonAdsServer, tmp_path: Path
) -> None:
    with _fake(report_lag_s=0, budget_usage_lag_s=0) as complete:
        reference = _run(
            _settings(tmp_path / "ref", complete), _client(_settings(tmp_path / "ref", complete), [], report_lag_s=0)
        )

    settings = _settings(tmp_path / "lag", lagging)
    sleeps: list[float] = []
    outcome = _run(settings, _client(settings, sleeps))

    assert outcome.report is not None and reference.report is not None
    [summary], [truth] = outcome.report.accounts, reference.report.accounts
    assert truth.pace_ratio is not None and summary.pace_ratio is not None
    # Read on the wall clock, 3 h of missing rows would put it at 70 % of pace; judged at what is known, it is on pace.
    assert summary.pace_ratio >= truth.pace_ratio * 0.99
    assert summary.expected_spend_fraction == pytest.approx(9.75 / 24)  # budget usage evaluated at 09:45
    assert not any("lags pace" in line.reason for line in outcome.report.actions)
    assert _raises(outcome) <= _raises(reference)  # no bid lift that only the lag would cause
    assert any("known up to 09:45" in note for note in outcome.report.notes)
    assert sleeps, "the reports took several polls"


def test_a_second_run_the_same_day_reuses_the_reports_amazon_calls_duplicates(
    lagging: FakeAmazonAdsServer, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, lagging)
    _run(settings, _client(settings, []))
    assert len(lagging.reports) == 4

    second = _run(settings, _client(settings, []))  # a new process: it remembers nothing

    assert lagging.requests_by_endpoint["POST /reporting/reports"] == 8  # four of them answered 425
    assert len(lagging.reports) == 4
    assert second.report is not None and [a.account_id for a in second.report.accounts] == [ACCOUNT]


def test_a_live_run_resends_the_items_amazon_throttled_and_applies_them(
    lagging: FakeAmazonAdsServer, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, lagging)
    proposals = [
        SetBid(
            action_id=f"op-{keyword_id}",
            entity=EntityRef(
                platform=Platform.AMAZON_ADS, account_id=ACCOUNT, kind=EntityKind.KEYWORD, entity_id=keyword_id
            ),
            agent=AgentName.OPERATOR,
            reason="operator asked for +5 %",
            old_cpc_bid_micros=old,
            new_cpc_bid_micros=old * 105 // 100,
        )
        for keyword_id, old in (("301", 800_000), ("302", 900_000))
    ]
    lagging.inject("partial_failure", ids=["301"], reason="THROTTLED")

    outcome = _run(settings, _client(settings, []), mode="live", proposals=proposals)

    assert outcome.report is not None
    lines = {line.action_id: line for line in outcome.report.actions if line.action_id.startswith("op-")}
    assert {a: (line.verdict, line.outcome) for a, line in lines.items()} == {
        "op-301": ("allowed", "applied"),
        "op-302": ("allowed", "applied"),
    }
    puts = [
        [item["keywordId"] for item in r.body["keywords"]] for r in lagging.requests if r.endpoint == "PUT /sp/keywords"
    ]
    assert ["301"] in puts[1:]  # sent again alone
    assert lagging.entities["keywords"]["301"]["bid"] == 0.84


def test_a_profile_in_another_currency_stops_the_account_naming_both_values(tmp_path: Path) -> None:
    with _fake(currency="EUR") as euro:
        settings = _settings(tmp_path, euro, currency="USD")
        outcome = _run(settings, _client(settings, []))

    assert outcome.report is not None
    assert [line for line in outcome.report.actions if line.account_id == ACCOUNT] == []
    [note] = [n for n in outcome.report.notes if n.startswith(f"{ACCOUNT}: stopped")]
    assert "'USD'" in note and "'EUR'" in note
    assert euro.requests_by_endpoint["POST /reporting/reports"] == 0

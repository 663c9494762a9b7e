"""`bidloop run` against a Meta account as people run it: every write it applies is one Meta acts on.

The fake Graph API is seeded with a HUF account in Los Angeles time (configured to match), a CBO
campaign with a lifetime budget, an ad set under a paused campaign, a disapproved ad, a cost-cap ad
set and a lowest-cost ad set, each with two weeks of data. The real CLI path runs (`bidloop run
--account ID --json`: real client, real SDK, real wire protocol). What Meta does with each write is
the fake's, written from Meta's documentation (see `tests/unit/test_meta_platform_facts.py`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from bidloop.cli.main import main as cli
from bidloop.core.entities import BiddingStrategy, BudgetPeriod, EntityKind, EntityRef, EntityState, Platform, Status
from bidloop.core.metrics import Metrics
from bidloop.core.snapshot import Snapshot
from bidloop.testing.meta.fake_server import FakeMetaServer

TOKEN = "meta-fake-token-as-run"  # the fake's own token, not a secret
ACCOUNT = "live-meta-huf"
ZONE = ZoneInfo("America/Los_Angeles")
UNIT = 1_000_000
FORINT = UNIT  # Meta offset 1 for HUF: one Meta unit is one forint (https://developers.facebook.com/docs/marketing-api/currencies)


def _ref(kind: EntityKind, entity_id: str) -> EntityRef:
    return EntityRef(platform=Platform.META, account_id=ACCOUNT, kind=kind, entity_id=entity_id)


def _history(daily_spend_forints: int, roas: float, cpa_forints: int) -> dict[str, Any]:
    spend = daily_spend_forints * FORINT
    day = Metrics(
        impressions=daily_spend_forints // 2,
        clicks=max(1, daily_spend_forints // 150),
        cost_micros=spend,
        conversions=round(daily_spend_forints / cpa_forints, 2),
        conversion_value_micros=int(spend * roas),
    )
    today = Metrics(
        impressions=day.impressions // 3,
        clicks=day.clicks // 3,
        cost_micros=spend // 3,
        conversions=round(day.conversions / 3, 2),
        conversion_value_micros=day.conversion_value_micros // 3,
    )
    return {"daily_history": [day] * 14, "today": today}


def _adset(entity_id: str, campaign_id: str, **fields: Any) -> EntityState:
    return EntityState(
        ref=_ref(EntityKind.AD_GROUP, entity_id),
        name=f"Ad set {entity_id}",
        parent_id=campaign_id,
        campaign_id=campaign_id,
        **fields,
    )


def _ad(entity_id: str, adset_id: str, campaign_id: str, **fields: Any) -> EntityState:
    return EntityState(
        ref=_ref(EntityKind.CREATIVE, entity_id),
        name=f"Ad {entity_id}",
        parent_id=adset_id,
        campaign_id=campaign_id,
        **fields,
    )


def _account_as_run(now: datetime) -> Snapshot:
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    entities = [
        EntityState(
            ref=_ref(EntityKind.CAMPAIGN, "c_cbo"),
            name="Advantage campaign budget, lifetime",
            campaign_id="c_cbo",
            budget_period=BudgetPeriod.LIFETIME,
            lifetime_budget_micros=3_000_000 * FORINT,
            budget_remaining_micros=1_000_000 * FORINT,
            flight_start=midnight - timedelta(days=19),
            flight_end=midnight + timedelta(days=10, hours=23, minutes=59),
            bidding_strategy=BiddingStrategy.LOWEST_COST,
        ),
        EntityState(
            ref=_ref(EntityKind.CAMPAIGN, "c_paused"), name="Paused", campaign_id="c_paused", status=Status.PAUSED
        ),
        EntityState(ref=_ref(EntityKind.CAMPAIGN, "c_abo"), name="Ad set budgets", campaign_id="c_abo"),
        _adset("s_cbo", "c_cbo", **_history(90_000, 4.5, 6_000)),
        _adset(
            "s_paused_parent",
            "c_paused",
            daily_budget_micros=40_000 * FORINT,
            bidding_strategy=BiddingStrategy.BID_CAP,
            cpc_bid_micros=300 * FORINT,
            **_history(30_000, 6.0, 4_000),
        ),
        _adset(
            "s_lowest",
            "c_abo",
            daily_budget_micros=50_000 * FORINT,
            bidding_strategy=BiddingStrategy.LOWEST_COST,
            **_history(49_500, 5.5, 4_500),
        ),
        _adset(
            "s_cost_cap",
            "c_abo",
            daily_budget_micros=60_000 * FORINT,
            bidding_strategy=BiddingStrategy.COST_CAP,
            target_cpa_micros=5_000 * FORINT,
            **_history(59_000, 1.1, 9_000),
        ),
        _ad("ad_live", "s_lowest", "c_abo", **_history(25_000, 5.5, 4_500)),
        _ad(
            "ad_rejected",
            "s_lowest",
            "c_abo",
            status=Status.PAUSED,
            delivery_blocked_by="DISAPPROVED",
            **_history(20_000, 7.0, 3_000),
        ),
        _ad("ad_cbo", "s_cbo", "c_cbo", **_history(80_000, 4.5, 6_000)),
        _ad("ad_cost_cap", "s_cost_cap", "c_abo", **_history(20_000, 1.1, 9_000)),
        _ad("ad_under_pause", "s_paused_parent", "c_paused", **_history(30_000, 6.0, 4_000)),
    ]
    return Snapshot(
        account_id=ACCOUNT,
        platform=Platform.META,
        currency="HUF",
        time_zone="America/Los_Angeles",
        as_of=now,
        entities=entities,
    )


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeMetaServer]:
    now = datetime.now(ZONE)
    monkeypatch.setenv("META_ACCESS_TOKEN", TOKEN)
    with FakeMetaServer.from_snapshot(
        _account_as_run(now), platform_account_id="act_3600", access_token=TOKEN, today=now.date()
    ) as server:
        yield server


def _config(tmp_path: Path, fake: FakeMetaServer, *, currency: str = "HUF") -> Path:
    account = {
        "id": ACCOUNT,
        "platform": "meta",
        "backend": "live",
        "platform_account_id": "act_3600",
        "endpoint": fake.address,
        "currency": currency,
        "time_zone": "America/Los_Angeles",
    }
    path = tmp_path / "bidloop.yaml"
    # Absolute limits are in micros of the account currency: a forint account sets them in forints.
    huf_limits = {
        "budget_ceiling_micros": 1_000_000 * FORINT,
        "approval_above_micros": 100_000 * FORINT,
        "target_cpa_ceiling_micros": 100_000 * FORINT,
        "bid_ceiling_micros": 10_000 * FORINT,
        "bid_cap_ceiling_micros": 10_000 * FORINT,
    }
    settings = {
        "data_dir": str(tmp_path / "data"),
        "accounts": [account],
        "policy": "heuristic",
        "guardrails": {"accounts": {ACCOUNT: huf_limits}},
    }
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


def _posts(fake: FakeMetaServer) -> list[tuple[str, dict[str, str]]]:
    return [
        (str(call["path"]), dict(call["params"]))
        for r in fake.requests
        if r.endpoint == "batch"
        for call in r.batch
        if call["method"] == "POST" and "validate_only" not in str(call["params"].get("execution_options", ""))
    ]


def test_a_run_applies_only_writes_meta_acts_on_in_whole_forints(
    fake: FakeMetaServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = {entity_id: fake.object(entity_id) for entity_id in fake.objects}

    code, report, output = _run(capsys, _config(tmp_path, fake))

    assert code == 0 and report is not None, output
    applied = [line for line in report["actions"] if line.get("outcome") == "applied"]
    posts = _posts(fake)
    assert applied and posts, "the run applies something to judge"
    # The cost cap moved by its target (bid_amount is a cost per result there), never by a bid.
    kinds = {(line["kind"], line["entity"].rsplit(":", 1)[-1]) for line in applied}
    assert ("set_target_cpa", "s_cost_cap") in kinds and not [k for k in kinds if k[0] == "set_bid"]
    # Meta accepted no write it then ignored (a bid_amount under a strategy that sets bids itself).
    assert fake.ignored_writes == []
    assert not [p for p in posts if p[0] == "s_lowest" and "bid_amount" in p[1]]
    # No budget or bid on an ad set whose campaign is paused; no budget on an ad set inside a campaign budget.
    assert not [p for p in posts if p[0] == "s_paused_parent"]
    assert not [p for p in posts if p[0] == "s_cbo" and ({"daily_budget", "lifetime_budget"} & set(p[1]))]
    # No enable of a disapproved ad.
    assert not [p for p in posts if p[0] == "ad_rejected" and p[1].get("status") == "ACTIVE"]
    # Money in whole forints (offset 1): each amount sent is within a factor of two of what was there.
    for entity_id, params in posts:
        for name in ("daily_budget", "lifetime_budget", "bid_amount"):
            if name in params:
                old = int(before[entity_id][name])
                assert old / 2 <= int(params[name]) <= old * 2, (entity_id, name, params[name], old)
    # Every applied line is one of the posts, and the report counts what was sent.
    applied_entities = {line["entity"].rsplit(":", 1)[-1] for line in applied}
    assert applied_entities <= {p[0] for p in posts}


def test_a_lifetime_campaign_budget_change_keeps_what_was_spent(
    fake: FakeMetaServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report, output = _run(capsys, _config(tmp_path, fake))
    assert code == 0 and report is not None, output
    (line,) = [a for a in report["actions"] if a["entity"].endswith(":c_cbo") and a["kind"] == "set_budget"]
    assert line["outcome"] == "applied"
    new_daily_forints = float(line["new_value"].split()[0].replace(",", ""))
    ((_entity, params),) = [p for p in _posts(fake) if p[0] == "c_cbo"]
    # Of the 2,000,000 Ft spent (lifetime - budget_remaining), 30,000 Ft is today's (a third of the ad set's
    # 90,000 Ft day): what was spent before today stays spent, and the 11 days left (today included) each get
    # the new daily rate, so the rate is judged from what remained when the day began and holds still all day.
    assert int(params["lifetime_budget"]) == pytest.approx(1_970_000 + new_daily_forints * 11, abs=1)


def test_a_currency_that_differs_from_the_account_stops_that_account_naming_both_values(
    fake: FakeMetaServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report, output = _run(capsys, _config(tmp_path, fake, currency="USD"))

    assert "'USD'" in output and "'HUF'" in output, output
    assert code != 0 or (report is not None and report.get("status") != "completed")
    assert _posts(fake) == []
    assert sum(fake.writes_by_entity.values()) == 0

"""The fake Amazon Ads server speaks SP v3 on the wire, keeps state, counts requests and injects faults."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from datetime import UTC, date, datetime
from typing import Any

import pytest
import requests

from bidloop.core.entities import EntityKind, EntityRef, EntityState, MatchType, Platform
from bidloop.core.errors import InputError
from bidloop.core.metrics import Metrics
from bidloop.core.snapshot import Snapshot
from bidloop.testing.amazon_ads.fake_server import FakeAmazonAdsServer, demo_snapshot
from bidloop.tools.amazon_ads import classify_failure

PROFILE = "7700000007"
TOKEN = "fake-access-token"
KW = "application/vnd.spKeyword.v3+json"


def _ref(kind: EntityKind, entity_id: str) -> EntityRef:
    return EntityRef(platform=Platform.AMAZON_ADS, account_id="a", kind=kind, entity_id=entity_id)


def _snapshot() -> Snapshot:
    return Snapshot(
        account_id="a",
        platform=Platform.AMAZON_ADS,
        as_of=datetime(2026, 5, 4, 12, tzinfo=UTC),
        entities=[
            EntityState(
                ref=_ref(EntityKind.CAMPAIGN, "1"),
                name="C",
                daily_budget_micros=20_000_000,
                today=Metrics(clicks=3, cost_micros=2_500_000),
                trailing_7d=Metrics(clicks=70, cost_micros=70_000_003),
            ),
            EntityState(
                ref=_ref(EntityKind.AD_GROUP, "2"), name="G", parent_id="1", campaign_id="1", cpc_bid_micros=500_000
            ),
            *[
                EntityState(
                    ref=_ref(EntityKind.KEYWORD, str(10 + n)),
                    name=f"k{n}",
                    parent_id="2",
                    campaign_id="1",
                    cpc_bid_micros=400_000,
                    text=f"k{n}",
                    match_type=MatchType.EXACT,
                )
                for n in range(5)
            ],
        ],
    )


@pytest.fixture
def srv():
    with FakeAmazonAdsServer.from_snapshot(_snapshot(), profile_id=PROFILE, page_size=2) as server:
        yield server


def _headers(content_type: str = KW, **extra: str) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {TOKEN}",
        "Amazon-Advertising-API-ClientId": "cid",
        "Amazon-Advertising-API-Scope": PROFILE,
        "Content-Type": content_type,
        **extra,
    }


def _put_keywords(srv: FakeAmazonAdsServer, items: list[dict[str, Any]], **headers: str) -> requests.Response:
    return requests.put(f"{srv.address}/sp/keywords", json={"keywords": items}, headers=_headers(**headers), timeout=5)


def test_a_write_then_a_read_shows_the_change_and_is_counted(srv: FakeAmazonAdsServer) -> None:
    answer = _put_keywords(srv, [{"keywordId": "10", "bid": 0.45}], Prefer="return=representation")
    assert answer.status_code == 207
    body = answer.json()["keywords"]
    assert body["error"] == [] and body["success"][0]["keyword"]["bid"] == 0.45
    listed = requests.post(
        f"{srv.address}/sp/keywords/list", json={"keywordIdFilter": {"include": ["10"]}}, headers=_headers(), timeout=5
    ).json()
    assert listed["keywords"][0]["bid"] == 0.45
    assert srv.requests_by_endpoint == {"PUT /sp/keywords": 1, "POST /sp/keywords/list": 1}
    assert srv.request_count == 2 and srv.write_request_count == 1
    assert srv.writes_by_entity == {"10": 1}


def test_multi_status_reports_each_bad_item_by_index(srv: FakeAmazonAdsServer) -> None:
    body = _put_keywords(
        srv, [{"keywordId": "10", "bid": 0.5}, {"keywordId": "99", "bid": 0.5}, {"keywordId": "11", "bid": 0.123}]
    ).json()["keywords"]
    assert [s["index"] for s in body["success"]] == [0]
    errors = {e["index"]: e["errors"][0] for e in body["error"]}
    assert errors[1]["errorType"] == "entityNotFoundError"
    assert "decimal" in errors[2]["errorValue"]["malformedValueError"]["message"]


def test_lists_page_with_next_token(srv: FakeAmazonAdsServer) -> None:
    seen, token = [], None
    while True:
        body = {"nextToken": token} if token else {}
        page = requests.post(f"{srv.address}/sp/keywords/list", json=body, headers=_headers(), timeout=5).json()
        seen += [k["keywordId"] for k in page["keywords"]]
        token = page.get("nextToken")
        if not token:
            break
    assert seen == ["10", "11", "12", "13", "14"]


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Authorization": "Bearer nope"}, 401),
        ({"Amazon-Advertising-API-Scope": "123"}, 403),
        ({"Amazon-Advertising-API-Scope": ""}, 400),
        ({"Content-Type": "application/json"}, 415),
    ],
)
def test_requests_without_the_right_token_scope_or_content_type_are_refused(srv, headers, status) -> None:
    answer = requests.put(
        f"{srv.address}/sp/keywords",
        json={"keywords": [{"keywordId": "10", "bid": 0.5}]},
        headers={**_headers(), **headers},
        timeout=5,
    )
    assert answer.status_code == status
    assert srv.writes_by_entity == {}


def test_throttle_answers_429_with_retry_after(srv: FakeAmazonAdsServer) -> None:
    srv.inject("throttle", times=1, retry_after_s=9)
    first = _put_keywords(srv, [{"keywordId": "10", "bid": 0.5}])
    assert first.status_code == 429 and first.headers["Retry-After"] == "9"
    assert first.json()["code"] == "TOO_MANY_REQUESTS"
    assert _put_keywords(srv, [{"keywordId": "10", "bid": 0.5}]).status_code == 207


def test_server_error_uses_the_status_asked_for(srv: FakeAmazonAdsServer) -> None:
    srv.inject("server_error", status=502)
    assert _put_keywords(srv, [{"keywordId": "10", "bid": 0.5}]).status_code == 502


def test_partial_failure_by_index_rejects_only_those_items(srv: FakeAmazonAdsServer) -> None:
    srv.inject("partial_failure", indices=[1])
    body = _put_keywords(srv, [{"keywordId": "10", "bid": 0.5}, {"keywordId": "11", "bid": 0.6}]).json()["keywords"]
    assert [e["index"] for e in body["error"]] == [1]
    assert srv.entities["keywords"]["11"]["bid"] == 0.4 and srv.entities["keywords"]["10"]["bid"] == 0.5


def test_timeout_after_write_applies_the_write_then_drops_the_connection(srv: FakeAmazonAdsServer) -> None:
    srv.inject("timeout_after_write")
    with pytest.raises(requests.ConnectionError):
        _put_keywords(srv, [{"keywordId": "10", "bid": 0.55}])
    assert srv.entities["keywords"]["10"]["bid"] == 0.55 and srv.writes_by_entity["10"] == 1


def test_expired_token_answers_401(srv: FakeAmazonAdsServer) -> None:
    srv.inject("expired_token")
    assert _put_keywords(srv, [{"keywordId": "10", "bid": 0.5}]).status_code == 401


def test_faults_with_a_probability_are_repeatable(srv: FakeAmazonAdsServer) -> None:
    def run() -> list[int]:
        srv.clear_faults()
        srv.inject("server_error", times=None, probability=0.3, seed=4)
        return [_put_keywords(srv, [{"keywordId": "10", "bid": 0.5}]).status_code for _ in range(20)]

    first, second = run(), run()
    assert first == second and 0 < first.count(503) < 20


def test_an_unknown_fault_is_an_input_error(srv: FakeAmazonAdsServer) -> None:
    with pytest.raises(InputError):
        srv.inject("meteor")


def test_lwa_token_exchange_issues_a_token_the_api_accepts(srv: FakeAmazonAdsServer) -> None:
    form = {"grant_type": "refresh_token", "refresh_token": "r", "client_id": "c", "client_secret": "s"}
    token = requests.post(f"{srv.address}/auth/o2/token", data=form, timeout=5).json()["access_token"]
    answer = requests.get(
        f"{srv.address}/v2/profiles", headers={**_headers(), "Authorization": f"Bearer {token}"}, timeout=5
    )
    assert answer.status_code == 200 and answer.json()[0]["profileId"] == int(PROFILE)
    srv.inject("revoked_refresh_token")
    refused = requests.post(f"{srv.address}/auth/o2/token", data=form, timeout=5)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"


def test_revoked_access_tokens_answer_401_until_a_new_exchange(srv: FakeAmazonAdsServer) -> None:
    form = {"grant_type": "refresh_token", "refresh_token": "r", "client_id": "c", "client_secret": "s"}
    issued = requests.post(f"{srv.address}/auth/o2/token", data=form, timeout=5).json()["access_token"]

    def profiles(token: str) -> requests.Response:
        headers = {**_headers(), "Authorization": f"Bearer {token}"}
        return requests.get(f"{srv.address}/v2/profiles", headers=headers, timeout=5)

    assert srv.revoke_access_tokens() == 2  # the issued token and the fixed one
    for token in (issued, TOKEN):
        refused = profiles(token)
        assert refused.status_code == 401 and "revoked" in refused.json()["details"]
    fresh = requests.post(f"{srv.address}/auth/o2/token", data=form, timeout=5).json()["access_token"]
    assert profiles(fresh).status_code == 200
    assert srv.issued_access_tokens == [issued, fresh]


def test_a_report_is_created_polled_and_downloaded_with_the_columns_asked(srv: FakeAmazonAdsServer) -> None:
    body = {
        "startDate": "2026-04-27",
        "endDate": "2026-05-04",
        "configuration": {
            "reportTypeId": "spCampaigns",
            "timeUnit": "DAILY",
            "format": "GZIP_JSON",
            "groupBy": ["campaign"],
            "columns": ["date", "campaignId", "cost", "clicks"],
        },
    }
    report_id = requests.post(
        f"{srv.address}/reporting/reports", json=body, headers=_headers("application/json"), timeout=5
    ).json()["reportId"]
    polls = [
        requests.get(f"{srv.address}/reporting/reports/{report_id}", headers=_headers(), timeout=5).json()
        for _ in range(3)
    ]
    assert [p["status"] for p in polls] == ["PENDING", "PENDING", "COMPLETED"]  # several polls, as on Amazon
    status = polls[-1]
    rows = json.loads(gzip.decompress(requests.get(status["url"], timeout=5).content))
    assert {tuple(sorted(r)) for r in rows} == {("campaignId", "clicks", "cost", "date")}
    by_date = {r["date"]: r for r in rows}
    # Same-day rows lag 3 h by default ("Report generation can take as long as 3 hours",
    # python-amazon-ad-api ad_api/api/reports.py): at 12:00 the row holds 9 of 12 hours' spend.
    assert by_date["2026-05-04"]["cost"] == 1.88
    assert round(sum(r["cost"] for d, r in by_date.items() if d < "2026-05-04"), 6) == 70.000003
    assert sum(r["clicks"] for d, r in by_date.items() if d < "2026-05-04") == 70


def test_requests_are_recorded_without_the_authorization_header(srv: FakeAmazonAdsServer) -> None:
    _put_keywords(srv, [{"keywordId": "10", "bid": 0.5}])
    [recorded] = srv.requests
    assert "authorization" not in recorded.headers and recorded.headers["amazon-advertising-api-scope"] == PROFILE
    assert recorded.body == {"keywords": [{"keywordId": "10", "bid": 0.5}]}


def test_sdk_exception_from_a_throttle_carries_the_retry_after_hint(srv: FakeAmazonAdsServer) -> None:
    from ad_api.api import sponsored_products as sp
    from ad_api.base import AdvertisingApiException, Marketplaces

    api = sp.KeywordsV3(
        credentials={"client_id": "c", "client_secret": "s", "refresh_token": "r", "profile_id": PROFILE},
        marketplace=Marketplaces.NA,
        access_token=TOKEN,
        timeout=5,
    )
    api.endpoint = srv.address
    srv.inject("throttle", retry_after_s=4)
    with pytest.raises(AdvertisingApiException) as info:
        api.edit_keyword(body={"keywords": [{"keywordId": "10", "bid": 0.5}]})
    failure = classify_failure(info.value)
    assert failure.retryable and failure.wait_hint_s == 4.0 and not failure.ambiguous


def test_demo_snapshot_seeds_a_usable_account() -> None:
    snap = demo_snapshot(today=date(2026, 1, 5))
    with FakeAmazonAdsServer.from_snapshot(snap) as server:
        assert set(server.entities["campaigns"]) == {"101", "102"}
        assert server.entities["keywords"]["301"]["bid"] == 0.8


def test_the_module_runs_as_a_demo_server_seeded_from_the_simulated_market() -> None:
    command = [sys.executable, "-m", "bidloop.testing.amazon_ads.fake_server", "--port", "0"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as proc:
        try:
            banner = [proc.stdout.readline() for _ in range(2)] if proc.stdout else []
            address = banner[0].split(" at ")[1].split(" ")[0]
            answer = requests.post(
                f"{address}/sp/campaigns/list",
                json={},
                timeout=5,
                headers=_headers(
                    "application/vnd.spCampaign.v3+json", **{"Amazon-Advertising-API-Scope": "1000000001"}
                ),
            )
            assert answer.status_code == 200 and answer.json()["campaigns"]
            assert "id: sim-amazon" in banner[1]
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def test_the_client_reads_the_sim_seeded_fake_as_the_simulated_market_reports_it() -> None:
    sim = pytest.importorskip("bidloop.tools.sim")
    from bidloop.core.settings import AccountConfig
    from bidloop.tools.amazon_ads import AmazonAdsClient

    expected = sim.SimClient(sim.default_market()).read_snapshot("sim-amazon")
    with FakeAmazonAdsServer.from_snapshot(
        expected, profile_id=PROFILE, report_polls_until_ready=0, report_lag_s=0, budget_usage_lag_s=0
    ) as server:
        account = AccountConfig(
            id="sim-amazon",
            platform=Platform.AMAZON_ADS,
            backend="live",
            platform_account_id=PROFILE,
            marketplace="NA",
            endpoint=server.address,
            time_zone=expected.time_zone,
        )
        env = {"AD_API_CLIENT_ID": "c", "AD_API_CLIENT_SECRET": "s", "AD_API_REFRESH_TOKEN": "r"}
        client = AmazonAdsClient.from_account(
            account, environ=env, sleep=lambda s: None, now=lambda: expected.as_of, report_lag_s=0
        )
        got = client.read_snapshot("sim-amazon")

    want = {e.ref.key: e for e in expected.entities}
    have = {e.ref.key: e for e in got.entities}
    assert have.keys() == want.keys()
    assert got.account_daily_budget_micros == expected.account_daily_budget_micros
    for key, e in want.items():
        g = have[key]
        assert (g.parent_id, g.campaign_id, g.status) == (e.parent_id, e.campaign_id, e.status), key
        assert (g.daily_budget_micros, g.cpc_bid_micros, g.match_type) == (
            e.daily_budget_micros,
            e.cpc_bid_micros,
            e.match_type,
        ), key
        if e.ref.kind is EntityKind.AD_GROUP:  # summed from targeting rows: equal up to rounding
            assert abs(g.trailing_7d.conversion_value_micros - e.trailing_7d.conversion_value_micros) <= 2
            assert g.trailing_7d.cost_micros == e.trailing_7d.cost_micros
            continue
        for window in ("today", "trailing_7d"):
            a, b = getattr(g, window), getattr(e, window)
            assert (a.impressions, a.clicks, a.cost_micros, a.conversion_value_micros) == (
                b.impressions,
                b.clicks,
                b.cost_micros,
                b.conversion_value_micros,
            ), (key, window)
            assert a.conversions == pytest.approx(b.conversions)
        if e.ref.kind in (EntityKind.CAMPAIGN, EntityKind.CREATIVE):
            assert [m.cost_micros for m in g.daily_history] == [m.cost_micros for m in e.daily_history], key

"""The fake Graph API: wire protocol, kept state, Meta's own limits, counting and faults."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests

from bidloop.core.errors import InputError
from bidloop.testing.meta.fake_server import FakeMetaServer, demo_snapshot

TOKEN = "fake-token"


@pytest.fixture
def srv() -> Iterator[FakeMetaServer]:
    with FakeMetaServer.from_snapshot(demo_snapshot("demo"), platform_account_id="act_7", access_token=TOKEN) as server:
        yield server


def post(srv: FakeMetaServer, path: str, **form: str) -> requests.Response:
    return requests.post(
        f"{srv.address}/v26.0/{path}", data=form, headers={"Authorization": f"OAuth {TOKEN}"}, timeout=5
    )


def get(srv: FakeMetaServer, path: str, **params: str) -> requests.Response:
    return requests.get(
        f"{srv.address}/v26.0/{path}", params=params, headers={"Authorization": f"OAuth {TOKEN}"}, timeout=5
    )


def test_seeded_budgets_are_kept_in_minor_units(srv: FakeMetaServer) -> None:
    assert get(srv, "115", fields="daily_budget,bid_amount").json() == {
        "id": "115",
        "daily_budget": "5000",
        "bid_amount": "125",
    }


def test_a_write_then_a_read_shows_the_change(srv: FakeMetaServer) -> None:
    assert post(srv, "115/", daily_budget="6100").json() == {"success": True}
    assert get(srv, "115", fields="daily_budget").json()["daily_budget"] == "6100"
    assert srv.writes_by_entity == {"115": 1}
    assert srv.requests_by_endpoint == {"update": 1, "read": 1} and srv.request_count == 2


def test_read_after_write_returns_the_asked_fields(srv: FakeMetaServer) -> None:
    assert post(srv, "700/", status="PAUSED", fields="status").json() == {"id": "700", "status": "PAUSED"}


def test_validate_only_changes_nothing(srv: FakeMetaServer) -> None:
    answer = post(srv, "115/", daily_budget="9900", execution_options='["validate_only"]')
    assert answer.json() == {"success": True}
    assert srv.object("115")["daily_budget"] == "5000" and not srv.writes_by_entity


def test_invalid_values_are_rejected_like_meta(srv: FakeMetaServer) -> None:
    answer = post(srv, "115/", daily_budget="0")
    assert answer.status_code == 400 and answer.json()["error"]["code"] == 100
    assert post(srv, "nope/", status="PAUSED").json()["error"]["error_subcode"] == 33


def test_a_fifth_budget_change_within_an_hour_gets_error_17() -> None:
    clock = [0.0]
    with FakeMetaServer.from_snapshot(demo_snapshot("demo"), access_token=TOKEN, clock=lambda: clock[0]) as srv:
        for budget in ("5100", "5200", "5300", "5400"):
            assert post(srv, "115/", daily_budget=budget).status_code == 200
        locked = post(srv, "115/", daily_budget="5500")
        assert locked.status_code == 400 and locked.json()["error"]["code"] == 17
        assert post(srv, "115/", bid_amount="130").status_code == 200  # bids are not budget changes
        clock[0] += 3601
        assert post(srv, "115/", daily_budget="5500").status_code == 200


def test_a_wrong_token_gets_error_190(srv: FakeMetaServer) -> None:
    answer = requests.get(f"{srv.address}/v26.0/115", params={"access_token": "bad"}, timeout=5)
    assert answer.status_code == 400 and answer.json()["error"]["code"] == 190


def test_the_token_is_never_recorded(srv: FakeMetaServer) -> None:
    requests.get(f"{srv.address}/v26.0/115", params={"access_token": TOKEN, "fields": "name"}, timeout=5)
    assert srv.requests[0].params == {"fields": "name"} and not srv.requests[0].token_in_header


def test_batches_answer_each_call_with_code_headers_and_body(srv: FakeMetaServer) -> None:
    batch = [
        {"method": "POST", "relative_url": "115/", "body": "daily_budget=6000"},
        {"method": "GET", "relative_url": "116?fields=daily_budget"},
        {"method": "POST", "relative_url": "999/", "body": "status=PAUSED"},
    ]
    answers = post(srv, "", batch=json.dumps(batch)).json()
    assert [a["code"] for a in answers] == [200, 200, 400]
    assert json.loads(answers[1]["body"]) == {"id": "116", "daily_budget": "4000"}
    assert srv.request_count == 1 and srv.batch_sizes() == [3]


def test_edges_page_with_cursors(srv: FakeMetaServer) -> None:
    first = get(srv, "act_7/adsets", fields="id", limit="3").json()
    assert len(first["data"]) == 3 and "next" in first["paging"]
    rest = get(srv, "act_7/adsets", fields="id", limit="3", after=first["paging"]["cursors"]["after"]).json()
    assert len(rest["data"]) == 2 and "next" not in rest["paging"]


def test_insights_report_spend_in_major_units_and_purchase_roas(srv: FakeMetaServer) -> None:
    today = srv.today.isoformat()
    rows = get(
        srv,
        "act_7/insights",
        level="adset",
        time_range=json.dumps({"since": today, "until": today}),
        time_increment="1",
        fields="adset_id,spend,purchase_roas",
    ).json()["data"]
    by_id = {r["adset_id"]: r for r in rows}
    assert by_id["115"]["spend"] == "15.75"  # 50 units x 7 days x 0.9 / 20, today's share in the demo
    assert by_id["115"].keys() == {"adset_id", "spend", "purchase_roas", "date_start", "date_stop"}


def test_throttle_fault_carries_the_usage_header_in_minutes(srv: FakeMetaServer) -> None:
    srv.inject("throttle", code=80004, minutes=7)
    answer = get(srv, "115")
    assert answer.status_code == 400 and answer.json()["error"]["code"] == 80004
    usage = json.loads(answer.headers["X-Business-Use-Case-Usage"])
    assert usage["7"][0]["estimated_time_to_regain_access"] == 7
    assert get(srv, "115").status_code == 200  # times=1


def test_faults_hit_only_the_named_calls_of_a_batch(srv: FakeMetaServer) -> None:
    srv.inject("partial", entities=["116"])
    batch = [
        {"method": "POST", "relative_url": "115/", "body": "bid_amount=130"},
        {"method": "POST", "relative_url": "116/", "body": "bid_amount=130"},
    ]
    answers = post(srv, "", batch=json.dumps(batch)).json()
    assert [a["code"] for a in answers] == [200, 400]
    assert srv.writes_by_entity == {"115": 1}


def test_timeout_after_write_applies_the_write_before_stalling(srv: FakeMetaServer) -> None:
    srv.inject("timeout_after_write", stall_s=1.0)
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.post(
            f"{srv.address}/v26.0/115/",
            data={"daily_budget": "6600"},
            headers={"Authorization": f"OAuth {TOKEN}"},
            timeout=0.2,
        )
    assert srv.object("115")["daily_budget"] == "6600" and srv.writes_by_entity == {"115": 1}


def test_unknown_faults_are_refused(srv: FakeMetaServer) -> None:
    with pytest.raises(InputError):
        srv.inject("meteor")


def test_public_api_names_resolve() -> None:
    import bidloop.tools.meta as meta

    assert all(getattr(meta, name) is not None for name in meta.__all__)


def test_pausing_a_campaign_shows_on_its_active_ad_sets_and_ads_as_campaign_paused(srv: FakeMetaServer) -> None:
    # https://developers.facebook.com/documentation/ads-commerce/marketing-api/ads-webhooks/effective-status --
    # effective status takes "into account its own status and the status of its parents".
    assert post(srv, "9001", status="PAUSED").status_code == 200
    assert get(srv, "115", fields="status,effective_status").json()["effective_status"] == "CAMPAIGN_PAUSED"
    assert get(srv, "700", fields="status,effective_status").json() == {
        "id": "700",
        "status": "ACTIVE",
        "effective_status": "CAMPAIGN_PAUSED",
    }


def test_the_demo_account_has_a_lifetime_campaign_budget_a_cost_cap_and_a_disapproved_ad(srv: FakeMetaServer) -> None:
    campaign = get(srv, "9003", fields="lifetime_budget,budget_remaining,stop_time,bid_strategy").json()
    assert campaign["lifetime_budget"] == "300000" and campaign["budget_remaining"] == "110000"
    assert campaign["bid_strategy"] == "COST_CAP" and "stop_time" in campaign
    adset = get(srv, "119", fields="daily_budget,bid_amount,daily_spend_cap").json()
    assert adset == {"id": "119", "bid_amount": "3500", "daily_spend_cap": "15000"}
    assert get(srv, "706", fields="effective_status").json()["effective_status"] == "DISAPPROVED"

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import grpc
import pytest
from google.ads.googleads.errors import GoogleAdsException
from google.ads.googleads.interceptors import ExceptionInterceptor, MetadataInterceptor
from google.ads.googleads.v26.services.services.google_ads_service import GoogleAdsServiceClient
from google.ads.googleads.v26.services.services.google_ads_service.transports import GoogleAdsServiceGrpcTransport
from google.ads.googleads.v26.services.types.google_ads_service import MutateGoogleAdsRequest, MutateOperation
from google.protobuf.field_mask_pb2 import FieldMask

from bidloop.core.entities import EntityKind, EntityRef, EntityState, Platform
from bidloop.core.errors import InputError
from bidloop.core.metrics import Metrics
from bidloop.core.snapshot import Snapshot
from bidloop.tools.google_ads import FakeGoogleAdsServer, demo_snapshot

CUSTOMER = "1234567890"
TODAY = date(2025, 3, 10)


@pytest.fixture
def server() -> Iterator[FakeGoogleAdsServer]:
    with FakeGoogleAdsServer(CUSTOMER, today=TODAY) as srv:
        srv.add_campaign(1, "Brand", daily_budget_micros=10_000_000)
        srv.add_ad_group(2, 1, "Group", cpc_bid_micros=500_000)
        srv.set_metrics(("campaign", 1), TODAY, Metrics(clicks=3, cost_micros=1_500_000))
        yield srv


def _service(address: str) -> GoogleAdsServiceClient:
    # platform-apis.md §6.1 c: the real service client over a plaintext channel, with the SDK's interceptors.
    channel = grpc.intercept_channel(
        grpc.insecure_channel(address),
        MetadataInterceptor("DEV", None, None),
        ExceptionInterceptor("v26", use_proto_plus=True),
    )
    return GoogleAdsServiceClient(transport=GoogleAdsServiceGrpcTransport(channel=channel))


def _search(srv: FakeGoogleAdsServer, query: str) -> list:
    stream = _service(srv.address).search_stream(customer_id=CUSTOMER, query=query, timeout=5)
    return [row for batch in stream for row in batch.results]


def _budget_op(amount_micros: int, mask: list[str]) -> MutateOperation:
    op = MutateOperation()
    op.campaign_budget_operation.update.resource_name = f"customers/{CUSTOMER}/campaignBudgets/{_budget_id()}"
    op.campaign_budget_operation.update.amount_micros = amount_micros
    op.campaign_budget_operation.update_mask = FieldMask(paths=mask)
    return op


def _budget_id() -> int:
    return 900_000_001  # the first id the fake hands out


def _mutate(srv: FakeGoogleAdsServer, ops: list[MutateOperation], **flags: bool):  # type: ignore[no-untyped-def]
    request = MutateGoogleAdsRequest(customer_id=CUSTOMER, mutate_operations=ops, **flags)
    return _service(srv.address).mutate(request=request, timeout=5)


def test_search_returns_only_selected_fields_and_filters(server: FakeGoogleAdsServer) -> None:
    rows = _search(
        server, "SELECT campaign.id, campaign_budget.amount_micros FROM campaign WHERE campaign.id IN (1, 9)"
    )
    assert [(r.campaign.id, r.campaign_budget.amount_micros, r.campaign.name) for r in rows] == [(1, 10_000_000, "")]


def test_daily_metrics_are_served_per_date_with_value_in_currency_units(server: FakeGoogleAdsServer) -> None:
    server.set_metrics(("campaign", 1), date(2025, 3, 9), Metrics(clicks=1, conversion_value_micros=2_500_000))
    rows = _search(
        server,
        "SELECT campaign.id, segments.date, metrics.clicks, metrics.conversions_value FROM campaign "
        "WHERE segments.date BETWEEN '2025-03-09' AND '2025-03-10'",
    )
    assert [(r.segments.date, r.metrics.clicks, r.metrics.conversions_value) for r in rows] == [
        ("2025-03-09", 1, 2.5),
        ("2025-03-10", 3, 0.0),
    ]


def test_unknown_field_fails_like_google(server: FakeGoogleAdsServer) -> None:
    with pytest.raises(GoogleAdsException) as info:
        _search(server, "SELECT campaign.budget_amount FROM campaign")
    assert info.value.failure.errors[0].error_code.query_error.name == "UNRECOGNIZED_FIELD"


def test_only_fields_in_the_update_mask_are_written(server: FakeGoogleAdsServer) -> None:
    _mutate(server, [_budget_op(0, ["name"])], partial_failure=True)
    assert server.budget_micros(1) == 10_000_000  # amount_micros=0 left out of the mask: not written
    _mutate(server, [_budget_op(20_000_000, ["amount_micros"])], partial_failure=True)
    assert server.budget_micros(1) == 20_000_000
    assert server.writes_by_entity[f"customers/{CUSTOMER}/campaignBudgets/{_budget_id()}"] == 2


def test_without_partial_failure_one_bad_operation_fails_the_whole_request(server: FakeGoogleAdsServer) -> None:
    with pytest.raises(GoogleAdsException) as info:
        _mutate(server, [_budget_op(20_000_000, ["amount_micros"]), _budget_op(12_345, ["amount_micros"])])
    error = info.value.failure.errors[0]
    assert error.error_code.campaign_budget_error.name == "NON_MULTIPLE_OF_MINIMUM_CURRENCY_UNIT"
    assert error.location.field_path_elements[0].index == 1
    assert server.budget_micros(1) == 10_000_000 and not server.writes_by_entity


def test_validate_only_changes_nothing(server: FakeGoogleAdsServer) -> None:
    response = _mutate(server, [_budget_op(20_000_000, ["amount_micros"])], validate_only=True, partial_failure=True)
    assert len(response.mutate_operation_responses) == 0
    assert server.budget_micros(1) == 10_000_000 and not server.writes_by_entity


def test_more_than_ten_thousand_operations_are_refused(server: FakeGoogleAdsServer) -> None:
    with pytest.raises(GoogleAdsException) as info:
        _mutate(server, [_budget_op(20_000_000, ["amount_micros"])] * 10_001, partial_failure=True)
    assert info.value.failure.errors[0].error_code.request_error.name == "TOO_MANY_MUTATE_OPERATIONS"
    assert server.budget_micros(1) == 10_000_000


def test_requests_are_counted_per_rpc_and_faults_are_used_up(server: FakeGoogleAdsServer) -> None:
    server.inject("transient", method="SearchStream")
    with pytest.raises(Exception, match="Transient"):
        _search(server, "SELECT campaign.id FROM campaign")
    assert len(_search(server, "SELECT campaign.id FROM campaign")) == 1
    _mutate(server, [_budget_op(20_000_000, ["amount_micros"])], partial_failure=True)
    assert server.request_count == {"SearchStream": 2, "Mutate": 1}
    assert server.total_requests == 3


def test_unknown_fault_is_refused(server: FakeGoogleAdsServer) -> None:
    with pytest.raises(InputError):
        server.inject("meteor")


def test_from_snapshot_keeps_trailing_week_totals_exactly() -> None:
    snapshot = demo_snapshot("g1", now=datetime(2025, 3, 10, 12, tzinfo=UTC))
    with FakeGoogleAdsServer.from_snapshot(snapshot) as srv:
        rows = _search(
            srv,
            "SELECT campaign.id, metrics.cost_micros, metrics.clicks FROM campaign "
            "WHERE segments.date BETWEEN '2025-03-03' AND '2025-03-09'",
        )
    expected = {int(e.ref.entity_id): e.trailing_7d for e in snapshot.of_kind(EntityKind.CAMPAIGN)}
    assert {r.campaign.id: (r.metrics.cost_micros, r.metrics.clicks) for r in rows} == {
        cid: (m.cost_micros, m.clicks) for cid, m in expected.items()
    }


def test_from_snapshot_refuses_ids_google_would_never_return() -> None:
    ref = EntityRef(platform=Platform.GOOGLE_ADS, account_id="g1", kind=EntityKind.CAMPAIGN, entity_id="camp-a")
    snapshot = Snapshot(
        account_id="g1",
        platform=Platform.GOOGLE_ADS,
        as_of=datetime(2025, 3, 10, tzinfo=UTC),
        entities=[EntityState(ref=ref, name="A", daily_budget_micros=1_000_000)],
    )
    with pytest.raises(InputError):
        FakeGoogleAdsServer.from_snapshot(snapshot)

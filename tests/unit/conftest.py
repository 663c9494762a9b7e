"""Fixtures for unit tests: hand-built snapshots, so agents are tested without the simulated market."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from bidloop.core.entities import EntityKind, EntityRef, EntityState, MatchType, Platform, Status
from bidloop.core.metrics import Metrics
from bidloop.core.snapshot import Snapshot

MICROS = 1_000_000


def metrics(
    cost: float = 0.0, value: float = 0.0, clicks: int = 0, conversions: float = 0.0, impressions: int = 0
) -> Metrics:
    """Build metrics from major units (test convenience)."""
    return Metrics(
        impressions=impressions or clicks * 20,
        clicks=clicks,
        cost_micros=int(cost * MICROS),
        conversions=conversions,
        conversion_value_micros=int(value * MICROS),
    )


def entity(
    kind: EntityKind,
    entity_id: str,
    *,
    platform: Platform = Platform.GOOGLE_ADS,
    account_id: str = "acct",
    **fields: Any,
) -> EntityState:
    ref = EntityRef(platform=platform, account_id=account_id, kind=kind, entity_id=entity_id)
    fields.setdefault("name", f"{kind.value} {entity_id}")
    return EntityState(ref=ref, **fields)


def snapshot(
    entities: list[EntityState], *, platform: Platform = Platform.GOOGLE_ADS, expected_spend_fraction: float = 0.5
) -> Snapshot:
    budget = sum(e.daily_budget_micros or 0 for e in entities if e.ref.kind is not EntityKind.ACCOUNT)
    return Snapshot(
        account_id="acct",
        platform=platform,
        as_of=datetime(2026, 6, 10, 10, 0, tzinfo=UTC),
        daypart=2,
        dayparts_per_day=6,
        expected_spend_fraction=expected_spend_fraction,
        account_daily_budget_micros=budget,
        entities=entities,
    )


@pytest.fixture(autouse=True)
def _fresh_cli_options() -> None:
    """Forget --config/--data-dir of an earlier CLI invocation in this process (tests share one)."""
    from bidloop.cli.main import _global

    _global.reset()


@pytest.fixture
def make_metrics() -> Callable[..., Metrics]:
    return metrics


@pytest.fixture
def make_entity() -> Callable[..., EntityState]:
    return entity


@pytest.fixture
def make_snapshot() -> Callable[..., Snapshot]:
    return snapshot


__all__ = ["EntityKind", "MatchType", "Status"]

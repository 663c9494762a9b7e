"""A write counts as landed when the platform holds it as far as the platform's own money unit can say."""

from __future__ import annotations

from datetime import UTC, datetime

from bidloop.core.actions import AgentName, SetBudget
from bidloop.core.entities import EntityKind, EntityRef, EntityState, Platform
from bidloop.core.snapshot import Snapshot
from bidloop.graph.nodes import _at_target

FORINT = 1_000_000


def _budget(old: int, new: int) -> SetBudget:
    ref = EntityRef(platform=Platform.META, account_id="huf", kind=EntityKind.AD_GROUP, entity_id="s1")
    return SetBudget(
        action_id="a1",
        entity=ref,
        agent=AgentName.BID_SHIFTER,
        reason="test",
        old_daily_budget_micros=old,
        new_daily_budget_micros=new,
    )


def _entity(daily_budget_micros: int) -> EntityState:
    ref = EntityRef(platform=Platform.META, account_id="huf", kind=EntityKind.AD_GROUP, entity_id="s1")
    return EntityState(ref=ref, name="s1", daily_budget_micros=daily_budget_micros)


def test_without_a_platform_unit_the_snapshot_uses_the_iso_minor_unit() -> None:
    as_of = datetime(2026, 12, 7, tzinfo=UTC)
    assert Snapshot(account_id="a", platform=Platform.GOOGLE_ADS, currency="USD", as_of=as_of).money_unit == 10_000
    assert Snapshot(account_id="a", platform=Platform.GOOGLE_ADS, currency="JPY", as_of=as_of).money_unit == 1_000_000


def test_a_huf_budget_rounded_to_whole_forints_by_meta_reads_as_landed() -> None:
    # Meta's currency table (https://developers.facebook.com/docs/marketing-api/currencies): HUF has offset 1,
    # so 10,450.75 Ft is stored as 10,450 Ft; ISO 4217 gives HUF two decimals, which would call it not landed.
    action = _budget(9_500 * FORINT, 10_450_750_000)
    assert _at_target(action, _entity(10_450 * FORINT), unit=FORINT)
    assert not _at_target(action, _entity(10_450 * FORINT), unit=10_000)


def test_a_value_a_whole_unit_below_or_above_the_target_is_not_landed() -> None:
    action = _budget(9_500 * FORINT, 10_450 * FORINT)
    assert not _at_target(action, _entity(10_449 * FORINT), unit=FORINT)
    assert not _at_target(action, _entity(10_451 * FORINT), unit=FORINT)
    assert not _at_target(action, _entity(9_500 * FORINT), unit=FORINT)

"""The audit log: append-only, hash-chained, and `verify` catches every kind of tampering."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from bidloop.core.errors import InputError
from bidloop.core.store import Store
from bidloop.guardrails import audit


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(f"sqlite:///{tmp_path / 'audit.sqlite'}")
    yield s
    s.dispose()


def fill(store: Store, n: int = 6, run_id: str = "run-1") -> None:
    audit.append_many(
        store,
        [
            {
                "kind": "decision",
                "actor": "schedule",
                "run_id": run_id,
                "policy_version": "ppo@1",
                "payload": {"action_id": f"a{i}", "verdict": "allowed", "new_value": 1_000_000 + i, "roas": 3.25},
            }
            for i in range(n)
        ],
    )


def sql(store: Store, statement: str) -> None:
    with store.engine.begin() as conn:
        conn.execute(text(statement))


def test_records_are_chained_from_the_genesis_hash(store: Store) -> None:
    first = audit.append(store, kind="prompt", actor="chat", run_id="r", payload={"text": "rebalance Meta"})
    second = audit.append(store, kind="decision", actor="chat", run_id="r", payload={"verdict": "blocked"})
    assert first.prev_hash == audit.GENESIS_HASH
    assert second.prev_hash == first.hash
    assert (first.seq, second.seq) == (1, 2)


def test_intact_log_verifies_and_reports_its_head(store: Store) -> None:
    fill(store, 10)
    result = audit.verify(store)
    assert result.ok
    assert result.records == 10
    assert result.head_seq == 10
    assert result.problems == []


def test_empty_log_verifies(store: Store) -> None:
    assert audit.verify(store).ok


def test_edited_value_is_detected(store: Store) -> None:
    fill(store)
    sql(store, "UPDATE audit_log SET payload = json_set(payload, '$.new_value', 9000000) WHERE seq = 3")
    result = audit.verify(store)
    assert not result.ok
    assert result.first_bad_seq == 3
    assert any("record 3" in p and "edited" in p for p in result.problems)


def test_edited_actor_is_detected(store: Store) -> None:
    fill(store)
    sql(store, "UPDATE audit_log SET actor = 'approval:mallory' WHERE seq = 5")
    assert audit.verify(store).first_bad_seq == 5


def test_deleted_record_is_detected(store: Store) -> None:
    fill(store)
    sql(store, "DELETE FROM audit_log WHERE seq = 4")
    result = audit.verify(store)
    assert not result.ok
    assert result.first_bad_seq == 5
    assert any("missing" in p for p in result.problems)


def test_deleted_newest_record_is_detected_through_the_head(store: Store) -> None:
    fill(store)
    sql(store, "DELETE FROM audit_log WHERE seq = 6")
    result = audit.verify(store)
    assert not result.ok
    assert any("removed" in p for p in result.problems)


def test_reordered_records_are_detected(store: Store) -> None:
    fill(store)
    sql(store, "UPDATE audit_log SET seq = -1 WHERE seq = 2")
    sql(store, "UPDATE audit_log SET seq = 2 WHERE seq = 3")
    sql(store, "UPDATE audit_log SET seq = 3 WHERE seq = -1")
    result = audit.verify(store)
    assert not result.ok
    assert result.first_bad_seq == 2


def test_record_rehashed_after_an_edit_still_breaks_the_chain(store: Store) -> None:
    fill(store)
    rows = audit.show(store, limit=10)
    victim = rows[2]
    forged_payload = {**victim.payload, "new_value": 99_000_000}
    forged_hash = audit.record_hash(
        seq=victim.seq,
        ts=victim.ts,
        kind=victim.kind,
        actor=victim.actor,
        run_id=victim.run_id,
        policy_version=victim.policy_version,
        payload=forged_payload,
        prev_hash=victim.prev_hash,
    )
    with store.engine.begin() as conn:
        conn.execute(
            text("UPDATE audit_log SET payload = :p, hash = :h WHERE seq = :s"),
            {"p": audit.canonical_json(forged_payload).decode(), "h": forged_hash, "s": victim.seq},
        )
    result = audit.verify(store)
    assert not result.ok
    assert result.first_bad_seq == victim.seq + 1


def test_canonical_json_ignores_key_order_and_refuses_nan() -> None:
    assert audit.canonical_json({"b": 1, "a": [1, 2]}) == audit.canonical_json({"a": [1, 2], "b": 1})
    with pytest.raises(InputError):
        audit.canonical_json({"roas": float("nan")})
    with pytest.raises(InputError):
        audit.canonical_json({"spend": float("inf")})


def test_payload_with_nan_is_refused_and_nothing_is_written(store: Store) -> None:
    with pytest.raises(InputError):
        audit.append_many(
            store,
            [
                {"kind": "decision", "actor": "cli", "run_id": None, "payload": {"ok": 1}},
                {"kind": "decision", "actor": "cli", "run_id": None, "payload": {"roas": float("nan")}},
            ],
        )
    assert audit.verify(store).records == 0


def test_show_returns_the_newest_records_of_a_run_oldest_first(store: Store) -> None:
    fill(store, 5, run_id="run-a")
    fill(store, 3, run_id="run-b")
    rows = audit.show(store, run_id="run-a", limit=2)
    assert [r.payload["action_id"] for r in rows] == ["a3", "a4"]
    assert all(r.run_id == "run-a" for r in rows)


def test_a_batch_of_thousands_is_written_in_one_call_and_verifies(store: Store) -> None:
    rows = audit.append_many(
        store, [{"kind": "write", "actor": "schedule", "run_id": "big", "payload": {"i": i}} for i in range(3_000)]
    )
    assert [r.seq for r in rows[:2]] == [1, 2]
    result = audit.verify(store)
    assert result.ok
    assert result.records == 3_000


def test_concurrent_writers_keep_one_unbroken_chain(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.sqlite'}"
    Store(url).dispose()
    errors: list[BaseException] = []

    def writer(name: str) -> None:
        s = Store(url, create=False)
        try:
            for i in range(15):
                audit.append(s, kind="write", actor=name, run_id=None, payload={"i": i})
        except BaseException as exc:  # collected and asserted on below
            errors.append(exc)
        finally:
            s.dispose()

    threads = [threading.Thread(target=writer, args=(f"w{n}",)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    reader = Store(url, create=False)
    result = audit.verify(reader)
    reader.dispose()
    assert result.ok
    assert result.records == 45

"""Keep the append-only, hash-chained audit log of every decision and write, and prove it untouched.

Each record's hash is the SHA-256 of the canonical JSON (sorted keys, no spaces, no NaN or
infinities) of its `seq`, `ts` (UTC, microseconds), `kind`, `actor`, `run_id`, `policy_version`,
`payload` and `prev_hash`, the previous record's hash (64 zeros for the first). The newest record's
seq and hash are also kept in the `controls` table (`audit_head`), written in the same transaction.

`verify` recomputes the chain and reports:

* an edited value (a record's hash no longer matches its content),
* a deleted record (a gap in `seq`, a broken link, or a head that points past the last record),
* a reordered record (a broken link, or content that hashes differently under its new `seq`).

What it cannot catch: someone who rewrites every later record *and* the head (anchor the head
elsewhere, e.g. print `bidloop audit verify`'s head hash into a ticket, for that).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from pydantic import BaseModel
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from bidloop.core.errors import InputError, StoreError
from bidloop.core.store import AuditRow, ControlRow, Store, utcnow

__all__ = [
    "GENESIS_HASH",
    "AuditVerification",
    "append",
    "append_many",
    "canonical_json",
    "record_hash",
    "show",
    "verify",
]

GENESIS_HASH = "0" * 64
"""The `prev_hash` of the first record."""

HEAD_KEY = "audit_head"
_RETRIES = 8


def _plain(value: Any) -> Any:
    """Turn a payload into plain JSON types, refusing NaN and infinities."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InputError(
                f"the audit log cannot record the non-finite number {value!r}",
                hint="record it as text or None; audit payloads must be exact",
            )
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted((_plain(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(value, BaseModel):
        return _plain(value.model_dump(mode="json"))
    if isinstance(value, Enum):
        return _plain(value.value)
    if isinstance(value, datetime):
        return _ts_text(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise InputError(f"the audit log cannot record a {type(value).__name__}", hint="convert it to JSON types first")


def canonical_json(value: Any) -> bytes:
    """Return the canonical JSON bytes of a value: sorted keys, compact, UTF-8, no NaN.

    Raises:
        InputError: If the value holds a non-finite float or a type JSON cannot hold.
    """
    return json.dumps(
        _plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def _ts_text(moment: datetime) -> str:
    aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return aware.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def record_hash(
    *,
    seq: int,
    ts: datetime,
    kind: str,
    actor: str,
    run_id: str | None,
    policy_version: str | None,
    payload: Mapping[str, Any],
    prev_hash: str,
) -> str:
    """Return the SHA-256 hex digest that chains one audit record to the previous one."""
    body = {
        "seq": seq,
        "ts": _ts_text(ts),
        "kind": kind,
        "actor": actor,
        "run_id": run_id,
        "policy_version": policy_version,
        "payload": payload,
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(canonical_json(body)).hexdigest()


def _prepare(record: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(record) - {"kind", "actor", "run_id", "payload", "policy_version"}
    if unknown:
        raise InputError(f"unknown audit record field(s): {', '.join(sorted(unknown))}")
    kind, actor = record.get("kind"), record.get("actor")
    if not isinstance(kind, str) or not kind or not isinstance(actor, str) or not actor:
        raise InputError(
            "an audit record needs a non-empty `kind` and `actor`", hint="e.g. kind='decision', actor='cli'"
        )
    payload = record.get("payload", {})
    if not isinstance(payload, Mapping):
        raise InputError(f"an audit payload must be a mapping, got {type(payload).__name__}")
    return {
        "kind": kind,
        "actor": actor,
        "run_id": record.get("run_id"),
        "policy_version": record.get("policy_version"),
        # Stored exactly as hashed: plain JSON types, so what verify reads back hashes the same.
        "payload": json.loads(canonical_json(payload)),
    }


def append_many(store: Store, records: Sequence[Mapping[str, Any]]) -> list[AuditRow]:
    """Append records to the audit log in one transaction, chained in order.

    Args:
        store: The database.
        records: Mappings with `kind`, `actor`, `payload`, and optionally `run_id` and `policy_version`.

    Returns:
        The rows written, in order, with their `seq` and `hash`.

    Raises:
        InputError: If a record is malformed or its payload holds NaN, infinities or non-JSON types.
        StoreError: If the database cannot be written (after retrying conflicts with other writers).
    """
    prepared = [_prepare(r) for r in records]
    if not prepared:
        return []
    for attempt in range(_RETRIES):
        try:
            return _append_prepared(store, prepared)
        except (IntegrityError, StoreError):
            # Another process appended at the same time (same seq): read the new head and chain again.
            if attempt == _RETRIES - 1:
                raise
            time.sleep(0.01 * (attempt + 1))
    raise StoreError("could not append to the audit log")  # pragma: no cover - the loop returns or raises


def _append_prepared(store: Store, prepared: list[dict[str, Any]]) -> list[AuditRow]:
    with store.session() as s:
        last = s.execute(select(AuditRow.seq, AuditRow.hash).order_by(AuditRow.seq.desc()).limit(1)).first()
        seq, prev = (last[0], last[1]) if last is not None else (0, GENESIS_HASH)
        ts = utcnow()
        rows: list[dict[str, Any]] = []
        for record in prepared:
            seq += 1
            digest = record_hash(seq=seq, ts=ts, prev_hash=prev, **record)
            rows.append({**record, "seq": seq, "ts": ts, "prev_hash": prev, "hash": digest})
            prev = digest
        s.execute(insert(AuditRow), rows)
        head = s.get(ControlRow, HEAD_KEY)
        value = f"{seq}:{prev}"
        if head is None:
            s.add(ControlRow(key=HEAD_KEY, value=value, updated_by="audit"))
        else:
            head.value, head.updated_at, head.updated_by = value, utcnow(), "audit"
    return [AuditRow(**r) for r in rows]


def append(
    store: Store,
    *,
    kind: str,
    actor: str,
    run_id: str | None,
    payload: Mapping[str, Any],
    policy_version: str | None = None,
) -> AuditRow:
    """Append one record to the audit log and return it (see `append_many`)."""
    [row] = append_many(
        store, [{"kind": kind, "actor": actor, "run_id": run_id, "payload": payload, "policy_version": policy_version}]
    )
    return row


@dataclass
class AuditVerification:
    """The outcome of `verify`.

    Attributes:
        ok: True when every record is intact, in order, and none is missing.
        records: How many records were checked.
        head_seq: The last record's seq (0 for an empty log).
        head_hash: The last record's hash (anchor it elsewhere to detect a rewrite of the whole tail).
        first_bad_seq: The first record where something is wrong, if any.
        problems: One sentence per problem found (at most 100).
    """

    ok: bool
    records: int
    head_seq: int
    head_hash: str
    first_bad_seq: int | None = None
    problems: list[str] = field(default_factory=list)


def verify(store: Store, *, batch_size: int = 5_000) -> AuditVerification:
    """Recompute the audit chain and report every edited, deleted or reordered record.

    Raises:
        StoreError: If the database cannot be read.
    """
    problems: list[str] = []
    first_bad: int | None = None

    def problem(seq: int, text: str) -> None:
        nonlocal first_bad
        if first_bad is None:
            first_bad = seq
        if len(problems) < 100:
            problems.append(text)

    count = 0
    expected_seq = 1
    prev_hash = GENESIS_HASH
    last_seq = 0
    with store.session() as s:
        head = s.get(ControlRow, HEAD_KEY)
        head_value = head.value if head is not None else None
        after = 0
        while True:
            chunk = list(
                s.scalars(select(AuditRow).where(AuditRow.seq > after).order_by(AuditRow.seq).limit(batch_size))
            )
            if not chunk:
                break
            for row in chunk:
                count += 1
                if row.seq != expected_seq:
                    missing = f"{expected_seq}" if row.seq == expected_seq + 1 else f"{expected_seq}-{row.seq - 1}"
                    problem(row.seq, f"record(s) {missing} are missing: the log jumps to seq {row.seq}.")
                if row.prev_hash != prev_hash:
                    problem(
                        row.seq,
                        f"record {row.seq} does not follow the record before it (its prev_hash does not match): "
                        "a record was removed, inserted or moved.",
                    )
                try:
                    recomputed = record_hash(
                        seq=row.seq,
                        ts=row.ts,
                        kind=row.kind,
                        actor=row.actor,
                        run_id=row.run_id,
                        policy_version=row.policy_version,
                        payload=row.payload,
                        prev_hash=row.prev_hash,
                    )
                except InputError as exc:
                    recomputed = f"unhashable: {exc.message}"
                if recomputed != row.hash:
                    problem(
                        row.seq, f"record {row.seq} ({row.kind} by {row.actor}) was edited: its hash does not match."
                    )
                prev_hash = row.hash
                expected_seq = row.seq + 1
                last_seq = row.seq
            after = chunk[-1].seq
    if head_value is not None:
        head_seq_text, _, head_hash = head_value.partition(":")
        if head_seq_text != str(last_seq) or head_hash != prev_hash:
            problem(
                last_seq + 1,
                f"the log ends at record {last_seq} but its head says {head_seq_text}: "
                "the newest record(s) were removed or the head was edited.",
            )
    elif count:
        problem(1, "the audit head is missing from the controls table: it was removed.")
    return AuditVerification(
        ok=not problems and first_bad is None,
        records=count,
        head_seq=last_seq,
        head_hash=prev_hash,
        first_bad_seq=first_bad,
        problems=problems,
    )


def show(store: Store, run_id: str | None = None, *, limit: int = 50, kind: str | None = None) -> list[AuditRow]:
    """Return the newest `limit` audit records (of one run and/or kind), oldest first.

    Raises:
        InputError: If `limit` is not positive.
    """
    if limit <= 0:
        raise InputError(f"limit must be positive, got {limit}")
    with store.session() as s:
        q = select(AuditRow)
        if run_id is not None:
            q = q.where(AuditRow.run_id == run_id)
        if kind is not None:
            q = q.where(AuditRow.kind == kind)
        rows = list(s.scalars(q.order_by(AuditRow.seq.desc()).limit(limit)))
    rows.reverse()
    return rows

"""Parse the small GAQL subset the fake Google Ads server answers, and fill `GoogleAdsRow`s by field path.

Supported: `SELECT a.b, ... FROM resource [WHERE cond AND cond ...] [LIMIT n]` with conditions
`field = v`, `field != v`, `field IN (v, ...)` and `segments.date BETWEEN 'd1' AND 'd2'`. Values are
'quoted strings', integers, TRUE/FALSE or bare enum names. Field paths are checked against the real
`GoogleAdsRow` descriptor, so a misspelt field fails as it would against Google.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from google.ads.googleads.v26.services.types.google_ads_service import GoogleAdsRow

__all__ = ["GaqlError", "Query", "parse_query", "row_field_exists", "set_row_field"]

_ROW_DESCRIPTOR = GoogleAdsRow.pb().DESCRIPTOR
_QUERY = re.compile(
    r"^\s*SELECT\s+(?P<select>.+?)\s+FROM\s+(?P<resource>\w+)"
    r"(?:\s+WHERE\s+(?P<where>.+?))?(?:\s+ORDER\s+BY\s+.+?)?(?:\s+LIMIT\s+(?P<limit>\d+))?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_VALUE = r"(?:'[^']*'|\"[^\"]*\"|[\w.\-]+)"
_CONDITION = re.compile(
    rf"\s*(?P<field>[\w.]+)\s+(?:(?P<between>BETWEEN)\s+(?P<lo>{_VALUE})\s+AND\s+(?P<hi>{_VALUE})"
    rf"|(?P<in>IN)\s*\((?P<list>[^)]*)\)|(?P<op>!=|=)\s*(?P<value>{_VALUE}))\s*",
    re.IGNORECASE,
)


class GaqlError(ValueError):
    """The query is outside the supported subset or names an unknown field."""


@dataclass
class Query:
    """A parsed GAQL query."""

    fields: list[str]
    resource: str
    conditions: list[tuple[str, str, Any]] = field(default_factory=list)
    date_from: date | None = None
    date_to: date | None = None
    limit: int | None = None

    @property
    def wants_metrics(self) -> bool:
        """Return True if the query selects metrics or per-day segments."""
        return any(f.startswith(("metrics.", "segments.")) for f in self.fields)

    @property
    def per_day(self) -> bool:
        """Return True if rows are split by `segments.date`."""
        return "segments.date" in self.fields

    def matches(self, row: dict[str, Any]) -> bool:
        """Return True if a row (field path -> value) meets every non-date condition."""
        for path, op, value in self.conditions:
            actual = row.get(path)
            if op == "=" and actual != value:
                return False
            if op == "!=" and actual == value:
                return False
            if op == "in" and actual not in value:
                return False
        return True


def _literal(text: str) -> Any:
    if text[:1] in ("'", '"'):
        return text[1:-1]
    if text.upper() in ("TRUE", "FALSE"):
        return text.upper() == "TRUE"
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    return text


def _field(descriptor: Any, name: str) -> Any:
    # proto-plus renames fields that clash with Python builtins (`type` -> `type_`); GAQL keeps the API name.
    return descriptor.fields_by_name.get(name) or descriptor.fields_by_name.get(f"{name}_")


def row_field_exists(path: str) -> bool:
    """Return True if `path` (e.g. `campaign_budget.amount_micros`) is a scalar field of `GoogleAdsRow`."""
    descriptor = _ROW_DESCRIPTOR
    parts = path.split(".")
    for position, part in enumerate(parts):
        fd = _field(descriptor, part)
        if fd is None:
            return False
        if position < len(parts) - 1:
            if fd.message_type is None:
                return False
            descriptor = fd.message_type
    return True


def parse_query(text: str) -> Query:
    """Parse one GAQL query.

    Raises:
        GaqlError: If the query is malformed, outside the subset, or names an unknown field.
    """
    match = _QUERY.match(text)
    if match is None:
        raise GaqlError(f"cannot parse query: {text!r}")
    fields = [f.strip() for f in match.group("select").split(",") if f.strip()]
    resource = match.group("resource")
    if _ROW_DESCRIPTOR.fields_by_name.get(resource) is None:
        raise GaqlError(f"unknown resource {resource!r}")
    query = Query(fields=fields, resource=resource)
    if match.group("limit"):
        query.limit = int(match.group("limit"))
    where = match.group("where") or ""
    position = 0
    while position < len(where):
        cond = _CONDITION.match(where, position)
        if cond is None:
            raise GaqlError(f"cannot parse condition at {where[position:]!r}")
        path = cond.group("field")
        if not row_field_exists(path):
            raise GaqlError(f"unrecognized field {path!r} in WHERE")
        if cond.group("between"):
            if path != "segments.date":
                raise GaqlError("BETWEEN is only supported on segments.date")
            query.date_from = date.fromisoformat(_literal(cond.group("lo")))
            query.date_to = date.fromisoformat(_literal(cond.group("hi")))
        elif cond.group("in"):
            items = re.findall(_VALUE, cond.group("list"))
            query.conditions.append((path, "in", {_literal(i) for i in items}))
        else:
            query.conditions.append((path, cond.group("op"), _literal(cond.group("value"))))
        position = cond.end()
        rest = re.match(r"AND\s+", where[position:], re.IGNORECASE)
        if rest is not None:
            position += rest.end()
        elif position < len(where):
            raise GaqlError(f"expected AND at {where[position:]!r}")
    for path in fields:
        if not row_field_exists(path):
            raise GaqlError(f"unrecognized field {path!r} in SELECT")
    return query


def set_row_field(row_pb: Any, path: str, value: Any) -> None:
    """Set `path` on a raw `GoogleAdsRow` protobuf; enum values are given by name (e.g. `'PAUSED'`)."""
    message = row_pb
    parts = path.split(".")
    for part in parts[:-1]:
        message = getattr(message, _field(message.DESCRIPTOR, part).name)
    fd = _field(message.DESCRIPTOR, parts[-1])
    if fd.enum_type is not None and isinstance(value, str):
        value = fd.enum_type.values_by_name[value].number
    setattr(message, fd.name, value)

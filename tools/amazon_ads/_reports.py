"""Describe the Sponsored Products v3 reports bidloop requests and fold their rows into `Metrics` per entity and day.

Amazon serves performance only through asynchronous reports: `POST /reporting/reports` creates
one, `GET /reporting/reports/{id}` tells its status, and when it is `COMPLETED` its `url` holds the
gzipped JSON rows. One DAILY report per level covers today and the 14 days before it, so one
snapshot costs four report requests whatever the account's size.

Money in rows (`cost`, `sales7d`) is in major units of the account currency; it becomes micros here,
through `bidloop.core.money`, and nowhere else.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from bidloop.core.metrics import Metrics
from bidloop.core.money import major_to_micros

__all__ = [
    "HISTORY_DAYS",
    "REPORT_SPECS",
    "ReportSpec",
    "daily_metrics",
    "report_request_body",
    "row_metrics",
    "window_metrics",
]

HISTORY_DAYS = 14
"""Full days before today that a snapshot reads (`daily_history` holds at most 14)."""

ATTRIBUTION = "7d"
"""Attribution window of the conversion columns: Amazon's seller default (vendors see 14d in the console)."""

_METRIC_COLUMNS = ["impressions", "clicks", "cost", f"purchases{ATTRIBUTION}", f"sales{ATTRIBUTION}"]


@dataclass(frozen=True)
class ReportSpec:
    """One SP v3 report: its type, grouping and columns, and the column that names the entity."""

    report_type_id: str
    group_by: tuple[str, ...]
    id_columns: tuple[str, ...]

    @property
    def columns(self) -> list[str]:
        """Return the columns requested: the date, the ids, then the metrics."""
        return ["date", *self.id_columns, *_METRIC_COLUMNS]


REPORT_SPECS: dict[str, ReportSpec] = {
    "campaigns": ReportSpec("spCampaigns", ("campaign",), ("campaignId",)),
    "targeting": ReportSpec("spTargeting", ("targeting",), ("campaignId", "adGroupId", "keywordId")),
    "search_terms": ReportSpec("spSearchTerm", ("searchTerm",), ("campaignId", "adGroupId", "keywordId", "searchTerm")),
    "product_ads": ReportSpec("spAdvertisedProduct", ("advertiser",), ("campaignId", "adGroupId", "adId")),
}
"""The reports a snapshot requests. `spTargeting` rows cover keywords and product targets alike (its
`keywordId` is the target's id), so summing them per ad group gives the ad group's full traffic."""


def report_request_body(spec: ReportSpec, *, start: date, end: date) -> dict[str, Any]:
    """Return the body of `POST /reporting/reports` for one DAILY, gzipped-JSON report (dates inclusive)."""
    return {
        "name": f"bidloop {spec.report_type_id} {start.isoformat()}..{end.isoformat()}",
        "startDate": start.isoformat(),
        "endDate": end.isoformat(),
        "configuration": {
            "adProduct": "SPONSORED_PRODUCTS",
            "reportTypeId": spec.report_type_id,
            "groupBy": list(spec.group_by),
            "columns": spec.columns,
            "timeUnit": "DAILY",
            "format": "GZIP_JSON",
        },
    }


def _money(value: Any) -> int:
    # Refunds can make a day's sales negative; a negative amount is not a spendable money value.
    micros = major_to_micros(value if value is not None else 0)
    return max(micros, 0)


def row_metrics(row: dict[str, Any]) -> Metrics:
    """Convert one report row to `Metrics` (money from major units to micros).

    Raises:
        MoneyError: If a money column is not a finite number.
    """
    return Metrics(
        impressions=max(int(row.get("impressions") or 0), 0),
        clicks=max(int(row.get("clicks") or 0), 0),
        cost_micros=_money(row.get("cost")),
        conversions=max(float(row.get(f"purchases{ATTRIBUTION}") or 0.0), 0.0),
        conversion_value_micros=_money(row.get(f"sales{ATTRIBUTION}")),
    )


def daily_metrics(rows: list[dict[str, Any]], key_column: str) -> dict[str, dict[date, Metrics]]:
    """Sum rows into `{entity id: {day: Metrics}}`, keyed by `key_column` (ids as strings)."""
    out: dict[str, dict[date, Metrics]] = defaultdict(dict)
    for row in rows:
        key = row.get(key_column)
        day_text = row.get("date")
        if key is None or not day_text:
            continue
        day = date.fromisoformat(str(day_text)[:10])
        per_day = out[str(key)]
        per_day[day] = per_day.get(day, Metrics()) + row_metrics(row)
    return dict(out)


def window_metrics(per_day: dict[date, Metrics], today: date) -> tuple[Metrics, Metrics, list[Metrics]]:
    """Return (today so far, the 7 full days before today, one `Metrics` per past day oldest first)."""
    trailing = Metrics()
    for offset in range(1, 8):
        trailing = trailing + per_day.get(today - timedelta(days=offset), Metrics())
    history = [per_day.get(today - timedelta(days=offset), Metrics()) for offset in range(HISTORY_DAYS, 0, -1)]
    return per_day.get(today, Metrics()), trailing, history

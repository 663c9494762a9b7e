"""Describe how each kind of SP v3 write travels, and read the per-item errors of a 207 Multi-Status body."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bidloop.core.actions import Action
from bidloop.core.decisions import WriteResult, WriteStatus

__all__ = [
    "API_OF_RESOURCE",
    "LIST_FILTERS",
    "OPERATIONS",
    "Operation",
    "PendingItem",
    "Refused",
    "chunks",
    "item_error_message",
    "write_result",
]

_RESEND_SELECTORS = {"throttledError"}
_RESEND_REASONS = {"THROTTLED"}
"""SP v3 per-item errors worth sending again: `errorValue.throttledError.reason == "THROTTLED"` ("failure due to
API caller exceeding allowed service limits"). `internalServerError` (`INTERNAL_ERROR`) is final: the v3 schema
calls it "non-retryable API service error. Sending the same request will result in another error"."""


@dataclass(frozen=True)
class Operation:
    """How one kind of write travels: the SDK object and method, the body key, and how to read it back."""

    key: str
    api_attr: str
    method: str
    resource: str
    """Key of the item list in the request and of the 207 body (`keywords`, `campaigns`, ...)."""
    id_field: str
    representation: str
    """Key of the returned entity in a success item when `Prefer: return=representation` is sent."""
    list_method: str
    creates: bool = False


OPERATIONS = {
    "keyword_bid": Operation(
        "keyword_bid", "keywords", "edit_keyword", "keywords", "keywordId", "keyword", "list_keywords"
    ),
    "ad_group_bid": Operation(
        "ad_group_bid", "ad_groups", "edit_ad_groups", "adGroups", "adGroupId", "adGroup", "list_ad_groups"
    ),
    "campaign_budget": Operation(
        "campaign_budget", "campaigns", "edit_campaigns", "campaigns", "campaignId", "campaign", "list_campaigns"
    ),
    "product_ad_state": Operation(
        "product_ad_state", "product_ads", "edit_product_ads", "productAds", "adId", "productAd", "list_product_ads"
    ),
    "add_keyword": Operation(
        "add_keyword", "keywords", "create_keyword", "keywords", "keywordId", "keyword", "list_keywords", True
    ),
    "add_negative_keyword": Operation(
        "add_negative_keyword",
        "negative_keywords",
        "create_negative_keyword",
        "negativeKeywords",
        "negativeKeywordId",
        "negativeKeyword",
        "list_negative_keywords",
        True,
    ),
}

LIST_FILTERS = {
    "keywords": "keywordIdFilter",
    "adGroups": "adGroupIdFilter",
    "campaigns": "campaignIdFilter",
    "negativeKeywords": "negativeKeywordIdFilter",
    "productAds": "adIdFilter",
}
API_OF_RESOURCE = {
    "keywords": ("keywords", "list_keywords"),
    "adGroups": ("ad_groups", "list_ad_groups"),
    "campaigns": ("campaigns", "list_campaigns"),
    "productAds": ("product_ads", "list_product_ads"),
}


@dataclass
class PendingItem:
    """One action on its way out: where its result goes, and what the platform must end up holding."""

    index: int
    action: Action
    entity_id: str
    payload: dict[str, Any]
    target_micros: int | None = None
    target_state: str | None = None
    ad_group_id: str | None = None
    text: str | None = None
    match_type: str | None = None


def write_result(action: Action, status: WriteStatus, message: str, **kwargs: Any) -> WriteResult:
    return WriteResult(action_id=action.action_id, status=status, message=message, **kwargs)


def item_error_message(entry: dict[str, Any]) -> tuple[str, bool]:
    """Return (a message, whether the item may be sent again) for one `error` entry of a 207 body.

    SP v3 names each error twice: `errorType` and the one key of `errorValue` (the selector, e.g.
    `throttledError`), whose object holds the `reason` (e.g. `THROTTLED`) and a `message`.
    """
    errors = entry.get("errors") or []
    parts: list[str] = []
    resend = False
    for error in errors if isinstance(errors, list) else []:
        if not isinstance(error, dict):
            continue
        error_type = str(error.get("errorType") or "error")
        detail, reason, selectors = "", "", {error_type}
        value = error.get("errorValue")
        if isinstance(value, dict):
            selectors |= {str(k) for k in value}
            for inner in value.values():
                if isinstance(inner, dict):
                    reason = str(inner.get("reason") or "")
                    detail = str(inner.get("message") or "")
                    break
        resend = resend or bool(selectors & _RESEND_SELECTORS) or reason.upper() in _RESEND_REASONS
        text = f"{reason}: {detail}" if reason and detail else (reason or detail)
        parts.append(f"{error_type}: {text}" if text else error_type)
    return ("; ".join(parts) or "Amazon reported an error for this item without details"), resend


def chunks(items: list[PendingItem], size: int) -> Iterable[list[PendingItem]]:
    """Split items into requests of at most `size`, never the same entity twice in one request."""
    chunk: list[PendingItem] = []
    seen: set[str] = set()
    for item in items:
        key = item.entity_id if item.text is None else f"{item.ad_group_id}|{item.match_type}|{item.text}"
        if len(chunk) >= size or key in seen:
            yield chunk
            chunk, seen = [], set()
        chunk.append(item)
        seen.add(key)
    if chunk:
        yield chunk


class Refused(Exception):
    """An action this client will not send (unsupported, misaddressed, or below a platform minimum)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

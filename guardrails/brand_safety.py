"""Check keyword and creative text against banned terms and a list of claims that need substantiation.

Matching is case-insensitive on Unicode-normalised text (NFKC, so full-width and ligature tricks do
not hide a term), on whole words, with any run of spaces, dashes, dots or underscores between words
treated as one separator ("risk-free", "risk  free" and "RISK_FREE" all match "risk free").
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["BrandSafetyFinding", "scan_text"]

_SEPARATORS = re.compile(r"[\s\-_.·/]+")


@dataclass(frozen=True, slots=True)
class BrandSafetyFinding:
    """What a text scan found: banned terms (block) and claims (need a person's approval)."""

    banned: tuple[str, ...] = ()
    claims: tuple[str, ...] = ()

    @property
    def clean(self) -> bool:
        """Return True when the text contains neither a banned term nor a claim."""
        return not self.banned and not self.claims


def _normalise(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).casefold()
    # Zero-width characters would otherwise split a term invisibly.
    folded = "".join(ch for ch in folded if unicodedata.category(ch) != "Cf")
    return " " + _SEPARATORS.sub(" ", folded).strip() + " "


def _term_pattern(term: str) -> re.Pattern[str] | None:
    words = _normalise(term).split()
    if not words:
        return None
    body = r"\ ".join(re.escape(w) for w in words)
    # Whole words: the term may not be glued to letters or digits on either side.
    return re.compile(rf"(?<![^\W_]){body}(?![^\W_])")


@lru_cache(maxsize=256)
def _compile(terms: tuple[str, ...]) -> tuple[tuple[str, re.Pattern[str]], ...]:
    compiled = []
    for term in terms:
        pattern = _term_pattern(term)
        if pattern is not None:
            compiled.append((term, pattern))
    return tuple(compiled)


def scan_text(text: str, *, banned_terms: tuple[str, ...], claims: tuple[str, ...]) -> BrandSafetyFinding:
    """Return the banned terms and claims found in `text` (empty finding when clean).

    Raises:
        TypeError: If `text` is not a string (the filter turns this into a blocked action).
    """
    if not isinstance(text, str):
        raise TypeError(f"text to check must be a string, got {type(text).__name__}")
    normalised = _normalise(text)
    banned = tuple(term for term, pattern in _compile(banned_terms) if pattern.search(normalised))
    found_claims = tuple(term for term, pattern in _compile(claims) if pattern.search(normalised))
    return BrandSafetyFinding(banned=banned, claims=found_claims)

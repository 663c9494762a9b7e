"""Turn operator text into tokens, fix typos, and match entity ids and names against a catalog.

Private helpers of `bidloop.agents.operator_intent`; the public names are re-exported there.
Everything here is deterministic and never raises on user text: odd input yields fewer matches.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

from bidloop.core.entities import EntityKind, EntityState, Platform
from bidloop.core.snapshot import Snapshot

__all__ = [
    "ALIASES",
    "EntityCatalog",
    "EntityMatch",
    "Token",
    "correct_typos",
    "find_entities",
    "named_negatives",
    "quoted_terms",
    "tokenize",
]

# -- word lists -----------------------------------------------------------------------------------
# Canonical words the rules in operator_intent.py look for; a misspelt token is corrected to one of
# these (never to an arbitrary English word), so a typo can only ever land on a word we act on.

PLATFORM_WORDS: dict[str, Platform] = {
    "meta": Platform.META,
    "facebook": Platform.META,
    "fb": Platform.META,
    "instagram": Platform.META,
    "insta": Platform.META,
    "ig": Platform.META,
    "google": Platform.GOOGLE_ADS,
    "adwords": Platform.GOOGLE_ADS,
    "gads": Platform.GOOGLE_ADS,
    "amazon": Platform.AMAZON_ADS,
    "amzn": Platform.AMAZON_ADS,
}

INTENT_VOCABULARY: frozenset[str] = frozenset(
    [
        "rebalance",
        "reallocate",
        "redistribute",
        "allocate",
        "shift",
        "move",
        "moving",
        "moved",
        "spread",
        "scale",
        "take",
        "give",
        "push",
        "pull",
        "budget",
        "budgets",
        "spend",
        "money",
        "cash",
        "raise",
        "raised",
        "raising",
        "lift",
        "lifted",
        "lifting",
        "increase",
        "increased",
        "increasing",
        "bump",
        "boost",
        "up",
        "higher",
        "harder",
        "aggressive",
        "lower",
        "lowered",
        "lowering",
        "cut",
        "cutting",
        "reduce",
        "reduced",
        "decrease",
        "decreased",
        "drop",
        "trim",
        "down",
        "ease",
        "back",
        "less",
        "double",
        "halve",
        "half",
        "bid",
        "bids",
        "bidding",
        "cpc",
        "cpcs",
        "pause",
        "paused",
        "pausing",
        "stop",
        "stopped",
        "kill",
        "halt",
        "disable",
        "creative",
        "creatives",
        "ads",
        "video",
        "carousel",
        "static",
        "banner",
        "rotate",
        "rotation",
        "rotating",
        "refresh",
        "swap",
        "fresh",
        "freshen",
        "new",
        "negative",
        "negatives",
        "negate",
        "exclude",
        "block",
        "keyword",
        "keywords",
        "search",
        "searches",
        "queries",
        "query",
        "terms",
        "report",
        "explain",
        "explanation",
        "summary",
        "summarize",
        "breakdown",
        "compare",
        "trending",
        "numbers",
        "performance",
        "what",
        "happens",
        "happen",
        "happened",
        "simulate",
        "simulation",
        "suppose",
        "hypothetically",
        "forecast",
        "project",
        "status",
        "pending",
        "approval",
        "approvals",
        "waiting",
        "running",
        "finish",
        "finished",
        "scheduled",
        "policy",
        "rollback",
        "roll",
        "undo",
        "revert",
        "reverse",
        "restore",
        "everything",
        "emergency",
        "switch",
        "ignore",
        "bypass",
        "override",
        "guardrail",
        "guardrails",
        "limit",
        "limits",
        "filter",
        "safety",
        "approve",
        "approved",
        "reject",
        "rejected",
        "cooldown",
        "threshold",
        "settings",
        "config",
        "maximum",
        "turn",
        "live",
        "mode",
        "shadow",
        "credentials",
        "credential",
        "token",
        "tokens",
        "password",
        "secret",
        "secrets",
        "reveal",
        "print",
        "dump",
        "instructions",
        "pretend",
        "developer",
        "admin",
        "system",
        "forget",
        "rules",
        "ceiling",
        "floor",
        "today",
        "yesterday",
        "week",
        "month",
        "morning",
        "afternoon",
        "evening",
        "campaign",
        "campaigns",
        "adset",
        "adsets",
        "group",
        "groups",
        "set",
        "sets",
        "change",
        "changes",
        "without",
        "within",
        "apply",
    ]
)

COMMON_WORDS: frozenset[str] = frozenset(
    [
        "sale",
        "sales",
        "spent",
        "like",
        "time",
        "more",
        "many",
        "same",
        "some",
        "this",
        "that",
        "then",
        "than",
        "they",
        "them",
        "there",
        "these",
        "those",
        "rest",
        "rise",
        "live",
        "give",
        "gave",
        "site",
        "said",
        "word",
        "work",
        "with",
        "what",
        "when",
        "where",
        "while",
        "were",
        "your",
        "yours",
        "case",
        "tired",
        "lose",
        "lost",
        "look",
        "pace",
        "paid",
        "past",
        "plan",
        "play",
        "last",
        "list",
        "lots",
        "make",
        "made",
        "much",
        "must",
        "need",
        "none",
        "have",
        "black",
        "boot",
        "drip",
        "east",
        "easy",
        "else",
        "left",
        "life",
        "lime",
        "line",
        "love",
        "lover",
        "loss",
        "point",
        "send",
        "shirt",
        "speed",
        "sped",
        "stats",
        "step",
        "support",
        "teams",
        "trip",
        "bide",
        "lone",
        "load",
        "loud",
        "boss",
        "bust",
        "hold",
        "bold",
        "instead",
    ]
)
"""Ordinary words that look like a typo of a rule word ("sale" ~ "scale") and must stay as written."""

_DASHES = dict.fromkeys(map(ord, "\u2010\u2011\u2012\u2013\u2014\u2015\u2212"), "-")
_TOKEN_RE = re.compile(r"\$|%|\+|\d+(?:[.,]\d+)*|[a-z]+")
_QUOTED_RE = re.compile(r"""(?:^|[\s(\[{,:])['"\u2018\u201c]([^'"\u2019\u201d]{1,60})['"\u2019\u201d]""")


@dataclass(frozen=True)
class Token:
    """One token of operator text.

    Attributes:
        text: The normalized token (lower case; `%` for "pct"/"percent"; typos corrected).
        raw: The token as it was written (lower case).
        start: Character offset of the token in the normalized text.
        end: Offset just past the token.
    """

    text: str
    raw: str
    start: int
    end: int


def normalize(text: str) -> str:
    """Return `text` in a canonical form: NFKC, lower case, plain dashes and quotes, `&` as "and"."""
    text = unicodedata.normalize("NFKC", text).lower().translate(_DASHES)
    text = text.replace("\u2019", "'").replace("&", " and ").replace("_", " ")
    text = re.sub(r"\bre-(?=[a-z])", "re", text)  # "re-balance" -> "rebalance"
    text = re.sub(r"\bper\s+cent\b", "percent", text)
    return re.sub(r"(?<=[a-z])-(?=[a-z])", " ", text)  # "ad-set" -> "ad set", "dry-run" -> "dry run"


def tokenize(text: str) -> list[Token]:
    """Split normalized operator text into tokens; "pct" and "percent" become `%`.

    Args:
        text: Raw operator text (any length; any characters).

    Returns:
        The tokens in order. Numbers keep their separators ("1,000,000", "0.5").
    """
    norm = normalize(text)
    tokens: list[Token] = []
    for m in _TOKEN_RE.finditer(norm):
        word = m.group(0)
        canonical = "%" if word in {"pct", "percent"} else word
        tokens.append(Token(canonical, word, m.start(), m.end()))
    return tokens


def quoted_terms(text: str) -> list[str]:
    """Return the phrases the operator put in quotes ('free', "cheap shoes"), lower case, in order."""
    norm = unicodedata.normalize("NFKC", text).replace("\u2018", "'").replace("\u201c", '"')
    return [m.group(1).strip().lower() for m in _QUOTED_RE.finditer(norm) if m.group(1).strip()]


_NAMED_NEGATIVE_RES = (
    re.compile(
        r"\b(?:add|put|make|set|mark|list|use|include)\s+(?:the\s+)?(?:(?:word|term|phrase|keyword|query)s?\s+)?"
        r"(?P<terms>[a-z0-9][a-z0-9 ,]{0,60}?)\s+as\s+(?:an?\s+)?(?:new\s+)?(?:(?:phrase|exact|broad)(?:\s+match)?\s+)?"
        r"negat"
    ),
    re.compile(r"\b(?:negate|exclude|block)\s+(?:the\s+)?(?:word|term)\s+(?P<terms>[a-z0-9]+)\b"),
)
_NOT_A_TERM = frozenset(
    {"it", "them", "that", "this", "those", "these", "all", "everything", "more", "some", "any", "they", "one", "ones"}
)


def named_negatives(text: str) -> list[str]:
    """Return the words an operator asked to negate without quotes ("add free as a negative keyword"), in order.

    Only two shapes are read, so that ordinary words are never taken for terms: "add X (and Y) as a negative"
    and "negate/exclude/block the word X". Pronouns ("add them as negatives") give nothing.
    """
    norm = normalize(text)
    found: list[str] = []
    for pattern in _NAMED_NEGATIVE_RES:
        for m in pattern.finditer(norm):
            for part in re.split(r"\s*(?:,|\band\b|\bor\b)\s*", m.group("terms")):
                term = " ".join(part.split())
                if term and term not in _NOT_A_TERM and term not in found:
                    found.append(term)
    return found


def _osa_distance(a: str, b: str, limit: int) -> int:
    """Return the optimal-string-alignment distance of `a` and `b` (a transposition costs 1), capped."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[-1]


def closest_word(word: str, vocabulary: Iterable[str]) -> str | None:
    """Return the vocabulary word `word` is most likely a typo of, or None.

    A correction must keep the first letter and be within one edit (two for words of 7+ letters),
    counting a swap of neighbours as one edit ("stauts" -> "status", "rebalnce" -> "rebalance").
    """
    if len(word) < 4 or not word.isalpha() or word in COMMON_WORDS:
        return None
    best: str | None = None
    best_distance = 3
    for candidate in vocabulary:
        if candidate[0] != word[0] or len(candidate) < 4:
            continue
        limit = 2 if min(len(word), len(candidate)) >= 7 else 1
        distance = _osa_distance(word, candidate, limit)
        if distance > limit:
            continue
        if distance < best_distance or (distance == best_distance and best is not None and candidate < best):
            best, best_distance = candidate, distance
    return best


ALIASES: dict[str, str] = {
    "wat": "what",
    "wht": "what",
    "u": "you",
    "r": "are",
    "ur": "your",
    "pls": "please",
    "plz": "please",
    "whats": "what",
    "hows": "how",
}
"""Chat shorthand read as the word it stands for."""


def correct_typos(tokens: list[Token], extra_vocabulary: Iterable[str] = ()) -> tuple[list[Token], list[str]]:
    """Replace misspelt rule words by their canonical spelling.

    Args:
        tokens: Tokens from `tokenize`.
        extra_vocabulary: More words to know (entity name words from the catalog).

    Returns:
        The corrected tokens and one note per correction ("read 'rebalnce' as 'rebalance'").
    """
    vocabulary = set(INTENT_VOCABULARY) | set(PLATFORM_WORDS) | set(extra_vocabulary)
    out: list[Token] = []
    notes: list[str] = []
    for token in tokens:
        word = token.text
        if word in ALIASES:
            out.append(Token(ALIASES[word], token.raw, token.start, token.end))
            continue
        if word in vocabulary or not word.isalpha():
            out.append(token)
            continue
        fixed = closest_word(word, vocabulary)
        if fixed is None:
            out.append(token)
            continue
        notes.append(f"read {word!r} as {fixed!r}")
        out.append(Token(fixed, token.raw, token.start, token.end))
    return out, notes


# -- entities -------------------------------------------------------------------------------------

_KIND_WORDS: dict[tuple[str, ...], EntityKind] = {
    ("ad", "sets"): EntityKind.AD_GROUP,
    ("ad", "set"): EntityKind.AD_GROUP,
    ("adsets",): EntityKind.AD_GROUP,
    ("adset",): EntityKind.AD_GROUP,
    ("ad", "groups"): EntityKind.AD_GROUP,
    ("ad", "group"): EntityKind.AD_GROUP,
    ("adgroups",): EntityKind.AD_GROUP,
    ("adgroup",): EntityKind.AD_GROUP,
    ("campaigns",): EntityKind.CAMPAIGN,
    ("campaign",): EntityKind.CAMPAIGN,
    ("keywords",): EntityKind.KEYWORD,
    ("keyword",): EntityKind.KEYWORD,
    ("kw",): EntityKind.KEYWORD,
    ("creatives",): EntityKind.CREATIVE,
    ("creative",): EntityKind.CREATIVE,
    ("ads",): EntityKind.CREATIVE,
    ("ad",): EntityKind.CREATIVE,
}
"""Words that announce an id ("ad set 117", "campaign 1004"), longest first when matching."""

_ID_JOINERS = frozenset({"and", ",", "/", "or", "+"})
_NOT_AN_ID_AFTER = frozenset({"%", "x", "am", "pm", "d", "h", "days", "day", "hours", "k", "m", "st", "nd", "rd", "th"})
_NOT_AN_ID_BEFORE = frozenset({"$", "by", "top", "last", "past", "over", "under", "above", "below", "than", "run"})

_NAME_STOP_WORDS = frozenset({"the", "a", "an", "of", "and", "for", "sp", "-", "%"})
_WEAK_NAME_WORDS = frozenset(
    [
        "campaign",
        "campaigns",
        "search",
        "shoes",
        "running",
        "exact",
        "broad",
        "phrase",
        "auto",
        "manual",
        "products",
        "all",
        "max",
        "video",
        "static",
        "ads",
        "ad",
        "set",
        "prospecting",
        "retargeting",
        "interest",
        "interests",
        "lookalike",
        "purchasers",
        "men",
        "women",
        "views",
        "performance",
        "sale",
    ]
)
"""Name words too common to pick an entity on their own; they still count next to a distinctive one."""


@dataclass(frozen=True)
class _CatalogEntry:
    state: EntityState
    name: str
    words: tuple[str, ...]


@dataclass(frozen=True)
class EntityMatch:
    """One entity found in operator text.

    Attributes:
        kind: The entity kind, when known.
        entity_id: The platform id, when known.
        name: The catalog name, when resolved.
        platform: The platform, when known.
        account_id: bidloop's account id, when resolved from the catalog.
        text: The words as the operator wrote them.
        token_span: Indexes (start, stop) of the tokens the mention covers.
    """

    kind: EntityKind | None
    entity_id: str | None
    name: str | None
    platform: Platform | None
    account_id: str | None
    text: str
    token_span: tuple[int, int]


@dataclass
class EntityCatalog:
    """The entities an operator may name, for resolving ids and fuzzy names.

    Build it from `EntityState`s (`EntityCatalog(states)`) or snapshots (`EntityCatalog.from_snapshots`).
    Accounts and search terms are left out: operators do not name them in prompts.
    """

    entities: list[EntityState] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._entries: list[_CatalogEntry] = []
        for state in self.entities:
            if state.ref.kind in {EntityKind.ACCOUNT, EntityKind.SEARCH_TERM}:
                continue
            name = state.text if state.ref.kind is EntityKind.KEYWORD and state.text else state.name
            words = tuple(
                t.text
                for t in tokenize(name)
                if t.text not in _NAME_STOP_WORDS and (len(t.text) > 1 or t.text.isdigit())
            )
            self._entries.append(_CatalogEntry(state, name, words))

    @classmethod
    def from_snapshots(cls, snapshots: Iterable[Snapshot]) -> EntityCatalog:
        """Return a catalog of every entity in the given snapshots."""
        return cls([e for snap in snapshots for e in snap.entities])

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def name_words(self) -> set[str]:
        """Return every word of every entity name (typo correction knows them)."""
        return {w for entry in self._entries for w in entry.words if w.isalpha()}

    def lookup(self, entity_id: str, kind: EntityKind | None = None) -> list[EntityState]:
        """Return the entities with this platform id (and kind, when given); several platforms may share one."""
        return [
            e.state
            for e in self._entries
            if e.state.ref.entity_id == entity_id and (kind is None or e.state.ref.kind is kind)
        ]

    def entries(self) -> list[tuple[EntityState, str, tuple[str, ...]]]:
        """Return (state, display name, name words) for each entity."""
        return [(e.state, e.name, e.words) for e in self._entries]

    def describe(self, limit: int = 200) -> list[str]:
        """Return one line per entity ("meta ad_group 117: Lookalike 1% – Purchasers"), at most `limit`."""
        return [
            f"{e.state.ref.platform.value} {e.state.ref.kind.value} {e.state.ref.entity_id}: {e.name}"
            for e in self._entries[:limit]
        ]


def _match_from_state(state: EntityState, name: str, text: str, span: tuple[int, int]) -> EntityMatch:
    return EntityMatch(
        kind=state.ref.kind,
        entity_id=state.ref.entity_id,
        name=name,
        platform=state.ref.platform,
        account_id=state.ref.account_id,
        text=text,
        token_span=span,
    )


def _kind_word_at(tokens: list[Token], i: int) -> tuple[EntityKind, int] | None:
    for words, kind in _KIND_WORDS.items():
        n = len(words)
        if tuple(t.text for t in tokens[i : i + n]) == words:
            return kind, n
    return None


def _is_bare_id(tokens: list[Token], i: int) -> bool:
    token = tokens[i]
    if not token.text.isdigit():
        return False
    if i + 1 < len(tokens) and tokens[i + 1].text in _NOT_AN_ID_AFTER:
        return False
    return not (i > 0 and tokens[i - 1].text in _NOT_AN_ID_BEFORE)


def _id_mentions(tokens: list[Token], text: str, catalog: EntityCatalog | None) -> list[EntityMatch]:
    """Find ids announced by a kind word ("ad sets 117 & 124") and, with a catalog, bare known ids."""
    found: list[EntityMatch] = []
    covered: set[int] = set()
    i = 0
    while i < len(tokens):
        hit = _kind_word_at(tokens, i)
        if hit is None:
            i += 1
            continue
        kind, width = hit
        j = i + width
        ids: list[int] = []
        while j < len(tokens) and _is_bare_id(tokens, j):
            ids.append(j)
            j += 1
            if j + 1 < len(tokens) and tokens[j].text in _ID_JOINERS and _is_bare_id(tokens, j + 1):
                j += 1
        for k in ids:
            found.append(_resolve_id(tokens[k].text, kind, tokens, (i, k + 1), text, catalog))
            covered.add(k)
        i = j if ids else i + width
    if catalog is not None:
        for k in range(len(tokens)):
            if k in covered or not tokens[k].text.isdigit():
                continue
            if not _is_bare_id(tokens, k) and not _compares_known_id(tokens, k, found, catalog):
                continue
            states = catalog.lookup(tokens[k].text)
            if len(states) == 1:
                state = states[0]
                name = state.text if state.ref.kind is EntityKind.KEYWORD and state.text else state.name
                found.append(_match_from_state(state, name, text[tokens[k].start : tokens[k].end], (k, k + 1)))
    return found


def _compares_known_id(tokens: list[Token], k: int, found: list[EntityMatch], catalog: EntityCatalog) -> bool:
    """Return True for "117 ... than 124", "117 vs 124": an id after "than" next to a known id of its kind."""
    if k == 0 or tokens[k - 1].text not in {"than", "vs", "versus", "with"}:
        return False
    if k + 1 < len(tokens) and tokens[k + 1].text in _NOT_AN_ID_AFTER:
        return False
    kinds = {s.ref.kind for s in catalog.lookup(tokens[k].text)}
    earlier = [s.ref.kind for t in tokens[:k] if t.text.isdigit() for s in catalog.lookup(t.text)]
    return bool(kinds & set(earlier)) or any(m.kind in kinds for m in found)


def _resolve_id(
    entity_id: str,
    kind: EntityKind,
    tokens: list[Token],
    span: tuple[int, int],
    text: str,
    catalog: EntityCatalog | None,
) -> EntityMatch:
    written = text[tokens[span[0]].start : tokens[span[1] - 1].end]
    if catalog is not None:
        states = catalog.lookup(entity_id, kind) or catalog.lookup(entity_id)
        if len(states) == 1:
            state = states[0]
            name = state.text if state.ref.kind is EntityKind.KEYWORD and state.text else state.name
            return _match_from_state(state, name, written, span)
    ad_set_words = {"set", "sets", "adset", "adsets"}
    platform = Platform.META if any(t.text in ad_set_words for t in tokens[span[0] : span[0] + 2]) else None
    return EntityMatch(kind, entity_id, None, platform, None, written, span)


def _word_matches(prompt_word: str, name_word: str) -> bool:
    if prompt_word == name_word:
        return True
    if len(name_word) >= 5 and prompt_word.isalpha() and prompt_word[0] == name_word[0]:
        return _osa_distance(prompt_word, name_word, 1) <= 1
    return prompt_word.rstrip("s") == name_word.rstrip("s") and len(name_word) >= 4


@dataclass(frozen=True)
class _NameCandidate:
    state: EntityState
    name: str
    span: tuple[int, int]
    matched: int
    fraction: float


def _name_candidates(
    tokens: list[Token], catalog: EntityCatalog, platforms: set[Platform], blocked: set[int]
) -> list[_NameCandidate]:
    entries = [e for e in catalog.entries() if not platforms or e[0].ref.platform in platforms]
    document_frequency: dict[str, int] = {}  # in how many names a word appears
    for _, _, words in entries:
        for w in set(words):
            document_frequency[w] = document_frequency.get(w, 0) + 1
    candidates: list[_NameCandidate] = []
    for state, name, words in entries:
        if not words:
            continue
        window = len(words) + 2
        best: _NameCandidate | None = None
        for start in range(len(tokens)):
            if start in blocked or not any(_word_matches(tokens[start].text, w) for w in words):
                continue
            used: set[str] = set()
            last = start
            for k in range(start, min(len(tokens), start + window)):
                if k in blocked:
                    break
                for w in words:
                    if w not in used and _word_matches(tokens[k].text, w):
                        used.add(w)
                        last = k
                        break
            alpha = [w for w in used if w.isalpha()]
            if not alpha:
                continue
            telling = [w for w in alpha if w not in _WEAK_NAME_WORDS and len(w) >= 4]
            numbers = [w for w in used if w.isdigit() and document_frequency.get(w, 0) == 1]
            strong = (
                len(used) == len(words)
                or len(alpha) >= 2
                or bool(telling)
                or (bool(numbers) and last - start <= 2)  # "lookalike 1%": a weak word pinned by its number
            )
            if not strong:
                continue
            candidate = _NameCandidate(state, name, (start, last + 1), len(used), len(used) / len(words))
            if best is None or (candidate.fraction, candidate.matched) > (best.fraction, best.matched):
                best = candidate
        if best is not None:
            candidates.append(best)
    return candidates


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def _announced_kind(tokens: list[Token], span: tuple[int, int]) -> EntityKind | None:
    """Return the kind named by a kind word right after or right before a span of tokens, else None."""
    after = _kind_word_at(tokens, span[1])
    if after is not None:
        return after[0]
    for width in (2, 1):
        before = _kind_word_at(tokens, span[0] - width) if span[0] >= width else None
        if before is not None and before[1] == width:
            return before[0]
    return None


def _prefer_announced_kind(tokens: list[Token], candidates: list[_NameCandidate]) -> list[_NameCandidate]:
    """Drop name candidates of another kind than the kind word next to them ("the summer sale campaign").

    A candidate is dropped only when an overlapping candidate has the announced kind, so a loose kind word
    never loses a match.
    """
    kept: list[_NameCandidate] = []
    for cand in candidates:
        announced = _announced_kind(tokens, cand.span)
        if (
            announced is not None
            and cand.state.ref.kind is not announced
            and any(
                other.state.ref.kind is announced and _overlaps(other.span, cand.span)
                for other in candidates
                if other is not cand
            )
        ):
            continue
        kept.append(cand)
    return kept


def find_entities(
    tokens: list[Token],
    text: str,
    catalog: EntityCatalog | None,
    platforms: set[Platform] | None = None,
) -> tuple[list[EntityMatch], list[str]]:
    """Find the entities an operator named, by id and (with a catalog) by fuzzy name.

    Args:
        tokens: Corrected tokens of `text`.
        text: The normalized text the tokens index into.
        catalog: Known entities; None means only ids announced by a kind word are found.
        platforms: Platforms the operator named; names are looked up on these only (all when empty).

    Returns:
        The matches (each entity once, in the order written) and notes on ambiguities.
    """
    notes: list[str] = []
    matches = _id_mentions(tokens, text, catalog)
    if catalog is not None and len(catalog):
        blocked = {k for m in matches for k in range(m.token_span[0], m.token_span[1]) if tokens[k].text.isdigit()}
        candidates = _name_candidates(tokens, catalog, platforms or set(), blocked)
        if not candidates and platforms:
            candidates = _name_candidates(tokens, catalog, set(), blocked)
        candidates = _prefer_announced_kind(tokens, candidates)
        # Strongest first: full-name matches, then more of the name matched, then longer spans.
        candidates.sort(key=lambda c: (-c.fraction, -c.matched, c.span[0]))
        taken: list[tuple[int, int]] = []
        for cand in candidates:
            if any(_overlaps(cand.span, t) for t in taken):
                continue
            rivals = [
                c
                for c in candidates
                if c is not cand
                and _overlaps(c.span, cand.span)
                and (c.fraction, c.matched) == (cand.fraction, cand.matched)
                and c.state.ref.key != cand.state.ref.key
            ]
            taken.append(cand.span)
            written = text[tokens[cand.span[0]].start : tokens[cand.span[1] - 1].end]
            if rivals and cand.fraction < 1.0:
                names = ", ".join(sorted({cand.name, *(r.name for r in rivals)}))
                notes.append(f"{written!r} could be any of: {names}; name one to act on it")
                continue
            matches.append(_match_from_state(cand.state, cand.name, written, cand.span))
    unique: dict[tuple[str | None, str | None, str | None], EntityMatch] = {}
    for m in sorted(matches, key=lambda m: m.token_span[0]):
        key = (m.kind.value if m.kind else None, m.entity_id, m.platform.value if m.platform else None)
        if m.entity_id is None:
            key = (key[0], m.name, key[2])
        unique.setdefault(key, m)
    return list(unique.values()), notes

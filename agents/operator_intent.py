"""Read an operator's chat prompt into a typed `OperatorIntent`, deterministically (no LLM).

The intent scopes a run of the graph: which agents act (`intents`), where (`platforms`, `entities`),
which way (`direction`, `magnitude_pct`, `only_where_effective`) and over which period (`time_scope`).
It never carries a money amount or a limit: what the agents then propose still goes through the
policy and the safe-action filter.

Conventions the rules follow (and the labelled prompts in tests/data/operator_prompts.jsonl):

* `report` is about performance (spend, ROAS, pacing, "why did ..."); `status` is about bidloop itself
  (runs, pending approvals, mode, kill switch, limits, policy).
* `what_if` comes with the change it asks about: "what if we cut bids 10 %" is `[what_if, lower_bids]`;
  the graph simulates instead of applying.
* A question ("why did CPC spike on ...", "how many actions did the filter block") never triggers a
  change, only `report` or `status`.
* Changing budgets in any direction is `rebalance_budget` (with `direction` when it says which way).
* Pausing a named ad set or campaign is `pause_creatives` scoped to it (bidloop pauses creatives).
* `platforms` lists the platforms the prompt is limited to, named or implied by its entities; empty
  means all.
* Text can never change limits, approve actions, switch modes or reveal secrets: such prompts, and
  absurd values, give `intents=[refused]` with a `refusal_reason`. The parser never raises on text.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bidloop.agents._operator_lexicon import (
    PLATFORM_WORDS,
    EntityCatalog,
    EntityMatch,
    Token,
    correct_typos,
    find_entities,
    named_negatives,
    normalize,
    quoted_terms,
    tokenize,
)
from bidloop.core.entities import EntityKind, Platform
from bidloop.core.errors import InputError

__all__ = [
    "MAX_PROMPT_CHARS",
    "EntityCatalog",
    "EntityMention",
    "IntentKind",
    "OperatorIntent",
    "parse_prompt",
    "plain_words",
    "prompt_terms",
    "screen_prompt",
    "terms_are_not_entities",
]

MAX_PROMPT_CHARS = 4000
"""Longer prompts are not parsed: the operator is asked to shorten them."""

ABSURD_BUDGET_UNITS = 100_000
"""A daily budget target at or above this many currency units is refused as absurd (without a catalog)."""

ABSURD_BID_UNITS = 500
"""A bid target at or above this many currency units per click is refused as absurd."""


class IntentKind(StrEnum):
    """What the operator asks for; a prompt may hold several."""

    REBALANCE_BUDGET = "rebalance_budget"
    RAISE_BIDS = "raise_bids"
    LOWER_BIDS = "lower_bids"
    PAUSE_CREATIVES = "pause_creatives"
    ROTATE_CREATIVES = "rotate_creatives"
    ADD_NEGATIVES = "add_negatives"
    REPORT = "report"
    WHAT_IF = "what_if"
    STATUS = "status"
    ROLLBACK = "rollback"
    PAUSE_ALL = "pause_all"
    UNCLEAR = "unclear"
    REFUSED = "refused"


_EXCLUSIVE = {IntentKind.UNCLEAR, IntentKind.REFUSED}


class EntityMention(BaseModel):
    """One entity the prompt names, by id or by name.

    Attributes:
        kind: The entity kind (`ad_group` for a Meta ad set), when known.
        entity_id: The platform's id, when written or resolved from the catalog.
        name: The catalog name, when resolved (None when the prompt named an id the catalog lacks).
        text: The words as the operator wrote them ("ad-sets 117", "the summer sale").
        platform: The platform, when known from the catalog or the wording ("ad set" is Meta's term).
        account_id: bidloop's account id, when resolved from the catalog.
    """

    model_config = ConfigDict(extra="forbid")

    kind: EntityKind | None = None
    entity_id: str | None = None
    name: str | None = None
    text: str = ""
    platform: Platform | None = None
    account_id: str | None = None


class OperatorIntent(BaseModel):
    """What an operator's prompt asks for, typed.

    Attributes:
        intents: What to do, each once, in `IntentKind` order. `unclear` and `refused` stand alone.
        platforms: Platforms the request is limited to (named or implied by entities); empty means all.
        entities: Entities named by id or name.
        direction: "up" or "down" for a bid or budget change that says which way, else None.
        magnitude_pct: The size of the change in percent of the current value ("lift bids 10 %" -> 10.0).
        only_where_effective: Act only where it pays ("where it moves the needle", "where ROAS is above
            target"): the agents keep to entities above the ROAS target.
        time_scope: The period the prompt names ("today", "last 7 days", "this morning"), as written.
        quoted_terms: Phrases in quotes ('free', 'cheap'): candidate negative keywords or search terms. With
            `add_negatives` and no quotes, the words named in "add free as a negative keyword" (see `prompt_terms`).
        clarifying_question: Set with `unclear`: what to ask the operator.
        refusal_reason: Set with `refused`: why, and where the operator can make the change instead.
        parser: Who produced the intent: the deterministic rules, the LLM, or the rules after the LLM failed.
        notes: How the text was read (typo corrections, ambiguous names, fallbacks).
    """

    model_config = ConfigDict(extra="forbid")

    intents: list[IntentKind] = Field(min_length=1)
    platforms: list[Platform] = Field(default_factory=list)
    entities: list[EntityMention] = Field(default_factory=list)
    direction: Literal["up", "down"] | None = None
    magnitude_pct: float | None = Field(default=None, gt=0, le=100, allow_inf_nan=False)
    only_where_effective: bool = False
    time_scope: str | None = None
    quoted_terms: list[str] = Field(default_factory=list)
    clarifying_question: str | None = None
    refusal_reason: str | None = None
    parser: Literal["deterministic", "llm", "llm_fallback"] = "deterministic"
    notes: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> OperatorIntent:
        if len(set(self.intents)) != len(self.intents):
            raise ValueError("intents must not repeat")
        for kind in _EXCLUSIVE:
            if kind in self.intents and len(self.intents) > 1:
                raise ValueError(f"{kind.value!r} cannot be combined with other intents")
        if IntentKind.REFUSED in self.intents and not self.refusal_reason:
            raise ValueError("a refused intent needs a refusal_reason")
        if IntentKind.UNCLEAR in self.intents and not self.clarifying_question:
            raise ValueError("an unclear intent needs a clarifying_question")
        return self

    @property
    def is_actionable(self) -> bool:
        """Return True when the intent asks for a change (not a refusal, question, report or status)."""
        return any(i in _CHANGE_INTENTS for i in self.intents)


_CHANGE_INTENTS = {
    IntentKind.REBALANCE_BUDGET,
    IntentKind.RAISE_BIDS,
    IntentKind.LOWER_BIDS,
    IntentKind.PAUSE_CREATIVES,
    IntentKind.ROTATE_CREATIVES,
    IntentKind.ADD_NEGATIVES,
    IntentKind.ROLLBACK,
    IntentKind.PAUSE_ALL,
}

CAPABILITIES = (
    "I can rebalance budgets, raise or lower bids, pause or rotate creatives, add negative keywords, "
    "report and explain performance, run a what-if, show status, roll back a run, or pause everything."
)

# -- safety screen --------------------------------------------------------------------------------

_MAX_CHANGE = (
    r"max(?:imum)?(?: daily| hourly| per run)?(?: budget| bid| cpc| spend)?"
    r" (?:change|increase|decrease|shift|step|move|delta|swing|raise|cut|drop)s?(?: %)?"
)
"""A cap on the size of a change ("max budget change", "max_change_pct"), unlike a bid ("max cpc")."""
_LIMIT_NOUNS = (
    r"guardrails?|limits?|caps?|ceilings?|floors?|filter|safety(?: filter| checks?)?|safeguards?"
    r"|restrictions?|constraints?|approvals?(?: step| threshold| limit)?|checks?|cooldowns?|cool downs?"
    rf"|{_MAX_CHANGE}|approval threshold|threshold for approvals?|changes per (?:hour|run|day)|rate limits?"
    r"|freeze windows?|protected (?:list|entities|entity ids|ids)|banned terms"
)
_SETTING_NOUNS = rf"{_LIMIT_NOUNS}|settings?|config(?:uration)?|bidloop yaml|yaml"
"""What `change_limits` guards: the limits, and the settings file they live in."""
_LIMIT_VALUE = re.compile(
    rf"\b(?:{_MAX_CHANGE}|cooldowns?|cool downs?|(?:bid|budget|cpc|spend) (?:ceilings?|floors?|caps?)"
    r"|approval threshold|changes per (?:hour|run|day))(?: (?:to|=|at|of|is|be|should be|from \S+(?: %)? to))?"
    r" (?:\$ )?\d"
)
"""A limit given a value ("make the max change 50 %", "cooldown = 0"): the operator sets limits in bidloop.yaml."""
_CREDENTIAL_RE = re.compile(
    r"\b(?:(?:api|openai|secret|access|private|developer|refresh|auth|bearer|client|service account)"
    r" (?:keys?|tokens?|secrets?|ids?)|credentials?|passwords?|secrets?|tokens?|api keys?|apikeys?)\b"
)
_REVEAL_RE = re.compile(
    r"\b(?:show|print|reveal|dump|display|tell|give|send|list|read|paste|share|expose|export|leak|output|echo|"
    r"cat|what|where|copy|email)\b"
)

_LIMITS_LIVE_IN_YAML = (
    "prompts cannot change limits or settings (max change, caps, floors, ceilings, cooldowns, approval "
    "thresholds); they live in bidloop.yaml, where an operator changes them under `guardrails:`"
)
_APPROVALS_BY_A_PERSON = (
    "a prompt cannot approve or reject pending actions; a person does that with `bidloop approvals approve ID` "
    "or `bidloop approvals reject ID --reason ...` (`bidloop approvals list` shows them)"
)

_REFUSALS: list[tuple[str, re.Pattern[str], str]] = [
    (
        "prompt_injection",
        re.compile(
            r"\b(?:ignore|disregard|forget|override)\b(?: \S+){0,3} (?:instructions?|rules|prompt|previous|"
            r"guardrails?|limits?|constraints|restrictions|programming)\b"
            r"|\b(?:pretend|roleplay|jailbreak|unrestricted)\b|\byou are now\b|\bact as\b"
            r"|\b(?:developer|admin|god|debug|dan|root) mode\b|\bno limits\b|\bnew instructions\b"
            r"|^(?:system|admin|developer)\b"
        ),
        "the prompt tries to give bidloop new rules; prompts can ask for changes, never change how they are checked",
    ),
    (
        "change_limits",
        re.compile(
            r"\b(?:raise|increase|change|set|update|bump|lift|loosen|relax|double|edit|modify|up|remove|drop|"
            r"delete|lower|reset|shorten|lengthen|extend|widen|adjust|tweak|zero|unset|turn up|turn down)\b"
            rf"(?: \S+){{0,3}} (?:the )?(?:{_SETTING_NOUNS})\b"
            rf"|\b(?:cut|reduce|decrease|make|put|get rid of)(?: the| our| my| this| that)? (?:{_SETTING_NOUNS})\b"
        ),
        _LIMITS_LIVE_IN_YAML,
    ),
    (
        "bypass_guardrails",
        re.compile(
            r"\b(?:bypass|override|disable|skip|circumvent|deactivate|suspend|without|avoid|ignore|turn off|"
            rf"switch off|get around|no)\b(?: \S+){{0,2}} (?:the )?(?:{_LIMIT_NOUNS})\b"
            rf"|\b(?:turn|switch|shut|take)(?: \S+){{0,2}} (?:the )?(?:{_LIMIT_NOUNS}) off\b"
            r"|\b(?:apply|force|execute)\b(?: \S+){0,3} (?:blocked|rejected)\b|\bunblock\w*"
        ),
        "every action passes the safe-action filter and its approvals, whoever asks; a prompt cannot "
        "skip or switch them off (limits live in bidloop.yaml; a person approves with `bidloop approvals "
        "approve ID`)",
    ),
    (
        "self_approval",
        re.compile(
            r"\bapprove\b(?: \S+){0,3} (?:yourself|your own|its own|own|automatically)\b|\bauto ?approv\w*"
            r"|\bself ?approv\w*|\b(?:mark|set|treat|consider)\b(?: \S+){0,4} (?:as )?approved\b"
            r"|\bpermission to approve\b|\bapprove (?:everything|all)(?: \S+){0,3} (?:you|yourself)\b"
        ),
        "bidloop never approves its own actions; a person approves each one with `bidloop approvals approve ID`",
    ),
    (
        "switch_mode",
        re.compile(
            r"\bgo(?:ing)? live\b|\b(?:switch|change|flip|move|set|put|turn)\b(?: \S+){0,5} (?:to|into|on) "
            r"(?:live|production)\b|\b(?:disable|turn off|switch off|exit|leave|end|skip|remove|deactivate|"
            r"get out of)\b(?: \S+){0,2} (?:dry ?run|shadow|simulation|simulate|sim)(?: mode)?\b"
            r"|\bkill switch(?: \S+){0,2} off\b|\b(?:turn off|switch off|disable|deactivate|release|reset)\b"
            r"(?: \S+){0,2} kill switch\b|\bresume writ\w*|\benable writ\w*|\blive mode\b(?! or)"
            r"|\b(?:enable|allow|turn on|switch on) (?:\S+ ){0,2}(?:live|writes?)\b"
        ),
        "prompts cannot switch modes (live, dry-run, shadow, kill switch); an operator does that in the "
        "configuration or with the `bidloop` command",
    ),
]
_LIVE_MODE_QUESTION = re.compile(r"\b(?:are|is|am) (?:we|it|bidloop|i)\b")

_APPROVE_VERBS = r"approve|reject|greenlight|green light|rubber stamp|disapprove|veto"
"""Verbs that decide a pending action whatever their object ("approve 117", "reject them")."""
_DECIDE_VERBS = (
    r"accept|deny|decline|confirm|clear|sign off(?: on)?|release|process|cancel|dismiss|flush|empty|"
    r"resolve|handle|action|grant|go ahead with|proceed with|wave through|let through|push through"
)
"""Verbs that decide pending actions when their object is the approval queue ("clear the pending ones")."""
_PENDING_OBJECTS = r"pending|approvals?|queued|queue|waiting|awaiting|held|on hold|outstanding"
_APPROVAL_OBJECTS = r"approvals?|approval queue|queued|awaiting approval|waiting for approval|held|on hold"
_DECIDE_PENDING = re.compile(
    rf"\b(?:{_APPROVE_VERBS})\b"
    rf"|\b(?:{_DECIDE_VERBS})\b(?: \S+){{0,4}} (?:{_PENDING_OBJECTS})\b"
    rf"|\b(?:apply|execute|run through|send)\b(?: \S+){{0,4}} (?:{_APPROVAL_OBJECTS})\b"
    r"|\b(?:give|grant)(?: the| my| your)? approvals?\b"
)
_NOT_DECIDING = re.compile(
    # The operator speaks of approving themselves ("I'll approve them later", "should I approve 117?") or
    # says not to ("don't approve anything"): no request to bidloop. "I approve all" still asks bidloop.
    rf"\b(?:i|we|me|us)\b(?: \S+){{0,3}} (?:{_APPROVE_VERBS}|{_DECIDE_VERBS})\b"
    rf"|\b(?:don t|do not|dont|never|not|no need to)\b(?: \S+){{0,2}} (?:{_APPROVE_VERBS}|{_DECIDE_VERBS})\b"
)
_DECLARED_DECISION = re.compile(
    r"(?<!should )(?<!shall )(?<!can )(?<!could )(?<!do )(?<!would )(?<!must )(?<!may )(?<!will )(?<!if )"
    rf"\b(?:i|we)(?: hereby| now| do| officially)? (?:{_APPROVE_VERBS})\b"
)


def _decides_pending_actions(words: list[str], raw: str) -> bool:
    """Return True when the prompt asks bidloop to approve or reject pending actions (a person's job)."""
    joined = " ".join(words)
    if not _DECIDE_PENDING.search(joined) or _is_question(words, raw):
        return False
    return not _NOT_DECIDING.search(joined) or bool(_DECLARED_DECISION.search(joined))


def _screen_words(words: list[str], raw: str) -> list[tuple[str, str]]:
    """Return every (code, reason) the prompt trips: what it asks that a prompt may never do (empty if none)."""
    joined = " ".join(words)
    raw_lower = normalize(raw).strip()
    found: list[tuple[str, str]] = []
    if re.match(r"^\W*(?:system|admin|developer|assistant)\s*[:>\]]", raw_lower) or re.search(
        r"[\[<](?:system|admin)[\]>]|\n\s*system\s*:", raw_lower
    ):
        found.append(("prompt_injection", _REFUSALS[0][2]))
    for code, pattern, reason in _REFUSALS:
        if pattern.search(joined):
            if (
                code == "switch_mode"
                and _LIVE_MODE_QUESTION.search(joined)
                and not re.search(r"\b(?:switch|turn|go|disable|change|flip)\b", joined)
            ):
                continue
            found.append((code, reason))
    if _LIMIT_VALUE.search(joined) and not _is_question(words, raw):
        found.append(("change_limits", _LIMITS_LIVE_IN_YAML))
    if _decides_pending_actions(words, raw):
        found.append(("approve_actions", _APPROVALS_BY_A_PERSON))
    if _CREDENTIAL_RE.search(joined) and _REVEAL_RE.search(joined):
        found.append(
            (
                "reveal_credentials",
                "bidloop never reveals credentials, tokens or keys in a prompt's answer; they stay in the "
                "environment or the secret store",
            )
        )
    absurd = _absurd_value(words)
    if absurd is not None:
        found.append(("absurd_value", absurd))
    return list(dict.fromkeys(found))


_NUMBER_RE = re.compile(r"^\d+(?:[.,]\d+)*$")
_MULTIPLIERS = {"k": 1e3, "thousand": 1e3, "grand": 1e3, "m": 1e6, "mm": 1e6, "million": 1e6, "bn": 1e9, "billion": 1e9}
_CONDITION_WORDS = frozenset({"below", "above", "under", "over", "than", "at", "roas", "ctr", "cvr", "acos", "is"})


def _number(word: str) -> float | None:
    if not _NUMBER_RE.match(word):
        return None
    if re.match(r"^\d{1,3}(?:,\d{3})+(?:\.\d+)?$", word):
        word = word.replace(",", "")
    word = word.replace(",", ".")
    try:
        return float(word)
    except ValueError:
        return None


def _absurd_value(words: list[str]) -> str | None:
    """Return a reason when the prompt asks for a change larger than any sane one, else None."""
    change_context = any(w in _BID_WORDS or w in _BUDGET_WORDS for w in words)
    for i, word in enumerate(words):
        value = _number(word)
        if value is None:
            continue
        nxt = words[i + 1] if i + 1 < len(words) else ""
        prev = words[i - 1] if i > 0 else ""
        if nxt == "%" and value > 100 and change_context and prev not in _CONDITION_WORDS:
            return (
                f"a change of {value:g} % is not something bidloop will propose from a prompt; ask for a "
                "change of at most 100 % and the guardrails will clip it to the configured maximum"
            )
    joined = " ".join(words)
    for m in re.finditer(
        r"\b(budgets?|bids?|cpcs?|spend)\b(?: \S+){0,8}? (?:to|at|=|of) (?:\$ )?(\d+(?:[.,]\d+)*)(?: (k|m|mm|million|"
        r"thousand|grand|bn|billion))?\b",
        joined,
    ):
        value = _number(m.group(2))
        if value is None:
            continue
        value *= _MULTIPLIERS.get(m.group(3) or "", 1.0)
        is_bid = m.group(1).startswith(("bid", "cpc"))
        threshold = ABSURD_BID_UNITS if is_bid else ABSURD_BUDGET_UNITS
        if value >= threshold:
            what = "bid" if is_bid else "budget"
            return (
                f"a {what} of {value:,.0f} is far outside any sane range; bidloop changes budgets and bids "
                "in steps within the guardrails (ask for a percentage change instead)"
            )
    return None


def screen_prompt(text: str) -> OperatorIntent | None:
    """Return a refusal when `text` asks for something no prompt may do, else None.

    The screen runs before any parsing, deterministic or LLM, so a model cannot be talked past it.
    It refuses prompts that try to change limits or settings, bypass guardrails or approvals, approve or
    reject pending actions (bidloop's own or any), switch modes, reveal credentials, inject instructions, or
    set absurd values. The reason names every rule the prompt trips, and where the operator can do it
    instead (bidloop.yaml for limits, `bidloop approvals approve ID` for approvals).
    """
    tokens, _ = correct_typos(tokenize(text[:MAX_PROMPT_CHARS]))
    found = _screen_words([t.text for t in tokens], text[:MAX_PROMPT_CHARS])
    if not found:
        return None
    reasons = list(dict.fromkeys(reason for _, reason in found))
    return OperatorIntent(
        intents=[IntentKind.REFUSED],
        refusal_reason="Refused: " + "; also, ".join(reasons) + ".",
        notes=[f"refusal:{code}" for code in dict.fromkeys(code for code, _ in found)],
    )


# -- intent rules ---------------------------------------------------------------------------------

_BID_WORDS = frozenset({"bid", "bids", "bidding", "cpc", "cpcs"})
_BUDGET_WORDS = frozenset({"budget", "budgets", "spend", "money"})
_UP = frozenset(
    [
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
        "bumped",
        "boost",
        "boosted",
        "push",
        "pushed",
        "up",
        "higher",
        "harder",
        "aggressive",
        "+",
        "scale",
    ]
)
_DOWN = frozenset(
    [
        "lower",
        "lowered",
        "lowering",
        "cut",
        "cutting",
        "reduce",
        "reduced",
        "reducing",
        "decrease",
        "decreased",
        "drop",
        "dropping",
        "trim",
        "trimmed",
        "down",
    ]
)
_BUDGET_NEUTRAL = frozenset(
    [
        "rebalance",
        "rebalanced",
        "rebalancing",
        "reallocate",
        "reallocated",
        "reallocating",
        "redistribute",
        "redistributed",
        "allocate",
        "shift",
        "shifting",
        "shifted",
        "move",
        "moving",
        "moved",
        "spread",
        "take",
    ]
)
_BUDGET_UP = _UP | {"give", "more", "double"}
_BUDGET_DOWN = _DOWN | {"less", "halve", "half"}
_PAUSE_VERBS = frozenset(["pause", "paused", "pausing", "stop", "stopped", "kill", "disable", "deactivate"])
_CREATIVE_NOUNS = frozenset(
    [
        "creative",
        "creatives",
        "ad",
        "ads",
        "video",
        "videos",
        "carousel",
        "static",
        "banner",
        "image",
        "images",
        "entity",
    ]
)
_QUESTION_LEADS = frozenset(
    [
        "why",
        "how",
        "what",
        "which",
        "when",
        "is",
        "are",
        "did",
        "does",
        "was",
        "were",
        "who",
        "where",
        "any",
        "explain",
        "show",
        "compare",
        "report",
        "summary",
        "summarize",
        "breakdown",
    ]
)
_FILLERS = frozenset(
    ["please", "hey", "ok", "okay", "so", "and", "quick", "q", "hi", "hello", "um", "hmm", "well", "also", "then"]
)
_REPORT_STRONG = re.compile(
    r"\b(?:report|explain|explanation|why|summary|summari[sz]e|breakdown|compare|how many|how much|top \d+|"
    r"numbers|stats|what happened)\b(?<!search term report)(?<!search terms report)"
)
_REPORT_WEAK = re.compile(
    r"\b(?:roas|spend|spending|spent|cpc|cpcs|ctr|conversions?|pacing|pace|performance|doing|trending|revenue|"
    r"sales|clicks|impressions|cpa|acos|results|how|bids?|budgets?|guardrails?|filter|changes?|actions?)\b"
)
_STATUS = re.compile(
    r"\b(?:status|pending|approvals?|approve|last run|the run|scheduled run|run finish|run still|\d+ (?:am|pm) run|"
    r"policy|limits|mode|dry run|live|kill switch|running right now)\b"
)
_WHAT_IF = re.compile(
    r"\bwhat if\b|\bwhat would\b|\bwhat happens\b|\bwhat will happen\b|\bsimulat\w*|^sim\b|\bsuppos\w*|"
    r"\bhypothetical\w*|\bforecast\w*|\bproject(?:ed)? (?:the )?(?:effect|impact|outcome)|\bscenario\b"
)
_EFFECTIVE = re.compile(
    r"\bmoves? the needle\b|\bwhere it matters\b|\babove (?:the )?(?:roas )?target\b|\bwhere (?:the )?roas is "
    r"(?:above|over|high)|\bwhere it (?:actually|really) \w+|\bwhat s working\b|\bwhat is working\b|\bwinners\b|"
    r"\btop roas\b|\bprofitable\b|\bonly where\b|\bwhere it pays\b|\broas leaders\b"
)
_TIME_SCOPE = re.compile(
    r"\b(?:today|tonight|yesterday|this (?:morning|afternoon|evening|week|month|quarter)|last (?:week|month|"
    r"night|\d+ (?:days|hours|weeks))|past \d+ (?:days|hours|weeks)|month to date|mtd|week to date|wtd|"
    r"since (?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|yesterday|this morning|lunch|noon)|"
    r"(?:until|till) (?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|tomorrow|further notice))\b"
)
_FOLLOW_UP = re.compile(
    r"\b(?:same|again|too|as well|likewise|ditto|repeat|instead|also)\b|\bdo (?:it|that|this)\b|"
    r"^(?:and |now |ok |okay )?(?:for|on|in) \w+\W*$|^(?:and |now )?(?:what about|how about)\b"
)


_GAP_FILLERS = frozenset({"the", "a", "an", "of", "our", "my", "this", "that", "%", "its", "their", "all"})


def _positions(words: list[str], vocabulary: frozenset[str]) -> list[int]:
    """Return where words of `vocabulary` occur, counting positions without filler words and numbers."""
    positions: list[int] = []
    k = 0
    for w in words:
        if w in vocabulary:
            positions.append(k)
        if w not in _GAP_FILLERS and _number(w) is None:
            k += 1
    return positions


def _near(words: list[str], a: frozenset[str], b: frozenset[str], gap: int) -> bool:
    """Return True when a word of `a` and a word of `b` are at most `gap` words apart, either order."""
    pa, pb = _positions(words, a), _positions(words, b)
    return any(i != j and abs(i - j) - 1 <= gap for i in pa for j in pb)


def _before(words: list[str], a: frozenset[str], b: frozenset[str], gap: int) -> bool:
    """Return True when a word of `a` comes at most `gap` words before a word of `b`."""
    pa, pb = _positions(words, a), _positions(words, b)
    return any(0 <= j - i - 1 <= gap for i in pa for j in pb)


def _is_question(words: list[str], raw: str) -> bool:
    content = [w for w in words if w not in _FILLERS]
    lead = content[0] if content else ""
    if lead in _QUESTION_LEADS:
        return True
    return raw.rstrip().endswith("?") and lead not in {"can", "could", "would", "will", "you", "should", "shall"}


def _bid_directions(words: list[str]) -> tuple[bool, bool]:
    joined = " ".join(words)
    down = _near(words, _BID_WORDS, _DOWN, 4) or bool(
        re.search(r"\b(?:bids?|cpcs?)\b(?: \S+){0,3} too high\b|\boverpaying\b|\b(?:ease|back) off\b", joined)
        and any(w in _BID_WORDS for w in words)
    )
    up = _near(words, _BID_WORDS, _UP, 4) or bool(re.search(r"\bmore aggressive\b", joined) and _BID_WORDS & set(words))
    if re.search(r"\bless aggressive\b", joined) and _BID_WORDS & set(words):
        down = True
    # "raise bids on A, lower them on B": a verb on a pronoun refers to the bids named before.
    if _BID_WORDS & set(words):
        for m in re.finditer(r"\b(\S+) (?:them|it|its bids?|their bids?|those|these)\b", joined):
            if m.group(1) in _UP:
                up = True
            elif m.group(1) in _DOWN:
                down = True
        if re.search(r"\bbring (?:them|it|the bids?|the cpcs?) down\b", joined):
            down = True
    return up, down


def _budget_intent(words: list[str]) -> tuple[bool, Literal["up", "down"] | None]:
    joined = " ".join(words)
    if re.search(r"\b(?:rebalanc\w*|reallocat\w*|redistribut\w*)\b", joined):
        triggered = True
    else:
        verbs = _BUDGET_NEUTRAL | _BUDGET_UP | _BUDGET_DOWN
        triggered = (
            _before(words, verbs, _BUDGET_WORDS, 4)
            or _before(words, _BUDGET_WORDS, frozenset({"up", "down", "shift", "+", "higher", "lower"}), 3)
            or bool(re.search(r"\bpull back (?:the )?(?:spend|budgets?)\b", joined))
        )
    if not triggered:
        return False, None
    has = set(words)
    up = bool(has & _BUDGET_UP) or bool(re.search(r"\bscale up\b", joined))
    down = bool(has & _BUDGET_DOWN) or bool(re.search(r"\bpull back\b", joined))
    neutral = bool(has & _BUDGET_NEUTRAL) or bool(re.search(r"\brebalanc|\breallocat|\bredistribut", joined))
    if neutral:
        if re.search(r"\bout of\b", joined) and not re.search(r"\b(?:to|into|toward|towards)\b", joined):
            return True, "down"
        return True, None
    if up and not down:
        return True, "up"
    if down and not up:
        return True, "down"
    return True, None


def _magnitude(words: list[str]) -> float | None:
    for i, word in enumerate(words):
        value = _number(word)
        if value is None or i + 1 >= len(words) or words[i + 1] != "%":
            continue
        prev = words[i - 1] if i > 0 else ""
        if prev in _CONDITION_WORDS:
            continue
        if 0 < value <= 100:
            return value
    if "double" in words:
        return 100.0
    if "halve" in words or "half" in words:
        return 50.0
    return None


def _pause_all(words: list[str], question: bool) -> bool:
    joined = " ".join(words)
    if re.search(r"\bkill switch\b", joined) and not question:
        return True
    if re.search(r"\bemergency (?:stop|pause|brake|shutdown)\b", joined):
        return True
    if re.search(r"\b(?:stop|pause|halt|freeze|turn|shut|switch) everything\b", joined):
        return True
    targets = (
        r"campaigns?|ads|spend|spending|delivery|accounts?|platforms?|everything|it|now|on|across|until|till|"
        r"immediately|please|\S*$"
    )
    platforms = "|".join(PLATFORM_WORDS)
    return bool(
        re.search(
            rf"\b(?:stop|pause|halt|freeze|kill|shut down|turn off|switch off) (?:all|every)(?: (?:the|of|our|"
            rf"{platforms}))* (?:{targets})(?: |$)",
            joined + " ",
        )
    )


def _clarify(
    question: str, *, platforms: list[Platform], entities: list[EntityMention], notes: list[str]
) -> OperatorIntent:
    return OperatorIntent(
        intents=[IntentKind.UNCLEAR],
        platforms=platforms,
        entities=entities,
        clarifying_question=question,
        notes=notes,
    )


def _mention(match: EntityMatch) -> EntityMention:
    return EntityMention(
        kind=match.kind,
        entity_id=match.entity_id,
        name=match.name,
        text=match.text,
        platform=match.platform,
        account_id=match.account_id,
    )


def _platforms(tokens: list[Token], entities: list[EntityMention]) -> list[Platform]:
    found: list[Platform] = []
    for token in tokens:
        platform = PLATFORM_WORDS.get(token.text)
        if platform is not None and platform not in found:
            found.append(platform)
    for entity in entities:
        if entity.platform is not None and entity.platform not in found:
            found.append(entity.platform)
    return found


def _follow_up(
    current: OperatorIntent,
    previous: OperatorIntent,
    words: list[str],
    mentioned: list[Platform],
    magnitude_pct: float | None,
) -> OperatorIntent | None:
    """Return the previous intent re-scoped by a follow-up ("now do the same for Google"), else None."""
    if current.is_actionable or not _FOLLOW_UP.search(" ".join(words)):
        return None
    if IntentKind.UNCLEAR in previous.intents:
        return None
    if IntentKind.REFUSED in previous.intents:
        return previous.model_copy(
            update={"parser": "deterministic", "notes": ["follow-up of a refused request: refused again"]}
        )
    platforms = current.platforms or previous.platforms
    entities = current.entities
    notes = ["follow-up: reused the previous turn's intents", *current.notes]
    if not entities:
        entities = [e for e in previous.entities if not mentioned or e.platform in mentioned]
        dropped = len(previous.entities) - len(entities)
        if dropped:
            notes.append(f"dropped {dropped} entities of the previous turn that are not on {', '.join(mentioned)}")
    if mentioned and not current.entities:
        platforms = mentioned
    return OperatorIntent(
        intents=list(previous.intents),
        platforms=platforms,
        entities=entities,
        direction=current.direction or previous.direction,
        magnitude_pct=magnitude_pct or previous.magnitude_pct,
        only_where_effective=current.only_where_effective or previous.only_where_effective,
        time_scope=current.time_scope or previous.time_scope,
        quoted_terms=current.quoted_terms or previous.quoted_terms,
        notes=notes,
    )


def plain_words(text: str | None) -> str:
    """Return `text` as its normalized words joined by spaces (no typo correction), to compare names and terms."""
    return " ".join(t.text for t in tokenize(text or ""))


def prompt_terms(text: str, intents: list[IntentKind], notes: list[str] | None = None) -> list[str]:
    """Return the prompt's quoted phrases; for `add_negatives` without quotes, the words it names to negate.

    Args:
        text: The prompt.
        intents: How it was read (the unquoted form is only looked for with `add_negatives`).
        notes: Receives a note when unquoted words were taken as the terms.
    """
    terms = quoted_terms(text)
    if terms or IntentKind.ADD_NEGATIVES not in intents:
        return terms
    terms = named_negatives(text)
    if terms and notes is not None:
        notes.append("read " + ", ".join(repr(t) for t in terms) + " as the negative keyword(s) to add")
    return terms


def terms_are_not_entities(entities: list[EntityMention], terms: list[str], notes: list[str]) -> list[EntityMention]:
    """Return the entity mentions that are not one of the terms to negate; drop the notes about those terms.

    In "add 'free' as a negative keyword" the word is a term, even if a creative is called "Free Shipping":
    a mention written exactly as a term is dropped unless it spells out the entity's whole name (then the
    quote names the entity, and `graph.chat` leaves it out of the terms instead).
    """
    wanted = {plain_words(t) for t in terms}
    kept = [e for e in entities if plain_words(e.text) not in wanted or plain_words(e.text) == plain_words(e.name)]
    notes[:] = [n for n in notes if not any(n.startswith(f"{t!r} could be any of") for t in terms)]
    return kept


def parse_prompt(
    text: str,
    *,
    catalog: EntityCatalog | None = None,
    previous: OperatorIntent | None = None,
) -> OperatorIntent:
    """Read an operator prompt into an `OperatorIntent` with deterministic rules (no LLM).

    Args:
        text: The prompt as typed ("Re-balance budgets on Meta and lift bids 10 % where it moves the needle").
        catalog: Known entities, for ids and fuzzy names ("the summer sale campaign"); None finds only ids
            announced by a kind word ("ad set 117").
        previous: The previous turn's intent, for follow-ups ("now do the same for Google").

    Returns:
        The intent. Prompts that ask for what no prompt may do come back `refused` with a reason; vague or
        off-topic ones `unclear` with a clarifying question. Never raises on the text itself.

    Raises:
        InputError: If `text` is not a string (a programming error, not user input).
    """
    if not isinstance(text, str):
        raise InputError(f"parse_prompt needs a str, got {type(text).__name__}", hint="pass the prompt text")
    if not text.strip():
        return _clarify(f"What would you like me to do? {CAPABILITIES}", platforms=[], entities=[], notes=[])
    if len(text) > MAX_PROMPT_CHARS:
        return _clarify(
            f"That prompt is {len(text)} characters long; please say what to change in under {MAX_PROMPT_CHARS}.",
            platforms=[],
            entities=[],
            notes=["prompt too long to parse"],
        )
    refusal = screen_prompt(text)
    if refusal is not None:
        return refusal

    norm = normalize(text)
    vocabulary = catalog.name_words if catalog is not None else set()
    tokens, notes = correct_typos(tokenize(text), vocabulary)
    mentioned = _platforms(tokens, [])
    matches, entity_notes = find_entities(tokens, norm, catalog, set(mentioned))
    notes.extend(entity_notes)
    entities = [_mention(m) for m in matches]
    platforms = _platforms(tokens, entities)

    masked = [t.text for t in tokens]
    for m in matches:
        for k in range(*m.token_span):
            masked[k] = "entity"
    joined = " ".join(masked)
    question = _is_question(masked, text)
    what_if = bool(_WHAT_IF.search(joined))

    intents: list[IntentKind] = []
    budget_direction: Literal["up", "down"] | None = None
    bids_up = bids_down = False
    if what_if:
        intents.append(IntentKind.WHAT_IF)
    if what_if or not question:
        if re.search(r"\b(?:roll ?back|rollback|undo|revert\w*|reverse|restore)\b|\bput(?: \S+){0,4} back\b", joined):
            intents.append(IntentKind.ROLLBACK)
        pause_all = _pause_all(masked, question)
        if pause_all:
            intents.append(IntentKind.PAUSE_ALL)
        budget, budget_direction = _budget_intent(masked)
        if budget:
            intents.append(IntentKind.REBALANCE_BUDGET)
        bids_up, bids_down = _bid_directions(masked)
        if bids_up:
            intents.append(IntentKind.RAISE_BIDS)
        if bids_down:
            intents.append(IntentKind.LOWER_BIDS)
        turn_off = re.search(r"\b(?:turn|switch|shut) off\b", joined) is not None
        pause_verbs = _PAUSE_VERBS | ({"turn", "switch", "shut"} if turn_off else frozenset())
        if not pause_all and _before(masked, pause_verbs, _CREATIVE_NOUNS, 4):
            intents.append(IntentKind.PAUSE_CREATIVES)
        if re.search(r"\brotat\w*\b", joined) or _before(
            masked,
            frozenset(["refresh", "refreshed", "swap", "freshen", "fresh", "new", "replace"]),
            _CREATIVE_NOUNS,
            3,
        ):
            intents.append(IntentKind.ROTATE_CREATIVES)
        if re.search(r"\bnegat\w*|\bnegatives?\b", joined) or _near(
            masked,
            frozenset(["exclude", "block", "blocking", "remove", "clean"]),
            frozenset(["search", "searches", "queries", "query", "terms", "term"]),
            8,
        ):
            intents.append(IntentKind.ADD_NEGATIVES)
    has_change = any(i in _CHANGE_INTENTS for i in intents)
    if not what_if:
        if _REPORT_STRONG.search(joined) and (
            question or not has_change or re.search(r"\b(?:report|explain|summary)\b", joined)
        ):
            intents.append(IntentKind.REPORT)
        elif (not has_change and re.search(r"\bstatus\b", joined)) or (question and _STATUS.search(joined)):
            intents.append(IntentKind.STATUS)
        elif question and _REPORT_WEAK.search(joined):
            intents.append(IntentKind.REPORT)
        elif not has_change and _STATUS.search(joined) and re.search(r"\b(?:show|list|pending)\b", joined):
            intents.append(IntentKind.STATUS)
    order = {k: i for i, k in enumerate(IntentKind)}
    intents = sorted(dict.fromkeys(intents), key=lambda k: order[k])

    direction: Literal["up", "down"] | None = None
    if bids_up != bids_down:
        direction = "up" if bids_up else "down"
    elif not (bids_up or bids_down):
        direction = budget_direction
    elif bids_up and bids_down:
        notes.append("bids go up in one place and down in another: direction left open")
    sized = {IntentKind.REBALANCE_BUDGET, IntentKind.RAISE_BIDS, IntentKind.LOWER_BIDS}
    magnitude = _magnitude(masked) if sized & set(intents) else None
    time_match = _TIME_SCOPE.search(normalize(text))
    terms = prompt_terms(text, intents, notes)
    if IntentKind.ADD_NEGATIVES in intents and terms:
        kept = terms_are_not_entities(entities, terms, notes)
        if len(kept) != len(entities):
            entities = kept
            platforms = _platforms(tokens, entities)
    current = OperatorIntent(
        intents=intents or [IntentKind.UNCLEAR],
        platforms=platforms,
        entities=entities,
        direction=direction if intents else None,
        magnitude_pct=magnitude,
        only_where_effective=bool(_EFFECTIVE.search(joined)) and bool(intents),
        time_scope=time_match.group(0) if time_match else None,
        quoted_terms=terms,
        clarifying_question=None if intents else "?",
        notes=notes,
    )
    if previous is not None:
        followed = _follow_up(current, previous, masked, _platforms(tokens, []), _magnitude(masked))
        if followed is not None:
            return followed
    if intents:
        return current
    return _unclear(masked, joined, question, platforms, entities, notes)


def _unclear(
    words: list[str],
    joined: str,
    question: bool,
    platforms: list[Platform],
    entities: list[EntityMention],
    notes: list[str],
) -> OperatorIntent:
    if _BID_WORDS & set(words):
        ask = "Should I raise or lower the bids, by how much (in %), and where?"
    elif _BUDGET_WORDS & set(words):
        ask = "Should I move budget between entities, or raise or lower it, and where?"
    elif platforms or entities:
        where = ", ".join([p.value for p in platforms] + [e.text for e in entities if e.platform is None])
        ask = f"What should change on {where}? {CAPABILITIES}"
    elif question or not re.search(
        r"\b(?:do|make|change|fix|optimi[sz]e|improve|help|better|something|stuff)\b", joined
    ):
        ask = f"That is outside what I do. {CAPABILITIES} What would you like?"
    else:
        ask = f"What should change, and where? {CAPABILITIES}"
    return _clarify(ask, platforms=platforms, entities=entities, notes=notes)

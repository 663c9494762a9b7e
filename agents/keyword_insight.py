"""Mine search terms with n-grams: negate what spends without converting, promote what converts well.

Proposals:

* `AddNegativeKeyword` (exact) for a search term that spent at least `negative_min_cost_micros`
  over the trailing week plus today, with enough clicks and no conversion.
* `AddNegativeKeyword` (phrase) for an n-gram (1 or 2 words) shared by at least `ngram_min_terms`
  wasteful terms of one ad group with no conversion across all its terms there ("free", "jobs").
* `AddKeyword` (exact) for a search term with at least `promote_min_conversions` conversions and a
  ROAS of `roas_target x promote_roas_factor` or better that is not yet an exact keyword of its ad group;
  its starting bid is the bid of the keyword that matched it.

An operator prompt narrows this (`Steering`): with `negative_terms` ("add 'free' as a negative keyword")
the agent proposes exactly those words as phrase negatives, on each ad group with a search term that
contains them, and nothing else; with `focus_entity_ids` it looks only at search terms in and under the
named campaigns, ad groups or keywords.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass, field

from bidloop.core.actions import Action, AddKeyword, AddNegativeKeyword, AgentName
from bidloop.core.agent_context import AgentContext
from bidloop.core.entities import EntityKind, EntityRef, EntityState, MatchType, Status
from bidloop.core.metrics import Metrics
from bidloop.core.money import format_money
from bidloop.core.snapshot import Snapshot

__all__ = ["propose_keyword_actions"]

AGENT = AgentName.KEYWORD_INSIGHT


@dataclass
class _GramStats:
    cost_micros: int = 0
    clicks: int = 0
    conversions: float = 0.0
    wasteful_terms: set[str] = field(default_factory=set)


def _ngrams(text: str) -> set[str]:
    words = text.lower().split()
    grams = set(words)
    grams.update(" ".join(pair) for pair in itertools.pairwise(words))
    return grams


def _window(e: EntityState) -> Metrics:
    return e.trailing_7d + e.today


def propose_keyword_actions(snapshot: Snapshot, ctx: AgentContext) -> list[Action]:
    """Propose negatives and new exact keywords for one account from its search terms.

    Returns:
        Actions in a stable order (by ad group, then term). Empty when the platform reports no
        search terms (Meta) or the steering excludes this agent.
    """
    if not ctx.allows(AGENT.value):
        return []
    tuning = ctx.tuning
    keywords = snapshot.by_id(EntityKind.KEYWORD)
    ad_groups = snapshot.by_id(EntityKind.AD_GROUP)
    terms = [t for t in snapshot.of_kind(EntityKind.SEARCH_TERM) if t.text]
    if not terms:
        return []

    def ad_group_of(term: EntityState) -> EntityState | None:
        parent = term.parent_id
        if parent in ad_groups:
            return ad_groups[parent]
        keyword = keywords.get(parent or "")
        return ad_groups.get(keyword.parent_id or "") if keyword else None

    existing_exact: dict[str, set[str]] = defaultdict(set)
    for kw in keywords.values():
        if kw.parent_id and kw.text and kw.match_type is MatchType.EXACT and kw.status is not Status.REMOVED:
            existing_exact[kw.parent_id].add(kw.text.lower())

    focus = ctx.steering.focus_entity_ids
    by_group: dict[str, list[EntityState]] = defaultdict(list)
    for term in terms:
        group = ad_group_of(term)
        if group is None or group.status is not Status.ENABLED:
            continue
        if focus and not focus & {term.ref.entity_id, term.parent_id, *_group_scope(group)}:
            continue
        by_group[group.ref.entity_id].append(term)

    if ctx.steering.negative_terms:
        return _operator_negatives(snapshot, ctx, ad_groups, by_group)

    actions: list[Action] = []
    for group_id in sorted(by_group):
        group = ad_groups[group_id]
        group_terms = sorted(by_group[group_id], key=lambda t: (t.text or "", t.ref.entity_id))
        negated: set[str] = set()
        grams: dict[str, _GramStats] = defaultdict(_GramStats)
        for term in group_terms:
            m = _window(term)
            text = (term.text or "").lower()
            wasteful = (
                m.conversions == 0
                and m.cost_micros >= tuning.negative_min_cost_micros
                and m.clicks >= tuning.negative_min_clicks
            )
            for gram in _ngrams(text):
                g = grams[gram]
                g.cost_micros += m.cost_micros
                g.clicks += m.clicks
                g.conversions += m.conversions
                if wasteful:
                    g.wasteful_terms.add(text)
            if wasteful:
                negated.add(text)
                actions.append(
                    _negative(
                        ctx,
                        group,
                        text,
                        MatchType.EXACT,
                        f"search term '{text}' spent {format_money(m.cost_micros, snapshot.currency)} "
                        f"over {m.clicks} clicks in 8 days with no conversion",
                    )
                )
            elif _is_promotable(term, m, group_id, existing_exact, ctx):
                source_kw = keywords.get(term.parent_id or "")
                bid = (source_kw.cpc_bid_micros if source_kw else None) or group.cpc_bid_micros
                if bid:
                    actions.append(
                        AddKeyword(
                            action_id=ctx.next_action_id(AGENT.value),
                            entity=group.ref,
                            agent=AGENT,
                            reason=(
                                f"search term '{text}' converted {m.conversions:.1f} times at ROAS "
                                f"{(m.roas or 0):.2f}; add it as an exact keyword to bid on it directly"
                            ),
                            text=text,
                            match_type=MatchType.EXACT,
                            cpc_bid_micros=bid,
                            expected_effect="more traffic on a proven converting query at the same bid",
                        )
                    )
        for gram in sorted(grams):
            g = grams[gram]
            if (
                g.conversions == 0
                and len(g.wasteful_terms) >= tuning.ngram_min_terms
                and " " not in gram
                and len(gram) > 2
                and not all(term == gram for term in g.wasteful_terms)
            ):
                actions.append(
                    _negative(
                        ctx,
                        group,
                        gram,
                        MatchType.PHRASE,
                        f"the word '{gram}' appears in {len(g.wasteful_terms)} search terms that spent "
                        f"{format_money(g.cost_micros, snapshot.currency)} with no conversion",
                    )
                )
    return actions


def _group_scope(group: EntityState) -> set[str | None]:
    """Return the ids an ad group lies in or under: itself and its campaign."""
    return {group.ref.entity_id, group.parent_id, group.campaign_id}


def _contains_phrase(text: str, phrase: str) -> bool:
    """Return True when `phrase` occurs in `text` as whole words ("free" in "free running shoes", not "freedom")."""
    return f" {phrase} " in f" {' '.join(text.lower().split())} "


def _operator_negatives(
    snapshot: Snapshot,
    ctx: AgentContext,
    ad_groups: dict[str, EntityState],
    by_group: dict[str, list[EntityState]],
) -> list[Action]:
    """Propose the operator's negative terms as phrase negatives where a search term contains them, nothing else.

    Returns:
        One `AddNegativeKeyword` (phrase) per ad group and term, in a stable order (ad group, then term).
        Empty when no search term in scope contains any of the terms: nothing unrelated is proposed instead.
    """
    # A keyword holds at most 80 characters; longer "terms" cannot be negatives and are not proposed.
    phrases = sorted({p for t in ctx.steering.negative_terms if 0 < len(p := " ".join(t.lower().split())) <= 80})
    actions: list[Action] = []
    for group_id in sorted(by_group):
        group = ad_groups[group_id]
        for phrase in phrases:
            matched = sorted(
                {(t.text or "").lower() for t in by_group[group_id] if _contains_phrase(t.text or "", phrase)}
            )
            if not matched:
                continue
            window = Metrics()
            for term in by_group[group_id]:
                if (term.text or "").lower() in matched:
                    window = window + _window(term)
            shown = ", ".join(f"'{m}'" for m in matched[:3]) + (
                f" and {len(matched) - 3} more" if len(matched) > 3 else ""
            )
            converted = (
                f"; note they converted {window.conversions:.1f} times "
                f"({format_money(window.conversion_value_micros, snapshot.currency)}), which this negative will stop"
                if round(window.conversions, 1) > 0
                else " with no conversion"
            )
            actions.append(
                _negative(
                    ctx,
                    group,
                    phrase,
                    MatchType.PHRASE,
                    f"the operator asked to add '{phrase}' as a negative keyword; it appears in {len(matched)} "
                    f"search term(s) of this ad group ({shown}) that spent "
                    f"{format_money(window.cost_micros, snapshot.currency)} in 8 days{converted}",
                    expected_effect=f"stops spend on search terms containing '{phrase}' in this ad group",
                )
            )
    return actions


def _is_promotable(
    term: EntityState, m: Metrics, group_id: str, existing_exact: dict[str, set[str]], ctx: AgentContext
) -> bool:
    text = (term.text or "").lower()
    return (
        m.conversions >= ctx.tuning.promote_min_conversions
        and (m.roas or 0.0) >= ctx.tuning.roas_target * ctx.tuning.promote_roas_factor
        and text not in existing_exact[group_id]
    )


def _negative(
    ctx: AgentContext,
    group: EntityState,
    text: str,
    match: MatchType,
    reason: str,
    expected_effect: str = "stops spend on queries that do not convert",
) -> AddNegativeKeyword:
    return AddNegativeKeyword(
        action_id=ctx.next_action_id(AGENT.value),
        entity=EntityRef(
            platform=group.ref.platform,
            account_id=group.ref.account_id,
            kind=EntityKind.AD_GROUP,
            entity_id=group.ref.entity_id,
        ),
        agent=AGENT,
        reason=reason,
        text=text,
        match_type=match,
        expected_effect=expected_effect,
    )

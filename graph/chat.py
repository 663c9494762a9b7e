"""Turn an operator's sentence into a reviewable plan, and run it through the same pipeline as any run.

`ask` is one turn of a chat: the prompt is audited, parsed into an `OperatorIntent` (deterministic rules,
or the configured LLM), mapped to a `Steering` by `intent_to_steering`, and run with `run_cycle` as a
dry run (nothing written) or, with `apply=True`, as a live run through the same filter, approvals and
audit log. The answer lists every proposed change (old → new value, why, the guardrail verdict and
rule, the expected effect) and a one-paragraph summary.

What a prompt can never do: change limits, approve actions, switch modes or reveal credentials. The
parser refuses such prompts before anything runs, and `ask` passes nothing from the prompt into the
settings or the approvals: only the steering (which agents propose, where, which way) comes from it,
and the mode comes from the caller's `apply` flag.

Threads live in the audit log, so no table is needed: each turn appends a `prompt` record and an
`answer` record whose payload holds the `thread_id` and the intent JSON; the previous turn of a thread
is its last `answer` record ("now do the same for Google" reuses that intent).
"""

from __future__ import annotations

import re
import secrets
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select

from bidloop.agents.operator_intent import (
    MAX_PROMPT_CHARS,
    EntityCatalog,
    IntentKind,
    OperatorIntent,
    parse_prompt,
    plain_words,
    screen_prompt,
)
from bidloop.agents.reporting import ActionLine, RunReport, build_report
from bidloop.core.actions import AgentName, SetBudget
from bidloop.core.agent_context import AgentTuning, Steering
from bidloop.core.decisions import Decision
from bidloop.core.errors import InputError, PlatformError
from bidloop.core.money import format_money
from bidloop.core.settings import Settings
from bidloop.core.snapshot import Snapshot
from bidloop.core.store import ApprovalRow, AuditRow, Store
from bidloop.graph.runner import RunOutcome, run_cycle, select_accounts
from bidloop.guardrails.audit import append
from bidloop.guardrails.kill_switch import writes_paused
from bidloop.policies.loader import load_bid_policy
from bidloop.tools.registry import ClientSet, build_clients
from bidloop.tools.sim import SimMarket

__all__ = ["ChatAnswer", "PlanLine", "ask", "intent_to_steering", "new_thread_id", "thread_history"]

ACTOR = "chat"
"""The audit actor and run trigger of every chat turn."""

_THREAD_ID_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")

_BID_INTENTS = {IntentKind.RAISE_BIDS, IntentKind.LOWER_BIDS}
_RUN_INTENTS = {
    IntentKind.REBALANCE_BUDGET,
    IntentKind.RAISE_BIDS,
    IntentKind.LOWER_BIDS,
    IntentKind.PAUSE_CREATIVES,
    IntentKind.ROTATE_CREATIVES,
    IntentKind.ADD_NEGATIVES,
}
_COMMANDS = {
    IntentKind.PAUSE_ALL: (
        "`bidloop pause-all` stops every write at once (the kill switch); a chat prompt does not flip it"
    ),
    IntentKind.ROLLBACK: (
        "`bidloop rollback RUN_ID` restores a run's before-values (see `bidloop runs list` for the id); "
        "a chat prompt does not roll back"
    ),
}

Status = Literal["planned", "applied", "waiting_approval", "answered", "refused", "unclear"]


class PlanLine(ActionLine):
    """One change of the plan, as the operator reviews it: the run report's line plus what chat adds.

    The inherited fields are those of `ActionLine` (approve or reject a change by its `action_id`).

    Attributes:
        change_pct: The change the guardrails let through, in percent of the old value (money and bids;
            None for pauses, keywords and blocked changes).
        simulated_effect: The simulated market's expected effect over one day (budget shifts on sim accounts).
    """

    change_pct: float | None = None
    simulated_effect: str | None = None

    @classmethod
    def from_action_line(
        cls, line: ActionLine, *, change_pct: float | None = None, simulated_effect: str | None = None
    ) -> PlanLine:
        """Return the plan line of one report line."""
        return cls(**line.model_dump(), change_pct=change_pct, simulated_effect=simulated_effect)


class ChatAnswer(BaseModel):
    """bidloop's answer to one chat turn.

    Attributes:
        thread_id: The conversation (pass it back for the next turn).
        prompt: The prompt as received (cut at `MAX_PROMPT_CHARS`).
        intent: How the prompt was read.
        status: `planned` (dry run), `applied` (live run completed), `waiting_approval` (live run paused for a
            person), `answered` (report, status or a pointer to a command; nothing ran), `refused`, `unclear`.
        refused: True when the prompt asked for what no prompt may do; `reason` says why.
        unclear: True when bidloop needs more to go on; `clarifying_question` says what.
        reason: Why the prompt was refused.
        clarifying_question: What to tell bidloop.
        plan: Every proposed change, in the run's order.
        summary: One paragraph for people.
        run_id: The run that made the plan (None when nothing ran).
        mode: `dry-run` or `live` when a run was made.
        applied: True when the run was live (changes went out through the filter).
        pending_approvals: Actions that wait for a person (`bidloop approvals approve ID`).
        commands: Commands that do what the prompt asked and a prompt may not do.
        notes: How the prompt was read and what the run wants the operator to know.
    """

    model_config = ConfigDict(extra="forbid")

    thread_id: str
    prompt: str
    intent: OperatorIntent
    status: Status
    refused: bool = False
    unclear: bool = False
    reason: str | None = None
    clarifying_question: str | None = None
    plan: list[PlanLine] = Field(default_factory=list)
    summary: str
    run_id: str | None = None
    mode: str | None = None
    applied: bool = False
    pending_approvals: list[dict[str, Any]] = Field(default_factory=list)
    commands: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


def new_thread_id() -> str:
    """Return a new chat thread id that sorts by time: `chat-20260601-093000-a1b2c3`."""
    return datetime.now(UTC).strftime("chat-%Y%m%d-%H%M%S-") + secrets.token_hex(3)


def intent_to_steering(intent: OperatorIntent) -> Steering:
    """Return how an intent narrows a run: which agents propose, where, and which way.

    * `rebalance_budget`: the bid shifter moves budgets; the named entities are its focus (they receive first).
    * `raise_bids` / `lower_bids`: the bid shifter changes bids in that direction, by `magnitude_pct` when
      given; with `only_where_effective` it lifts only where ROAS beats the target.
    * `pause_creatives` / `rotate_creatives`: creative rotation only.
    * `add_negatives`: keyword insight only. With terms in the prompt ("add 'free' as a negative keyword"),
      exactly those terms (`negative_terms`) and nothing else; quoted entity names are not terms.
    * Named entities narrow keyword insight and creative rotation to what lies in or under them.
    * Anything else (report, status, what-if alone, rollback, pause-all, unclear, refused): no agent proposes.

    Nothing in the steering can widen a limit: the guardrails judge whatever the agents propose.
    """
    kinds = set(intent.intents)
    agents: set[str] = set()
    budget_shifts = IntentKind.REBALANCE_BUDGET in kinds
    bid_changes = bool(kinds & _BID_INTENTS)
    if budget_shifts or bid_changes:
        agents.add(AgentName.BID_SHIFTER.value)
    if kinds & {IntentKind.PAUSE_CREATIVES, IntentKind.ROTATE_CREATIVES}:
        agents.add(AgentName.CREATIVE_ROTATION.value)
    if IntentKind.ADD_NEGATIVES in kinds:
        agents.add(AgentName.KEYWORD_INSIGHT.value)
    bid_direction: str | None = None
    if bid_changes and not kinds >= _BID_INTENTS:
        bid_direction = "up" if IntentKind.RAISE_BIDS in kinds else "down"
    return Steering(
        negative_terms=_negative_terms(intent),
        agents=frozenset(agents),
        budget_shifts=budget_shifts,
        bid_changes=bid_changes,
        platforms=frozenset(p.value for p in intent.platforms) or None,
        focus_entity_ids=frozenset(e.entity_id for e in intent.entities if e.entity_id),
        bid_direction=bid_direction,
        bid_step_pct=intent.magnitude_pct if bid_changes else None,
        only_where_effective=intent.only_where_effective,
    )


def _negative_terms(intent: OperatorIntent) -> frozenset[str]:
    """Return the terms an `add_negatives` prompt names, lower case, less any that name an entity of the prompt."""
    if IntentKind.ADD_NEGATIVES not in intent.intents:
        return frozenset()
    names = {plain_words(n) for e in intent.entities for n in (e.name, e.text) if n}
    terms = {" ".join(t.lower().split()) for t in intent.quoted_terms}
    return frozenset(t for t in terms if plain_words(t) and plain_words(t) not in names)


def _tuning_for(intent: OperatorIntent, settings: Settings) -> AgentTuning:
    """Return the agents' tuning; a budget-only prompt's magnitude may narrow the shift, never widen it."""
    tuning = AgentTuning(roas_target=settings.reward.roas_target)
    kinds = set(intent.intents)
    if intent.magnitude_pct and IntentKind.REBALANCE_BUDGET in kinds and not kinds & _BID_INTENTS:
        narrowed = min(tuning.max_budget_shift_pct, intent.magnitude_pct)
        tuning = tuning.model_copy(update={"max_budget_shift_pct": narrowed})
    return tuning


# -- threads in the audit log --------------------------------------------------------------------------------


def _check_thread_id(thread_id: str) -> str:
    if not isinstance(thread_id, str) or not _THREAD_ID_RE.match(thread_id):
        raise InputError(
            f"invalid thread id {thread_id!r}",
            hint="use the thread id an earlier answer gave (letters, digits, '.', '_' or '-', at most 64)",
        )
    return thread_id


def thread_history(store: Store, thread_id: str, *, limit: int = 50) -> list[AuditRow]:
    """Return a thread's `prompt` and `answer` audit records, oldest first (at most the newest `limit`).

    Raises:
        InputError: If the thread id is malformed.
    """
    _check_thread_id(thread_id)
    with store.session() as s:
        rows = list(
            s.scalars(
                select(AuditRow)
                .where(AuditRow.kind.in_(("prompt", "answer")))
                .where(AuditRow.payload["thread_id"].as_string() == thread_id)
                .order_by(AuditRow.seq.desc())
                .limit(limit)
            )
        )
    rows.reverse()
    return rows


def _previous_intent(store: Store, thread_id: str) -> OperatorIntent | None:
    """Return the intent of the thread's last answer, or None for a new thread."""
    with store.session() as s:
        row = s.scalars(
            select(AuditRow)
            .where(AuditRow.kind == "answer")
            .where(AuditRow.payload["thread_id"].as_string() == thread_id)
            .order_by(AuditRow.seq.desc())
            .limit(1)
        ).first()
    if row is None or not isinstance(row.payload.get("intent"), dict):
        return None
    return OperatorIntent.model_validate(row.payload["intent"])


# -- the turn ------------------------------------------------------------------------------------------------


def ask(
    settings: Settings,
    prompt: str,
    *,
    thread_id: str | None = None,
    apply: bool = False,
    llm: BaseChatModel | None = None,
    progress: Callable[[str], None] | None = None,
    store: Store | None = None,
    clients: ClientSet | None = None,
    intent: OperatorIntent | None = None,
) -> ChatAnswer:
    """Answer one chat turn: read the prompt, and plan (or, with `apply`, make) the changes it asks for.

    Args:
        settings: The loaded settings (never changed by the prompt).
        prompt: What the operator typed.
        thread_id: The conversation to continue (default: a new one); its last answer's intent is the
            context of follow-ups ("now do the same for Google").
        apply: Run live (writes go out through the filter, approvals and audit). Default: a dry run.
            A what-if prompt is always a dry run.
        llm: A chat model for intent detection; default: the configured one (`settings.llm`), else the
            deterministic parser.
        progress: Receives one line per step.
        store: An open store (default: opened from the settings and closed afterwards).
        clients: Prebuilt clients (default: built from the settings; the simulated market is saved after a
            live run).
        intent: Act on this intent instead of reading the prompt again: how `chat` applies exactly the plan it
            showed. The prompt is still screened and audited; a refused or unclear intent still runs nothing.

    Returns:
        The answer: refused, unclear, answered (report/status/command) or a plan with its run id.

    Raises:
        InputError: If `prompt` is not a string or `thread_id` is malformed.
        BidloopError: If the run fails (recorded as failed, see `bidloop runs show`).
    """
    if not isinstance(prompt, str):
        raise InputError(f"a prompt must be text, got {type(prompt).__name__}")
    thread_id = _check_thread_id(thread_id) if thread_id is not None else new_thread_id()
    own_store = store is None
    the_store = store or Store(settings.resolved_database_url)
    try:
        return _turn(settings, prompt, thread_id, apply, llm, progress, the_store, clients, intent)
    finally:
        if own_store:
            the_store.dispose()


def _turn(
    settings: Settings,
    prompt: str,
    thread_id: str,
    apply: bool,
    llm: BaseChatModel | None,
    progress: Callable[[str], None] | None,
    store: Store,
    clients: ClientSet | None,
    given_intent: OperatorIntent | None,
) -> ChatAnswer:
    kept = prompt[:MAX_PROMPT_CHARS]
    append(
        store,
        kind="prompt",
        actor=ACTOR,
        run_id=None,
        payload={"thread_id": thread_id, "prompt": kept, "prompt_chars": len(prompt), "apply_requested": apply},
    )
    refusal = screen_prompt(prompt)
    if refusal is not None:
        answer = _refused(thread_id, kept, refusal)
        return _audited(store, answer)

    previous = _previous_intent(store, thread_id)
    client_set = clients or build_clients(settings, store, select_accounts(settings, None, None))
    snapshots, read_notes = _read_snapshots(settings, client_set)
    catalog = EntityCatalog.from_snapshots(snapshots.values())
    intent = given_intent or _parse(settings, prompt, llm, catalog, previous)
    kinds = set(intent.intents)

    if IntentKind.REFUSED in kinds:
        return _audited(store, _refused(thread_id, kept, intent))
    if IntentKind.UNCLEAR in kinds:
        question = intent.clarifying_question or "What should I change, and where?"
        answer = ChatAnswer(
            thread_id=thread_id,
            prompt=kept,
            intent=intent,
            status="unclear",
            unclear=True,
            clarifying_question=question,
            summary=f"I need more to go on: {question} Nothing was run.",
            notes=list(intent.notes),
        )
        return _audited(store, answer)

    commands = [_COMMANDS[k] for k in (IntentKind.PAUSE_ALL, IntentKind.ROLLBACK) if k in kinds]
    notes = [*intent.notes, *read_notes]
    if not kinds & _RUN_INTENTS:
        answer = _answer_without_run(settings, store, thread_id, kept, intent, snapshots, commands, notes)
        return _audited(store, answer)

    what_if = IntentKind.WHAT_IF in kinds
    live = apply and not what_if
    if apply and what_if:
        notes.append("a what-if is never applied: this was a dry run")
    outcome = run_cycle(
        settings,
        mode="live" if live else "dry-run",
        trigger=ACTOR,
        steering=intent_to_steering(intent),
        tuning=_tuning_for(intent, settings),
        bid_policy=load_bid_policy(settings),
        progress=progress,
        store=store,
        clients=client_set,
        advance_sim=False,
    )
    if live and clients is None:
        # A chat turn moves no simulated clock: the changes are saved, time stays where it was.
        client_set.persist(store, advance_dayparts=0)
    answer = _plan_answer(thread_id, kept, intent, outcome, client_set.sim_market, live, what_if, commands, notes)
    return _audited(store, answer)


def _parse(
    settings: Settings,
    prompt: str,
    llm: BaseChatModel | None,
    catalog: EntityCatalog,
    previous: OperatorIntent | None,
) -> OperatorIntent:
    if llm is None and settings.llm.enabled:
        from bidloop.agents.operator_llm import make_chat_model

        llm = make_chat_model(settings.llm)
    if llm is None:
        return parse_prompt(prompt, catalog=catalog, previous=previous)
    from bidloop.agents.operator_llm import parse_with_llm

    return parse_with_llm(prompt, llm=llm, catalog=catalog, previous=previous, timeout_s=settings.llm.timeout_s)


def _read_snapshots(settings: Settings, client_set: ClientSet) -> tuple[dict[str, Snapshot], list[str]]:
    """Read every account once, for the entity catalog and status answers; unreadable accounts are noted."""
    snapshots: dict[str, Snapshot] = {}
    notes: list[str] = []
    for account_id, client in client_set.clients.items():
        try:
            snapshots[account_id] = client.read_snapshot(account_id)
        except PlatformError as exc:
            notes.append(f"{account_id}: could not be read ({exc.message}); its entities are not known by name")
    return snapshots, notes


def _audited(store: Store, answer: ChatAnswer) -> ChatAnswer:
    append(
        store,
        kind="answer",
        actor=ACTOR,
        run_id=answer.run_id,
        payload={
            "thread_id": answer.thread_id,
            "intent": answer.intent.model_dump(mode="json"),
            "status": answer.status,
            "applied": answer.applied,
            "mode": answer.mode,
            "summary": answer.summary,
            "action_ids": [line.action_id for line in answer.plan],
            "verdicts": dict(Counter(line.verdict for line in answer.plan)),
        },
    )
    return answer


def _refused(thread_id: str, prompt: str, intent: OperatorIntent) -> ChatAnswer:
    reason = intent.refusal_reason or "no prompt may do that."
    return ChatAnswer(
        thread_id=thread_id,
        prompt=prompt,
        intent=intent,
        status="refused",
        refused=True,
        reason=reason,
        summary=f"{reason if reason.lower().startswith('refused') else 'Refused: ' + reason} "
        "Nothing was run and nothing changed.",
        notes=list(intent.notes),
    )


# -- answers without a run ------------------------------------------------------------------------------------


def _answer_without_run(
    settings: Settings,
    store: Store,
    thread_id: str,
    prompt: str,
    intent: OperatorIntent,
    snapshots: dict[str, Snapshot],
    commands: list[str],
    notes: list[str],
) -> ChatAnswer:
    kinds = set(intent.intents)
    parts: list[str] = []
    if IntentKind.REPORT in kinds:
        parts.append(_performance_paragraph(intent, snapshots))
    if IntentKind.STATUS in kinds:
        parts.append(_status_paragraph(store))
    if IntentKind.WHAT_IF in kinds and not parts:
        parts.append(
            "Tell me which change to try (for example 'what if we cut bids 10 % on Google') and I will plan it."
        )
    parts.extend(f"Use {c}." for c in commands)
    summary = " ".join(parts) + " Nothing was changed."
    return ChatAnswer(
        thread_id=thread_id,
        prompt=prompt,
        intent=intent,
        status="answered",
        summary=summary,
        commands=commands,
        notes=notes,
    )


def _performance_paragraph(intent: OperatorIntent, snapshots: dict[str, Snapshot]) -> str:
    platforms = {p.value for p in intent.platforms}
    scoped = {a: s for a, s in snapshots.items() if not platforms or s.platform.value in platforms}
    if not scoped:
        return "No account in scope could be read."
    report = build_report(
        run_id="-",
        mode="dry-run",
        trigger=ACTOR,
        status="completed",
        snapshots=scoped,
        actions=[],
        decisions=[],
        results=[],
    )
    lines = []
    for a in report.accounts:
        pace = f"{a.pace_ratio:.0%} of pace" if a.pace_ratio is not None else "pace unknown"
        roas = f"ROAS 7d {a.roas_7d:.2f}" if a.roas_7d is not None else "no ROAS yet"
        lines.append(
            f"{a.account_id} ({a.platform}) spent {format_money(a.spend_today_micros, a.currency)} today of "
            f"{format_money(a.daily_budget_micros, a.currency)}/day ({pace}), {roas}"
        )
    return "Right now: " + "; ".join(lines) + "."


def _status_paragraph(store: Store) -> str:
    runs = store.list_runs(limit=3)
    with store.session() as s:
        pending = s.scalar(select(func.count()).select_from(ApprovalRow).where(ApprovalRow.status == "pending")) or 0
    text = "Writes are paused (kill switch on). " if writes_paused(store) else "Writes are enabled. "
    text += f"{pending} action(s) wait for approval. "
    if runs:
        last = runs[0]
        text += f"Last run {last.run_id} ({last.mode}, {last.trigger}) is {last.status}" + (
            f": {last.summary['summary']}" if last.summary.get("summary") else "."
        )
    else:
        text += "No run yet: try `bidloop run --dry-run`."
    return text


# -- plans ----------------------------------------------------------------------------------------------------


def _plan_answer(
    thread_id: str,
    prompt: str,
    intent: OperatorIntent,
    outcome: RunOutcome,
    market: SimMarket | None,
    live: bool,
    what_if: bool,
    commands: list[str],
    notes: list[str],
) -> ChatAnswer:
    mode = "live" if live else "dry-run"
    notes = [*notes, *outcome.state.get("notes", [])]
    if outcome.status == "waiting_approval" or outcome.report is None:
        pending = outcome.pending_approvals
        summary = (
            f"Live run {outcome.run_id} applied what the guardrails allowed and waits for a person on "
            f"{len(pending)} change(s): approve with `bidloop approvals approve ID` or reject with "
            "`bidloop approvals reject ID --reason ...`; a chat prompt cannot approve."
        )
        return ChatAnswer(
            thread_id=thread_id,
            prompt=prompt,
            intent=intent,
            status="waiting_approval",
            summary=summary,
            run_id=outcome.run_id,
            mode=mode,
            applied=True,
            pending_approvals=pending,
            commands=commands,
            notes=notes,
        )
    decisions = [
        d if isinstance(d, Decision) else Decision.model_validate(d) for d in outcome.state.get("decisions", [])
    ]
    currencies = {a.account_id: a.currency for a in outcome.report.accounts}
    effects = _simulated_effects(market, decisions, currencies) if not live and market is not None else {}
    changes = _change_pcts(decisions)
    plan = [
        PlanLine.from_action_line(
            line, change_pct=changes.get(line.action_id), simulated_effect=effects.get(line.action_id)
        )
        for line in outcome.report.actions
    ]
    summary = _plan_summary(intent, outcome.report, plan, live, what_if)
    if commands:
        summary += " " + " ".join(f"Use {c}." for c in commands)
    return ChatAnswer(
        thread_id=thread_id,
        prompt=prompt,
        intent=intent,
        status="applied" if live else "planned",
        summary=summary,
        plan=plan,
        run_id=outcome.run_id,
        mode=mode,
        applied=live,
        commands=commands,
        notes=notes,
    )


def _describe_intent(intent: OperatorIntent) -> str:
    words = {
        IntentKind.REBALANCE_BUDGET: "rebalance budgets",
        IntentKind.RAISE_BIDS: "raise bids",
        IntentKind.LOWER_BIDS: "lower bids",
        IntentKind.PAUSE_CREATIVES: "pause tired creatives",
        IntentKind.ROTATE_CREATIVES: "rotate creatives",
        IntentKind.ADD_NEGATIVES: "add negative keywords",
    }
    asked = [words[k] for k in intent.intents if k in words]
    terms = _negative_terms(intent)
    if terms:
        asked = [
            f"add {', '.join(repr(t) for t in sorted(terms))} as negative keyword{'s' if len(terms) > 1 else ''}"
            if a == "add negative keywords"
            else a
            for a in asked
        ]
    text = " and ".join(asked) or "plan changes"
    if intent.magnitude_pct:
        text += f" by {intent.magnitude_pct:g} %"
    if intent.platforms:
        text += " on " + ", ".join(p.value for p in intent.platforms)
    named = [e.entity_id or e.text for e in intent.entities]
    if named:
        text += " with " + ", ".join(named) + " as the focus"
    if intent.only_where_effective:
        text += ", only where ROAS beats the target"
    return text


def _plan_summary(intent: OperatorIntent, report: RunReport, plan: list[PlanLine], live: bool, what_if: bool) -> str:
    head = ("What-if: " if what_if else "") + f"I read this as: {_describe_intent(intent)}."
    unmatched = _unmatched_terms_sentence(intent, plan)
    if unmatched:
        head += " " + unmatched
    if not plan:
        return f"{head} The agents found nothing worth changing within that scope" + (
            " (nothing was written)." if not live else "."
        )
    kinds = Counter(line.kind for line in plan)
    verdicts = Counter(line.verdict for line in plan)
    parts = [head, f"{len(plan)} change(s) proposed ({', '.join(f'{v} {k}' for k, v in sorted(kinds.items()))})."]
    given = [line for line in plan if line.kind == "set_budget" and _is_decrease(line)]
    taken = [line for line in plan if line.kind == "set_budget" and not _is_decrease(line)]
    if given and taken:
        parts.append(
            "Budget moves from "
            + ", ".join(_short(line) for line in given)
            + " to "
            + ", ".join(f"{_short(line)} ({line.old_value} → {line.final_value or line.new_value})" for line in taken)
            + "."
        )
    targets = [
        line for line in plan if line.kind in ("set_target_roas", "set_target_cpa") and line.verdict != "blocked"
    ]
    if targets:
        parts.append(
            "Smart Bidding targets: "
            + ", ".join(f"{_short(line)} ({line.old_value} → {line.final_value or line.new_value})" for line in targets)
            + "."
        )
    surprises = {k: v for k, v in verdicts.items() if k != "allowed"}
    if surprises:
        parts.append(
            "Guardrails: "
            + ", ".join(f"{v} {k}" for k, v in sorted(verdicts.items()))
            + "; check the clipped, blocked or approval lines."
        )
    else:
        parts.append("Every change passed the guardrails unchanged.")
    if live:
        outcomes = Counter(line.outcome for line in plan if line.outcome)
        parts.append(f"Applied live ({', '.join(f'{v} {k}' for k, v in sorted(outcomes.items())) or 'nothing sent'}).")
    else:
        parts.append("Dry run: nothing was written; apply it with `bidloop ask ... --apply` or `apply` in the chat.")
    return " ".join(parts)


def _unmatched_terms_sentence(intent: OperatorIntent, plan: list[PlanLine]) -> str | None:
    """Return a sentence naming the operator's negative terms that no search term in scope contains, else None."""
    terms = _negative_terms(intent)
    proposed = {
        line.new_value.split("] ", 1)[-1]
        for line in plan
        if line.kind == "add_negative_keyword" and line.new_value is not None
    }
    missing = sorted(terms - proposed)
    if not missing:
        return None
    where = " on " + ", ".join(p.value for p in intent.platforms) if intent.platforms else " in any account"
    if intent.entities:
        where += " under " + ", ".join(e.entity_id or e.text for e in intent.entities)
    quoted = " or ".join(repr(t) for t in missing)
    return (
        f"No search term{where} contains {quoted}, so no negative keyword was proposed for "
        f"{'it' if len(missing) == 1 else 'them'}."
    )


def _is_decrease(line: PlanLine) -> bool:
    return line.change_pct is not None and line.change_pct < 0


def _change_pcts(decisions: list[Decision]) -> dict[str, float]:
    """Return action id -> the change the guardrails let through, in percent of the old value."""
    changes: dict[str, float] = {}
    for d in decisions:
        final = d.final_action
        if final is None or not d.may_apply:
            continue
        old, new = final.old_value, final.new_value
        if isinstance(old, int) and isinstance(new, int) and not isinstance(old, bool) and old > 0:
            changes[d.action_id] = round((new - old) / old * 100.0, 2)
    return changes


def _short(line: PlanLine) -> str:
    ident = line.entity.rsplit(":", 1)[-1]
    return f"{ident} {line.entity_name}" if line.entity_name else ident


def _simulated_effects(market: SimMarket, decisions: list[Decision], currencies: dict[str, str]) -> dict[str, str]:
    """Return action id -> the simulated market's expected one-day effect of each budget change it may apply.

    The expected (noise-free) rollout of the plan's budgets over one day is compared with holding the
    current budgets, per budget holder. The market itself is not changed.
    """
    budgets: dict[tuple[str, str], tuple[str, int]] = {}
    for d in decisions:
        final = d.final_action
        if d.may_apply and isinstance(final, SetBudget):
            budgets[(final.entity.account_id, final.entity.entity_id)] = (d.action_id, final.new_daily_budget_micros)
    if not budgets:
        return {}
    holders = market.holder_entity_ids()
    rows = {key: i for i, key in enumerate(holders)}
    if not any(key in rows for key in budgets):
        return {}
    steps = market.dayparts_per_day
    base = market.expected_rollout(steps)
    planned = np.array(market.core_inputs()["daily_budget"], dtype=float)
    for key, (_, micros) in budgets.items():
        if key in rows:
            planned[rows[key]] = micros / 1_000_000
    after = market.expected_rollout(steps, daily_budget=planned)
    effects: dict[str, str] = {}
    for key, (action_id, _) in budgets.items():
        if key not in rows:
            continue
        h = rows[key]
        d_value = float(np.sum(after.value[:, h]) - np.sum(base.value[:, h]))
        d_spend = float(np.sum(after.spend[:, h]) - np.sum(base.spend[:, h]))
        cur = currencies.get(key[0], "USD")
        effects[action_id] = (
            f"simulated next 24 h: spend {_signed(d_spend, cur)}, conversion value {_signed(d_value, cur)}"
        )
    return effects


def _signed(units: float, currency: str) -> str:
    micros = round(units * 1_000_000)
    return ("+" if micros >= 0 else "−") + format_money(abs(micros), currency)

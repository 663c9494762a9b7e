"""Checkpoints rebuild only the classes a run's state can hold, and a run's state survives the round trip."""

from __future__ import annotations

import logging
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from bidloop.core.actions import Action
from bidloop.core.decisions import Decision, Verdict, WriteResult, WriteStatus
from bidloop.core.settings import Settings
from bidloop.graph.builder import build_graph
from bidloop.graph.checkpoint import checkpoint_serializer, open_checkpointer, state_types
from bidloop.graph.runner import run_cycle


class NotState(BaseModel):
    """A class no run state holds."""

    x: int = 1


def test_the_allowlist_has_every_action_kind_and_the_state_models() -> None:
    kinds = set(typing.get_args(typing.get_args(Action)[0]))
    assert kinds, "Action is an annotated union of the action kinds"
    assert kinds | {Decision, WriteResult, Verdict, WriteStatus} <= state_types()
    assert all(t.__module__.startswith("bidloop.") for t in state_types())


def test_a_class_outside_the_state_is_not_rebuilt_from_a_checkpoint(caplog: pytest.LogCaptureFixture) -> None:
    serde = checkpoint_serializer()
    with caplog.at_level(logging.WARNING):
        back = serde.loads_typed(serde.dumps_typed({"x": NotState(), "v": Verdict.ALLOWED}))
    assert back["v"] is Verdict.ALLOWED
    assert not isinstance(back["x"], NotState)
    assert back["x"] == {"x": 1}


def test_a_live_run_state_comes_back_from_its_checkpoint_typed_and_without_warnings(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    outcome = run_cycle(settings, mode="live", trigger="test")
    with caplog.at_level(logging.WARNING), open_checkpointer(settings) as saver:
        graph = build_graph().compile(checkpointer=saver)
        values = graph.get_state({"configurable": {"thread_id": outcome.run_id}}).values
    serde_warnings = [r.getMessage() for r in caplog.records if r.name.startswith("langgraph.checkpoint")]
    assert serde_warnings == []
    assert values["proposals"] and all(type(a) in state_types() for a in values["proposals"])
    assert all(isinstance(d, Decision) for d in values["decisions"])
    assert all(isinstance(r, WriteResult) for r in values["results"])

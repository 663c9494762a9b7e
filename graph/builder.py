"""Wire the optimization graph: observe → agents → filter → approve → apply → report → log."""

from __future__ import annotations

import itertools

from langgraph.graph import END, START, StateGraph

from bidloop.graph import nodes
from bidloop.graph.context import RunContext
from bidloop.graph.state import RunState

__all__ = ["NODE_ORDER", "build_graph"]

NODE_ORDER = (
    "observe",
    "keyword_insight",
    "bid_shifter",
    "creative_rotation",
    "filter",
    "approve",
    "apply",
    "report",
    "log",
)
"""The nodes in the order one run visits them."""


def build_graph() -> StateGraph[RunState, RunContext, RunState, RunState]:
    """Return the uncompiled graph; compile it with a checkpointer (CLI, tests) or without one (Studio)."""
    builder: StateGraph[RunState, RunContext, RunState, RunState] = StateGraph(RunState, context_schema=RunContext)
    builder.add_node("observe", nodes.observe)
    builder.add_node("keyword_insight", nodes.keyword_insight)
    builder.add_node("bid_shifter", nodes.bid_shifter)
    builder.add_node("creative_rotation", nodes.creative_rotation)
    builder.add_node("filter", nodes.filter_actions)
    builder.add_node("approve", nodes.approve)
    builder.add_node("apply", nodes.apply)
    builder.add_node("report", nodes.report)
    builder.add_node("log", nodes.log)
    builder.add_edge(START, "observe")
    for first, second in itertools.pairwise(NODE_ORDER):
        builder.add_edge(first, second)
    builder.add_edge("log", END)
    return builder

"""Expose the graph for `langgraph dev` / LangGraph Studio (compiled without a checkpointer: the server persists)."""

from __future__ import annotations

from bidloop.graph.builder import build_graph

graph = build_graph().compile()

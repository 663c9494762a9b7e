"""Re-export the agent context from `bidloop.core.agent_context` (its home: learned policies share it)."""

from __future__ import annotations

from bidloop.core.agent_context import AgentContext, AgentTuning, Steering

__all__ = ["AgentContext", "AgentTuning", "Steering"]

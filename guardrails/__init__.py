"""bidloop.guardrails."""

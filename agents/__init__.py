"""bidloop.agents."""

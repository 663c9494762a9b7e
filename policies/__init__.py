"""bidloop.policies."""

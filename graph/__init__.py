"""bidloop.graph."""

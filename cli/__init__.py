"""bidloop.cli."""

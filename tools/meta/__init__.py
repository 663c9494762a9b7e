"""bidloop.tools.meta."""

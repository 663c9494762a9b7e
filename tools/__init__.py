"""bidloop.tools."""

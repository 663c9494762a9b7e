"""bidloop.tools.sim."""

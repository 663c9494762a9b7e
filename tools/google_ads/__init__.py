"""bidloop.tools.google_ads."""

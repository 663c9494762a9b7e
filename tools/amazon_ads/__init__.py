"""bidloop.tools.amazon_ads."""

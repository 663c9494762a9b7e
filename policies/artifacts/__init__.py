"""Shipped policy files (the default trained policy)."""

"""Load the bid shifter's policy named in the settings."""

from __future__ import annotations

from bidloop.core.errors import PolicyError
from bidloop.core.settings import Settings

__all__ = ["HEURISTIC", "load_bid_policy"]

HEURISTIC = "heuristic"
"""The policy name of the marginal-ROAS heuristic (no file needed)."""


def load_bid_policy(settings: Settings) -> object | None:
    """Return the configured learned policy, or None for the heuristic.

    Raises:
        PolicyError: If the named policy is not registered.
    """
    if settings.policy == HEURISTIC:
        return None
    raise PolicyError(
        f"no policy {settings.policy!r} is registered",
        hint="set `policy: heuristic` in bidloop.yaml, or train one with `bidloop train`",
    )

"""Load the bid shifter's policy named in the settings: the heuristic, the shipped default, or a registered id."""

from __future__ import annotations

from bidloop.core.errors import PolicyError
from bidloop.core.settings import Settings
from bidloop.policies.learned import LearnedBidPolicy
from bidloop.policies.registry import DEFAULT_POLICY_ID, find_policy, shipped_files

__all__ = ["DEFAULT", "HEURISTIC", "load_bid_policy"]

HEURISTIC = "heuristic"
"""The policy name of the marginal-ROAS heuristic (no file needed)."""
DEFAULT = DEFAULT_POLICY_ID
"""The policy name of the trained policy shipped with the package."""


def load_bid_policy(settings: Settings) -> LearnedBidPolicy | None:
    """Return the configured learned policy, or None for the heuristic.

    `default` is the shipped policy (a user-trained policy registered as `default` under the data
    directory does not shadow it); any other name is looked up in `<data_dir>/policies/` first, then
    among the shipped ones.

    Raises:
        PolicyError: If the policy is not registered, a file is missing or corrupt, or it was trained on
            another observation spec. The run stops instead of acting on garbage.
    """
    name = settings.policy
    if name == HEURISTIC:
        return None
    files = shipped_files(DEFAULT) if name == DEFAULT else find_policy(name, settings.data_dir)
    if files.shipped and not files.metadata.exists() and not files.model.exists():
        raise PolicyError(
            f"the shipped policy {name!r} is missing from this installation ({files.model.parent})",
            hint="reinstall bidloop, train one with `bidloop train --id default`, or set `policy: heuristic`",
        )
    return LearnedBidPolicy.from_files(files)

"""Define the one protocol every platform client implements: read, apply cleared actions, read back.

The simulated market (`bidloop.tools.sim`) and the real clients (`google_ads`, `meta`, `amazon_ads`)
all implement `PlatformClient`, so the graph never knows which one it talks to.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from bidloop.core.clearance import Clearance
from bidloop.core.decisions import WriteResult
from bidloop.core.entities import AccountInfo, EntityRef, EntityState
from bidloop.core.snapshot import Snapshot

__all__ = ["PlatformClient"]


@runtime_checkable
class PlatformClient(Protocol):
    """A connection to one platform (or the simulated market) for one or more accounts.

    Every method that writes takes `Clearance`s, never bare actions, and must call
    `bidloop.core.clearance.verify_clearance` on each before sending anything.
    """

    name: str
    """`sim`, `google_ads`, `meta` or `amazon_ads`."""

    def list_accounts(self) -> list[AccountInfo]:
        """Return the accounts these credentials can see."""
        ...

    def read_snapshot(self, account_id: str) -> Snapshot:
        """Read structure, settings and performance (today so far, trailing 7 days) of one account.

        Raises:
            UnknownAccountError: If the account is not known to this client.
            PlatformError: If the platform call fails after retries.
        """
        ...

    def apply(
        self, account_id: str, clearances: Sequence[Clearance], *, validate_only: bool = False
    ) -> list[WriteResult]:
        """Send cleared actions in as few requests as the platform allows; one result per action, in order.

        With `validate_only`, nothing changes: the platform validates (where it can) and the result
        status is `validated`. Partial failures are reported per action, never as a whole.

        Raises:
            UnfilteredActionError: If any item is not a valid clearance (nothing is sent).
        """
        ...

    def read_back(self, account_id: str, refs: Sequence[EntityRef]) -> dict[str, EntityState]:
        """Read the current settings of the given entities, keyed by `EntityRef.key`."""
        ...

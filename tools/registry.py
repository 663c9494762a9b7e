"""Build the platform clients a run needs from the configured accounts.

Accounts with `backend: sim` share one simulated market, loaded from the database (so a live run
against it persists like a real platform) or created from the configured seed. Accounts with
`backend: live` get the real client of their platform, which reads credentials from the platform's
usual places.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from bidloop.core.entities import Platform
from bidloop.core.errors import ConfigError
from bidloop.core.settings import AccountConfig, Settings
from bidloop.core.store import Store
from bidloop.tools.protocol import PlatformClient
from bidloop.tools.sim import SimClient, SimMarket, default_market

__all__ = ["SIM_MARKET_NAME", "ClientSet", "build_clients", "load_sim_market"]

SIM_MARKET_NAME = "default"
"""The name under which the embedded market's state is saved in the database."""

_LIVE_CLIENTS: dict[Platform, str] = {
    Platform.GOOGLE_ADS: "bidloop.tools.google_ads:GoogleAdsPlatformClient",
    Platform.META: "bidloop.tools.meta:MetaClient",
    Platform.AMAZON_ADS: "bidloop.tools.amazon_ads:AmazonAdsClient",
}


@dataclass
class ClientSet:
    """The clients of one run, keyed by account id, and the simulated market they may share."""

    clients: dict[str, PlatformClient] = field(default_factory=dict)
    sim_market: SimMarket | None = None

    def persist(self, store: Store, *, advance_dayparts: int = 0) -> None:
        """Save the simulated market (after moving its clock on, if asked), so the next run sees the change."""
        if self.sim_market is None:
            return
        if advance_dayparts:
            self.sim_market.advance(advance_dayparts)
        store.save_sim_market(SIM_MARKET_NAME, self.sim_market.to_bytes())


def load_sim_market(settings: Settings, store: Store) -> SimMarket:
    """Return the saved simulated market, or a fresh one from the configured seed."""
    saved = store.load_sim_market(SIM_MARKET_NAME)
    if saved is not None:
        return SimMarket.from_bytes(saved)
    sim = settings.simulation
    return default_market(seed=sim.seed, dayparts_per_day=sim.dayparts_per_day, start_daypart=sim.start_daypart)


def _live_client(account: AccountConfig) -> PlatformClient:
    module_name, class_name = _LIVE_CLIENTS[account.platform].split(":")
    module = importlib.import_module(module_name)
    client_cls = getattr(module, class_name)
    client: PlatformClient = client_cls.from_account(account)
    return client


def build_clients(
    settings: Settings, store: Store, account_ids: Sequence[str], *, market: SimMarket | None = None
) -> ClientSet:
    """Return a client per account.

    Args:
        settings: The settings naming the accounts.
        store: Where the simulated market's state is kept.
        account_ids: The accounts of the run (each must be configured).
        market: Use this simulated market instead of the saved one (simulations, tests).

    Raises:
        UnknownAccountError: If an id is not configured.
        ConfigError: If a sim account is not in the simulated market.
        PlatformAuthError: If a live account's credentials are missing.
    """
    result = ClientSet()
    sim_client: SimClient | None = None
    for account_id in account_ids:
        account = settings.account(account_id)
        if account.backend == "sim":
            if sim_client is None:
                result.sim_market = market or load_sim_market(settings, store)
                sim_client = SimClient(result.sim_market)
            known = {a.account_id for a in sim_client.list_accounts()}
            if account.id not in known:
                raise ConfigError(
                    f"account {account.id!r} has backend 'sim' but the simulated market has no such account",
                    hint=f"the simulated market has: {', '.join(sorted(known))}",
                )
            result.clients[account_id] = sim_client
        else:
            result.clients[account_id] = _live_client(account)
    return result

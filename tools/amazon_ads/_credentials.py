"""Load Amazon Ads (Login with Amazon) credentials and resolve an account's marketplace, never logging a secret.

Credentials come from the places python-amazon-ad-api users already use, first match wins:

1. the environment: `AD_API_CLIENT_ID`, `AD_API_CLIENT_SECRET`, `AD_API_REFRESH_TOKEN`
   (and optionally `AD_API_ACCESS_TOKEN`, a ready access token that skips the LWA exchange);
2. the wrapper's config file `credentials.yml` (confuse search path, e.g.
   `~/.config/python-ad-api/credentials.yml`), section `default` or `$AD_API_ACCOUNT`.

The profile id is never taken from these places: it is the account's `platform_account_id` in
bidloop.yaml, so a stray `AD_API_PROFILE_ID` can never route a write to another advertiser.
"""

from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr

from bidloop.core.errors import ConfigError, PlatformAuthError
from bidloop.core.settings import AccountConfig

__all__ = [
    "CREDENTIAL_ENV_VARS",
    "MARKETPLACE_ALIASES",
    "AmazonCredentials",
    "load_credentials",
    "resolve_marketplace",
]

PLATFORM = "amazon_ads"

CREDENTIAL_ENV_VARS = ("AD_API_CLIENT_ID", "AD_API_CLIENT_SECRET", "AD_API_REFRESH_TOKEN")
"""The environment variables `from_account` reads (the wrapper's own names)."""

MARKETPLACE_ALIASES = {"FE": "JP"}
"""Region names bidloop accepts that the wrapper's `Marketplaces` enum lacks (FE = the Far East host)."""

_REGIONS = {"NA", "EU", "FE"}


class AmazonCredentials(BaseModel):
    """LWA credentials; secrets are `SecretStr` so that a repr or a log line never shows them.

    Attributes:
        client_id: The LWA application's client id (sent as `Amazon-Advertising-API-ClientId`).
        client_secret: The LWA client secret.
        refresh_token: The advertiser's LWA refresh token.
        access_token: An access token to use as is (skips the token exchange); None to exchange.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    client_id: str
    client_secret: SecretStr
    refresh_token: SecretStr
    access_token: SecretStr | None = None

    def sdk_dict(self, profile_id: str) -> dict[str, str]:
        """Return the plain dict python-amazon-ad-api expects, scoped to one profile."""
        return {
            "client_id": self.client_id,
            "client_secret": self.client_secret.get_secret_value(),
            "refresh_token": self.refresh_token.get_secret_value(),
            "profile_id": profile_id,
        }

    def secrets(self) -> list[str]:
        """Return every secret value (for log-redaction checks in tests)."""
        values = [self.client_secret.get_secret_value(), self.refresh_token.get_secret_value()]
        if self.access_token is not None:
            values.append(self.access_token.get_secret_value())
        return values


def _from_config_file() -> dict[str, Any] | None:
    # Imported here: confuse is only needed when the environment does not hold the credentials.
    import confuse

    account = os.environ.get("AD_API_ACCOUNT", "default")
    try:
        config = confuse.Configuration("python-ad-api")
        config.set_file(os.path.join(config.config_dir(), "credentials.yml"))
        data = config[account].get()
    except (confuse.exceptions.NotFoundError, confuse.exceptions.ConfigReadError, OSError):
        return None
    return data if isinstance(data, dict) else None


def load_credentials(environ: dict[str, str] | None = None, *, use_config_file: bool = True) -> AmazonCredentials:
    """Read LWA credentials from the environment, else from the wrapper's credentials.yml.

    Args:
        environ: The environment to read (default `os.environ`); tests pass a dict.
        use_config_file: Whether to fall back to python-amazon-ad-api's credentials.yml.

    Raises:
        PlatformAuthError: If no complete set is found; the hint names the variables (never their values).
    """
    env = os.environ if environ is None else environ
    values = {name: env.get(name, "").strip() for name in CREDENTIAL_ENV_VARS}
    source: dict[str, Any] | None = None
    if all(values.values()):
        source = {
            "client_id": values["AD_API_CLIENT_ID"],
            "client_secret": values["AD_API_CLIENT_SECRET"],
            "refresh_token": values["AD_API_REFRESH_TOKEN"],
        }
        if env.get("AD_API_ACCESS_TOKEN"):
            source["access_token"] = env["AD_API_ACCESS_TOKEN"]
    elif use_config_file:
        source = _from_config_file()
    missing = [name for name, value in values.items() if not value]
    required = ("client_id", "client_secret", "refresh_token")
    if source is None or not all(source.get(key) for key in required):
        raise PlatformAuthError(
            "Amazon Ads credentials are missing" + (f" ({', '.join(missing)} not set)" if missing else ""),
            platform=PLATFORM,
            hint=(
                "set AD_API_CLIENT_ID, AD_API_CLIENT_SECRET and AD_API_REFRESH_TOKEN (your Login with Amazon "
                "app and the advertiser's refresh token), or write them to python-ad-api's credentials.yml"
            ),
        )
    return AmazonCredentials(
        client_id=str(source["client_id"]),
        client_secret=SecretStr(str(source["client_secret"])),
        refresh_token=SecretStr(str(source["refresh_token"])),
        access_token=SecretStr(str(source["access_token"])) if source.get("access_token") else None,
    )


def resolve_marketplace(account: AccountConfig) -> Any:
    """Return the wrapper's `Marketplaces` member for an account; the marketplace must be explicit.

    A country marketplace (`US`, `UK`, `JP`, ...) must use the account's currency: bids are sent in
    major units of that currency, so a mismatch would be a money bug.

    Raises:
        ConfigError: If `marketplace` is missing, unknown, or disagrees with the account currency.
    """
    from ad_api.base import Marketplaces

    if not account.marketplace:
        raise ConfigError(
            f"Amazon account {account.id!r} has no marketplace",
            hint="set `marketplace:` for it in bidloop.yaml (NA, EU or FE, or a country such as US, UK, DE, JP)",
        )
    code = account.marketplace.strip().upper()
    name = MARKETPLACE_ALIASES.get(code, code)
    try:
        marketplace = Marketplaces[name]
    except KeyError:
        known = ", ".join(sorted({*Marketplaces.__members__, *MARKETPLACE_ALIASES}))
        raise ConfigError(
            f"Amazon account {account.id!r} has unknown marketplace {account.marketplace!r}",
            hint=f"use one of: {known}",
        ) from None
    if code not in _REGIONS and marketplace.currency != account.currency:
        raise ConfigError(
            f"Amazon account {account.id!r}: marketplace {code} bills in {marketplace.currency}, "
            f"but the account currency is {account.currency}",
            hint=f"set `currency: {marketplace.currency}` for the account (Amazon amounts are in that currency)",
        )
    return marketplace

"""Load bidloop's one settings object from `bidloop.yaml` and `BIDLOOP_*` environment variables.

Precedence, highest first: environment variables (`BIDLOOP_DATA_DIR`, nested with `__`, e.g.
`BIDLOOP_SIMULATION__SEED=3`), then the YAML file, then the defaults. With no file at all, bidloop runs
on the embedded simulated market with conservative guardrails.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from bidloop.core.entities import Platform
from bidloop.core.errors import ConfigError, UnknownAccountError
from bidloop.core.limits import GuardrailLimits
from bidloop.core.schedules import ScheduleConfig

__all__ = [
    "AMAZON_AD_PRODUCT_READ",
    "DEFAULT_CONFIG_FILE",
    "MAX_ATTRIBUTION_WINDOW_HOURS",
    "AccountConfig",
    "AttributionWindow",
    "LLMConfig",
    "RewardConfig",
    "Settings",
    "SimulationConfig",
    "load_settings",
]

DEFAULT_CONFIG_FILE = "bidloop.yaml"


class AccountConfig(BaseModel):
    """One ad account bidloop manages.

    Attributes:
        id: bidloop's name for the account, used on the command line (`--account ID`).
        platform: Which platform the account is on.
        backend: `sim` (the embedded simulated market) or `live` (the platform's API).
        platform_account_id: The platform's id: Google customer id (10 digits), Meta `act_...`,
            Amazon profile id. Defaults to `id`.
        currency: ISO 4217 code of the account currency.
        time_zone: IANA zone of the account (for day boundaries and schedules).
        shadow: Propose, filter and log, but never apply.
    """

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    platform: Platform
    backend: Literal["sim", "live"] = "sim"
    platform_account_id: str | None = None
    name: str | None = None
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    time_zone: str = "UTC"
    shadow: bool = False
    login_customer_id: str | None = Field(default=None, pattern=r"^\d{10}$")
    """Google Ads manager account id (10 digits, no dashes) used for `login-customer-id` routing."""
    marketplace: str | None = None
    """Amazon marketplace region (`NA`, `EU`, `FE`); always explicit for Amazon accounts."""
    endpoint: str | None = None
    """Override the platform's API address (tests point this at a local fake server)."""
    attribution_window_hours: float | None = Field(default=None, gt=0, le=90 * 24, allow_inf_nan=False)
    """This account's attribution window, over the platform default in `reward.attribution_window_hours`
    (e.g. a Google account whose primary conversion action's click-through window is 30 days: 720)."""

    @property
    def remote_id(self) -> str:
        """Return the platform's own id for the account."""
        return self.platform_account_id or self.id


MAX_ATTRIBUTION_WINDOW_HOURS = 90 * 24
"""The longest attribution window any platform offers: Google's click-through conversion window goes up
to 90 days (https://support.google.com/google-ads/answer/3123169)."""

AMAZON_AD_PRODUCT_READ = "sponsored_products"
"""The Amazon ad product bidloop's Amazon client reads (Sponsored Products v3), whose window applies."""


class AttributionWindow(BaseModel):
    """How long a platform keeps adding conversions to a day's clicks, so how long a reward waits.

    In YAML either a number of hours (the shape of earlier releases) or a mapping with `hours` and, for
    Amazon, `by_ad_product`.

    Attributes:
        hours: The window of the platform (or of the ad product bidloop reads there).
        by_ad_product: Windows per ad product (Amazon: `sponsored_products`, `sponsored_brands`,
            `sponsored_display`); `hours` applies to a product not listed.
    """

    model_config = ConfigDict(extra="forbid")

    hours: float = Field(gt=0, le=MAX_ATTRIBUTION_WINDOW_HOURS, allow_inf_nan=False)
    by_ad_product: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _from_number(cls, data: Any) -> Any:
        """Accept a bare number of hours, as `attribution_window_hours: {meta: 24}` was written before."""
        if isinstance(data, bool):
            raise ValueError("an attribution window is a number of hours (or {hours: ..}), not true/false")
        if isinstance(data, int | float | str):
            return {"hours": data}
        return data

    @field_validator("by_ad_product")
    @classmethod
    def _sane_product_windows(cls, windows: dict[str, float]) -> dict[str, float]:
        for product, hours in windows.items():
            if not product or not (0 < hours <= MAX_ATTRIBUTION_WINDOW_HOURS):
                raise ValueError(
                    f"the window of ad product {product!r} must be more than 0 and at most "
                    f"{MAX_ATTRIBUTION_WINDOW_HOURS} hours (90 days), got {hours}"
                )
        return windows

    def for_ad_product(self, ad_product: str | None) -> float:
        """Return the window of `ad_product` (the platform's `hours` when it has none of its own)."""
        return self.by_ad_product.get(ad_product, self.hours) if ad_product else self.hours


def _default_windows() -> dict[Platform, AttributionWindow]:
    """The platforms' own attribution windows (sources in tests/unit/test_rewards_windows.py)."""
    return {
        # Google books a conversion on the day of the click, for as long as the conversion action's window
        # runs (30 days by default); Google recommends no less than 7 days for Smart Bidding. 7 days here,
        # later conversions restate the reward; a per-account `attribution_window_hours` sets the action's own.
        Platform.GOOGLE_ADS: AttributionWindow(hours=7 * 24),
        # Meta: the ad set's attribution setting, 7-day click by default.
        Platform.META: AttributionWindow(hours=7 * 24),
        # Amazon: Sponsored Products columns are 7-day (purchases7d / sales7d); Sponsored Brands and
        # Sponsored Display attribute 14 days.
        Platform.AMAZON_ADS: AttributionWindow(
            hours=7 * 24,
            by_ad_product={"sponsored_products": 7 * 24, "sponsored_brands": 14 * 24, "sponsored_display": 14 * 24},
        ),
    }


class RewardConfig(BaseModel):
    """The reward spec: how a matured action's performance delta becomes a number.

    Default, following the operator's usual stack: +2 when ROAS >= 3, +1 when daily spend is within
    5 % of pace, -3 when CPC rose more than 20 %.

    An action's outcome is the first full day after it, in the account's time zone. Its reward matures
    when that day's attribution window has closed (`attribution_window_hours`, per platform, or per
    account); conversions that still arrive later restate it, until `restatement_horizon_days` after
    the action.
    """

    model_config = ConfigDict(extra="forbid")

    roas_target: float = Field(default=3.0, gt=0, allow_inf_nan=False)
    roas_bonus: float = Field(default=2.0, allow_inf_nan=False)
    pace_tolerance_pct: float = Field(default=5.0, ge=0, allow_inf_nan=False)
    pace_bonus: float = Field(default=1.0, allow_inf_nan=False)
    cpc_spike_pct: float = Field(default=20.0, ge=0, allow_inf_nan=False)
    cpc_spike_penalty: float = Field(default=-3.0, allow_inf_nan=False)
    attribution_window_hours: dict[Platform, AttributionWindow] = Field(default_factory=_default_windows)
    """Per platform; a platform left out keeps its default."""
    restatement_horizon_days: float = Field(default=28.0, gt=0, le=90, allow_inf_nan=False)
    """How long after an action late conversions still restate its reward. Restatement needs the outcome
    day in the platform's daily history (at most 14 days back), so later changes are not seen."""

    @field_validator("attribution_window_hours", mode="before")
    @classmethod
    def _keep_unnamed_platform_defaults(cls, value: Any) -> Any:
        if isinstance(value, dict):
            merged: dict[Any, Any] = {p.value: w for p, w in _default_windows().items()}
            merged.update(value)
            return merged
        return value

    @model_validator(mode="after")
    def _horizon_covers_the_windows(self) -> RewardConfig:
        longest = max(max([w.hours, *w.by_ad_product.values()]) for w in self.attribution_window_hours.values())
        if self.restatement_horizon_days * 24 < longest:
            raise ValueError(
                f"restatement_horizon_days ({self.restatement_horizon_days:g}) is shorter than the longest "
                f"attribution window ({longest / 24:g} days): a reward would stop being restated before it matured"
            )
        return self

    def window_hours(self, platform: Platform, *, ad_product: str | None = None) -> float:
        """Return the attribution window of a platform (and ad product), in hours."""
        window = self.attribution_window_hours.get(platform) or _default_windows()[platform]
        if ad_product is None and platform is Platform.AMAZON_ADS:
            ad_product = AMAZON_AD_PRODUCT_READ
        return window.for_ad_product(ad_product)


class SimulationConfig(BaseModel):
    """The embedded simulated market."""

    model_config = ConfigDict(extra="forbid")

    seed: int = 7
    dayparts_per_day: int = Field(default=6, ge=1, le=24)
    start_daypart: int = Field(default=2, ge=0)
    """The daypart the market starts at (2 of 6 = mid-morning, 08:00-12:00)."""


class LLMConfig(BaseModel):
    """An optional OpenAI-compatible LLM; never on the money path."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = None
    base_url: str | None = None
    api_key: SecretStr | None = None
    timeout_s: float = Field(default=20.0, gt=0)

    @property
    def enabled(self) -> bool:
        """Return True when a model is configured."""
        return bool(self.model)


def _default_accounts() -> list[AccountConfig]:
    return [
        AccountConfig(id="sim-google", platform=Platform.GOOGLE_ADS, name="Google-like demo account"),
        AccountConfig(id="sim-meta", platform=Platform.META, name="Meta-like demo account"),
        AccountConfig(id="sim-amazon", platform=Platform.AMAZON_ADS, name="Amazon-like demo account"),
    ]


class Settings(BaseSettings):
    """Everything bidloop reads from configuration."""

    model_config = SettingsConfigDict(env_prefix="BIDLOOP_", env_nested_delimiter="__", extra="forbid")

    data_dir: Path = Path(".bidloop")
    """Where the SQLite database and other local state live."""
    database_url: str | None = None
    """SQLAlchemy URL; default `sqlite:///<data_dir>/bidloop.sqlite`. `postgresql://...` for scale."""
    accounts: list[AccountConfig] = Field(default_factory=_default_accounts)
    guardrails: GuardrailLimits = Field(default_factory=GuardrailLimits)
    reward: RewardConfig = Field(default_factory=RewardConfig)
    simulation: SimulationConfig = Field(default_factory=SimulationConfig)
    llm: LLMConfig = Field(default_factory=LLMConfig)
    policy: str = "default"
    """The bid shifter's policy: `default` (the trained policy shipped with bidloop), a registered policy id,
    or `heuristic` (the marginal-ROAS rules, no model)."""
    schedules: list[ScheduleConfig] = []
    """Scheduled intraday runs for `bidloop schedule` (none by default)."""
    retention_days: float | None = Field(default=30.0, gt=0)
    """How long finished runs keep their snapshots and checkpoints (what only a resume needs); `bidloop
    schedule` prunes older ones daily and `bidloop store prune` on demand. The audit log, the write
    ledger, decisions, rewards and run reports are never pruned. None keeps everything."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Let environment variables override the YAML file (passed as init arguments)."""
        return (env_settings, init_settings)

    @field_validator("accounts")
    @classmethod
    def _unique_account_ids(cls, accounts: list[AccountConfig]) -> list[AccountConfig]:
        seen: set[str] = set()
        for account in accounts:
            if account.id in seen:
                raise ValueError(f"account id {account.id!r} appears twice; each account needs its own id")
            seen.add(account.id)
        return accounts

    @property
    def resolved_database_url(self) -> str:
        """Return the database URL, defaulting to a SQLite file in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'bidloop.sqlite').as_posix()}"

    @model_validator(mode="after")
    def _account_windows_within_the_horizon(self) -> Settings:
        for account in self.accounts:
            hours = account.attribution_window_hours
            if hours is not None and hours > self.reward.restatement_horizon_days * 24:
                raise ValueError(
                    f"account {account.id!r}: attribution_window_hours ({hours:g}) is longer than "
                    f"reward.restatement_horizon_days ({self.reward.restatement_horizon_days:g} days)"
                )
        return self

    def reward_window_hours(self, account_id: str) -> float:
        """Return how long an action's outcome day attributes conversions on this account, in hours.

        The account's own `attribution_window_hours` if set, else its platform's default.
        """
        account = self.account(account_id)
        if account.attribution_window_hours is not None:
            return account.attribution_window_hours
        return self.reward.window_hours(account.platform)

    def account(self, account_id: str) -> AccountConfig:
        """Return one configured account.

        Raises:
            UnknownAccountError: If no account has that id (the message lists the known ones).
        """
        for account in self.accounts:
            if account.id == account_id:
                return account
        known = ", ".join(a.id for a in self.accounts) or "(none)"
        raise UnknownAccountError(
            f"no account {account_id!r} is configured",
            hint=f"use one of: {known}; or add it under `accounts:` in {DEFAULT_CONFIG_FILE}",
        )


def _format_validation_error(exc: ValidationError, source: str) -> str:
    lines = []
    for err in exc.errors():
        where = ".".join(str(part) for part in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            lines.append(f"  {where}: unknown field (check its spelling against `bidloop init`'s example)")
        else:
            lines.append(f"  {where}: {err['msg']} (got {err.get('input')!r})")
    return f"invalid settings in {source}:\n" + "\n".join(lines)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}", hint="check the path given to --config") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"{path} is not valid YAML{where}", hint="fix the indentation or quoting there") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of settings at the top level, not {type(data).__name__}")
    return data


def load_settings(config_path: str | Path | None = None, **overrides: Any) -> Settings:
    """Load settings from a YAML file (default `./bidloop.yaml` if present) and the environment.

    Args:
        config_path: The YAML file. None means `$BIDLOOP_CONFIG` or `./bidloop.yaml`, if either exists.
        **overrides: Values that win over the file (not over the environment), e.g. `data_dir=...`.

    Raises:
        ConfigError: If the file is missing (when named explicitly), is not YAML, or has an
            invalid or unknown field. The message names each field to fix.
    """
    explicit = config_path is not None or "BIDLOOP_CONFIG" in os.environ
    path = Path(config_path or os.environ.get("BIDLOOP_CONFIG", DEFAULT_CONFIG_FILE))
    data: dict[str, Any] = {}
    source = "defaults and environment"
    if path.exists():
        data = _read_yaml(path)
        source = str(path)
    elif explicit:
        raise ConfigError(f"config file {path} does not exist", hint="run `bidloop init` to write an example")
    data.update(overrides)
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, source)) from exc

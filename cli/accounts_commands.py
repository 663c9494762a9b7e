"""The account commands: `bidloop accounts list` and `bidloop accounts check [--account ID] [--json]`.

`check` asks each configured account's platform whether the credentials work and what they can see:
sim accounts are looked up in the simulated market (which shows the accounts of their platform);
live accounts go through their platform's own `check_access`, which turns each kind of failure
(expired token, missing developer token, wrong manager id, missing marketplace, missing variables)
into a message and a hint. Nothing here prints a credential: the platform checks never put
one in a message, and every line is also scrubbed of the values of the credential variables.

`cli/main.py` calls `register(app)` once; the commands load settings through its global options
(`--config`, `--data-dir`) like every other command.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal

import typer
from pydantic import BaseModel, ConfigDict, Field
from rich.markup import escape
from rich.table import Table

from bidloop.core.entities import AccountInfo, Platform
from bidloop.core.errors import BidloopError
from bidloop.core.settings import AccountConfig, Settings

__all__ = ["AccountCheck", "check_account", "check_accounts", "register"]

_SECRET_VARIABLE_PREFIXES = ("GOOGLE_ADS_", "META_", "AD_API_")
"""Environment variables whose values may be credentials; none of them is ever printed."""
_MIN_SECRET_LENGTH = 6
"""Shorter values (`True`, a region) are not credentials and would garble messages if scrubbed."""


class AccountCheck(BaseModel):
    """What `bidloop accounts check` found for one configured account.

    Attributes:
        account_id: bidloop's id of the account (as in bidloop.yaml).
        platform: The account's platform.
        backend: `sim` (the simulated market) or `live` (the platform's API).
        ok: True when the credentials work and the account itself is reachable.
        visible_accounts: What the credentials can see, as `id (name)` where the name is known.
        problem: What is wrong, in one sentence (None when ok).
        hint: What to do about it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    account_id: str
    platform: Platform
    backend: Literal["sim", "live"]
    ok: bool
    visible_accounts: list[str] = Field(default_factory=list)
    problem: str | None = None
    hint: str | None = None


def _cli() -> Any:
    # Imported late: cli/main.py imports this module to register the commands.
    from bidloop.cli import main

    return main


def _label(account_id: str, name: str | None) -> str:
    return f"{account_id} ({name})" if name and name != account_id else account_id


def _labels(infos: Sequence[AccountInfo]) -> list[str]:
    return [_label(info.account_id, info.name) for info in infos]


@functools.lru_cache(maxsize=4)
def _sim_accounts(seed: int, dayparts_per_day: int, start_daypart: int) -> tuple[AccountInfo, ...]:
    from bidloop.tools.sim import SimClient, default_market

    market = default_market(seed=seed, dayparts_per_day=dayparts_per_day, start_daypart=start_daypart)
    return tuple(SimClient(market).list_accounts())


def _check_sim(account: AccountConfig, settings: Settings) -> AccountCheck:
    sim = settings.simulation
    infos = _sim_accounts(sim.seed, sim.dayparts_per_day, sim.start_daypart)
    same_platform = [info for info in infos if info.platform is account.platform]
    if any(info.account_id == account.id for info in same_platform):
        return AccountCheck(
            account_id=account.id,
            platform=account.platform,
            backend="sim",
            ok=True,
            visible_accounts=_labels(same_platform),
        )
    known = ", ".join(info.account_id for info in same_platform) or "(none)"
    return AccountCheck(
        account_id=account.id,
        platform=account.platform,
        backend="sim",
        ok=False,
        visible_accounts=_labels(same_platform),
        problem=f"the simulated market has no {account.platform.value} account {account.id!r}",
        hint=f"use {known} with `backend: sim`, or set `backend: live` for a real account",
    )


def _check_google(account: AccountConfig) -> AccountCheck:
    from bidloop.tools.google_ads import GoogleAdsPlatformClient

    report = GoogleAdsPlatformClient.from_account(account).check_access()
    names = {info.account_id: info.name for info in report.accounts}
    own_id = account.remote_id.replace("-", "")
    visible = [_label(cid, names.get(account.id) if cid == own_id else None) for cid in report.visible_customer_ids]
    if account.id in names and own_id not in report.visible_customer_ids:
        # Reached through its manager account: not directly accessible, but visible all the same.
        visible.append(_label(own_id, names[account.id]))
    if report.ok:
        return AccountCheck(
            account_id=account.id, platform=account.platform, backend="live", ok=True, visible_accounts=visible
        )
    problems = report.problems
    return AccountCheck(
        account_id=account.id,
        platform=account.platform,
        backend="live",
        ok=False,
        visible_accounts=visible,
        problem="; ".join(f"{p.message} [{p.kind}]" for p in problems) or "Google Ads refused the check",
        hint=next((p.hint for p in problems if p.hint), None),
    )


def _check_meta(account: AccountConfig) -> AccountCheck:
    from bidloop.tools.meta import MetaClient

    result = MetaClient.from_account(account).check_access()
    return AccountCheck(
        account_id=account.id,
        platform=account.platform,
        backend="live",
        ok=result.ok,
        visible_accounts=_labels(result.accounts),
        problem=None if result.ok else (result.problem or "Meta refused the check"),
        hint=None if result.ok else result.hint,
    )


def _check_amazon(account: AccountConfig) -> AccountCheck:
    from bidloop.tools.amazon_ads import check_access

    result = check_access(account)
    return AccountCheck(
        account_id=account.id,
        platform=account.platform,
        backend="live",
        ok=result.ok,
        visible_accounts=_labels(result.accounts),
        problem=None if result.ok else result.message,
        hint=None if result.ok else result.hint,
    )


_LIVE_CHECKS: dict[Platform, Callable[[AccountConfig], AccountCheck]] = {
    Platform.GOOGLE_ADS: _check_google,
    Platform.META: _check_meta,
    Platform.AMAZON_ADS: _check_amazon,
}


def check_account(account: AccountConfig, settings: Settings) -> AccountCheck:
    """Check one configured account's credentials and access; never raises for a platform or config problem.

    A failure to even build the client (missing variables, missing marketplace, a malformed
    google-ads.yaml) is reported like a refused call: `ok=False` with the error's message and hint.
    """
    if account.backend == "sim":
        return _check_sim(account, settings)
    try:
        return _LIVE_CHECKS[account.platform](account)
    except BidloopError as exc:
        return AccountCheck(
            account_id=account.id,
            platform=account.platform,
            backend="live",
            ok=False,
            problem=exc.message,
            hint=exc.hint,
        )


def check_accounts(settings: Settings, account_ids: Sequence[str] | None = None) -> list[AccountCheck]:
    """Check the given accounts (default: every configured one), in configuration order.

    Raises:
        UnknownAccountError: If an id is not configured.
    """
    accounts = [settings.account(a) for a in account_ids] if account_ids else list(settings.accounts)
    return [check_account(account, settings) for account in accounts]


def _secret_values() -> list[str]:
    values = [
        value
        for name, value in os.environ.items()
        if name.startswith(_SECRET_VARIABLE_PREFIXES) and len(value) >= _MIN_SECRET_LENGTH
    ]
    return sorted(set(values), key=len, reverse=True)


def _scrub(text: str | None, secrets: Sequence[str]) -> str | None:
    """Replace any credential value in `text` with `***` (defence in depth: messages should hold none)."""
    if text is None:
        return None
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def _scrubbed(check: AccountCheck, secrets: Sequence[str]) -> AccountCheck:
    return check.model_copy(
        update={
            "problem": _scrub(check.problem, secrets),
            "hint": _scrub(check.hint, secrets),
            "visible_accounts": [_scrub(v, secrets) or "" for v in check.visible_accounts],
        }
    )


def register(app: typer.Typer) -> None:
    """Add the `accounts` sub-app (`list`, `check`) to `app`."""
    accounts_app = typer.Typer(
        help="List the configured ad accounts and check their credentials.", no_args_is_help=True
    )
    app.add_typer(accounts_app, name="accounts")

    @accounts_app.command("list")
    def accounts_list(
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
    ) -> None:
        """List the configured accounts: id, platform, backend and the platform's id."""
        cli = _cli()
        st = cli.settings()
        rows = [
            {
                "account_id": a.id,
                "platform": a.platform.value,
                "backend": a.backend,
                "platform_account_id": a.remote_id,
                "name": a.name,
                "currency": a.currency,
                "time_zone": a.time_zone,
                "shadow": a.shadow,
            }
            for a in st.accounts
        ]
        if as_json:
            cli.emit_json(rows)
            return
        table = Table(title="Configured accounts", title_justify="left")
        for col in ("account", "platform", "backend", "platform id", "currency", "name"):
            table.add_column(col, overflow="fold")
        for row in rows:
            backend = row["backend"] + (" (shadow)" if row["shadow"] else "")
            table.add_row(
                row["account_id"],
                row["platform"],
                backend,
                row["platform_account_id"],
                row["currency"],
                row["name"] or "",
            )
        if not rows:
            table.add_row("–", "no accounts: add them under `accounts:` in bidloop.yaml", "", "", "", "")
        cli.out.print(table)

    @accounts_app.command("check")
    def accounts_check(
        account: Annotated[
            list[str] | None, typer.Option("--account", "-a", help="Account id to check (repeatable; default: all).")
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print the results as one JSON document.")] = False,
    ) -> None:
        """Verify each account's credentials and access, and list what they can see; exit 1 if any fails."""
        cli = _cli()
        st = cli.settings()
        secrets = _secret_values()
        checks = [_scrubbed(c, secrets) for c in check_accounts(st, account)]
        all_ok = all(c.ok for c in checks)
        if as_json:
            cli.emit_json({"ok": all_ok, "accounts": [c.model_dump(mode="json") for c in checks]})
        else:
            table = Table(title="Account access", title_justify="left")
            for col in ("account", "platform", "backend", "ok?", "visible accounts"):
                table.add_column(col, overflow="fold")
            for c in checks:
                table.add_row(
                    escape(c.account_id),
                    c.platform.value,
                    c.backend,
                    "[green]ok[/]" if c.ok else "[red]FAILED[/]",
                    escape(", ".join(c.visible_accounts) or "–"),
                )
            cli.out.print(table)
            for c in checks:
                if not c.ok:
                    cli.out.print(f"[red]{escape(c.account_id)}:[/] {escape(c.problem or 'check failed')}")
                    if c.hint:
                        cli.out.print(f"  hint: {escape(c.hint)}")
        if not all_ok:
            raise typer.Exit(code=1)

"""`bidloop accounts list` and `bidloop accounts check`, against the simulated market and the local fake servers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from bidloop.cli import main as cli_main
from bidloop.cli.accounts_commands import register
from bidloop.testing.amazon_ads.fake_server import FakeAmazonAdsServer
from bidloop.testing.google_ads.fake_server import FakeGoogleAdsServer
from bidloop.testing.meta.fake_server import FakeMetaServer
from bidloop.tools.meta import MetaClient
from bidloop.tools.meta.client import AccessCheck as MetaAccessCheck

META_TOKEN = "meta-token-7f3a9c2e1b"
AMAZON_SECRET = "amzn-client-secret-55aa"
AMAZON_REFRESH = "Atzr|refresh-token-99bb"


@pytest.fixture(scope="module", autouse=True)
def _accounts_registered() -> None:
    # cli/main.py calls register(app) once the lead wires it; until then the tests do it (once).
    if not any(group.name == "accounts" for group in cli_main.app.registered_groups):
        register(cli_main.app)


@pytest.fixture(autouse=True)
def _no_ambient_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Hide the developer's own credentials: every test states the variables it needs."""
    import os

    for name in list(os.environ):
        if name.startswith(("GOOGLE_ADS_", "META_", "AD_API_", "BIDLOOP_")):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))


def _config(tmp_path: Path, accounts: list[dict[str, Any]]) -> Path:
    path = tmp_path / "bidloop.yaml"
    path.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "data"), "accounts": accounts}), encoding="utf-8")
    return path


def _run(capsys: pytest.CaptureFixture[str], config: Path | None, *args: str) -> tuple[int, str, str]:
    argv = (["--config", str(config)] if config else []) + list(args)
    code = cli_main.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _check_json(capsys: pytest.CaptureFixture[str], config: Path | None, *args: str) -> tuple[int, dict[str, Any]]:
    code, out, _ = _run(capsys, config, "accounts", "check", "--json", *args)
    return code, json.loads(out)


@pytest.fixture
def google_fake() -> Iterator[FakeGoogleAdsServer]:
    with FakeGoogleAdsServer("1234567890", descriptive_name="Acme Search") as srv:
        yield srv


@pytest.fixture
def meta_fake() -> Iterator[FakeMetaServer]:
    with FakeMetaServer(account_id="act_1000", name="Acme Social", access_token=META_TOKEN) as srv:
        yield srv


@pytest.fixture
def amazon_fake() -> Iterator[FakeAmazonAdsServer]:
    with FakeAmazonAdsServer(profile_id="1000000001", account_name="Acme Seller") as srv:
        yield srv


def _amazon_env(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> str:
    """Set the LWA variables; return this test's refresh token.

    python-amazon-ad-api caches access tokens process-wide by refresh token, so each test uses its
    own: a token cached for another test's fake would be refused by this one.
    """
    refresh_token = f"{AMAZON_REFRESH}-{request.node.name}"
    monkeypatch.setenv("AD_API_CLIENT_ID", "amzn1.application-oa2-client.fake")
    monkeypatch.setenv("AD_API_CLIENT_SECRET", AMAZON_SECRET)
    monkeypatch.setenv("AD_API_REFRESH_TOKEN", refresh_token)
    return refresh_token


# ---------------------------------------------------------------------------------------- list


def test_accounts_list_shows_every_configured_account_with_platform_and_backend(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(
        tmp_path,
        [
            {"id": "sim-google", "platform": "google_ads"},
            {"id": "shop-meta", "platform": "meta", "backend": "live", "platform_account_id": "act_42"},
        ],
    )
    code, out, _ = _run(capsys, config, "accounts", "list", "--json")
    assert code == 0
    rows = json.loads(out)
    assert [(r["account_id"], r["platform"], r["backend"], r["platform_account_id"]) for r in rows] == [
        ("sim-google", "google_ads", "sim", "sim-google"),
        ("shop-meta", "meta", "live", "act_42"),
    ]
    code, table, _ = _run(capsys, config, "accounts", "list")
    assert code == 0
    assert "shop-meta" in table and "live" in table and "act_42" in table


# ---------------------------------------------------------------------------------------- sim


def test_check_of_the_default_sim_accounts_passes_and_lists_the_market_account_of_each_platform(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no bidloop.yaml here: the three default sim accounts
    code, doc = _check_json(capsys, None)
    assert code == 0
    assert doc["ok"] is True
    by_id = {a["account_id"]: a for a in doc["accounts"]}
    assert set(by_id) == {"sim-google", "sim-meta", "sim-amazon"}
    assert all(a["ok"] and a["backend"] == "sim" for a in by_id.values())
    assert [v.split(" ")[0] for v in by_id["sim-meta"]["visible_accounts"]] == ["sim-meta"]


def test_check_of_a_sim_account_the_market_lacks_fails_with_exit_code_1_and_names_the_known_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, [{"id": "sim-bing", "platform": "google_ads"}])
    code, out, _ = _run(capsys, config, "accounts", "check")
    assert code == 1
    assert "FAILED" in out
    assert "sim-bing" in out and "hint:" in out and "sim-google" in out


def test_check_of_an_unconfigured_account_id_is_an_input_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, [{"id": "sim-google", "platform": "google_ads"}])
    code, _, err = _run(capsys, config, "accounts", "check", "--account", "nope")
    assert code == 2
    assert "nope" in err and "sim-google" in err


# ---------------------------------------------------------------------------------------- Google Ads


def _google_account(srv: FakeGoogleAdsServer, **extra: Any) -> dict[str, Any]:
    return {
        "id": "acme-google",
        "platform": "google_ads",
        "backend": "live",
        "platform_account_id": srv.customer_id,
        "endpoint": srv.address,
        **extra,
    }


def test_google_check_against_the_fake_lists_the_customer_it_can_see(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], google_fake: FakeGoogleAdsServer
) -> None:
    code, doc = _check_json(capsys, _config(tmp_path, [_google_account(google_fake)]))
    assert code == 0
    (check,) = doc["accounts"]
    assert check["ok"] is True
    assert check["visible_accounts"] == ["1234567890 (Acme Search)"]
    assert google_fake.request_count["ListAccessibleCustomers"] == 1


def test_google_check_with_the_wrong_manager_id_says_so_and_points_at_login_customer_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeGoogleAdsServer("1234567890", manager_id="9999999999") as srv:
        config = _config(tmp_path, [_google_account(srv, login_customer_id="1111111111")])
        code, doc = _check_json(capsys, config)
    assert code == 1
    (check,) = doc["accounts"]
    assert check["ok"] is False
    assert "no_access" in check["problem"]
    assert "login_customer_id" in check["hint"]


def test_google_check_with_an_expired_token_says_the_token_expired(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], google_fake: FakeGoogleAdsServer
) -> None:
    google_fake.inject("expired_token", times=5)
    code, doc = _check_json(capsys, _config(tmp_path, [_google_account(google_fake)]))
    assert code == 1
    (check,) = doc["accounts"]
    assert "expired" in check["problem"] and "[expired_token]" in check["problem"]
    assert "refresh token" in check["hint"]


def test_google_check_without_a_developer_token_names_the_missing_setting_before_any_call(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOOGLE_ADS_CLIENT_ID", "fake-client.apps.googleusercontent.com")
    monkeypatch.setenv("GOOGLE_ADS_CLIENT_SECRET", "google-secret-1234")
    monkeypatch.setenv("GOOGLE_ADS_REFRESH_TOKEN", "1//google-refresh-5678")
    account = {"id": "acme-google", "platform": "google_ads", "backend": "live", "platform_account_id": "1234567890"}
    code, out, _ = _run(capsys, _config(tmp_path, [account]), "accounts", "check")
    assert code == 1
    assert "developer token missing" in out
    assert "GOOGLE_ADS_DEVELOPER_TOKEN" in out
    assert "google-secret-1234" not in out and "google-refresh-5678" not in out


# ---------------------------------------------------------------------------------------- Meta


def _meta_account(srv: FakeMetaServer) -> dict[str, Any]:
    return {
        "id": "acme-meta",
        "platform": "meta",
        "backend": "live",
        "platform_account_id": "act_1000",
        "endpoint": srv.address,
    }


def test_meta_check_against_the_fake_lists_the_ad_accounts_the_token_sees(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, meta_fake: FakeMetaServer
) -> None:
    monkeypatch.setenv("META_ACCESS_TOKEN", META_TOKEN)
    code, out, err = _run(capsys, _config(tmp_path, [_meta_account(meta_fake)]), "accounts", "check", "--json")
    assert code == 0
    (check,) = json.loads(out)["accounts"]
    assert check["ok"] is True
    assert check["visible_accounts"] == ["acme-meta (Acme Social)"]
    assert META_TOKEN not in out + err


def test_meta_check_without_a_token_names_the_variable_to_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], meta_fake: FakeMetaServer
) -> None:
    code, doc = _check_json(capsys, _config(tmp_path, [_meta_account(meta_fake)]))
    assert code == 1
    (check,) = doc["accounts"]
    assert "META_ACCESS_TOKEN" in check["problem"] and "META_ACCESS_TOKEN" in check["hint"]
    assert meta_fake.request_count == 0


def test_meta_check_with_an_expired_token_reports_it_and_never_prints_the_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, meta_fake: FakeMetaServer
) -> None:
    monkeypatch.setenv("META_ACCESS_TOKEN", META_TOKEN)
    meta_fake.inject("expired_token", times=3)
    code, out, err = _run(capsys, _config(tmp_path, [_meta_account(meta_fake)]), "accounts", "check")
    assert code == 1
    assert "expired" in out.lower()
    assert META_TOKEN not in out + err


def test_a_credential_echoed_by_a_platform_message_is_masked_in_the_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, meta_fake: FakeMetaServer
) -> None:
    monkeypatch.setenv("META_ACCESS_TOKEN", META_TOKEN)

    def leaky_check(self: MetaClient) -> MetaAccessCheck:
        return MetaAccessCheck(ok=False, problem=f"token {META_TOKEN} refused", hint=f"renew {META_TOKEN}")

    monkeypatch.setattr(MetaClient, "check_access", leaky_check)
    config = _config(tmp_path, [_meta_account(meta_fake)])
    for args in (("accounts", "check"), ("accounts", "check", "--json")):
        code, out, err = _run(capsys, config, *args)
        assert code == 1
        assert META_TOKEN not in out + err
        assert "token *** refused" in out


# ---------------------------------------------------------------------------------------- Amazon Ads


def _amazon_account(srv: FakeAmazonAdsServer | None, **extra: Any) -> dict[str, Any]:
    account: dict[str, Any] = {
        "id": "acme-amazon",
        "platform": "amazon_ads",
        "backend": "live",
        "platform_account_id": "1000000001",
        "marketplace": "US",
        **extra,
    }
    if srv is not None:
        account["endpoint"] = srv.address
    return account


def test_amazon_check_against_the_fake_lists_the_profiles_it_can_see(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    amazon_fake: FakeAmazonAdsServer,
    request: pytest.FixtureRequest,
) -> None:
    refresh_token = _amazon_env(monkeypatch, request)
    code, out, err = _run(capsys, _config(tmp_path, [_amazon_account(amazon_fake)]), "accounts", "check", "--json")
    assert code == 0
    (check,) = json.loads(out)["accounts"]
    assert check["ok"] is True
    assert check["visible_accounts"] == ["1000000001 (Acme Seller)"]
    assert amazon_fake.requests_by_endpoint["POST /auth/o2/token"] == 1
    assert AMAZON_SECRET not in out + err and refresh_token not in out + err


def test_amazon_check_without_a_marketplace_says_to_set_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    _amazon_env(monkeypatch, request)
    code, doc = _check_json(capsys, _config(tmp_path, [_amazon_account(None, marketplace=None)]))
    assert code == 1
    (check,) = doc["accounts"]
    assert "no marketplace" in check["problem"]
    assert "marketplace:" in check["hint"]


def test_amazon_check_without_credentials_names_the_missing_variables(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], amazon_fake: FakeAmazonAdsServer
) -> None:
    code, doc = _check_json(capsys, _config(tmp_path, [_amazon_account(amazon_fake)]))
    assert code == 1
    (check,) = doc["accounts"]
    assert "AD_API_CLIENT_ID" in check["problem"]
    assert "AD_API_REFRESH_TOKEN" in check["hint"]
    assert amazon_fake.request_count == 0


def test_amazon_check_with_a_revoked_refresh_token_fails_without_printing_it(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    amazon_fake: FakeAmazonAdsServer,
    request: pytest.FixtureRequest,
) -> None:
    refresh_token = _amazon_env(monkeypatch, request)
    amazon_fake.inject("revoked_refresh_token", times=None)
    code, out, err = _run(capsys, _config(tmp_path, [_amazon_account(amazon_fake)]), "accounts", "check")
    assert code == 1
    assert amazon_fake.requests_by_endpoint["POST /auth/o2/token"] >= 1
    assert "FAILED" in out and "hint:" in out
    assert "refresh token" in out.lower()
    assert refresh_token not in out + err and AMAZON_SECRET not in out + err


# ---------------------------------------------------------------------------------------- several


def test_one_failing_account_fails_the_command_but_every_account_is_still_checked(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    google_fake: FakeGoogleAdsServer,
    meta_fake: FakeMetaServer,
) -> None:
    config = _config(
        tmp_path,
        [
            {"id": "sim-amazon", "platform": "amazon_ads"},
            _google_account(google_fake),
            _meta_account(meta_fake),  # no META_ACCESS_TOKEN: fails
        ],
    )
    code, doc = _check_json(capsys, config)
    assert code == 1
    assert doc["ok"] is False
    assert [(a["account_id"], a["ok"]) for a in doc["accounts"]] == [
        ("sim-amazon", True),
        ("acme-google", True),
        ("acme-meta", False),
    ]
    code, doc = _check_json(capsys, config, "--account", "acme-google")
    assert code == 0
    assert [a["account_id"] for a in doc["accounts"]] == ["acme-google"]

"""Settings come from bidloop.yaml and BIDLOOP_* variables; every mistake names the field to fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bidloop.core.errors import ConfigError, UnknownAccountError
from bidloop.core.settings import Settings, load_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "core" / "bidloop.example.yaml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bidloop.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_no_file_means_three_simulated_accounts_and_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BIDLOOP_CONFIG", raising=False)
    s = load_settings()
    assert [a.id for a in s.accounts] == ["sim-google", "sim-meta", "sim-amazon"]
    assert s.resolved_database_url == "sqlite:///.bidloop/bidloop.sqlite"
    assert s.guardrails.max_change_pct == 20.0


def test_the_example_written_by_init_is_valid_and_matches_the_defaults() -> None:
    s = load_settings(EXAMPLE)
    assert s.model_dump(exclude={"data_dir"}) == Settings().model_dump(exclude={"data_dir"})
    assert yaml.safe_load(EXAMPLE.read_text())["simulation"]["seed"] == 7


def test_unknown_field_is_named_with_a_hint(tmp_path: Path) -> None:
    path = write(tmp_path, "guardrails:\n  max_chnage_pct: 10\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert "guardrails.max_chnage_pct: unknown field" in str(info.value)


def test_wrong_type_names_the_field_and_the_value(tmp_path: Path) -> None:
    path = write(tmp_path, "simulation:\n  seed: seven\n")
    with pytest.raises(ConfigError, match=r"simulation\.seed.*'seven'"):
        load_settings(path)


def test_malformed_yaml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "accounts:\n  - id: a\n   platform: meta\n")
    with pytest.raises(ConfigError, match="line 3"):
        load_settings(path)


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.yaml")


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "simulation:\n  seed: 3\n")
    monkeypatch.setenv("BIDLOOP_SIMULATION__SEED", "11")
    assert load_settings(path).simulation.seed == 11


def test_duplicate_account_ids_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "accounts:\n  - {id: a, platform: meta}\n  - {id: a, platform: google_ads}\n")
    with pytest.raises(ConfigError, match="appears twice"):
        load_settings(path)


def test_unknown_account_lists_the_known_ones() -> None:
    with pytest.raises(UnknownAccountError) as info:
        Settings().account("nope")
    assert "sim-google" in (info.value.hint or "")


def test_google_manager_id_must_be_ten_digits(tmp_path: Path) -> None:
    path = write(tmp_path, "accounts:\n  - {id: g, platform: google_ads, login_customer_id: '123-456-7890'}\n")
    with pytest.raises(ConfigError, match="login_customer_id"):
        load_settings(path)

"""Attribution windows: each platform's own by default (sources quoted), configurable, nonsense refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from bidloop.core.entities import Platform
from bidloop.core.errors import ConfigError
from bidloop.core.settings import AccountConfig, RewardConfig, Settings, load_settings

DAY_H = 24.0


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bidloop.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_meta_rewards_wait_for_the_seven_day_click_window() -> None:
    # "the ad set's attribution setting, typically 7-day click / 1-day view"; 7d_view and 28d_view are
    # deprecated since 2026-01-12:
    # https://developers.facebook.com/blog/post/2025/10/16/ads-insights-api-metric-availability-updates/
    assert RewardConfig().window_hours(Platform.META) == 7 * DAY_H


def test_amazon_rewards_wait_for_the_window_of_the_ad_product() -> None:
    # Amazon Ads reporting v3 columns, https://advertising.amazon.com/API/docs/en-us/guides/reporting/v3/columns :
    # `purchases7d` (spCampaigns, the column the Amazon client reads): "Number of attributed conversion
    # events occurring within 7 days of an ad click."
    spec = RewardConfig()
    assert spec.window_hours(Platform.AMAZON_ADS) == 7 * DAY_H
    assert spec.window_hours(Platform.AMAZON_ADS, ad_product="sponsored_products") == 7 * DAY_H
    # `purchasesClicks` (sbCampaigns, sdCampaigns): "Number of attributed conversion events occurring
    # within 14 days of an ad click." (same page)
    assert spec.window_hours(Platform.AMAZON_ADS, ad_product="sponsored_brands") == 14 * DAY_H
    assert spec.window_hours(Platform.AMAZON_ADS, ad_product="sponsored_display") == 14 * DAY_H


def test_google_rewards_wait_seven_days_and_an_account_sets_its_conversion_actions_own_window() -> None:
    # Google books conversions on the day of the ad interaction, for as long as the conversion action's
    # window runs, "the default 30-day conversion window", 1 to 90 days:
    # https://support.google.com/google-ads/answer/3123169 ; and "We don't recommend setting conversion
    # windows less than seven days due to differing weekday and weekend shopping patterns":
    # https://support.google.com/google-ads/answer/9462121 . bidloop's default is that 7-day floor; later
    # conversions restate the reward.
    settings = Settings(
        accounts=[
            AccountConfig(id="g-default", platform=Platform.GOOGLE_ADS),
            AccountConfig(id="g-30d", platform=Platform.GOOGLE_ADS, attribution_window_hours=30 * DAY_H),
        ],
        reward=RewardConfig(restatement_horizon_days=30),
    )
    assert settings.reward_window_hours("g-default") == 7 * DAY_H
    assert settings.reward_window_hours("g-30d") == 30 * DAY_H


def test_the_old_shape_a_number_per_platform_still_loads_and_keeps_the_others_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, "reward:\n  attribution_window_hours: {meta: 24, google_ads: 72}\n")
    spec = load_settings(path).reward
    assert spec.window_hours(Platform.META) == 24.0
    assert spec.window_hours(Platform.GOOGLE_ADS) == 72.0
    assert spec.window_hours(Platform.AMAZON_ADS) == 7 * DAY_H, "a platform left out keeps its default"


def test_the_new_shape_sets_windows_per_ad_product(tmp_path: Path) -> None:
    text = (
        "reward:\n  attribution_window_hours:\n    amazon_ads: {hours: 168, by_ad_product: {sponsored_brands: 240}}\n"
    )
    spec = load_settings(write(tmp_path, text)).reward
    assert spec.window_hours(Platform.AMAZON_ADS, ad_product="sponsored_brands") == 240.0
    assert spec.window_hours(Platform.AMAZON_ADS, ad_product="sponsored_display") == 168.0


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        (
            "attribution_window_hours: {meta: 0}",
            r"attribution_window_hours\.meta\.hours: Input should be greater than 0",
        ),
        ("attribution_window_hours: {meta: -24}", r"attribution_window_hours\.meta\.hours.*greater than 0"),
        ("attribution_window_hours: {meta: 7d}", r"attribution_window_hours\.meta\.hours.*valid number.*'7d'"),
        ("attribution_window_hours: {meta: .nan}", r"attribution_window_hours\.meta\.hours.*finite"),
        ("attribution_window_hours: {meta: 2500}", r"less than or equal to 2160"),
        ("attribution_window_hours: {meta: true}", r"not true/false"),
        (
            "attribution_window_hours: {tiktok: 24}",
            r"attribution_window_hours\.tiktok.*'google_ads', 'meta' or 'amazon_ads'",
        ),
        ("attribution_window_hours: {amazon_ads: {hours: 24, by_ad_product: {sponsored_tv: 0}}}", r"'sponsored_tv'"),
        ("attribution_window_hours: {meta: {hour: 24}}", r"attribution_window_hours\.meta\.hour: unknown field"),
        ("restatement_horizon_days: 3", r"shorter than the longest attribution window \(14 days\)"),
    ],
)
def test_nonsense_windows_are_refused_naming_the_field(tmp_path: Path, yaml_text: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        load_settings(write(tmp_path, f"reward:\n  {yaml_text}\n"))


def test_an_account_window_beyond_the_restatement_horizon_is_refused(tmp_path: Path) -> None:
    text = "accounts:\n  - {id: g, platform: google_ads, attribution_window_hours: 720}\n"
    with pytest.raises(ConfigError, match=r"account 'g': attribution_window_hours \(720\) is longer than"):
        load_settings(write(tmp_path, text))

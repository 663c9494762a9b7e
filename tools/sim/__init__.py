"""The embedded simulated ad market: holder-level dynamics, entity-level market, scenarios, fixtures, client.

* `model`: the market dynamics per budget holder; a pure deterministic core (numpy or torch) plus
  noise, delay and exogenous draws from generators split by purpose.
* `scenarios`: named scenario families drawn as parameters.
* `market`: `SimMarket`, accounts → campaigns → ad groups / ad sets → keywords → search terms, and creatives.
* `fixtures`: `default_market()` (the demo market) and `generated_market()` (benchmarks).
* `client`: `SimClient`, the `PlatformClient` over a `SimMarket`.
"""

from __future__ import annotations

from bidloop.tools.sim.client import SimClient
from bidloop.tools.sim.fixtures import (
    DEFAULT_WARMUP_DAYS,
    GENERATED_ACCOUNT_ID,
    META_ROAS_LEADERS,
    default_market,
    generated_market,
)
from bidloop.tools.sim.market import HISTORY_DAYS, SIM_EPOCH, AccountView, MarketBuilder, SimMarket, TrueLedger
from bidloop.tools.sim.model import (
    CoreParams,
    CoreState,
    ExoPath,
    ExoState,
    ExoStep,
    MarketParams,
    RolloutOutcome,
    StepOutcome,
    convert_arrays,
    draw_exo_path,
    expected_step,
    hill,
    initial_core_state,
    initial_exo_state,
    rollout_expected,
)
from bidloop.tools.sim.scenarios import (
    SCENARIO_FAMILIES,
    ScenarioDesign,
    ScenarioFamily,
    build_params,
    draw_design,
    draw_scenario,
)

__all__ = [
    "DEFAULT_WARMUP_DAYS",
    "GENERATED_ACCOUNT_ID",
    "HISTORY_DAYS",
    "META_ROAS_LEADERS",
    "SCENARIO_FAMILIES",
    "SIM_EPOCH",
    "AccountView",
    "CoreParams",
    "CoreState",
    "ExoPath",
    "ExoState",
    "ExoStep",
    "MarketBuilder",
    "MarketParams",
    "RolloutOutcome",
    "ScenarioDesign",
    "ScenarioFamily",
    "SimClient",
    "SimMarket",
    "StepOutcome",
    "TrueLedger",
    "build_params",
    "convert_arrays",
    "default_market",
    "draw_design",
    "draw_exo_path",
    "draw_scenario",
    "expected_step",
    "generated_market",
    "hill",
    "initial_core_state",
    "initial_exo_state",
    "rollout_expected",
]

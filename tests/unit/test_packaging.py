"""The repository root is the `bidloop` package: every subpackage must be listed for the wheel."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ROOMS = ["core", "tools", "policies", "guardrails", "agents", "graph", "cli", "testing"]


def listed_packages() -> set[str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return set(data["tool"]["setuptools"]["packages"])


def package_dirs() -> set[str]:
    found = set()
    for init in ROOT.rglob("__init__.py"):
        rel = init.parent.relative_to(ROOT)
        if rel.parts and rel.parts[0] in ROOMS:
            found.add("bidloop." + ".".join(rel.parts))
    return found


def test_every_subpackage_is_listed_in_pyproject() -> None:
    missing = sorted(package_dirs() - listed_packages())
    assert not missing, f"add to [tool.setuptools].packages: {missing}"


def test_no_listed_package_is_missing_on_disk() -> None:
    assert not sorted(listed_packages() - package_dirs())


def test_there_is_no_root_init() -> None:
    assert not (ROOT / "__init__.py").exists()


def test_rooms_are_not_importable_as_top_level_modules(tmp_path: Path) -> None:
    code = f"import importlib.util as u, sys; sys.exit(any(u.find_spec(n) for n in {ROOMS!r}))"
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True)
    assert result.returncode == 0, "a room leaked as a top-level module"


def test_rooms_import_only_rooms_they_may() -> None:
    allowed = {
        "core": set(),
        "tools": {"core", "tools"},
        "policies": {"core", "tools", "policies"},
        "guardrails": {"core", "guardrails"},
        "agents": {"core", "policies", "tools", "agents"},
        "graph": {"core", "tools", "policies", "guardrails", "agents", "graph"},
        "cli": set(ROOMS) - {"testing"},
        # Test doubles: they may read the vocabulary (and the fuzzer drives the filter), and no product room
        # imports them, so a fake can never lend its client a helper (or a misunderstanding).
        "testing": {"core", "guardrails", "testing"},
    }
    # The fakes may seed themselves from the simulated market (a market, not a client's helper).
    exceptions = {"testing": ("from bidloop.tools.sim",)}
    bad = []
    for room, may in allowed.items():
        for path in (ROOT / room).rglob("*.py"):
            for line in path.read_text(encoding="utf-8").splitlines():
                stripped = line.strip()
                for other in ROOMS:
                    if other == room or other in may:
                        continue
                    if stripped.startswith(exceptions.get(room, ())):
                        continue
                    if stripped.startswith((f"from bidloop.{other}", f"import bidloop.{other}")):
                        bad.append(f"{path.relative_to(ROOT)}: {stripped}")
    assert not bad, "imports against the house's arrows:\n" + "\n".join(bad)

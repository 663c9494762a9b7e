"""Keep trained bid policies: shipped ones in the package, user-trained ones under the data directory.

Layout of one policy (id = a folder name of letters, digits, `-`, `_`, `.`):

* shipped: ``bidloop/policies/artifacts/<id>.model.zip``, ``<id>.vecnormalize.pkl``,
  ``<id>.normalization.json``, ``<id>.metadata.json`` (flat, so that setuptools' package-data globs
  carry them into the wheel);
* user-trained: ``<data_dir>/policies/<id>/model.zip``, ``vecnormalize.pkl``, ``normalization.json``,
  ``metadata.json``.

The metadata records the observation spec version, the training families, held-out families and seeds,
the evaluation scores, the exact training command and the library versions. A policy whose spec version
differs from `bidloop.policies.observation.OBSERVATION_SPEC_VERSION` is refused at load time.

Acting never unpickles: the network's weights are read from the model zip with
``torch.load(weights_only=True)`` and the observation normalisation from ``normalization.json``.
``vecnormalize.pkl`` (a pickle, as SB3 writes it) is read only to continue training (`--warm-start`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bidloop.core.errors import InputError, PolicyError
from bidloop.policies.observation import N_FEATURES, OBSERVATION_SPEC_VERSION

__all__ = [
    "DEFAULT_POLICY_ID",
    "PolicyFiles",
    "PolicyMetadata",
    "find_policy",
    "library_versions",
    "list_policies",
    "shipped_dir",
    "user_dir",
    "write_metadata",
]

DEFAULT_POLICY_ID = "default"
"""The id of the policy shipped with the package."""

_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


class PolicyMetadata(BaseModel):
    """What is known about a trained policy.

    Attributes:
        policy_id: The registry id.
        version: Recorded on every action the policy proposes (e.g. ``ppo-holder@default-1``).
        observation_spec_version: The observation spec it was trained on.
        n_features: Features per holder.
        algorithm: The SB3 algorithm (``PPO``).
        families: Training families.
        held_out_families: Families never seen in training.
        train_seed: The training run's seed.
        scenario_seed_range: Scenario seeds used in training, ``[low, high)``.
        total_timesteps: Holder-steps trained.
        max_change_pct: The budget/bid move per step the policy was trained with.
        command: The exact command that reproduces it.
        train_wall_s: Wall time of training, seconds.
        evaluation: Evaluation scores (free-form: % of oracle per family, ...).
        library_versions: Versions of python, numpy, torch, gymnasium, stable-baselines3, bidloop.
        warm_start: The policy it continued from, if any.
        created_at: When it was written (UTC).
    """

    model_config = ConfigDict(extra="forbid")

    policy_id: str
    version: str
    observation_spec_version: str
    n_features: int
    algorithm: str = "PPO"
    families: list[str]
    held_out_families: list[str] = Field(default_factory=list)
    train_seed: int
    scenario_seed_range: tuple[int, int]
    total_timesteps: int
    max_change_pct: float = 20.0
    command: str
    train_wall_s: float = 0.0
    evaluation: dict[str, Any] = Field(default_factory=dict)
    library_versions: dict[str, str] = Field(default_factory=dict)
    warm_start: str | None = None
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


@dataclass(frozen=True)
class PolicyFiles:
    """Where one policy's files are, and whether it is shipped with the package."""

    policy_id: str
    model: Path
    vecnormalize: Path
    metadata: Path
    shipped: bool

    @property
    def normalization(self) -> Path:
        """Return the observation normalisation numbers (JSON: mean, var, clip_obs, epsilon)."""
        return self.vecnormalize.with_name(self.vecnormalize.name.replace("vecnormalize.pkl", "normalization.json"))

    def read_metadata(self) -> PolicyMetadata:
        """Return the metadata, checked.

        Raises:
            PolicyError: If a file is missing, the metadata is unreadable, or its observation spec differs.
        """
        for path in (self.model, self.normalization, self.metadata):
            if not path.is_file():
                raise PolicyError(
                    f"policy {self.policy_id!r} is incomplete: {path} is missing",
                    hint="train it again with `bidloop train`, or set `policy: heuristic` in bidloop.yaml",
                )
        try:
            meta = PolicyMetadata.model_validate_json(self.metadata.read_text(encoding="utf-8"))
        except (ValidationError, OSError, ValueError) as exc:
            raise PolicyError(
                f"policy {self.policy_id!r} has unreadable metadata ({self.metadata}): {exc}",
                hint="train it again with `bidloop train`",
            ) from exc
        if meta.observation_spec_version != OBSERVATION_SPEC_VERSION or meta.n_features != N_FEATURES:
            raise PolicyError(
                f"policy {self.policy_id!r} was trained on observation spec {meta.observation_spec_version!r} "
                f"({meta.n_features} features), this bidloop builds {OBSERVATION_SPEC_VERSION!r} ({N_FEATURES})",
                hint="retrain it with `bidloop train` on this version, or use `policy: default` / `heuristic`",
            )
        return meta


def shipped_dir() -> Path:
    """Return the folder of the policies shipped with the package."""
    return Path(str(resources.files("bidloop.policies.artifacts")))


def user_dir(data_dir: Path) -> Path:
    """Return the folder of user-trained policies under a data directory."""
    return data_dir / "policies"


def _check_id(policy_id: str) -> None:
    if not _ID_PATTERN.match(policy_id):
        raise InputError(f"{policy_id!r} is not a valid policy id", hint="use 1-64 letters, digits, '-', '_' or '.'")


def shipped_files(policy_id: str) -> PolicyFiles:
    """Return the file paths of a shipped policy (they may not exist)."""
    base = shipped_dir()
    return PolicyFiles(
        policy_id,
        base / f"{policy_id}.model.zip",
        base / f"{policy_id}.vecnormalize.pkl",
        base / f"{policy_id}.metadata.json",
        shipped=True,
    )


def user_files(data_dir: Path, policy_id: str) -> PolicyFiles:
    """Return the file paths of a user-trained policy (they may not exist).

    Raises:
        InputError: If the id is not a valid folder name.
    """
    _check_id(policy_id)
    folder = user_dir(data_dir) / policy_id
    return PolicyFiles(
        policy_id, folder / "model.zip", folder / "vecnormalize.pkl", folder / "metadata.json", shipped=False
    )


def find_policy(policy_id: str, data_dir: Path) -> PolicyFiles:
    """Return a policy's files: a user-trained one under `data_dir` first, else a shipped one.

    Raises:
        PolicyError: If no policy has that id.
    """
    _check_id(policy_id)
    user = user_files(data_dir, policy_id)
    if user.metadata.parent.is_dir():
        return user
    shipped = shipped_files(policy_id)
    if shipped.metadata.exists() or shipped.model.exists():
        return shipped
    known = ", ".join(p.policy_id for p in list_policies(data_dir)) or "(none)"
    raise PolicyError(
        f"no policy {policy_id!r} is registered",
        hint=f"known policies: {known}; train one with `bidloop train`, or set `policy: heuristic`",
    )


def list_policies(data_dir: Path) -> list[PolicyFiles]:
    """Return every registered policy: shipped first, then user-trained, each sorted by id."""
    found: list[PolicyFiles] = []
    base = shipped_dir()
    if base.is_dir():
        for meta in sorted(base.glob("*.metadata.json")):
            found.append(shipped_files(meta.name.removesuffix(".metadata.json")))
    folder = user_dir(data_dir)
    if folder.is_dir():
        for sub in sorted(p for p in folder.iterdir() if p.is_dir() and _ID_PATTERN.match(p.name)):
            found.append(user_files(data_dir, sub.name))
    return found


def write_metadata(files: PolicyFiles, metadata: PolicyMetadata) -> None:
    """Write the metadata file (pretty JSON)."""
    files.metadata.parent.mkdir(parents=True, exist_ok=True)
    files.metadata.write_text(json.dumps(metadata.model_dump(mode="json"), indent=2) + "\n", encoding="utf-8")


def library_versions() -> dict[str, str]:
    """Return the versions of the libraries a policy file depends on."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    versions = {"python": platform.python_version()}
    for name in ("numpy", "torch", "gymnasium", "stable-baselines3", "bidloop"):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "unknown"
    return versions

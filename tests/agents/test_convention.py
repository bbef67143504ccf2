"""Saved models keep their meaning: the agents convention is saved; older files are converted, unknown ones refused."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

try:  # works whether or not tests/agents is a package
    from multi_helpers import SMALL, noisy_env
except ImportError:  # pragma: no cover
    from .multi_helpers import SMALL, noisy_env

import rlcert  # noqa: F401
from rlcert.agents import ReenGAGEDDPG, ReenGAGESAC
from rlcert.agents.core import CONVENTION
from rlcert.agents.deepsets import DeepSetsTD3Policy
from rlcert.agents.multi_reengage import MultiReenGAGEDDPG


def rewrite_data(path: Path, edit) -> None:
    """Apply ``edit(data: dict)`` to the JSON ``data`` entry of an SB3 zip (fakes files of other conventions)."""
    with zipfile.ZipFile(path) as z:
        entries = {n: z.read(n) for n in z.namelist()}
    data = json.loads(entries["data"])
    edit(data)
    entries["data"] = json.dumps(data).encode()
    with zipfile.ZipFile(path, "w") as z:
        for name, blob in entries.items():
            z.writestr(name, blob)


def as_convention_1(data: dict) -> None:
    """What a file written before agents convention 2 lacks: the convention and the options added with it."""
    for key in ("agents_convention", "through_target_actor"):
        data.pop(key, None)
    data.pop("goal_reduction", None)  # Multi-ReenGAGE files had none; single-goal ones had "sum" (the old default)
    if isinstance(data.get("policy_kwargs"), dict):
        data["policy_kwargs"].pop("pooling", None)


def test_convention_is_saved_and_reloaded(tmp_path):
    model = ReenGAGEDDPG("MultiInputPolicy", gym.make("rlcert/ContinuousSeek-v0", d=3), alpha=0.3)
    assert model.agents_convention == CONVENTION and model.goal_reduction == "mean"
    model.save(tmp_path / "m.zip")
    loaded = ReenGAGEDDPG.load(tmp_path / "m.zip")
    assert (loaded.agents_convention, loaded.goal_reduction, loaded.alpha) == (CONVENTION, "mean", 0.3)


def test_old_single_goal_files_keep_their_meaning(tmp_path):
    env = gym.make("rlcert/ContinuousSeek-v0", d=3)
    for cls, alpha_after in ((ReenGAGEDDPG, 0.3), (ReenGAGESAC, 0.6)):  # SAC: 0.5 TD + a E = 0.5 (TD + 2a E)
        cls("MultiInputPolicy", env, alpha=0.3, goal_reduction="sum").save(tmp_path / "old.zip")
        rewrite_data(tmp_path / "old.zip", as_convention_1)
        with pytest.warns(UserWarning, match="before agents convention"):
            loaded = cls.load(tmp_path / "old.zip")
        assert (loaded.goal_reduction, loaded.alpha, loaded.agents_convention) == ("sum", alpha_after, CONVENTION)
        assert loaded.through_target_actor


def test_old_goal_set_file_keeps_its_network_function(tmp_path):
    """A convention-1 DeepSets model pooled without the 1/n_max: loading it with the new default would change Q and
    pi; it is converted to pooling="sum", goal_reduction="sum" and predicts exactly as saved."""
    model = MultiReenGAGEDDPG(DeepSetsTD3Policy, noisy_env(), alpha=0.05, goal_reduction="sum", seed=0,
                              policy_kwargs={**SMALL, "pooling": "sum"})
    model.save(tmp_path / "old.zip")
    rewrite_data(tmp_path / "old.zip", as_convention_1)
    with pytest.warns(UserWarning, match="before agents convention"):
        loaded = MultiReenGAGEDDPG.load(tmp_path / "old.zip", env=noisy_env())
    assert loaded.policy.pooling == "sum" and loaded.goal_reduction == "sum" and loaded.alpha == 0.05
    obs, _ = noisy_env().reset(seed=0)
    np.testing.assert_array_equal(model.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0])
    # The check can fail: read as convention 2 (pooling / n_max) the same weights give another policy.
    model.save(tmp_path / "new.zip")
    rewrite_data(tmp_path / "new.zip", lambda d: d["policy_kwargs"].pop("pooling"))
    misread = MultiReenGAGEDDPG.load(tmp_path / "new.zip", env=noisy_env())
    with torch.no_grad():
        obs_t = {k: torch.as_tensor(v)[None] for k, v in obs.items()}
        assert not torch.equal(misread.actor(obs_t), loaded.actor(obs_t))


def test_unknown_convention_is_refused(tmp_path):
    ReenGAGEDDPG("MultiInputPolicy", gym.make("rlcert/ContinuousSeek-v0", d=3)).save(tmp_path / "m.zip")
    rewrite_data(tmp_path / "m.zip", lambda d: d.update(agents_convention=99))
    with pytest.raises(ValueError, match="convention 99"):
        ReenGAGEDDPG.load(tmp_path / "m.zip")

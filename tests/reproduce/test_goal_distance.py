"""scripts/goal_distance.py against closed forms: the zero action never moves from s = 0, so an episode's closest
l-inf distance is max_i |g_i| with g ~ U[-D, D]^d (mean D d / (d + 1)) and the fraction of coordinates within eps
is eps / D in expectation; the clipped greedy action reaches every goal (distance 0, fraction 1)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("goal_distance", ROOT / "scripts" / "goal_distance.py")
goal_distance = importlib.util.module_from_spec(spec)
spec.loader.exec_module(goal_distance)


def test_zero_action_matches_the_closed_form():
    d, D, eps, n = 20, 5.0, 0.1, 400
    env = gym.make("rlcert/ContinuousSeek-v0", d=d)
    dist, frac = goal_distance.episode_progress(env, lambda obs: np.zeros(d, np.float32), n, seed=7)
    sd_max = D * np.sqrt(d / ((d + 1) ** 2 * (d + 2)))  # sd of the max of d U[0, D]
    assert abs(dist.mean() - D * d / (d + 1)) < 4 * sd_max / np.sqrt(n)
    sd_frac = np.sqrt(eps / D * (1 - eps / D) / d)
    assert abs(frac.mean() - eps / D) < 4 * sd_frac / np.sqrt(n)


def test_greedy_action_reaches_every_goal():
    env = gym.make("rlcert/ContinuousSeek-v0", d=20)
    greedy = lambda obs: np.clip(obs["desired_goal"] - obs["achieved_goal"], -1, 1)  # noqa: E731
    dist, frac = goal_distance.episode_progress(env, greedy, 30, seed=0)
    assert dist.max() == 0.0 and frac.min() == 1.0


def test_cli_table_on_exported_models(tmp_path, capsys):
    from rlcert.agents import ReenGAGEDDPG

    env = gym.make("rlcert/ContinuousSeek-v0", d=3)
    for s in (0, 1):
        ReenGAGEDDPG("MultiInputPolicy", env, seed=s, policy_kwargs={"net_arch": [8]}).save(tmp_path / f"m{s}.zip")
    assert goal_distance.main(["--d", "3", "--episodes", "2", "--baseline", "a", f"a={tmp_path}/m*.zip",
                               f"b={tmp_path}/m1.zip"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[2].startswith("| a | 2 | ") and out[2].endswith(" | - |") and out[3].startswith("| b | 1 | ")
    png = tmp_path / "d.png"
    assert goal_distance.main(["--d", "3", "--episodes", "2", "--plot", str(png), f"a@100={tmp_path}/m*.zip",
                               f"a@200={tmp_path}/m*.zip", f"b@100={tmp_path}/m1.zip"]) == 0
    from PIL import Image
    assert np.asarray(Image.open(png).convert("L")).std() > 10
    capsys.readouterr()
    with pytest.raises(SystemExit):
        goal_distance.main(["--d", "3", "--episodes", "1", "--plot", str(png), f"a={tmp_path}/m1.zip"])
    assert "--plot needs METHOD@STEP" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        goal_distance.main(["--d", "3", f"a={tmp_path}/none*.zip"])
    assert "names no model files" in capsys.readouterr().err

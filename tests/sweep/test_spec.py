"""Sweep configs: validation (one-line errors naming the key), grid / random expansion, stable ids, the shipped
thesis grids (Tables G.1/G.2, G.4)."""

import itertools
from pathlib import Path

import pytest
import yaml

from rlcert.sweep.spec import expand_settings, expand_trials, load_sweep, setting_id, trial_overrides
from rlcert.training import load_config

ROOT = Path(__file__).resolve().parents[2]
TRAIN = {"algo": "DDPG", "env": "rlcert/ContinuousSeek-v0", "env_kwargs": {"d": 2}, "total_timesteps": 100}


def write(tmp_path, sweep: dict, name="s.yaml"):
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(TRAIN))
    (tmp_path / "other.yaml").write_text(yaml.safe_dump({**TRAIN, "algo": "ReenGAGEDDPG"}))
    path = tmp_path / name
    path.write_text(yaml.safe_dump(sweep))
    return path


def test_grid_expands_to_product_per_method(tmp_path):
    sweep = {"methods": {"A": "base.yaml", "B": "other.yaml"},
             "search": {"space": {"algo_kwargs.batch_size": [8, 16, 32], "algo_kwargs.learning_rate": [1e-3, 5e-4]},
                        "method_space": {"B": {"algo_kwargs.alpha": [0.1, 0.2]}}},
             "seeds": [3, 4, 5], "seeds_per_trial": 2, "log_dir": str(tmp_path / "runs")}
    spec = load_sweep(write(tmp_path, sweep))
    settings = expand_settings(spec)
    assert [s.method for s in settings].count("A") == 6 and [s.method for s in settings].count("B") == 12
    got_b = {(s.params["algo_kwargs.batch_size"], s.params["algo_kwargs.learning_rate"], s.params["algo_kwargs.alpha"])
             for s in settings if s.method == "B"}
    assert got_b == set(itertools.product([8, 16, 32], [1e-3, 5e-4], [0.1, 0.2]))
    assert len({s.setting_id for s in settings}) == 18
    # ids are a function of (method, values) only: the same in a second load, different for another method
    assert [s.setting_id for s in expand_settings(load_sweep(write(tmp_path, sweep)))] == [s.setting_id
                                                                                          for s in settings]
    assert setting_id("A", {"x": 1}) != setting_id("B", {"x": 1}) != setting_id("A", {"x": 2})
    trials = expand_trials(spec)  # seeds grouped 2 + 1 per setting
    assert len(trials) == 36 and [t.seeds for t in trials[:2]] == [(3, 4), (5,)]
    assert spec.swept_keys == ["algo_kwargs.batch_size", "algo_kwargs.learning_rate", "algo_kwargs.alpha"]
    assert spec.sweep_dir == (tmp_path / "runs" / "s").resolve()


def test_random_search_is_reproducible_and_in_range(tmp_path):
    sweep = {"methods": {"A": "base.yaml"},
             "search": {"kind": "random", "num_samples": 40, "seed": 7,
                        "space": {"algo_kwargs.learning_rate": {"loguniform": [1e-4, 1e-2]},
                                  "algo_kwargs.tau": {"uniform": [0.001, 0.01]},
                                  "algo_kwargs.batch_size": {"randint": [8, 12]},
                                  "algo_kwargs.gamma": [0.9, 0.95]}}}
    a = expand_settings(load_sweep(write(tmp_path, sweep)))
    b = expand_settings(load_sweep(write(tmp_path, sweep)))
    assert [s.params for s in a] == [s.params for s in b] and len(a) == 40
    lr = [s.params["algo_kwargs.learning_rate"] for s in a]
    assert all(1e-4 <= x <= 1e-2 for x in lr) and min(lr) < 1e-3 < max(lr)  # log-uniform reaches both decades
    assert {s.params["algo_kwargs.batch_size"] for s in a} == {8, 9, 10, 11}
    assert {s.params["algo_kwargs.gamma"] for s in a} == {0.9, 0.95}
    sweep["search"]["seed"] = 8
    assert [s.params for s in expand_settings(load_sweep(write(tmp_path, sweep)))] != [s.params for s in a]


def test_overrides_order_and_values_parse_back(tmp_path):
    sweep = {"methods": {"A": "base.yaml"}, "set": {"total_timesteps": 50, "algo_kwargs.gamma": 0.9},
             "method_set": {"A": {"algo_kwargs.gamma": 0.8}},
             "search": {"space": {"algo_kwargs.learning_rate": [0.00025]}}}
    spec = load_sweep(write(tmp_path, sweep))
    (setting,) = expand_settings(spec)
    cfg = load_config(spec.base_configs["A"], trial_overrides(spec, setting), seed=3)
    assert cfg["total_timesteps"] == 50 and cfg["algo_kwargs"]["gamma"] == 0.8
    assert cfg["algo_kwargs"]["learning_rate"] == 0.00025 and cfg["seed"] == 3


@pytest.mark.parametrize("patch, key", [
    ({"bogus": 1}, "bogus"),
    ({"methods": {}}, "methods"),
    ({"methods": {"A": "missing.yaml"}}, "methods.A"),
    ({"search": {"kind": "bayes"}}, "search.kind"),
    ({"search": {"space": {"algo_kwargs.lr": 0.1}}}, "search.space.algo_kwargs.lr"),
    ({"search": {"space": {"seed": [1, 2]}}}, "'seed'"),
    ({"search": {"kind": "random", "num_samples": 2, "space": {"x": {"loguniform": [0, 1]}}}}, "loguniform"),
    ({"search": {"kind": "random", "num_samples": 0}}, "search.num_samples"),
    ({"search": {"method_space": {"C": {"x": [1]}}}}, "search.method_space"),
    ({"seeds": 0}, "seeds"),
    ({"seeds": [1, 1]}, "seeds"),
    ({"seeds_per_trial": 0}, "seeds_per_trial"),
    ({"metric": "auc"}, "metric"),
    ({"method_keys": ["algo_kwargs.alpha"]}, "method_keys"),
    ({"search": {"space": {}}}, "search.space is empty"),  # a grid over no keys: refused, not one silent trial
    ({"search": {"space": {}, "kind": "random", "num_samples": 3}}, "search.space is empty"),
    ({"search": {"space": {}, "method_space": {"A": {}}}}, "search.space is empty"),
])
def test_bad_sweep_values_are_one_line_errors_naming_the_key(tmp_path, patch, key):
    sweep = {"methods": {"A": "base.yaml"}, "search": {"space": {"algo_kwargs.learning_rate": [0.001]}}}
    sweep = {**sweep, **patch, "search": {**sweep["search"], **patch.get("search", {})}}
    with pytest.raises(ValueError) as err:
        load_sweep(write(tmp_path, sweep))
    assert key in str(err.value) and "\n" not in str(err.value)


def test_thesis_continuous_seek_grids():
    """Tables G.1/G.2: batch {128,256,512} x lr {2.5e-4,5e-4,1e-3,1.5e-3}; ReenGAGE alpha {0.1,0.2,0.3} (mean
    convention, passed explicitly) as separate method rows; 20 seeds."""
    for d in (5, 10, 20):
        spec = load_sweep(ROOT / f"configs/sweeps/continuous_seek_d{d}_g1.yaml")
        settings = expand_settings(spec)
        assert len(settings) == 12 + 36 and len(expand_trials(spec)) == 48 * 20
        reen = [s for s in settings if s.method == "ReenGAGE"]
        assert {s.params["algo_kwargs.alpha"] for s in reen} == {0.1, 0.2, 0.3}
        assert {s.params["algo_kwargs.batch_size"] for s in settings} == {128, 256, 512}
        assert {s.params["algo_kwargs.learning_rate"] for s in settings} == {2.5e-4, 5e-4, 1e-3, 1.5e-3}
        for s in (reen[0], settings[0]):
            cfg = load_config(spec.base_configs[s.method], trial_overrides(spec, s), seed=0)
            assert cfg["env_kwargs"]["d"] == d
            if s.method == "ReenGAGE":
                assert cfg["algo_kwargs"]["goal_reduction"] == "mean"
    quick = load_sweep(ROOT / "configs/sweeps/continuous_seek_d5_quick.yaml")
    assert len(expand_trials(quick)) == 8


@pytest.mark.parametrize("env", ["drive_seek", "noisy_seek"])
def test_thesis_multi_reengage_alpha_grid(env):
    """Table G.4 alpha grid in the mean-over-goal-coordinates convention: 5 / 10 / 20, plus the DDPG baseline."""
    spec = load_sweep(ROOT / f"configs/sweeps/{env}_g4_alpha.yaml")
    settings = expand_settings(spec)
    assert sorted(s.params.get("algo_kwargs.alpha", 0) for s in settings) == [0, 5, 10, 20]
    assert len(expand_trials(spec)) == 4 * 5
    reen = next(s for s in settings if "algo_kwargs.alpha" in s.params)
    overrides = dict(o.split("=", 1) for o in trial_overrides(spec, reen))
    assert overrides["algo_kwargs.goal_reduction"] == '"mean"'
    for s in settings:  # every trial's config passes validation (algo_kwargs names against the constructor)
        cfg = load_config(spec.base_configs[s.method], trial_overrides(spec, s), seed=0)
        assert cfg["algo_kwargs"]["alpha"] == s.params.get("algo_kwargs.alpha", 0.0)

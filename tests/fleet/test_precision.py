"""``precision: bf16``: the update's matmuls in bfloat16 (autocast, weight cache off), float32 everything else."""

from __future__ import annotations

import copy

import pytest
import torch as th

from rlcert.fleet.config import read_config
from rlcert.fleet.trainer import Fleet
from rlcert.training import load_config


def make_fleet(config: dict, seeds: list[int]) -> Fleet:
    settings, schedule, family, env_cls = read_config(config, len(seeds))
    return Fleet(settings, schedule, seeds, env_cls, config["env_kwargs"], family)


@pytest.mark.parametrize("algo", ["ReenGAGETD3", "ReenGAGESAC"])
def test_bf16_update_is_close_to_fp32_and_keeps_fp32_state(tiny, tmp_path, algo):
    config = tiny(tmp_path, algo=algo, policy_kwargs={"net_arch": [64, 64]}, batch_size=32, learning_rate=1e-4,
                  **({"action_noise": None} if "SAC" in algo else {}))
    fleets = {}
    for precision in ("fp32", "bf16"):
        fleets[precision] = make_fleet({**copy.deepcopy(config), "precision": precision}, [0, 1])
        fleets[precision].learn(30)  # 5 updates after learning_starts 25
    fp32, bf16 = fleets["fp32"].agent, fleets["bf16"].agent
    assert bf16.cfg.precision == "bf16" and bf16.n_updates == 5
    differ = False
    for name, net in bf16.modules().items():
        for p, q in zip(net.parameters(), fp32.modules()[name].parameters(), strict=True):
            assert p.dtype == th.float32  # master weights stay float32
            assert (p - q).abs().max() < 5e-3  # 5 Adam steps of lr 1e-4: bf16 rounding moves little
            differ = differ or not th.equal(p, q)
    assert differ  # the matmuls really ran in bf16
    for opt in bf16.optimizers().values():
        assert all(m.dtype == th.float32 for m in opt.exp_avg + opt.exp_avg_sq)


def test_bf16_autocast_has_its_weight_cache_off(tiny, tmp_path):
    """With the cache on, weights cast once are reused after they change: nothing learns (measured)."""
    fleet = make_fleet({**tiny(tmp_path), "precision": "bf16"}, [0])
    with fleet.agent.autocast():
        assert th.is_autocast_enabled("cpu") and not th.is_autocast_cache_enabled()
    with make_fleet(tiny(tmp_path), [0]).agent.autocast():
        assert not th.is_autocast_enabled("cpu")


def test_precision_key_is_validated(tiny, tmp_path):
    import yaml

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({k: v for k, v in tiny(tmp_path).items() if k != "log_dir"}))
    assert load_config(path, ["precision=bf16"])["precision"] == "bf16"
    with pytest.raises(ValueError, match="precision must be"):
        load_config(path, ["precision=fp16"])
    with pytest.raises(ValueError, match="fleet setting"):
        from rlcert.train import train

        train(load_config(path, ["precision=bf16"], log_dir=str(tmp_path / "runs")))

"""Smoothed training: the certification noise as a gymnasium observation wrapper.

``ObservationNoiseWrapper(env, method="gaussian", sigma=0.1, perturb=["desired_goal"])`` adds the very noise
object the certificates use (``noise.MaskedNoise``: same sampler, same sigma = per-coordinate standard deviation,
same mask, goal-set gates and padding never touched) to every observation the agent sees. ``rlcert train`` applies
it to the training environments when a config has ``observation_noise: {method: gaussian, sigma: 0.1,
perturb: [desired_goal]}`` (evaluation during training stays clean). Rewards are unchanged (computed by the env
from its true state); HER relabelling recomputes rewards from the stored (noisy) goals with ``compute_reward``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rlcert.certify.core.sampling import derive_seed
from rlcert.certify.policy.noise import NOISE_METHODS, MaskedNoise, ObservationLayout, make_certifier

TRAIN_STREAM = 12
CONFIG_KEYS = {"method", "sigma", "perturb"}


def check_noise_config(cfg: Any) -> dict:
    """Validate an ``observation_noise`` config entry; returns it with defaults filled (raises ValueError)."""
    if not isinstance(cfg, dict):
        raise ValueError(f"observation_noise must be a mapping {{method, sigma, perturb}}, got {cfg!r}")
    unknown = set(cfg) - CONFIG_KEYS
    if unknown:
        raise ValueError(f"observation_noise has unknown keys {sorted(unknown)}; allowed: {sorted(CONFIG_KEYS)}")
    out = {"method": cfg.get("method", "gaussian"), "sigma": cfg.get("sigma"),
           "perturb": cfg.get("perturb", ["desired_goal"])}
    if out["method"] not in NOISE_METHODS:
        raise ValueError(f"observation_noise.method must be one of {NOISE_METHODS}, got {out['method']!r}")
    make_certifier(out["method"], out["sigma"])  # validates sigma > 0
    return out


class ObservationNoiseWrapper(gym.ObservationWrapper):
    """Adds ``MaskedNoise`` to the masked entries of every observation (reset and step).

    The noise generator is re-seeded from the ``seed`` given to ``reset`` (``derive_seed(seed, 0, TRAIN_STREAM)``),
    so seeded training runs are reproducible.
    """

    def __init__(self, env: gym.Env, method: str = "gaussian", sigma: float = 0.1,
                 perturb: Sequence[str] | str = ("desired_goal",)) -> None:
        super().__init__(env)
        cfg = check_noise_config({"method": method, "sigma": sigma, "perturb": perturb})
        self.layout = ObservationLayout(env.observation_space, cfg["perturb"])
        self.noise = MaskedNoise(make_certifier(cfg["method"], cfg["sigma"]), self.layout)
        self._gen = torch.Generator()
        self._gen.manual_seed(derive_seed(0, 0, TRAIN_STREAM))

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self._gen.manual_seed(derive_seed(int(seed), 0, TRAIN_STREAM))
        return super().reset(seed=seed, options=options)

    def observation(self, observation: Any) -> Any:
        single = {k: np.asarray(v)[None] for k, v in observation.items()} if self.layout.is_dict \
            else np.asarray(observation)[None]
        x = self.layout.flatten(single)
        out = torch.empty_like(x)
        self.noise.perturb_(out, x[0], self._gen)
        parts = self.layout.unflatten(out)
        if not self.layout.is_dict:
            return parts["observation"][0].numpy().astype(observation.dtype)
        return {k: parts[k][0].numpy().astype(np.asarray(observation[k]).dtype) for k in observation}

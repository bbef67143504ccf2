"""Factories of a training run: environments (with the smoothed-training noise), algorithm constructor kwargs,
replay-buffer growth on resume."""

from __future__ import annotations

import copy
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3 import HerReplayBuffer
from stable_baselines3.common.buffers import DictReplayBuffer, ReplayBuffer
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.noise import NormalActionNoise, OrnsteinUhlenbeckActionNoise
from stable_baselines3.common.vec_env import VecEnv

from rlcert.envs import make_hand_reach
from rlcert.envs.observation_noise import ObservationNoiseWrapper
from rlcert.training.config import import_object


def make_env(env_id: str, env_kwargs: dict, seed: int | None = None) -> gym.Env:
    """One environment instance (HandReach-v3 goes through ``rlcert.envs.make_hand_reach``)."""
    if env_id.split("/")[-1].startswith("HandReach"):
        env = make_hand_reach(**env_kwargs)
    else:
        env = gym.make(env_id, **env_kwargs)
    if seed is not None:
        env.reset(seed=seed)
    return env


def make_train_env(config: dict) -> gym.Env:
    """A training environment: ``make_env``, wrapped with the certification noise when the config has
    ``observation_noise: {method, sigma, perturb}`` (``rlcert.envs.observation_noise.ObservationNoiseWrapper``)."""
    env = make_env(config["env"], config["env_kwargs"])
    if config.get("observation_noise") is not None:
        env = ObservationNoiseWrapper(env, **config["observation_noise"])
    return env


def _resolve_classes(obj: Any) -> Any:
    """Recursively turn "module:Class" strings under *_class / activation_fn keys into objects."""
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if isinstance(v, str) and (k.endswith("_class") or k == "activation_fn") and ":" in v:
                out[k] = import_object(v)
            else:
                out[k] = _resolve_classes(v)
        return out
    return obj


def build_algo_kwargs(config: dict, action_space: gym.Space) -> dict:
    """Constructor kwargs from ``algo_kwargs`` with the special keys resolved."""
    kw = _resolve_classes(copy.deepcopy(config["algo_kwargs"]))
    rb = kw.get("replay_buffer_class")
    if isinstance(rb, str):
        named = {"HerReplayBuffer": HerReplayBuffer, "ReplayBuffer": ReplayBuffer,
                 "DictReplayBuffer": DictReplayBuffer}
        if rb in named:
            kw["replay_buffer_class"] = named[rb]
        elif ":" in rb:
            kw["replay_buffer_class"] = import_object(rb)
        else:
            raise ValueError(f"replay_buffer_class must be one of {sorted(named)}, 'module:Class' or null, got {rb!r}")
    noise = kw.get("action_noise")
    if isinstance(noise, dict):
        kind, sigma = noise.get("type", "normal"), float(noise.get("sigma", 0.1))
        shape = action_space.shape
        if kind == "normal":
            kw["action_noise"] = NormalActionNoise(np.zeros(shape), sigma * np.ones(shape))
        elif kind == "ornstein_uhlenbeck":
            kw["action_noise"] = OrnsteinUhlenbeckActionNoise(np.zeros(shape), sigma * np.ones(shape))
        else:
            raise ValueError(f"action_noise.type must be 'normal' or 'ornstein_uhlenbeck', got {kind!r}")
    for key in ("reward_fn",):
        if isinstance(kw.get(key), str):
            kw[key] = import_object(kw[key])
    cap = config["total_timesteps"] + config["n_envs"]  # never overflows: same behaviour, small checkpoints
    kw["buffer_size"] = int(min(kw.get("buffer_size", 1_000_000), cap))
    return kw


def grow_replay_buffer(buffer, new_size: int) -> None:
    """Enlarge a not-yet-wrapped SB3 replay buffer in place (used when ``--resume`` raises total_timesteps above
    the capped ``buffer_size``). Every per-slot array/list (first axis = buffer_size) is extended; contents kept."""
    old = buffer.buffer_size
    if new_size <= old:
        return
    if buffer.full:
        raise ValueError("cannot grow a replay buffer that has already wrapped around")

    def grow(x):
        if isinstance(x, np.ndarray) and x.ndim >= 1 and x.shape[0] == old:
            out = np.zeros((new_size, *x.shape[1:]), dtype=x.dtype)
            if x.dtype == object:  # HER infos: one dict per slot
                for idx in np.ndindex(out.shape):
                    out[idx] = {}
            out[:old] = x
            return out
        if isinstance(x, dict):
            return {k: grow(v) for k, v in x.items()}
        return x

    for name, value in list(vars(buffer).items()):
        setattr(buffer, name, grow(value))
    buffer.buffer_size = new_size



def build_envs(config: dict, seed: int) -> tuple[VecEnv, gym.Env]:
    """(training vector env of ``n_envs`` seeded from ``seed``, clean evaluation env); env errors -> one-line
    ``ValueError``."""
    try:
        vec_env = make_vec_env(lambda: make_train_env(config), n_envs=config["n_envs"], seed=seed)
        eval_env = make_env(config["env"], config["env_kwargs"])
    except (TypeError, ValueError, gym.error.Error) as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"env {config['env']!r} with env_kwargs {config['env_kwargs']}: {msg}") from None
    return vec_env, eval_env

"""Seeded rollouts of a (smoothed) policy on a gymnasium vector env, the policy evaluated in batches.

Episode ``i`` of a run with ``seed`` resets its environment with ``derive_seed(seed, i, ENV_STREAM)`` and draws its
observation noise from its own ``torch.Generator`` seeded ``derive_seed(seed, i, NOISE_STREAM)``, so its return
does not depend on which episodes ran alongside it, in which slot, or in which (resumed) run: a certificate over
episodes 0..N-1 can be interrupted, resumed and reproduced. Environments run in a ``SyncVectorEnv`` without
auto-reset; a finished slot is reset with the next episode's seed, so slots stay busy when lengths differ.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from rlcert.certify.core.checks import check_count
from rlcert.certify.core.sampling import derive_seed
from rlcert.certify.policy.adaptor import PolicyFunction
from rlcert.certify.policy.noise import MaskedNoise

ENV_STREAM, NOISE_STREAM = 10, 11


@dataclass(frozen=True)
class Episode:
    """One finished episode: its index, undiscounted return, length (steps) and final ``is_success`` (or nan)."""

    idx: int
    ret: float
    length: int
    success: float


def env_seed(seed: int, idx: int) -> int:
    return derive_seed(seed, idx, ENV_STREAM)


@torch.no_grad()
def rollout(policy: PolicyFunction, make_env: Callable[[], gym.Env], episodes: Iterable[int], seed: int = 0,
            noise: MaskedNoise | None = None, num_envs: int = 16, max_steps: int = 100_000,
            on_episode: Callable[[Episode], None] | None = None) -> list[Episode]:
    """Run the listed episode indices; returns their ``Episode`` records in completion order.

    noise: the observation noise of the smoothed policy (None: the clean base policy). The policy sees
    x + noise (masked), the environment steps with the policy's deterministic action. ``on_episode`` is called
    as each episode finishes (e.g. to append a row to a TSV).
    """
    todo = [int(i) for i in episodes]
    num_envs = check_count(num_envs, "num_envs")
    if not todo:
        return []
    num_envs = min(num_envs, len(todo))
    envs = SyncVectorEnv([make_env for _ in range(num_envs)], autoreset_mode=AutoresetMode.DISABLED)
    out: list[Episode] = []
    try:
        queue = list(reversed(todo))
        slot_ep: list[int | None] = [None] * num_envs
        gens: list[torch.Generator | None] = [None] * num_envs
        ret = np.zeros(num_envs)
        length = np.zeros(num_envs, dtype=np.int64)

        def assign(slots: list[int]) -> dict:
            seeds: list[int | None] = [None] * num_envs
            mask = np.zeros(num_envs, dtype=bool)
            for s in slots:
                mask[s] = True
                if queue:
                    ep = queue.pop()
                    slot_ep[s] = ep
                    seeds[s] = env_seed(seed, ep)
                    g = torch.Generator(device=policy.device)
                    g.manual_seed(derive_seed(seed, ep, NOISE_STREAM))
                    gens[s] = g
                else:
                    slot_ep[s] = None
                    seeds[s] = 0  # idle slot: reset only so the vector env may keep stepping it
                ret[s], length[s] = 0.0, 0
            obs, _ = envs.reset(seed=seeds, options={"reset_mask": mask})
            return obs

        obs = assign(list(range(num_envs)))
        while any(e is not None for e in slot_ep):
            x = policy.flatten(obs)
            if noise is not None:
                noisy = torch.empty_like(x)
                for s in range(num_envs):
                    if slot_ep[s] is not None:
                        noise.perturb_(noisy[s:s + 1], x[s], gens[s])
                    else:
                        noisy[s] = x[s]
                x = noisy
            act = policy(x).cpu().numpy()
            obs, rew, term, trunc, info = envs.step(act)
            done = []
            for s in range(num_envs):
                if slot_ep[s] is None:
                    if term[s] or trunc[s]:
                        done.append(s)
                    continue
                ret[s] += float(rew[s])
                length[s] += 1
                if term[s] or trunc[s] or length[s] >= max_steps:
                    succ = info.get("is_success")
                    has = info.get("_is_success", np.ones(num_envs, bool))
                    ok = float(succ[s]) if succ is not None and has[s] else float("nan")
                    ep = Episode(int(slot_ep[s]), float(ret[s]), int(length[s]), ok)
                    out.append(ep)
                    if on_episode is not None:
                        on_episode(ep)
                    done.append(s)
            if done:
                obs = assign(done)
    finally:
        envs.close()
    return out


@torch.no_grad()
def visited_observations(policy: PolicyFunction, make_env: Callable[[], gym.Env], count: int, seed: int = 0,
                         horizon: int | None = None) -> torch.Tensor:
    """Flat observations (count, D) visited by the clean policy: observation ``i`` is the one at step
    ``i mod horizon`` of episode ``i`` (seeded as in ``rollout``; the last one if the episode ends earlier)."""
    env = make_env()
    rows = []
    for i in range(count):
        obs, _ = env.reset(seed=env_seed(seed, i))
        for _ in range(i % horizon if horizon else 0):
            batch = {k: np.asarray(v)[None] for k, v in obs.items()} if isinstance(obs, dict) else np.asarray(obs)[None]
            a = policy(policy.flatten(batch)).cpu().numpy()[0]
            nxt, _, term, trunc, _ = env.step(a)
            if term or trunc:
                break
            obs = nxt
        batch = {k: np.asarray(v)[None] for k, v in obs.items()} if isinstance(obs, dict) else np.asarray(obs)[None]
        rows.append(policy.flatten(batch))
    env.close()
    return torch.cat(rows)

"""gymnasium-robotics ``HandReach-v3`` with the same success bookkeeping as the rlcert environments.

The thesis' HandReach metric is success at the **final** step (Plappert et al. 2018), while the rlcert envs
latch "ever reached". :class:`SuccessBookkeeping` adds both to ``info``:
``is_success`` (the robotics env's own per-step flag, so at the last step it is the final-step success),
``is_success_ever`` (latched) and, at the last step, ``is_success_final``.

SB3's ``check_env`` rejects HandReach because its step reward is a ``numpy.float32`` rather than a Python
float; this does not affect training with SB3 (rewards are cast when stored). Needs ``mujoco==3.11.0``:
mujoco >= 3.12 breaks gymnasium-robotics 1.4.2's env construction.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym


class SuccessBookkeeping(gym.Wrapper):
    """Adds ``is_success_ever`` (latched) and ``is_success_final`` (on the last step) to ``info``."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self._ever = False

    def compute_reward(self, achieved_goal: Any, desired_goal: Any, info: Any) -> Any:
        return self.env.unwrapped.compute_reward(achieved_goal, desired_goal, info)

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self._ever = bool(info.get("is_success", 0.0))
        info["is_success_ever"] = float(self._ever)
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        success = float(info.get("is_success", 0.0))
        self._ever = self._ever or success > 0
        info["is_success_ever"] = float(self._ever)
        if terminated or truncated:
            info["is_success_final"] = success
        return obs, reward, terminated, truncated, info


def make_hand_reach(max_episode_steps: int = 50, **kwargs: Any) -> gym.Env:
    """Create ``HandReach-v3`` (goal dim 15, 20 actions, 50 steps) wrapped in :class:`SuccessBookkeeping`."""
    import gymnasium_robotics

    gym.register_envs(gymnasium_robotics)
    return SuccessBookkeeping(gym.make("HandReach-v3", max_episode_steps=max_episode_steps, **kwargs))

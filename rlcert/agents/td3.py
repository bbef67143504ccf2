"""ReenGAGE for DDPG and TD3: SB3's algorithms whose critic loss gains the goal-gradient term (thesis Eq. 8.8/8.9).

>>> model = ReenGAGEDDPG("MultiInputPolicy", env, alpha=0.2, replay_buffer_class=HerReplayBuffer)

The update is :class:`rlcert.agents.loops.TD3FamilyLoop` (SB3's TD3 ``train()``) with the critic loss
``sum_j mse(Q_j, y) + alpha * sum_j E_j``, E_j the mean over batch and goal coordinates of critic j's squared
goal-gradient error (``goal_reduction="mean"``, the published convention). ``alpha=0`` is stock DDPG/TD3 bit for
bit (same loop, SB3's expressions).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch as th
from stable_baselines3 import DDPG, TD3

from rlcert.agents.core import GoalInput
from rlcert.agents.loops import TD3FamilyLoop


class _ReenGAGETD3Family(GoalInput, TD3FamilyLoop):
    def __init__(self, *args: Any, alpha: float = 0.2, reengage_mode: str = "sparse", c_low: float = -1.0,
                 reward_fn: Callable[[th.Tensor, th.Tensor], th.Tensor] | None = None,
                 goal_key: str = "desired_goal", goal_weighting: str | None = None,
                 goal_reduction: str = "mean", through_target_actor: bool = True, **kwargs: Any) -> None:
        self._setup_goal_input(alpha, reengage_mode, c_low, reward_fn, goal_key, goal_weighting, goal_reduction,
                               through_target_actor, kwargs)
        super().__init__(*args, **kwargs)
        self._check_share_features()


class ReenGAGETD3(_ReenGAGETD3Family, TD3):
    """TD3 + ReenGAGE. Extra kwargs: alpha (coefficient of the batch x goal-coordinate mean of the squared
    goal-gradient error, per critic), reengage_mode, c_low, reward_fn, goal_key, goal_weighting, goal_reduction
    ("mean" default, "sum" = squared l2 norm), through_target_actor (True: total target derivative; False:
    partial, through Q' only)."""


class ReenGAGEDDPG(_ReenGAGETD3Family, DDPG):
    """DDPG + ReenGAGE (thesis Ch. 8); the same extra kwargs as :class:`ReenGAGETD3`."""

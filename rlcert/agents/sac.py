"""ReenGAGE for SAC (thesis App. G.5): the goal-gradient of the soft TD target

    y = R + gamma * (min_j Q_theta'_j(s', a', g) - ent_coef * log pi(a'|s', g)),   a' ~ pi(.|s', g) reparameterised

is a total derivative through the reparameterised action a' and the entropy term (both depend on g), detached,
and matched by every critic of the ensemble. The update is :class:`rlcert.agents.loops.SACLoop`: critic loss
``0.5 * (sum_j mse(Q_j, y) + alpha * sum_j E_j)`` (the authors' SAC halves the gradient term too). ``alpha=0`` is
stock SAC bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch as th
from stable_baselines3 import SAC

from rlcert.agents.core import GoalInput
from rlcert.agents.loops import SACLoop


class ReenGAGESAC(GoalInput, SACLoop, SAC):
    """SAC + ReenGAGE. Extra kwargs as :class:`rlcert.agents.ReenGAGETD3` (through_target_actor=False: the
    reparameterised action is taken at the non-differentiated goal)."""

    def __init__(self, *args: Any, alpha: float = 0.2, reengage_mode: str = "sparse", c_low: float = -1.0,
                 reward_fn: Callable[[th.Tensor, th.Tensor], th.Tensor] | None = None,
                 goal_key: str = "desired_goal", goal_weighting: str | None = None,
                 goal_reduction: str = "mean", through_target_actor: bool = True, **kwargs: Any) -> None:
        self._setup_goal_input(alpha, reengage_mode, c_low, reward_fn, goal_key, goal_weighting, goal_reduction,
                               through_target_actor, kwargs)
        super().__init__(*args, **kwargs)
        self._check_share_features()

    def _convert_convention_1(self) -> None:
        self.alpha *= 2.0  # convention 1: 0.5 * TD + alpha * E  ==  0.5 * (TD + 2 alpha * E)
        super()._convert_convention_1()

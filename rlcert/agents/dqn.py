"""ReenGAGE for DQN (thesis App. G.2): discrete actions, soft target for the gradient term only.

    SoftQTarget(s', g) = R(s', g) + gamma * sum_a softmax(Q_theta'(s', g) / tau)_a * Q_theta',a(s', g)
    L = Huber(Q_theta,a(s, g), R + gamma * max_a Q_theta',a(s', g))
        + alpha * mean_i ( grad_g Q_theta,a(s, g) - grad_g SoftQTarget(s', g) )_i^2      (sparse: masked to R = c_low)

``softmax_tau`` is the tau above (``tau`` is taken by SB3's polyak coefficient); ``softmax_tau=0`` is the hard
target (gradient of Q' at the arg max). The update is :class:`rlcert.agents.loops.DQNLoop` (SB3's DQN
``train()`` with the critic-loss hook); ``alpha=0`` is stock DQN bit for bit.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th
from stable_baselines3 import DQN

from rlcert.agents.core import GoalInput
from rlcert.agents.loops import DQNLoop, hard_and_soft_values, soft_value

__all__ = ["ReenGAGEDQN", "hard_and_soft_values", "soft_value"]


class ReenGAGEDQN(GoalInput, DQNLoop, DQN):
    """DQN + ReenGAGE. Extra kwargs: alpha, softmax_tau (>= 0), reengage_mode, c_low, reward_fn, goal_key,
    goal_weighting, goal_reduction (see :class:`rlcert.agents.ReenGAGETD3`)."""

    def __init__(self, *args: Any, alpha: float = 1.0, softmax_tau: float = 0.5, **kwargs: Any) -> None:
        if not np.isfinite(softmax_tau) or softmax_tau < 0:
            raise ValueError(f"softmax_tau must be a finite number >= 0, got {softmax_tau!r}")
        if "through_target_actor" in kwargs:
            raise TypeError("through_target_actor applies to actor-critic agents, not to ReenGAGEDQN")
        self.softmax_tau = float(softmax_tau)
        super().__init__(*args, alpha=alpha, **kwargs)

    analytic_gradient = False  # Q is gathered at the action: autograd's double backward

    def _trained_critic(self) -> Any:
        return self.q_net

    def _q(self, critic: Any, features: dict[str, th.Tensor], actions: th.Tensor) -> tuple[th.Tensor]:
        return (th.gather(critic(features), dim=1, index=actions.long()),)


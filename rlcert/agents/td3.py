"""ReenGAGE for DDPG and TD3: SB3's algorithms whose critic loss gains the goal-gradient term (thesis Eq. 8.8/8.9).

>>> model = ReenGAGEDDPG("MultiInputPolicy", env, alpha=0.2, replay_buffer_class=HerReplayBuffer)

The update is :class:`rlcert.agents.loops.TD3FamilyLoop` (SB3's TD3 ``train()``) with the critic loss
``sum_j mse(Q_j, y) + alpha * sum_j E_j``, E_j the mean over batch and goal coordinates of critic j's squared
goal-gradient error (``goal_reduction="mean"``, the published convention). ``alpha=0`` is stock DDPG/TD3 bit for
bit (same loop, SB3's expressions).
"""

from __future__ import annotations

from stable_baselines3 import DDPG, TD3

from rlcert.agents.core import GoalInput
from rlcert.agents.loops import TD3FamilyLoop


class ReenGAGETD3(GoalInput, TD3FamilyLoop, TD3):
    """TD3 + ReenGAGE. Extra kwargs: alpha (coefficient of the batch x goal-coordinate mean of the squared
    goal-gradient error, per critic), reengage_mode, c_low, reward_fn, goal_key, goal_weighting, goal_reduction
    ("mean" default, "sum" = squared l2 norm), through_target_actor (True: total target derivative; False:
    partial, through Q' only)."""


class ReenGAGEDDPG(GoalInput, TD3FamilyLoop, DDPG):
    """DDPG + ReenGAGE (thesis Ch. 8); the same extra kwargs as :class:`ReenGAGETD3`."""

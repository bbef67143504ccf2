"""ReenGAGE for SAC (thesis App. G.5): the goal-gradient of the soft TD target

    y = R + gamma * (min_j Q_theta'_j(s', a', g) - ent_coef * log pi(a'|s', g)),   a' ~ pi(.|s', g) reparameterised

is a total derivative through the reparameterised action a' and the entropy term (both depend on g), detached,
and matched by every critic of the ensemble. The update is :class:`rlcert.agents.loops.SACLoop`: critic loss
``0.5 * (sum_j mse(Q_j, y) + alpha * sum_j E_j)`` (the authors' SAC halves the gradient term too). ``alpha=0`` is
stock SAC bit for bit.
"""

from __future__ import annotations

from stable_baselines3 import SAC

from rlcert.agents.core import GoalInput
from rlcert.agents.loops import SACLoop


class ReenGAGESAC(GoalInput, SACLoop, SAC):
    """SAC + ReenGAGE. Extra kwargs as :class:`rlcert.agents.ReenGAGETD3` (through_target_actor=False: the
    reparameterised action is taken at the non-differentiated goal)."""

    def _convert_convention_1(self) -> None:
        self.alpha *= 2.0  # convention 1: 0.5 * TD + alpha * E  ==  0.5 * (TD + 2 alpha * E)
        super()._convert_convention_1()

"""Options shared by every ReenGAGE algorithm (alpha, dense/sparse mode, goal weighting) and their validation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.running_mean_std import RunningMeanStd

from rlcert.agents import goal_gradient as gg

MODES = ("sparse", "dense")
GOAL_WEIGHTINGS = (None, "running_std")


class ReenGAGEMixin:
    """Adds ``alpha, reengage_mode, c_low, reward_fn, goal_key, goal_weighting`` to an SB3 off-policy algorithm.

    alpha: weight of the goal-gradient term (>= 0; 0 runs the stock SB3 ``train()``). Convention: multiplies the
        squared l2 norm of the gradient difference averaged over the batch (see :mod:`goal_gradient`).
    reengage_mode: "sparse" (term only where the relabelled reward equals ``c_low``) or "dense" (needs
        ``reward_fn(next_achieved_goal, goal) -> (B,)``, a differentiable torch function).
    goal_key: observation key holding the goal (the gradient is taken w.r.t. this raw, un-normalised input).
    goal_weighting: None or "running_std" (weight coordinate i by sigma_i^2, its running variance; App. G.4).
    goal_reduction: "sum" (published convention, default) or "mean" over goal coordinates (alpha effectively / d).
    """

    def _setup_reengage(self, alpha: float, reengage_mode: str, c_low: float,
                        reward_fn: Callable[[th.Tensor, th.Tensor], th.Tensor] | None, goal_key: str,
                        goal_weighting: str | None, goal_reduction: str = "sum") -> None:
        if not np.isfinite(alpha) or alpha < 0:
            raise ValueError(f"alpha must be a finite number >= 0, got {alpha!r}")
        if reengage_mode not in MODES:
            raise ValueError(f"reengage_mode must be one of {MODES}, got {reengage_mode!r}")
        if reengage_mode == "dense" and reward_fn is None and alpha > 0:
            raise ValueError("reengage_mode='dense' needs reward_fn(next_achieved_goal, goal) -> (B,) in torch")
        if goal_reduction not in ("sum", "mean"):
            raise ValueError(f"goal_reduction must be 'sum' or 'mean', got {goal_reduction!r}")
        self.goal_reduction = goal_reduction
        if goal_weighting not in GOAL_WEIGHTINGS:
            raise ValueError(f"goal_weighting must be one of {GOAL_WEIGHTINGS}, got {goal_weighting!r}")
        self.alpha = float(alpha)
        self.reengage_mode = reengage_mode
        self.c_low = float(c_low)
        self.reward_fn = reward_fn
        self.goal_key = goal_key
        self.goal_weighting = goal_weighting
        self._goal_rms: RunningMeanStd | None = None

    def _check_reengage_setup(self, obs: Any) -> None:
        if not isinstance(obs, dict) or self.goal_key not in obs:
            raise ValueError(f"ReenGAGE needs Dict observations with key goal_key={self.goal_key!r}")
        if self._vec_normalize_env is not None:
            raise ValueError("ReenGAGE takes the gradient w.r.t. the raw goal; VecNormalize is not supported")

    def _goal_weight(self, goal: th.Tensor) -> th.Tensor | None:
        """sigma_i^2 per goal coordinate (running over the sampled batches), or None."""
        if self.goal_weighting is None:
            return None
        flat = goal.detach().reshape(goal.shape[0], -1).cpu().numpy().astype(np.float64)
        if self._goal_rms is None:
            self._goal_rms = RunningMeanStd(shape=flat.shape[1:])
        self._goal_rms.update(flat)
        return th.as_tensor(self._goal_rms.var, dtype=goal.dtype, device=goal.device).reshape(goal.shape[1:])

    def _reengage_targets(self, replay_data: Any, next_value_fn: Callable[[th.Tensor], th.Tensor],
                          discounts: th.Tensor | float) -> tuple[th.Tensor, th.Tensor, th.Tensor | None]:
        """(TD target (B,1), detached target goal-gradient (B,...), sparse mask (B,) or None)."""
        goal = replay_data.next_observations[self.goal_key]
        target, target_grad = gg.target_and_goal_gradient(
            next_value_fn, goal, replay_data.rewards, replay_data.dones, discounts)
        if self.reengage_mode == "dense":
            target_grad = target_grad + gg.reward_goal_gradient(
                self.reward_fn, replay_data.next_observations["achieved_goal"], goal)
            mask = None
        else:
            mask = gg.sparse_mask(replay_data.rewards, self.c_low)
        return target, target_grad, mask


def with_goal(obs: dict[str, th.Tensor], key: str, goal: th.Tensor) -> dict[str, th.Tensor]:
    """A shallow copy of a Dict observation batch with ``obs[key]`` replaced by ``goal``."""
    out = dict(obs)
    out[key] = goal
    return out

"""ReenGAGE for DQN (thesis App. G.2): discrete actions, soft target for the gradient term only.

    SoftQTarget(s', g) = R(s', g) + gamma * sum_a softmax(Q_theta'(s', g) / tau)_a * Q_theta',a(s', g)
    L = Huber(Q_theta,a(s, g), R + gamma * max_a Q_theta',a(s', g))
        + alpha * || grad_g Q_theta,a(s, g) - grad_g SoftQTarget(s', g) ||^2          (sparse: masked to R = c_low)

``softmax_tau`` is the tau above (``tau`` is taken by SB3's polyak coefficient); ``softmax_tau=0`` is the hard
target (gradient of Q' at the arg max). ``alpha=0`` runs SB3's own ``train()``. Same alpha convention as
:mod:`rlcert.agents.goal_gradient` (squared l2 norm, batch mean).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch as th
from stable_baselines3 import DQN
from torch.nn import functional as F

from rlcert.agents import goal_gradient as gg
from rlcert.agents.common import ReenGAGEMixin, with_goal


def soft_value(q: th.Tensor, softmax_tau: float) -> th.Tensor:
    """sum_a softmax(q / tau)_a q_a  (B, A) -> (B, 1); tau = 0 gives max_a q_a."""
    if softmax_tau == 0:
        return q.max(dim=1, keepdim=True)[0]
    return (th.softmax(q / softmax_tau, dim=1) * q).sum(dim=1, keepdim=True)


def hard_target_and_soft_goal_gradient(
    next_q_fn, goal: th.Tensor, rewards: th.Tensor, dones: th.Tensor, discounts: th.Tensor | float,
    softmax_tau: float,
) -> tuple[th.Tensor, th.Tensor]:
    """One target forward: hard TD target ``R + (1-done) disc max_a Q'`` (B, 1) and the detached goal-gradient of
    the soft target ``(1-done) disc d/dg sum_a softmax(Q'/tau)_a Q'_a`` (B, d). ``next_q_fn(g) -> (B, A)``."""
    g = gg.make_goal_leaf(goal)
    with th.enable_grad():
        next_q = next_q_fn(g)
        (soft_grad,) = th.autograd.grad(soft_value(next_q, softmax_tau).sum(), g)
    scale = (1 - dones) * discounts
    return rewards + scale * next_q.detach().max(dim=1, keepdim=True)[0], scale * soft_grad


class ReenGAGEDQN(ReenGAGEMixin, DQN):
    """DQN + ReenGAGE. Extra kwargs: alpha, softmax_tau (>= 0), reengage_mode, c_low, reward_fn, goal_key,
    goal_weighting."""

    def __init__(self, *args: Any, alpha: float = 1.0, softmax_tau: float = 0.5, reengage_mode: str = "sparse",
                 c_low: float = -1.0, reward_fn: Callable[[th.Tensor, th.Tensor], th.Tensor] | None = None,
                 goal_key: str = "desired_goal", goal_weighting: str | None = None,
                 goal_reduction: str = "sum", **kwargs: Any) -> None:
        if not np.isfinite(softmax_tau) or softmax_tau < 0:
            raise ValueError(f"softmax_tau must be a finite number >= 0, got {softmax_tau!r}")
        self.softmax_tau = float(softmax_tau)
        self._setup_reengage(alpha, reengage_mode, c_low, reward_fn, goal_key, goal_weighting, goal_reduction)
        super().__init__(*args, **kwargs)

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        if self.alpha == 0:
            return super().train(gradient_steps, batch_size)  # stock SB3 code path
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        losses, reengage_losses = [], []
        for _ in range(gradient_steps):
            replay_data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
            self._check_reengage_setup(replay_data.observations)
            discounts = replay_data.discounts if replay_data.discounts is not None else self.gamma
            goal_next = replay_data.next_observations[self.goal_key]
            target_q, target_grad = hard_target_and_soft_goal_gradient(
                lambda g, rd=replay_data: self.q_net_target(with_goal(rd.next_observations, self.goal_key, g)),
                goal_next, replay_data.rewards, replay_data.dones, discounts, self.softmax_tau)
            if self.reengage_mode == "dense":
                target_grad = target_grad + gg.reward_goal_gradient(
                    self.reward_fn, replay_data.next_observations["achieved_goal"], goal_next)
                mask = None
            else:
                mask = gg.sparse_mask(replay_data.rewards, self.c_low)

            g = gg.make_goal_leaf(replay_data.observations[self.goal_key])
            current_q = self.q_net(with_goal(replay_data.observations, self.goal_key, g))
            current_q = th.gather(current_q, dim=1, index=replay_data.actions.long())
            (grad_q,) = gg.critic_goal_gradient([current_q], [g])
            weight = self._goal_weight(replay_data.observations[self.goal_key])
            td_loss = F.smooth_l1_loss(current_q, target_q)
            reengage_loss = gg.reengage_penalty(grad_q, target_grad, mask, weight, self.goal_reduction)
            loss = td_loss + self.alpha * reengage_loss
            losses.append(td_loss.item())
            reengage_losses.append(reengage_loss.item())
            self.policy.optimizer.zero_grad()
            loss.backward()
            th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
            self.policy.optimizer.step()
        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/loss", np.mean(losses))
        self.logger.record("train/reengage_loss", np.mean(reengage_losses))

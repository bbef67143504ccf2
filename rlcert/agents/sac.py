"""ReenGAGE for SAC (thesis App. G.5): the goal-gradient of the soft TD target

    y = R + gamma * (min_j Q_theta'_j(s', a', g) - ent_coef * log pi(a'|s', g)),   a' ~ pi(.|s', g) reparameterised

is taken as a total derivative through the reparameterised action a' and the entropy term (both depend on g),
detached, and matched by every critic of the ensemble. ``alpha=0`` runs SB3's own ``train()``.
The penalty is added as ``alpha * sum_j penalty_j`` next to SB3's ``0.5 * sum_j mse(Q_j, y)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch as th
from stable_baselines3 import SAC
from stable_baselines3.common.utils import polyak_update
from torch.nn import functional as F

from rlcert.agents import goal_gradient as gg
from rlcert.agents.common import ReenGAGEMixin, with_goal
from rlcert.agents.sb3_steps import sac_entropy_step
from rlcert.agents.td3 import _ReenGAGETD3Train


class ReenGAGESAC(ReenGAGEMixin, SAC):
    """SAC + ReenGAGE. Extra kwargs: alpha, reengage_mode, c_low, reward_fn, goal_key, goal_weighting."""

    def __init__(self, *args: Any, alpha: float = 0.2, reengage_mode: str = "sparse", c_low: float = -1.0,
                 reward_fn: Callable[[th.Tensor, th.Tensor], th.Tensor] | None = None,
                 goal_key: str = "desired_goal", goal_weighting: str | None = None,
                 goal_reduction: str = "sum", **kwargs: Any) -> None:
        self._setup_reengage(alpha, reengage_mode, c_low, reward_fn, goal_key, goal_weighting, goal_reduction)
        super().__init__(*args, **kwargs)
        if self.alpha > 0 and self.policy_kwargs.get("share_features_extractor", False):
            raise ValueError("ReenGAGE needs share_features_extractor=False")

    critic_values_with_goal_leaves = _ReenGAGETD3Train.critic_values_with_goal_leaves

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        if self.alpha == 0:
            return super().train(gradient_steps, batch_size)  # stock SB3 code path
        self.policy.set_training_mode(True)
        optimizers = [self.actor.optimizer, self.critic.optimizer]
        if self.ent_coef_optimizer is not None:
            optimizers += [self.ent_coef_optimizer]
        self._update_learning_rate(optimizers)
        ent_coef_losses, ent_coefs, actor_losses, critic_losses, reengage_losses = [], [], [], [], []
        for gradient_step in range(gradient_steps):
            replay_data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
            self._check_reengage_setup(replay_data.observations)
            discounts = replay_data.discounts if replay_data.discounts is not None else self.gamma
            if self.use_sde:
                self.actor.reset_noise()
            actions_pi, log_prob = self.actor.action_log_prob(replay_data.observations)
            log_prob = log_prob.reshape(-1, 1)
            ent_coef, ent_coef_loss = sac_entropy_step(self, log_prob)
            if ent_coef_loss is not None:
                ent_coef_losses.append(ent_coef_loss)
            ent_coefs.append(ent_coef.item())

            def next_value(g: th.Tensor, replay_data=replay_data, ent_coef=ent_coef) -> th.Tensor:
                next_obs = with_goal(replay_data.next_observations, self.goal_key, g)
                next_actions, next_log_prob = self.actor.action_log_prob(next_obs)  # reparameterised in g
                next_q = th.cat(self.critic_target(next_obs, next_actions), dim=1)
                next_q = th.min(next_q, dim=1, keepdim=True)[0]
                return next_q - ent_coef.detach() * next_log_prob.reshape(-1, 1)

            target_q, target_grad, mask = self._reengage_targets(replay_data, next_value, discounts)
            current_q, goals = self.critic_values_with_goal_leaves(replay_data.observations, replay_data.actions)
            grads_q = gg.critic_goal_gradient(current_q, goals)
            weight = self._goal_weight(replay_data.observations[self.goal_key])
            td_loss = 0.5 * sum(F.mse_loss(q, target_q) for q in current_q)
            reengage_loss = sum(gg.reengage_penalty(gq, target_grad, mask, weight, self.goal_reduction)
                                for gq in grads_q)
            critic_loss = td_loss + self.alpha * reengage_loss
            critic_losses.append(td_loss.item())
            reengage_losses.append(reengage_loss.item())
            self.critic.optimizer.zero_grad()
            critic_loss.backward()
            self.critic.optimizer.step()

            q_values_pi = th.cat(self.critic(replay_data.observations, actions_pi), dim=1)
            min_qf_pi, _ = th.min(q_values_pi, dim=1, keepdim=True)
            actor_loss = (ent_coef * log_prob - min_qf_pi).mean()
            actor_losses.append(actor_loss.item())
            self.actor.optimizer.zero_grad()
            actor_loss.backward()
            self.actor.optimizer.step()
            if gradient_step % self.target_update_interval == 0:
                polyak_update(self.critic.parameters(), self.critic_target.parameters(), self.tau)
                polyak_update(self.batch_norm_stats, self.batch_norm_stats_target, 1.0)

        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/ent_coef", np.mean(ent_coefs))
        self.logger.record("train/actor_loss", np.mean(actor_losses))
        self.logger.record("train/critic_loss", np.mean(critic_losses))
        self.logger.record("train/reengage_loss", np.mean(reengage_losses))
        if ent_coef_losses:
            self.logger.record("train/ent_coef_loss", np.mean(ent_coef_losses))

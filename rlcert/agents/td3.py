"""ReenGAGE for DDPG and TD3: SB3's algorithms whose critic loss gains the goal-gradient term (thesis Eq. 8.8/8.9).

>>> model = ReenGAGEDDPG("MultiInputPolicy", env, alpha=0.2, replay_buffer_class=HerReplayBuffer)

``alpha=0`` runs SB3's own ``train()`` (bit-identical to stock DDPG/TD3). For ``alpha > 0`` :meth:`train` is
SB3's TD3 update with the critic loss ``sum_j mse(Q_j, y) + alpha * sum_j penalty_j`` (every critic of the
ensemble gets the term); n-step ``discounts``, polyak updates, batch-norm copies and logging keys are kept,
plus ``train/reengage_loss`` and ``train/reengage_mask_frac``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch as th
from stable_baselines3 import DDPG, TD3
from torch.nn import functional as F

from rlcert.agents import goal_gradient as gg
from rlcert.agents.common import ReenGAGEMixin, with_goal
from rlcert.agents.sb3_steps import td3_actor_step_and_polyak


class _ReenGAGETD3Train(ReenGAGEMixin):
    def __init__(self, *args: Any, alpha: float = 0.2, reengage_mode: str = "sparse", c_low: float = -1.0,
                 reward_fn: Callable[[th.Tensor, th.Tensor], th.Tensor] | None = None,
                 goal_key: str = "desired_goal", goal_weighting: str | None = None,
                 goal_reduction: str = "sum", through_target_actor: bool = True,
                 **kwargs: Any) -> None:
        self._setup_reengage(alpha, reengage_mode, c_low, reward_fn, goal_key, goal_weighting, goal_reduction)
        # Ablation only: False takes the partial derivative (target actor's goal input detached). The spec and the
        # thesis use the total derivative (True).
        self.through_target_actor = bool(through_target_actor)
        super().__init__(*args, **kwargs)
        if self.alpha > 0 and self.policy_kwargs.get("share_features_extractor", False):
            raise ValueError("ReenGAGE needs share_features_extractor=False (SB3 runs a shared critic extractor "
                             "without gradients)")

    def critic_values_with_goal_leaves(self, obs: dict[str, th.Tensor], actions: th.Tensor
                                       ) -> tuple[list[th.Tensor], list[th.Tensor]]:
        """Each critic's Q(s, a, g) (B, 1) computed from its own goal leaf (B, d); returns (values, leaves)."""
        critic = self.critic
        values, leaves = [], []
        for q_net in critic.q_networks:
            g = gg.make_goal_leaf(obs[self.goal_key])
            features = critic.extract_features(with_goal(obs, self.goal_key, g), critic.features_extractor)
            values.append(q_net(th.cat([features, actions], dim=1)))
            leaves.append(g)
        return values, leaves

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        if self.alpha == 0:
            return super().train(gradient_steps, batch_size)  # stock SB3 code path
        self.policy.set_training_mode(True)
        self._update_learning_rate([self.actor.optimizer, self.critic.optimizer])
        actor_losses, critic_losses, reengage_losses, mask_fracs = [], [], [], []
        for _ in range(gradient_steps):
            self._n_updates += 1
            replay_data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
            self._check_reengage_setup(replay_data.observations)
            discounts = replay_data.discounts if replay_data.discounts is not None else self.gamma
            noise = replay_data.actions.clone().data.normal_(0, self.target_policy_noise)
            noise = noise.clamp(-self.target_noise_clip, self.target_noise_clip)

            def next_value(g: th.Tensor, replay_data=replay_data, noise=noise) -> th.Tensor:
                next_obs = with_goal(replay_data.next_observations, self.goal_key, g)
                actor_obs = next_obs if self.through_target_actor else replay_data.next_observations
                next_actions = (self.actor_target(actor_obs) + noise).clamp(-1, 1)  # total derivative via actor
                next_q = th.cat(self.critic_target(next_obs, next_actions), dim=1)
                return th.min(next_q, dim=1, keepdim=True)[0]

            target_q, target_grad, mask = self._reengage_targets(replay_data, next_value, discounts)
            current_q, goals = self.critic_values_with_goal_leaves(replay_data.observations, replay_data.actions)
            grads_q = gg.critic_goal_gradient(current_q, goals)
            weight = self._goal_weight(replay_data.observations[self.goal_key])
            td_loss = sum(F.mse_loss(q, target_q) for q in current_q)
            reengage_loss = sum(gg.reengage_penalty(gq, target_grad, mask, weight, self.goal_reduction)
                                for gq in grads_q)
            critic_loss = td_loss + self.alpha * reengage_loss
            critic_losses.append(td_loss.item())
            reengage_losses.append(reengage_loss.item())
            mask_fracs.append(1.0 if mask is None else mask.mean().item())

            self.critic.optimizer.zero_grad()
            critic_loss.backward()
            self.critic.optimizer.step()

            if self._n_updates % self.policy_delay == 0:
                actor_loss = -self.critic.q1_forward(replay_data.observations,
                                                     self.actor(replay_data.observations)).mean()
                actor_losses.append(td3_actor_step_and_polyak(self, actor_loss))

        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        if actor_losses:
            self.logger.record("train/actor_loss", np.mean(actor_losses))
        self.logger.record("train/critic_loss", np.mean(critic_losses))
        self.logger.record("train/reengage_loss", np.mean(reengage_losses))
        self.logger.record("train/reengage_mask_frac", np.mean(mask_fracs))


class ReenGAGETD3(_ReenGAGETD3Train, TD3):
    """TD3 + ReenGAGE. Extra kwargs: alpha, reengage_mode, c_low, reward_fn, goal_key, goal_weighting."""


class ReenGAGEDDPG(_ReenGAGETD3Train, DDPG):
    """DDPG + ReenGAGE (thesis Ch. 8). Extra kwargs: alpha, reengage_mode, c_low, reward_fn, goal_key,
    goal_weighting (see :class:`rlcert.agents.common.ReenGAGEMixin`); through_target_actor=False is an ablation
    (partial instead of total target derivative)."""

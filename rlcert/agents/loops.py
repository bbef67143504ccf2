"""SB3's ``train()`` for the TD3 family (DDPG, TD3), SAC and DQN, each written once around the critic-loss hook.

Each loop follows Stable-Baselines3 2.9's own ``train()`` line by line (same random draws in the same order, the
same float expressions, n-step ``discounts``, polyak and batch-norm copies, logging keys); the only change is that
the critic's values, TD target and extra loss come from ``algo.critic_loss_terms`` (:mod:`rlcert.agents.core`):

    TD3 family:  critic loss = sum_j mse(Q_j, y) + alpha * sum_j E_j
    SAC:         critic loss = 0.5 * (sum_j mse(Q_j, y) + alpha * sum_j E_j)       (the authors' SAC, spec §2)
    DQN:         loss = Huber(Q_a, y) + alpha * E                                   (soft target for E only)

With alpha = 0 the hook returns SB3's own values and no extra term, so the update is stock SB3's bit for bit.
Extra log keys: ``train/reengage_loss`` (E summed over critics) and ``train/reengage_mask_frac``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.utils import polyak_update
from torch.nn import functional as F


class TD3NextValue:
    """x -> min_j Q'_j(s'(x), clamp(pi'(s'(x)) + noise, -1, 1)) (B, 1): TD3's bootstrap value as a function of the
    differentiated input x of the next observation (the target actor sees x too unless ``through_target_actor``
    is False, the "partial" target gradient). Families may compute its gradient in closed form from ``noise``."""

    def __init__(self, algo: Any, next_obs: dict[str, th.Tensor], noise: th.Tensor) -> None:
        self.algo, self.next_obs, self.noise = algo, next_obs, noise

    def __call__(self, x: Any) -> th.Tensor:
        algo, next_obs = self.algo, self.next_obs
        features = algo._features(algo.critic_target, next_obs, x)
        actor_features = algo._actor_features(algo.actor_target, algo.critic_target, next_obs, x, features)
        next_actions = (algo._act(algo.actor_target, actor_features) + self.noise).clamp(-1, 1)
        next_q_values = th.cat(algo._q(algo.critic_target, features, next_actions), dim=1)
        next_q_values, _ = th.min(next_q_values, dim=1, keepdim=True)
        return next_q_values


td3_next_value = TD3NextValue


def sac_next_value(algo: Any, next_obs: dict[str, th.Tensor], ent_coef: th.Tensor) -> Callable[[Any], th.Tensor]:
    """x -> min_j Q'_j(s'(x), a') - ent_coef log pi(a' | s'(x)) (B, 1), a' one reparameterised sample of the
    current policy at s'(x): the soft value, differentiable in x through a', the entropy term and Q'."""

    def value(x: Any) -> th.Tensor:
        features = algo._features(algo.critic_target, next_obs, x)
        actor_features = algo._actor_features(algo.actor, algo.critic_target, next_obs, x, features)
        next_actions, next_log_prob = algo._act_log_prob(algo.actor, actor_features)
        next_q_values = th.cat(algo._q(algo.critic_target, features, next_actions), dim=1)
        next_q_values, _ = th.min(next_q_values, dim=1, keepdim=True)
        return next_q_values - ent_coef * next_log_prob.reshape(-1, 1)

    return value


def actor_step(optimizer: th.optim.Optimizer, loss: th.Tensor) -> None:
    """``zero_grad(); loss.backward(); step()`` for the actor's optimiser, computing gradients for the actor's own
    parameters only: SB3's ``backward()`` also fills the critic's ``.grad`` with actor-loss gradients that the next
    critic step discards (``zero_grad`` first), about a sixth of a DDPG update. Same actor update, bit for bit."""
    params = [p for group in optimizer.param_groups for p in group["params"] if p.requires_grad]
    optimizer.zero_grad()
    for p, g in zip(params, th.autograd.grad(loss, params, allow_unused=True)):
        p.grad = g
    optimizer.step()


def _plus_extra(algo: Any, loss: th.Tensor, extra: th.Tensor | None, extra_losses: list[float],
                mask_fracs: list[float]) -> th.Tensor:
    """``loss + alpha * extra`` (``loss`` itself when the hook gave no extra term), logging the extra term."""
    if extra is None:
        return loss
    extra_losses.append(extra.item())
    mask_fracs.append(algo._last_mask_frac)
    return loss + algo.alpha * extra


def _record_extra(algo: Any, extra_losses: list[float], mask_fracs: list[float]) -> None:
    if extra_losses:
        algo.logger.record(algo._extra_log_key, np.mean(extra_losses))
        algo.logger.record("train/reengage_mask_frac", np.mean(mask_fracs))


class TD3FamilyLoop:
    """SB3's TD3 ``train()`` (DDPG is TD3 with one critic, no smoothing, no delay) with the critic-loss hook."""

    def train(self: Any, gradient_steps: int, batch_size: int = 100) -> None:
        self.policy.set_training_mode(True)
        self._update_learning_rate([self.actor.optimizer, self.critic.optimizer])
        actor_losses, critic_losses, extra_losses, mask_fracs = [], [], [], []
        for _ in range(gradient_steps):
            self._n_updates += 1
            replay_data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
            discounts = replay_data.discounts if replay_data.discounts is not None else self.gamma
            with th.no_grad():
                noise = replay_data.actions.clone().data.normal_(0, self.target_policy_noise)
                noise = noise.clamp(-self.target_noise_clip, self.target_noise_clip)
            next_value = td3_next_value(self, replay_data.next_observations, noise)
            current_q_values, target_q_values, extra = self.critic_loss_terms(replay_data, discounts, next_value)
            critic_loss = sum(F.mse_loss(current_q, target_q_values) for current_q in current_q_values)
            critic_losses.append(critic_loss.item())
            critic_loss = _plus_extra(self, critic_loss, extra, extra_losses, mask_fracs)

            self.critic.optimizer.zero_grad()
            critic_loss.backward()
            self.critic.optimizer.step()

            if self._n_updates % self.policy_delay == 0:
                actor_loss = -self._actor_q1(replay_data.observations).mean()
                actor_losses.append(actor_loss.item())
                actor_step(self.actor.optimizer, actor_loss)
                polyak_update(self.critic.parameters(), self.critic_target.parameters(), self.tau)
                polyak_update(self.actor.parameters(), self.actor_target.parameters(), self.tau)
                polyak_update(self.critic_batch_norm_stats, self.critic_batch_norm_stats_target, 1.0)
                polyak_update(self.actor_batch_norm_stats, self.actor_batch_norm_stats_target, 1.0)

        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        if len(actor_losses) > 0:
            self.logger.record("train/actor_loss", np.mean(actor_losses))
        self.logger.record("train/critic_loss", np.mean(critic_losses))
        _record_extra(self, extra_losses, mask_fracs)


class SACLoop:
    """SB3's SAC ``train()`` with the critic-loss hook; the whole critic loss, extra term included, is halved."""

    def train(self: Any, gradient_steps: int, batch_size: int = 64) -> None:
        self.policy.set_training_mode(True)
        optimizers = [self.actor.optimizer, self.critic.optimizer]
        if self.ent_coef_optimizer is not None:
            optimizers += [self.ent_coef_optimizer]
        self._update_learning_rate(optimizers)
        ent_coef_losses, ent_coefs, actor_losses, critic_losses, extra_losses, mask_fracs = [], [], [], [], [], []
        for gradient_step in range(gradient_steps):
            replay_data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
            discounts = replay_data.discounts if replay_data.discounts is not None else self.gamma
            if self.use_sde:
                self.actor.reset_noise()
            obs = replay_data.observations
            actions_pi, log_prob = self._act_log_prob(self.actor, self._features(self.actor, obs, None))
            log_prob = log_prob.reshape(-1, 1)

            ent_coef_loss = None
            if self.ent_coef_optimizer is not None and self.log_ent_coef is not None:
                ent_coef = th.exp(self.log_ent_coef.detach())
                ent_coef_loss = -(self.log_ent_coef * (log_prob + self.target_entropy).detach()).mean()
                ent_coef_losses.append(ent_coef_loss.item())
            else:
                ent_coef = self.ent_coef_tensor
            ent_coefs.append(ent_coef.item())
            if ent_coef_loss is not None and self.ent_coef_optimizer is not None:
                self.ent_coef_optimizer.zero_grad()
                ent_coef_loss.backward()
                self.ent_coef_optimizer.step()

            next_value = sac_next_value(self, replay_data.next_observations, ent_coef)
            current_q_values, target_q_values, extra = self.critic_loss_terms(replay_data, discounts, next_value)
            td_sum = sum(F.mse_loss(current_q, target_q_values) for current_q in current_q_values)
            critic_losses.append((0.5 * td_sum).item())
            critic_loss = 0.5 * _plus_extra(self, td_sum, extra, extra_losses, mask_fracs)

            self.critic.optimizer.zero_grad()
            critic_loss.backward()
            self.critic.optimizer.step()

            q_values_pi = th.cat(self._critic_for_actor(obs, actions_pi), dim=1)
            min_qf_pi, _ = th.min(q_values_pi, dim=1, keepdim=True)
            actor_loss = (ent_coef * log_prob - min_qf_pi).mean()
            actor_losses.append(actor_loss.item())
            actor_step(self.actor.optimizer, actor_loss)

            if gradient_step % self.target_update_interval == 0:
                polyak_update(self.critic.parameters(), self.critic_target.parameters(), self.tau)
                polyak_update(self.batch_norm_stats, self.batch_norm_stats_target, 1.0)

        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/ent_coef", np.mean(ent_coefs))
        self.logger.record("train/actor_loss", np.mean(actor_losses))
        self.logger.record("train/critic_loss", np.mean(critic_losses))
        if len(ent_coef_losses) > 0:
            self.logger.record("train/ent_coef_loss", np.mean(ent_coef_losses))
        _record_extra(self, extra_losses, mask_fracs)


def soft_value(q: th.Tensor, softmax_tau: float) -> th.Tensor:
    """sum_a softmax(q / tau)_a q_a  (B, A) -> (B, 1); tau = 0 gives max_a q_a."""
    if softmax_tau == 0:
        return q.max(dim=1, keepdim=True)[0]
    return (th.softmax(q / softmax_tau, dim=1) * q).sum(dim=1, keepdim=True)


def hard_and_soft_values(q: th.Tensor, softmax_tau: float | None) -> tuple[th.Tensor, th.Tensor]:
    """(max_a q_a as SB3 computes it, soft value) (B, 1) each, from Q-values (B, A); softmax_tau None: (hard, hard)."""
    hard = q.max(dim=1)[0].reshape(-1, 1)
    return hard, (hard if softmax_tau is None else soft_value(q, softmax_tau))


def dqn_next_value(algo: Any, next_obs: dict[str, th.Tensor]) -> Callable[[Any], tuple[th.Tensor, th.Tensor]]:
    """x -> (max_a Q'(s'(x))_a, sum_a softmax(Q'(s'(x)) / softmax_tau)_a Q'_a), both (B, 1): the hard value for the
    TD target, the soft one for the gradient term (thesis App. G.2)."""

    def value(x: Any) -> tuple[th.Tensor, th.Tensor]:
        next_q_values = algo.q_net_target(algo._features(algo.q_net_target, next_obs, x))
        return hard_and_soft_values(next_q_values, algo.softmax_tau if x is not None else None)

    return value


class DQNLoop:
    """SB3's DQN ``train()`` with the critic-loss hook (the "critic" is ``q_net``, Q gathered at the action)."""

    def train(self: Any, gradient_steps: int, batch_size: int = 100) -> None:
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        losses, extra_losses, mask_fracs = [], [], []
        for _ in range(gradient_steps):
            replay_data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
            discounts = replay_data.discounts if replay_data.discounts is not None else self.gamma
            next_value = dqn_next_value(self, replay_data.next_observations)
            (current_q_values,), target_q_values, extra = self.critic_loss_terms(replay_data, discounts, next_value)
            loss = F.smooth_l1_loss(current_q_values, target_q_values)
            losses.append(loss.item())
            loss = _plus_extra(self, loss, extra, extra_losses, mask_fracs)
            self.policy.optimizer.zero_grad()
            loss.backward()
            th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
            self.policy.optimizer.step()
        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/loss", np.mean(losses))
        _record_extra(self, extra_losses, mask_fracs)

"""Multi-ReenGAGE (thesis §8.5, eq. 8.19 / G.18) on Stable-Baselines3 TD3/DDPG and SAC.

Critic loss = SB3's TD loss + alpha * mean_B || dQ/db - (dR/db + gamma (1 - done) dQ'/db) ||^2, where b are the
goal gates (column 0 of ``desired_goal``), dR/db = 2 R_item at real goals (b^2 reward) and dQ'/db is the *total*
derivative of the target through the target actor (SAC: through the reparameterised action and the entropy term),
computed without a second-order graph and detached. ``alpha`` multiplies the squared l2 norm over the n_max gates
averaged over the batch; the thesis' per-element weights a in {5, 10, 20} correspond to alpha = a / n_max.
alpha = 0 is exactly the DDPG/TD3/SAC update with the same (DeepSets) networks.

Item rewards R_item(s', g_i) are recomputed in-process on the sampled batch with ``item_reward_fn`` (default:
``rlcert.envs.item_rewards``, numpy (B, 2), (B, n, 3) -> (B, n)); no HER (use SB3's plain DictReplayBuffer).
Use with ``rlcert.agents.deepsets.DeepSetsTD3Policy`` / ``DeepSetsSACPolicy`` (or the DriveSeek CNN policies).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from stable_baselines3 import DDPG, SAC, TD3
from stable_baselines3.common.utils import polyak_update

from rlcert.agents.gate_gradient import (
    gate_gradient_loss,
    gate_gradient_target,
    q_gate_gradient,
    target_gate_gradient,
)
from rlcert.agents.sb3_steps import sac_entropy_step, td3_actor_step_and_polyak
from rlcert.envs import item_rewards as default_item_rewards

ItemRewardFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _check_alpha(alpha: float) -> float:
    if not np.isfinite(alpha) or alpha < 0:
        raise ValueError(f"alpha must be a finite number >= 0, got {alpha!r}")
    return float(alpha)



def gate_critic_losses(algo: Any, data: Any, target_value: Callable[[torch.Tensor], torch.Tensor],
                       with_gate_loss: bool, td_scale: float) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(td_scale x TD loss summed over critics, gate-gradient loss summed over critics or None) on a replay batch.

    ``target_value(b) -> (B,)`` is the algorithm's target value as a function of the next-state gates b (its total
    dependence, through the target actor); the gate loss is unweighted (no alpha).
    """
    discounts = data.discounts if data.discounts is not None else algo.gamma
    obs, next_obs, not_done = data.observations, data.next_observations, 1 - data.dones
    next_gates = next_obs["desired_goal"][..., 0]
    if with_gate_loss:
        next_v, next_grad = target_gate_gradient(target_value, next_gates)
    else:
        with torch.no_grad():
            next_v = target_value(next_gates)
    target_q = (data.rewards + not_done * discounts * next_v.reshape(-1, 1)).detach()

    gates = obs["desired_goal"][..., 0].clone().requires_grad_(with_gate_loss)
    current_q = algo.critic.heads(obs, algo.critic.embed(obs, gates), data.actions)
    critic_loss = td_scale * sum(F.mse_loss(q, target_q) for q in current_q)
    if not with_gate_loss:
        return critic_loss, None
    grad_target = gate_gradient_target(algo._item_rewards(next_obs), next_gates, next_grad, not_done, discounts)
    return critic_loss, sum(gate_gradient_loss(q_gate_gradient(q, gates), grad_target) for q in current_q)

class _GateGradientMixin:
    """Holds alpha and the item-reward function; computes the batch's item rewards as a tensor."""

    alpha: float
    item_reward_fn: ItemRewardFn

    def _init_gate_gradient(self, alpha: float, item_reward_fn: ItemRewardFn | None) -> None:
        self.alpha = _check_alpha(alpha)
        self.item_reward_fn = default_item_rewards if item_reward_fn is None else item_reward_fn

    def _item_rewards(self, next_obs: dict[str, torch.Tensor]) -> torch.Tensor:
        ag = next_obs["achieved_goal"].cpu().numpy()
        dg = next_obs["desired_goal"].cpu().numpy()
        items = np.asarray(self.item_reward_fn(ag, dg), dtype=np.float32)
        return torch.as_tensor(items, device=next_obs["desired_goal"].device)


class MultiReenGAGETD3(_GateGradientMixin, TD3):
    """TD3 with the Multi-ReenGAGE critic loss (``alpha``; see module docstring); two critics unless
    ``policy_kwargs["n_critics"]`` says otherwise."""

    def __init__(self, *args: Any, alpha: float = 0.05, item_reward_fn: ItemRewardFn | None = None,
                 **kwargs: Any) -> None:
        self._init_gate_gradient(alpha, item_reward_fn)
        kwargs["policy_kwargs"] = {"n_critics": 2, **(kwargs.get("policy_kwargs") or {})}
        super().__init__(*args, **kwargs)

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        self.policy.set_training_mode(True)
        self._update_learning_rate([self.actor.optimizer, self.critic.optimizer])
        actor_losses, critic_losses, gate_losses = [], [], []
        for _ in range(gradient_steps):
            self._n_updates += 1
            data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
            noise = data.actions.clone().data.normal_(0, self.target_policy_noise)
            noise = noise.clamp(-self.target_noise_clip, self.target_noise_clip)
            critic_loss, gate_loss = self.critic_losses(data, noise, with_gate_loss=self.alpha > 0)
            critic_losses.append(critic_loss.item())
            loss = critic_loss
            if gate_loss is not None:
                gate_losses.append(gate_loss.item())
                loss = critic_loss + self.alpha * gate_loss
            self.critic.optimizer.zero_grad()
            loss.backward()
            self.critic.optimizer.step()

            if self._n_updates % self.policy_delay == 0:
                actor_losses.append(td3_actor_step_and_polyak(self, self._actor_loss(data.observations)))

        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        if actor_losses:
            self.logger.record("train/actor_loss", np.mean(actor_losses))
        self.logger.record("train/critic_loss", np.mean(critic_losses))
        if gate_losses:
            self.logger.record("train/gate_gradient_loss", np.mean(gate_losses))

    def critic_losses(self, data: Any, noise: torch.Tensor,
                      with_gate_loss: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(TD loss summed over critics, gate-gradient loss summed over critics or None) on a replay batch.

        ``noise`` (B, A) is the (clipped) target-policy smoothing noise; the gate loss is unweighted (no alpha).
        """
        target_value = functools.partial(self._target_value, data.next_observations, noise=noise)
        return gate_critic_losses(self, data, target_value, with_gate_loss, td_scale=1.0)

    def _target_value(self, next_obs: dict[str, torch.Tensor], b: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """min_j Q'_j(s', clamp(pi'(s', b) + noise), b) (B,): the total dependence on the gates b (B, n)."""
        z = self.critic_target.embed(next_obs, b)
        z_actor = z if self.policy.share_encoder else self.actor_target.embed(next_obs, b)
        next_actions = (self.actor_target.head(next_obs, z_actor) + noise).clamp(-1, 1)
        return torch.cat(self.critic_target.heads(next_obs, z, next_actions), dim=1).min(dim=1).values

    def _actor_loss(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """-Q_1(s, pi(s)); the critic's encoder is evaluated without a graph, so it gets no actor-loss gradient."""
        with torch.no_grad():
            z_critic = self.critic.embed(obs)
        z_actor = z_critic if self.policy.share_encoder else self.actor.embed(obs)
        return -self.critic.heads(obs, z_critic, self.actor.head(obs, z_actor))[0].mean()


class MultiReenGAGEDDPG(_GateGradientMixin, DDPG):
    """DDPG (one critic, no target smoothing, no policy delay) with the Multi-ReenGAGE critic loss."""

    def __init__(self, *args: Any, alpha: float = 0.05, item_reward_fn: ItemRewardFn | None = None,
                 **kwargs: Any) -> None:
        self._init_gate_gradient(alpha, item_reward_fn)
        super().__init__(*args, **kwargs)

    train = MultiReenGAGETD3.train
    critic_losses = MultiReenGAGETD3.critic_losses
    _target_value = MultiReenGAGETD3._target_value
    _actor_loss = MultiReenGAGETD3._actor_loss


class MultiReenGAGESAC(_GateGradientMixin, SAC):
    """SAC with the Multi-ReenGAGE critic loss; the target soft value is differentiated with respect to the gates
    through the reparameterised next action and the entropy term (spec §2.1); applied to every critic."""

    def __init__(self, *args: Any, alpha: float = 0.05, item_reward_fn: ItemRewardFn | None = None,
                 **kwargs: Any) -> None:
        self._init_gate_gradient(alpha, item_reward_fn)
        super().__init__(*args, **kwargs)

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        self.policy.set_training_mode(True)
        optimizers = [self.actor.optimizer, self.critic.optimizer]
        if self.ent_coef_optimizer is not None:
            optimizers += [self.ent_coef_optimizer]
        self._update_learning_rate(optimizers)
        ent_coef_losses, ent_coefs, actor_losses, critic_losses, gate_losses = [], [], [], [], []
        for gradient_step in range(gradient_steps):
            data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
            obs = data.observations
            actions_pi, log_prob = self.actor.action_log_prob(obs)
            log_prob = log_prob.reshape(-1, 1)
            ent_coef, ent_coef_loss = sac_entropy_step(self, log_prob)
            if ent_coef_loss is not None:
                ent_coef_losses.append(ent_coef_loss)
            ent_coefs.append(ent_coef.item())

            critic_loss, gate_loss = self.critic_losses(data, ent_coef, with_gate_loss=self.alpha > 0)
            critic_losses.append(critic_loss.item())
            loss = critic_loss
            if gate_loss is not None:
                gate_losses.append(gate_loss.item())
                loss = critic_loss + self.alpha * gate_loss
            self.critic.optimizer.zero_grad()
            loss.backward()
            self.critic.optimizer.step()

            # Actor: the shared encoder (owned by the critic) is evaluated without a graph for the critic side.
            with torch.no_grad():
                z_critic = self.critic.embed(obs)
            q_pi = torch.cat(self.critic.heads(obs, z_critic, actions_pi), dim=1).min(dim=1, keepdim=True).values
            actor_loss = (ent_coef * log_prob - q_pi).mean()
            actor_losses.append(actor_loss.item())
            self.actor.optimizer.zero_grad()
            actor_loss.backward()
            self.actor.optimizer.step()

            if gradient_step % self.target_update_interval == 0:
                polyak_update(self.critic.parameters(), self.critic_target.parameters(), self.tau)
                polyak_update(self.batch_norm_stats, self.batch_norm_stats_target, 1.0)

        self._n_updates += gradient_steps
        self._log_sac(ent_coefs, actor_losses, critic_losses, ent_coef_losses, gate_losses)

    def critic_losses(self, data: Any, ent_coef: torch.Tensor,
                      with_gate_loss: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(0.5 x TD loss summed over critics, gate-gradient loss summed over critics or None) on a replay batch."""
        target_value = functools.partial(self._target_value, data.next_observations, ent_coef=ent_coef)
        return gate_critic_losses(self, data, target_value, with_gate_loss, td_scale=0.5)

    def _target_value(self, next_obs: dict[str, torch.Tensor], b: torch.Tensor,
                      ent_coef: torch.Tensor) -> torch.Tensor:
        """min_j Q'_j(s', a'(b), b) - ent_coef log pi(a'(b) | s', b) (B,), a' one reparameterised sample."""
        next_actions, next_log_prob = self.actor.sample(next_obs, self.actor.embed(next_obs, b))
        z = self.critic_target.embed(next_obs, b)
        q = torch.cat(self.critic_target.heads(next_obs, z, next_actions), dim=1).min(dim=1).values
        return q - ent_coef * next_log_prob.reshape(-1)

    def _log_sac(self, ent_coefs: list, actor_losses: list, critic_losses: list, ent_coef_losses: list,
                 gate_losses: list) -> None:
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/ent_coef", np.mean(ent_coefs))
        self.logger.record("train/actor_loss", np.mean(actor_losses))
        self.logger.record("train/critic_loss", np.mean(critic_losses))
        if ent_coef_losses:
            self.logger.record("train/ent_coef_loss", np.mean(ent_coef_losses))
        if gate_losses:
            self.logger.record("train/gate_gradient_loss", np.mean(gate_losses))

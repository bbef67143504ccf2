"""Multi-ReenGAGE (thesis §8.5, eq. 8.19 / G.18) on Stable-Baselines3 DDPG/TD3 and SAC.

The same loops and critic-loss hook as ReenGAGE (:mod:`rlcert.agents.loops`, :mod:`rlcert.agents.core`); only the
differentiated input changes: the goal gates b (column 0 of ``desired_goal``, (B, n_max)) instead of the goal, and
the reward gradient is dR/db = 2 b R_item (the b^2 reward; 2 R_item at real goals, 0 at padding):

    critic loss = TD loss + alpha * mean_{batch, gates} ( dQ/db - [dR/db + gamma (1 - done) dQ'/db] )^2     (per critic)

(SAC: 0.5 * (TD + alpha * error)). ``alpha`` is the coefficient of the mean over the batch and the n_max gates
(``goal_reduction="mean"``, the published convention: thesis values 5, 10, 20; NoisySeek also 50, 100);
``goal_reduction="sum"`` is the squared norm over the gates. dQ'/db is the **total** derivative of the target
through the target actor (``through_target_actor=True``, the thesis' formula; SAC: through the reparameterised
action and the entropy term) or the **partial** one through Q' only (False, as in the authors' runs, whose actor
reads the shared embedding without gradient); computed without a second-order graph and detached.
alpha = 0 is stock DDPG/TD3/SAC with the same (DeepSets) networks, bit for bit.

Item rewards R_item(s', g_i) are recomputed in-process on the sampled batch with ``item_reward_fn`` (default:
``rlcert.envs.item_rewards``, numpy (B, 2), (B, n, 3) -> (B, n)); no HER (use SB3's plain DictReplayBuffer).
Use with ``rlcert.agents.deepsets.DeepSetsTD3Policy`` / ``DeepSetsSACPolicy`` (or the DriveSeek CNN policy).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from stable_baselines3 import DDPG, SAC, TD3

from rlcert.agents.core import GradientMatching, Obs
from rlcert.agents.loops import SACLoop, TD3FamilyLoop
from rlcert.envs import item_rewards as default_item_rewards

ItemRewardFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
Features = tuple[Obs, torch.Tensor]  # (observation, pooled goal-set embedding z)


def reward_gate_gradient(item_rewards: torch.Tensor, gates: torch.Tensor) -> torch.Tensor:
    """dR/db for R = sum_i b_i^2 R_item(s', g_i): 2 b_i R_item, i.e. 2 R_item at real goals and 0 at padding."""
    return 2.0 * gates * item_rewards


class GateInput(GradientMatching):
    """Multi-ReenGAGE: the differentiated input is the gates b; networks are DeepSets (heads on (s, z))."""

    _extra_log_key = "train/gate_gradient_loss"

    def __init__(self, *args: Any, alpha: float = 10.0, item_reward_fn: ItemRewardFn | None = None,
                 goal_reduction: str = "mean", through_target_actor: bool = True, **kwargs: Any) -> None:
        self._setup_matching(alpha, goal_reduction, through_target_actor, kwargs)
        self.item_reward_fn = default_item_rewards if item_reward_fn is None else item_reward_fn
        super().__init__(*args, **kwargs)

    def _convert_convention_1(self) -> None:
        self.policy_kwargs = {**self.policy_kwargs, "pooling": "sum"}  # type: ignore[has-type]
        super()._convert_convention_1()

    def _x_of(self, obs: Obs) -> torch.Tensor:
        return obs["desired_goal"][..., 0]

    def _features(self, net: Any, obs: Obs, x: torch.Tensor | None) -> Features:
        return obs, net.embed(obs, x)

    def _actor_features(self, actor: Any, critic: Any, obs: Obs, x: torch.Tensor | None,
                        critic_features: Features) -> Features:
        partial = x is not None and not self.through_target_actor
        if actor.features.goal_encoder is critic.encoder:  # shared encoder: one embedding serves both
            z = critic_features[1]
            return obs, (z.detach() if partial else z)
        return obs, actor.embed(obs, x.detach() if partial else x)

    def _act(self, actor: Any, features: Features) -> torch.Tensor:
        return actor.head(*features)

    def _act_log_prob(self, actor: Any, features: Features) -> tuple[torch.Tensor, torch.Tensor]:
        return actor.sample(*features)

    def _q(self, critic: Any, features: Features, actions: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return critic.heads(features[0], features[1], actions)

    def _critic_for_actor(self, obs: Obs, actions: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Q(s, a) for the actor loss; the critic's encoder runs without a graph (trained by the critic loss only)."""
        with torch.no_grad():
            z = self.critic.embed(obs)  # type: ignore[attr-defined]
        return self.critic.heads(obs, z, actions)  # type: ignore[attr-defined]

    def _actor_q1(self, obs: Obs) -> torch.Tensor:
        """Q_1(s, pi(s)); the critic's encoder runs without a graph, so it gets no actor-loss gradient."""
        critic, actor = self.critic, self.actor  # type: ignore[attr-defined]
        with torch.no_grad():
            z_critic = critic.embed(obs)
        z_actor = z_critic if actor.features.goal_encoder is critic.encoder else actor.embed(obs)
        return critic.heads(obs, z_critic, actor.head(obs, z_actor))[0]

    def _reward_gradient_and_mask(self, data: Any, x_next: torch.Tensor) -> tuple[torch.Tensor, None]:
        next_obs = data.next_observations
        items = self.item_reward_fn(next_obs["achieved_goal"].cpu().numpy(), next_obs["desired_goal"].cpu().numpy())
        items = torch.as_tensor(np.asarray(items), dtype=x_next.dtype, device=x_next.device)
        return reward_gate_gradient(items, x_next), None


class MultiReenGAGEDDPG(GateInput, TD3FamilyLoop, DDPG):
    """DDPG (one critic, no target smoothing, no policy delay) with the Multi-ReenGAGE critic loss. Extra kwargs:
    alpha (default 10, the thesis' middle value), item_reward_fn, goal_reduction, through_target_actor."""


class MultiReenGAGETD3(GateInput, TD3FamilyLoop, TD3):
    """TD3 with the Multi-ReenGAGE critic loss; two critics unless ``policy_kwargs["n_critics"]`` says otherwise."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["policy_kwargs"] = {"n_critics": 2, **(kwargs.get("policy_kwargs") or {})}
        super().__init__(*args, **kwargs)


class MultiReenGAGESAC(GateInput, SACLoop, SAC):
    """SAC with the Multi-ReenGAGE critic loss: 0.5 * (TD + alpha * error) per critic; the target soft value is
    differentiated with respect to the gates through the reparameterised next action and the entropy term."""

    def _convert_convention_1(self) -> None:
        self.alpha *= 2.0  # convention 1: 0.5 * TD + alpha * E  ==  0.5 * (TD + 2 alpha * E)
        super()._convert_convention_1()

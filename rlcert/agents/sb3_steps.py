"""The parts of SB3's TD3 and SAC ``train()`` that ReenGAGE and Multi-ReenGAGE keep unchanged.

Both agent families override ``train()`` only to add a term to the critic loss; these helpers hold the steps
around it, written once and in SB3's order (so that ``alpha = 0`` stays bit-identical to stock SB3).
"""

from __future__ import annotations

from typing import Any

import torch as th
from stable_baselines3.common.utils import polyak_update


def td3_actor_step_and_polyak(algo: Any, actor_loss: th.Tensor) -> float:
    """One actor optimiser step on ``actor_loss``, then SB3's TD3 polyak updates (networks and batch-norm stats).

    Returns the actor loss as a float, for logging.
    """
    value = actor_loss.item()
    algo.actor.optimizer.zero_grad()
    actor_loss.backward()
    algo.actor.optimizer.step()
    polyak_update(algo.critic.parameters(), algo.critic_target.parameters(), algo.tau)
    polyak_update(algo.actor.parameters(), algo.actor_target.parameters(), algo.tau)
    polyak_update(algo.critic_batch_norm_stats, algo.critic_batch_norm_stats_target, 1.0)
    polyak_update(algo.actor_batch_norm_stats, algo.actor_batch_norm_stats_target, 1.0)
    return value


def sac_entropy_step(algo: Any, log_prob: th.Tensor) -> tuple[th.Tensor, float | None]:
    """SB3 SAC's entropy-coefficient step: returns (ent_coef to use this step, entropy loss or None).

    ``log_prob`` (B, 1) is log pi(a|s) of the current policy's reparameterised actions; with a learned
    coefficient, one optimiser step is taken on -log_alpha * (log_prob + target_entropy).
    """
    if algo.ent_coef_optimizer is None or algo.log_ent_coef is None:
        return algo.ent_coef_tensor, None
    ent_coef = th.exp(algo.log_ent_coef.detach())
    ent_coef_loss = -(algo.log_ent_coef * (log_prob + algo.target_entropy).detach()).mean()
    algo.ent_coef_optimizer.zero_grad()
    ent_coef_loss.backward()
    algo.ent_coef_optimizer.step()
    return ent_coef, ent_coef_loss.item()

"""Learning smoke test: the gate-gradient term teaches the critic which goals pay off (gamma = 0, DriveSeek)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

import rlcert  # noqa: F401
from rlcert.agents.deepsets import DeepSetsTD3Policy
from rlcert.agents.multi_reengage import MultiReenGAGEDDPG
from rlcert.envs import item_rewards

torch.set_num_threads(1)

TINY = {"embed_dim": 8, "encoder_arch": [32, 32], "head_arch": [32]}


def _held_out_losses(model: MultiReenGAGEDDPG, batch) -> tuple[float, float]:
    """(TD loss, gate loss) computed here from scratch: with gamma = 0 the targets are R and 2 R_item."""
    obs, nxt = batch.observations, batch.next_observations
    gates = obs["desired_goal"][..., 0].clone().requires_grad_(True)
    q = model.critic(obs, batch.actions, gates)[0]
    (grad,) = torch.autograd.grad(q.sum(), gates)
    items = torch.as_tensor(item_rewards(nxt["achieved_goal"].numpy(), nxt["desired_goal"].numpy()))
    td = ((q - batch.rewards) ** 2).mean().item()
    return td, ((grad - 2 * items) ** 2).sum(-1).mean().item()


def test_gate_term_fits_item_rewards_on_a_fixed_batch():
    """With gamma = 0 the gate target is exactly 2 R_item(s', g): on one fixed replay batch (DriveSeek, dense
    goals) the critic trained with alpha = 10 must fit dQ/db to 2 R_item (checked here against the environment's
    item rewards, not the agent's own loss) far better than predicting zero and better than TD training alone
    (alpha = 0). A wrong sign, a detached gradient or a wrong reward gradient fails this.
    """
    env = gym.make("rlcert/DriveSeek-v0", n_max=100)  # dense goals: about one step in ten hits one
    results = {}
    for alpha in (10.0, 0.0):
        model = MultiReenGAGEDDPG(DeepSetsTD3Policy, env, alpha=alpha, goal_reduction="sum", gamma=0.0,
                                  learning_starts=600, buffer_size=600, batch_size=64, learning_rate=3e-3, seed=0,
                                  policy_kwargs=TINY)
        model.learn(600)  # random exploration only (learning_starts = total)
        np.random.seed(123)
        batch = model.replay_buffer.sample(64)
        model.replay_buffer.sample = lambda *args, batch=batch, **kwargs: batch  # train on this batch only
        start = _held_out_losses(model, batch)
        model.train(500, 64)
        results[alpha] = (start, _held_out_losses(model, batch))
    zero_baseline = 4 * batch.rewards.sum().item() / 64  # gate loss of dQ/db = 0
    assert batch.rewards.sum() >= 3
    (td0, gate0), (td1, gate1) = results[10.0]
    assert results[0.0][0] == results[10.0][0]  # same start
    assert td1 < 0.5 * td0, results
    assert gate1 < 0.9 * zero_baseline, (results, zero_baseline)
    assert gate1 < 0.9 * results[0.0][1][1], results

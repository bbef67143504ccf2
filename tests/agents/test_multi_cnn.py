"""DriveSeek CNN variant (thesis App. G.6.6): image builder and gate gradients through the image."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

try:  # works whether or not tests/agents is a package
    from multi_helpers import goal_set_batch
except ImportError:  # pragma: no cover
    from .multi_helpers import goal_set_batch

import rlcert  # noqa: F401
from rlcert.agents.drive_seek_cnn import SIZE, DriveSeekCnnTD3Policy, drive_seek_image
from rlcert.agents.goal_gradient import critic_goal_gradient
from rlcert.agents.multi_reengage import MultiReenGAGEDDPG


def _obs(env, seed):
    obs, _ = env.reset(seed=seed)
    for _ in range(3):
        obs, *_ = env.step(np.array([0.3], np.float32))
    return {k: torch.as_tensor(v)[None].double() for k, v in obs.items()}


def test_image_channels_follow_the_thesis_layout():
    env = gym.make("rlcert/DriveSeek-v0", n_max=30)
    obs = _obs(env, 0)
    img = drive_seek_image(obs)[0]
    assert img.shape == (3, SIZE, SIZE) == (3, 168, 168)
    dg = obs["desired_goal"][0].numpy()
    real = dg[dg[:, 0] > 0]
    red = img[0].numpy()
    assert red.sum() == len(real) and red.max() == 1.0
    for _, x, y in real:  # goal (x, y) sits in pixel row 8 (y + 10.5), column 8 (x + 10.5)
        assert red[int(8 * (y + 10.5)), int(8 * (x + 10.5))] == 1.0
    s = obs["observation"][0].numpy()
    heading = np.arctan2(s[4], s[5])
    for channel, point in ((1, s[:2]), (2, s[:2] + [np.cos(heading), np.sin(heading)])):
        point = np.mod(point + 10.5, 21.0) - 10.5
        assert img[channel].sum() == 1.0
        assert img[channel, int((point[1] + 10.5) / 0.125), int((point[0] + 10.5) / 0.125)] == 1.0


def test_image_red_channel_is_b_squared():
    obs = goal_set_batch(batch=2, n_max=6, obs_dim=6, seed=2)
    gates = obs["desired_goal"][..., 0].clone().mul_(0.7).requires_grad_(True)
    red = drive_seek_image(obs, gates)[:, 0]
    assert torch.isclose(red.sum(), (gates**2).sum())
    (grad,) = torch.autograd.grad(red.sum(), gates)
    torch.testing.assert_close(grad, 2 * gates.detach())


@pytest.mark.parametrize("share_encoder", [True, False])
def test_cnn_critic_gate_gradient_matches_finite_differences_and_ignores_padding(share_encoder):
    env = gym.make("rlcert/DriveSeek-v0", n_max=20)
    model = MultiReenGAGEDDPG(DriveSeekCnnTD3Policy, env, alpha=0.5, buffer_size=100, batch_size=4, seed=0,
                              policy_kwargs={"embed_dim": 32, "head_arch": [16], "share_encoder": share_encoder})
    model.policy.double()
    obs = _obs(env, 1)
    a = torch.tensor([[0.2]], dtype=torch.float64)
    gates = obs["desired_goal"][..., 0].clone().requires_grad_(True)
    (grad,) = critic_goal_gradient([model.critic(obs, a, gates)[0]], gates)
    grad = grad.detach()
    padding = obs["desired_goal"][..., 0] == 0
    assert padding.any() and torch.all(grad[padding] == 0)
    real_idx = torch.nonzero(~padding[0]).flatten()
    checked = [*real_idx[:4].tolist(), int(torch.nonzero(padding[0])[0])]
    eps, fd = 1e-6, torch.zeros_like(grad)
    with torch.no_grad():
        for i in checked:
            plus, minus = gates.detach().clone(), gates.detach().clone()
            plus[0, i] += eps
            minus[0, i] -= eps
            fd[0, i] = (model.critic(obs, a, plus)[0] - model.critic(obs, a, minus)[0]).item() / (2 * eps)
    torch.testing.assert_close(grad[0, checked], fd[0, checked], atol=1e-6, rtol=1e-4)
    assert (grad[0, real_idx] != 0).double().mean() > 0.5  # (a goal pixel can fall in an inactive region)
    model.policy.float()
    model.learn(104)  # a few updates through the whole pipeline (learning_starts=100)
    assert model.logger.name_to_value["train/gate_gradient_loss"] >= 0

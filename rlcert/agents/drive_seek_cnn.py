"""CNN variant for DriveSeek (thesis App. G.6.6): the goal set as an image, read by a NatureCNN.

Image (B, 3, 168, 168) of the torus [-10.5, 10.5)^2 at 0.125 units per pixel (pixel (row, col) covers
y in [-10.5 + 0.125 row, ...), x in [-10.5 + 0.125 col, ...)):

* red   = b_i^2 at the pixel of goal g_i (differentiable in the gates b, so the gate-gradient loss applies as is;
          absent goals, b_i = 0, leave the pixel blank and get zero gradient),
* green = 1 at the current position,
* blue  = 1 at the next position under zero action, position + (cos theta, sin theta) wrapped (the velocity).

The NatureCNN (SB3) output is the goal-set feature z; the heads (1 x 400) also see the exact observation
(position, rounded position, sin and cos of the heading). As with DeepSets the CNN belongs to the critic, is shared
with the actor and trained by the critic loss only. Use ``DriveSeekCnnTD3Policy`` with ``MultiReenGAGEDDPG``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.torch_layers import NatureCNN
from torch import nn

from rlcert.agents.deepsets import DeepSetsTD3Policy

HALF = 10.5  # DriveSeek's torus is [-HALF, HALF)^2
PIXEL = 0.125  # units per pixel (thesis)
SIZE = int(round(2 * HALF / PIXEL))  # 168


def _pixel_index(xy: torch.Tensor) -> torch.Tensor:
    """Flat pixel index (row * SIZE + col) of points (..., 2) on the torus."""
    cells = torch.floor(torch.remainder(xy + HALF, 2 * HALF) / PIXEL).long().clamp(0, SIZE - 1)
    return cells[..., 1] * SIZE + cells[..., 0]


def drive_seek_image(obs: dict[str, torch.Tensor], gates: torch.Tensor | None = None) -> torch.Tensor:
    """DriveSeek observation -> image (B, 3, SIZE, SIZE), red channel differentiable in ``gates`` (B, n_max)."""
    dg = obs["desired_goal"]
    gates = dg[..., 0] if gates is None else gates
    s = obs["observation"]
    batch = s.shape[0]
    red = torch.zeros(batch, SIZE * SIZE, dtype=gates.dtype, device=gates.device)
    red = red.scatter_add(1, _pixel_index(dg[..., 1:]), gates.pow(2))
    rows = torch.arange(batch, device=s.device)
    pos = s[:, :2]
    nxt = pos + torch.stack([s[:, 5], s[:, 4]], dim=-1)  # (cos theta, sin theta)
    green = torch.zeros_like(red)
    green[rows, _pixel_index(pos)] = 1.0
    blue = torch.zeros_like(red)
    blue[rows, _pixel_index(nxt)] = 1.0
    return torch.stack([red, green, blue], dim=1).reshape(batch, 3, SIZE, SIZE)


class DriveSeekImageEncoder(nn.Module):
    """Goal-set features z = NatureCNN(drive_seek_image(obs, gates)) (B, features_dim)."""

    def __init__(self, features_dim: int = 512) -> None:
        super().__init__()
        space = spaces.Box(0.0, np.inf, shape=(3, SIZE, SIZE), dtype=np.float32)
        self.cnn = NatureCNN(space, features_dim=features_dim, normalized_image=True)
        self.features_dim = features_dim

    def forward(self, obs: dict[str, torch.Tensor], gates: torch.Tensor) -> torch.Tensor:
        return self.cnn(drive_seek_image(obs, gates))


class DriveSeekCnnTD3Policy(DeepSetsTD3Policy):
    """TD3/DDPG policy for DriveSeek with a shared NatureCNN on the goal image (``embed_dim`` = CNN output size)."""

    def __init__(self, observation_space: spaces.Dict, action_space: spaces.Box, lr_schedule: Any,
                 embed_dim: int = 512, **kwargs: Any) -> None:
        if observation_space["observation"].shape != (6,):
            raise ValueError("observation_space must be DriveSeek's (observation of shape (6,))")
        super().__init__(observation_space, action_space, lr_schedule, embed_dim=embed_dim, **kwargs)

    def make_encoder(self) -> nn.Module:
        return DriveSeekImageEncoder(self.embed_dim)

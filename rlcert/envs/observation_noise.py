"""Observation noise: the observation layout and mask, the masked noise, and smoothed training's wrapper.

A goal-conditioned observation is a dict (``observation``, ``achieved_goal``, ``desired_goal``). Certificates work
on the **flat** observation: the dict's entries flattened and concatenated in the observation space's key order
(``ObservationLayout.keys``), shape (D,). The mask selects the coordinates an attacker may perturb (and the noise
covers): whole entries named in ``perturb``; for a goal set (``desired_goal`` of shape (n_max, 3), rows
(b, x, y)) only the (x, y) of the rows whose gate b > 0 -- never the gates, never the padding rows. The mask of a
goal set therefore depends on the (unperturbed) gates of the observation itself.

``MaskedNoise`` is the one noise object shared by certification (per-step and per-episode, ``rlcert.certify.policy``)
and smoothed training (``ObservationNoiseWrapper`` below, used by ``rlcert train`` for a config's
``observation_noise: {method, sigma, perturb}``): a ``rlcert.certify.randomized.noise.Noise`` that draws an
additive noise of ``rlcert.certify`` (Gaussian: N(0, sigma^2) per coordinate; Laplace: scale sigma / sqrt 2, i.e.
std sigma) and keeps only the masked coordinates, so excluded coordinates are returned bit-for-bit unchanged; its
sigma, norm and radius are the wrapped noise's.

The wrapper adds that noise to every observation the agent sees during training (evaluation during training stays
clean). Rewards are unchanged (computed by the env from its true state); HER relabelling recomputes rewards from
the stored (noisy) goals with ``compute_reward``. This module sits on the lowest floor (beside the environments and
the noise objects it uses), so training never imports ``rlcert.certify.policy``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from rlcert.certify.core.registry import get
from rlcert.certify.core.sampling import derive_seed
from rlcert.certify.core.smoothing import SmoothingCertifier
from rlcert.certify.randomized.noise import Noise

NOISE_METHODS = ("gaussian", "laplace")  # the additive noises policy certificates support (per-step l2 / l1)


def make_certifier(method: str, sigma: float, **sampling: Any) -> SmoothingCertifier:
    """The ``rlcert.certify`` smoothing certifier (from the core registry) whose noise a policy certificate uses
    (``sigma`` = std); ``method`` in ``NOISE_METHODS``."""
    if method not in NOISE_METHODS:
        raise ValueError(f"method must be one of {NOISE_METHODS}, got {method!r}")
    return get(method)(sigma=sigma, **sampling)


def _is_goal_set(space: spaces.Space) -> bool:
    return isinstance(space, spaces.Box) and len(space.shape) == 2 and space.shape[1] == 3


class ObservationLayout:
    """Flat view of a (dict) observation space and the mask of its perturbed coordinates.

    observation_space: a ``spaces.Dict`` of ``spaces.Box`` entries, or one ``spaces.Box`` (then its only key is
    ``"observation"``). perturb: entry names to perturb (any non-empty subset of the keys). goal_set: treat
    ``desired_goal`` as a gated goal set (default: auto, when its shape is (n_max, 3)).
    """

    def __init__(self, observation_space: spaces.Space, perturb: Sequence[str] | str = ("desired_goal",),
                 goal_set: bool | None = None) -> None:
        if isinstance(observation_space, spaces.Dict):
            entries = dict(observation_space.spaces)
        elif isinstance(observation_space, spaces.Box):
            entries = {"observation": observation_space}
        else:
            raise ValueError(f"observation_space must be a Dict of Box or a Box, got {observation_space!r}")
        for k, s in entries.items():
            if not isinstance(s, spaces.Box):
                raise ValueError(f"observation entry {k!r} must be a Box, got {s!r}")
        self.is_dict = isinstance(observation_space, spaces.Dict)
        perturb = [perturb] if isinstance(perturb, str) else list(perturb)
        if not perturb or any(p not in entries for p in perturb) or len(set(perturb)) != len(perturb):
            raise ValueError(f"perturb must be a non-empty subset of {list(entries)}, got {perturb!r}")
        self.perturb = tuple(perturb)
        self.keys = list(entries)
        self.shapes = {k: tuple(s.shape) for k, s in entries.items()}
        self.slices: dict[str, slice] = {}
        start = 0
        for k in self.keys:
            size = int(np.prod(self.shapes[k])) if self.shapes[k] else 1
            self.slices[k] = slice(start, start + size)
            start += size
        self.dim = start
        dg = entries.get("desired_goal")
        self.goal_set = bool(dg is not None and _is_goal_set(dg)) if goal_set is None else bool(goal_set)
        if self.goal_set and (dg is None or not _is_goal_set(dg)):
            raise ValueError("goal_set=True needs a desired_goal entry of shape (n_max, 3)")
        static = np.zeros(self.dim, dtype=bool)
        for k in self.perturb:
            if not (self.goal_set and k == "desired_goal"):
                static[self.slices[k]] = True
        self.static_mask = static
        if self.goal_set and "desired_goal" in self.perturb:
            base = self.slices["desired_goal"].start
            rows = np.arange(self.shapes["desired_goal"][0])
            self.gate_index = base + 3 * rows                              # (n_max,)
            self.point_index = base + 3 * rows[:, None] + np.array([1, 2])  # (n_max, 2)
        else:
            self.gate_index = self.point_index = None

    # ---- flatten / unflatten -------------------------------------------------------------------------------
    def flatten(self, obs: Mapping[str, Any] | Any, device: torch.device | str = "cpu") -> torch.Tensor:
        """Batch of observations (dict of arrays (B, *shape), or an array (B, *shape) for a Box space) ->
        float32 tensor (B, D) on ``device``."""
        if not self.is_dict and not isinstance(obs, Mapping):
            obs = {"observation": obs}
        parts = []
        for k in self.keys:
            v = torch.as_tensor(np.asarray(obs[k]) if not isinstance(obs[k], torch.Tensor) else obs[k])
            parts.append(v.reshape(v.shape[0], -1).to(device=device, dtype=torch.float32))
        return torch.cat(parts, dim=1)

    def unflatten(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, D) -> dict of tensors (B, *shape) (views into ``flat``)."""
        return {k: flat[:, self.slices[k]].reshape(flat.shape[0], *self.shapes[k]) for k in self.keys}

    def mask(self, flat: torch.Tensor) -> torch.Tensor:
        """Float mask (1 = perturbed) of the same shape as ``flat`` (..., D), on its device."""
        m = torch.as_tensor(self.static_mask, device=flat.device).to(flat.dtype).expand(flat.shape).clone()
        if self.gate_index is not None:
            gates = flat[..., torch.as_tensor(self.gate_index, device=flat.device)] > 0  # (..., n_max)
            idx = torch.as_tensor(self.point_index, device=flat.device)
            m[..., idx[:, 0]] = gates.to(flat.dtype)
            m[..., idx[:, 1]] = gates.to(flat.dtype)
        return m

    def num_perturbed(self, flat: torch.Tensor) -> torch.Tensor:
        """Number of perturbed coordinates of each observation (..., D) -> (...)."""
        return self.mask(flat).sum(dim=-1)


class MaskedNoise(Noise):
    """An additive ``Noise`` (``additive = True``: Gaussian, Laplace, uniform) on the masked coordinates only.

    ``noise``: the noise object (or a smoothing certifier, whose ``noise`` is taken); ``layout``: anything with
    ``mask(flat) -> float mask of flat's shape`` (an ``ObservationLayout``). ``perturb_(out, x, generator)`` fills
    ``out`` (m, D) with m noisy copies of the flat observation x (D,) (or of each row of x (m, D)): the wrapped
    noise's draws (same generator calls, so the same samples as certifying with that noise) times the mask, plus x;
    unmasked coordinates equal x exactly. ``sigma``, ``lambd``, ``norm`` and ``radius`` are the wrapped noise's.
    """

    name = "masked"

    def __init__(self, noise: Noise | SmoothingCertifier, layout: Any) -> None:  # noqa: D107
        base = noise.noise if isinstance(noise, SmoothingCertifier) else noise
        if not isinstance(base, Noise) or not getattr(base, "additive", False):
            raise ValueError(f"noise must be an additive Noise (one of {NOISE_METHODS}), got "
                             f"{getattr(base, 'name', type(base).__name__)!r}")
        if not callable(getattr(layout, "mask", None)):
            raise ValueError(f"layout must have a mask(flat) method (an ObservationLayout), got {layout!r}")
        self.base = base
        self.layout = layout
        self.norm = base.norm  # type: ignore[misc]
        self.lambda_per_sigma = base.lambda_per_sigma  # type: ignore[misc]
        self.lambda_meaning = base.lambda_meaning  # type: ignore[misc]
        self.lambd = base.lambd

    @property
    def sigma(self) -> float:
        return self.base.sigma

    @property
    def method(self) -> str:
        """The wrapped noise's name ("gaussian", "laplace")."""
        return self.base.name

    def perturb_(self, out: torch.Tensor, x: torch.Tensor, generator: torch.Generator | None) -> None:
        self.base.perturb_(out, torch.zeros_like(x), generator)  # pure noise, the same sampler as certification
        out.mul_(self.layout.mask(x)).add_(x)

    def radius(self, p_lower: np.ndarray) -> np.ndarray:
        return self.base.radius(p_lower)

    def radius_two_bound(self, p_lower: np.ndarray, p_upper: np.ndarray) -> np.ndarray:
        return self.base.radius_two_bound(p_lower, p_upper)

    @property
    def has_two_bound(self) -> bool:
        return self.base.has_two_bound

    def __repr__(self) -> str:
        perturb = list(getattr(self.layout, "perturb", []))
        return f"MaskedNoise({self.method}, sigma={self.sigma}, perturb={perturb})"


TRAIN_STREAM = 12
CONFIG_KEYS = {"method", "sigma", "perturb"}


def check_noise_config(cfg: Any) -> dict:
    """Validate an ``observation_noise`` config entry; returns it with defaults filled (raises ValueError)."""
    if not isinstance(cfg, dict):
        raise ValueError(f"observation_noise must be a mapping {{method, sigma, perturb}}, got {cfg!r}")
    unknown = set(cfg) - CONFIG_KEYS
    if unknown:
        raise ValueError(f"observation_noise has unknown keys {sorted(unknown)}; allowed: {sorted(CONFIG_KEYS)}")
    out = {"method": cfg.get("method", "gaussian"), "sigma": cfg.get("sigma"),
           "perturb": cfg.get("perturb", ["desired_goal"])}
    if out["method"] not in NOISE_METHODS:
        raise ValueError(f"observation_noise.method must be one of {NOISE_METHODS}, got {out['method']!r}")
    make_certifier(out["method"], out["sigma"])  # validates sigma > 0
    return out


class ObservationNoiseWrapper(gym.ObservationWrapper):
    """Adds ``MaskedNoise`` to the masked entries of every observation (reset and step).

    The noise generator is re-seeded from the ``seed`` given to ``reset`` (``derive_seed(seed, 0, TRAIN_STREAM)``),
    so seeded training runs are reproducible.
    """

    def __init__(self, env: gym.Env, method: str = "gaussian", sigma: float = 0.1,
                 perturb: Sequence[str] | str = ("desired_goal",)) -> None:
        super().__init__(env)
        cfg = check_noise_config({"method": method, "sigma": sigma, "perturb": perturb})
        self.layout = ObservationLayout(env.observation_space, cfg["perturb"])
        self.noise = MaskedNoise(make_certifier(cfg["method"], cfg["sigma"]), self.layout)
        self._gen = torch.Generator()
        self._gen.manual_seed(derive_seed(0, 0, TRAIN_STREAM))

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self._gen.manual_seed(derive_seed(int(seed), 0, TRAIN_STREAM))
        return super().reset(seed=seed, options=options)

    def observation(self, observation: Any) -> Any:
        single = {k: np.asarray(v)[None] for k, v in observation.items()} if self.layout.is_dict \
            else np.asarray(observation)[None]
        x = self.layout.flatten(single)
        out = torch.empty_like(x)
        self.noise.perturb_(out, x[0], self._gen)
        parts = self.layout.unflatten(out)
        if not self.layout.is_dict:
            return parts["observation"][0].numpy().astype(observation.dtype)
        return {k: parts[k][0].numpy().astype(np.asarray(observation[k]).dtype) for k in observation}

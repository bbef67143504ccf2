"""Policy adaptor: a saved agent (SB3 DDPG/TD3/SAC/DQN, ReenGAGE, Multi-ReenGAGE) -> a batched base function.

``PolicyFunction`` maps flat observations (B, D) (see ``noise.ObservationLayout``) to the agent's
**deterministic** actions on the agent's device: (B, m) floats inside the action box [low, high] for continuous
actions, (B,) int64 action indices for discrete ones. It is what the smoothing certificates call; the mask of
perturbed coordinates lives in its ``layout``.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from gymnasium import spaces

from rlcert.certify.core.precision import autocast, check_precision
from rlcert.certify.policy.noise import ObservationLayout
from rlcert.training import resolve_algo

Act = Callable[[dict[str, torch.Tensor]], torch.Tensor]


class PolicyFunction:
    """A deterministic policy as a function of the flat observation.

    act: dict of tensors (B, *shape) -> actions, already in the environment's units ((B, m) inside the
    action box, or (B,) integer indices). observation_space / action_space: the agent's spaces.
    perturb: entries the certificate perturbs (see ``ObservationLayout``). device: where inputs must live.
    precision: "fp32" (default) or "bf16": ``act`` runs under bf16 autocast (the observation and its noise stay
    fp32, actions come back fp32); every certificate is then about this bf16 policy, which must also be the one
    deployed (see ``rlcert.certify.core.precision``).
    """

    def __init__(self, act: Act, observation_space: spaces.Space, action_space: spaces.Space,
                 perturb: Sequence[str] | str = ("desired_goal",), device: str | torch.device = "cpu",
                 goal_set: bool | None = None, precision: str = "fp32") -> None:
        self.act = act
        self.precision = check_precision(precision)
        self.observation_space = observation_space
        self.action_space = action_space
        self.layout = ObservationLayout(observation_space, perturb, goal_set)
        self.device = torch.device(device)
        if isinstance(action_space, spaces.Discrete):
            self.discrete = True
            self.num_actions = int(action_space.n)
            self.action_dim = 1
        elif isinstance(action_space, spaces.Box) and len(action_space.shape) == 1:
            if not (np.all(np.isfinite(action_space.low)) and np.all(np.isfinite(action_space.high))):
                raise ValueError("action_space must be a bounded Box (finite low and high)")
            self.discrete = False
            self.num_actions = None
            self.action_dim = int(action_space.shape[0])
            self.low = torch.as_tensor(action_space.low, dtype=torch.float32, device=self.device)
            self.high = torch.as_tensor(action_space.high, dtype=torch.float32, device=self.device)
        else:
            raise ValueError(f"action_space must be Discrete or a 1-D Box, got {action_space!r}")

    # ---- evaluation -------------------------------------------------------------------------------------------
    def __call__(self, flat: torch.Tensor) -> torch.Tensor:
        """Actions for flat observations (B, D) (gradients flow when the agent's function allows it)."""
        if flat.ndim != 2 or flat.shape[1] != self.layout.dim:
            raise ValueError(f"flat observations must have shape (B, {self.layout.dim}), got {tuple(flat.shape)}")
        with autocast(flat.device, self.precision):
            out = self.act(self.layout.unflatten(flat))
        if self.discrete:
            return out.reshape(-1).long()
        return out.reshape(flat.shape[0], self.action_dim).float()

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Discrete actions as class labels (B,) under no_grad: the ``rlcert.certify`` base-classifier protocol."""
        with torch.no_grad():
            return self(x)

    @property
    def num_classes(self) -> int:
        if not self.discrete:
            raise ValueError("num_classes is only defined for discrete actions")
        return self.num_actions

    def flatten(self, obs: Any) -> torch.Tensor:
        """Batch of (dict) observations -> flat float32 tensor (B, D) on this policy's device."""
        return self.layout.flatten(obs, self.device)

    # ---- constructors -----------------------------------------------------------------------------------------
    @classmethod
    def from_sb3(cls, model: Any, perturb: Sequence[str] | str = ("desired_goal",),
                 goal_set: bool | None = None, precision: str = "fp32") -> PolicyFunction:
        """Wrap a Stable-Baselines3 (or rlcert) model: deterministic ``policy._predict``, then SB3's own
        post-processing (unscale tanh-squashed actions to [low, high], else clip), all in torch on its device."""
        policy = model.policy
        policy.set_training_mode(False)
        action_space = model.action_space
        device = policy.device
        squash = bool(getattr(policy, "squash_output", False))
        if isinstance(action_space, spaces.Box):
            low = torch.as_tensor(action_space.low, dtype=torch.float32, device=device)
            high = torch.as_tensor(action_space.high, dtype=torch.float32, device=device)

        def act(obs: dict[str, torch.Tensor]) -> torch.Tensor:
            obs = obs if isinstance(model.observation_space, spaces.Dict) else obs["observation"]
            a = policy._predict(obs, deterministic=True)
            if isinstance(action_space, spaces.Box):
                a = a.float()
                a = low + 0.5 * (a + 1.0) * (high - low) if squash else torch.clamp(a, low, high)
            return a

        return cls(act, model.observation_space, action_space, perturb, device, goal_set, precision)

    @classmethod
    def load(cls, path: str | Path, algo: str | None = None, perturb: Sequence[str] | str = ("desired_goal",),
             device: str = "auto", goal_set: bool | None = None, precision: str = "fp32") -> PolicyFunction:
        """Load a saved agent (``model.zip``). ``algo``: a key of ``rlcert.agents.ALGOS`` or "module:Class";
        default: the ``algo`` of the ``config.yaml`` that ``rlcert train`` writes next to the model."""
        model = load_model(path, algo, device)
        return cls.from_sb3(model, perturb, goal_set, precision)


def algo_of(path: str | Path) -> str | None:
    """The ``algo`` recorded in the ``config.yaml`` next to (or one folder above) a saved model, if any."""
    p = Path(path)
    for folder in (p.parent, p.parent.parent):
        cfg = folder / "config.yaml"
        if cfg.exists():
            return (yaml.safe_load(cfg.read_text()) or {}).get("algo")
    return None


def load_model(path: str | Path, algo: str | None = None, device: str = "auto", env: Any = None,
               who: str = "path", algo_who: str = "algo") -> Any:
    """Load an SB3 / rlcert model zip; ``algo`` as in ``PolicyFunction.load``. Only the policy is needed, so a
    model saved with a HER replay buffer loads without ``env`` (its replay buffer class is not restored). Errors
    name ``who`` / ``algo_who`` (the parameters; the CLI passes its flags)."""
    p = Path(path)
    if not p.exists() or not zipfile.is_zipfile(p):
        raise ValueError(f"{who} must be a saved SB3/rlcert model .zip, got {str(path)!r}")
    if algo is None:
        algo = algo_of(p)
    if algo is None:
        with zipfile.ZipFile(p) as z:
            data = json.loads(z.read("data")) if "data" in z.namelist() else {}
        hint = data.get("policy_class", {}).get(":type:", "")
        raise ValueError(f"{algo_who} is needed for {p} (no config.yaml next to it; policy {hint!r})")
    custom = None if env is not None else {"replay_buffer_class": None, "replay_buffer_kwargs": {}}
    return resolve_algo(algo).load(p, env=env, device=device, custom_objects=custom)

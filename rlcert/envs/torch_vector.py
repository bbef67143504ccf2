"""Torch-vectorised twins of the goal environments: n copies stepped as one batch, each with its own generator.

The twins call the very functions the gymnasium envs call (dynamics, rewards, goal samplers of
:mod:`rlcert.envs.continuous_seek`, :mod:`~rlcert.envs.bit_flipping`, :mod:`~rlcert.envs.drive_seek`,
:mod:`~rlcert.envs.noisy_seek`, :mod:`~rlcert.envs.goal_set`), on tensors instead of arrays; on the same start
state, goals, actions (and NoisySeek noise) they give the gymnasium envs' observations, rewards and success latch
(tests/envs/test_torch_twins.py). Goals come from per-copy torch generators, so the goal *sequence* differs from
a gymnasium env seeded with the same number; the distributions are the same (tested statistically).

Observations are dicts of float32 tensors with keys ``observation`` (n, obs_dim), ``achieved_goal``
(n, goal_dim) and ``desired_goal`` (n, goal_dim), or (n, n_max, 3) for the goal-set envs. Episodes end by
truncation only, after exactly ``max_steps`` steps, all copies together; the caller resets explicitly
(:meth:`~TorchGoalEnv.reset`), so the last observation of an episode is returned by :meth:`~TorchGoalEnv.step`.
``step`` takes actions in the env's own action space (DriveSeek: radians) and returns
``(obs, reward (n,) float32, truncated (bool, all copies), success so far (n,) bool)``.
"""

from __future__ import annotations

import abc

import torch as th

from rlcert.envs import _validate, _xp
from rlcert.envs.bit_flipping import bit_flip, bit_flipping_reward, bit_flipping_start
from rlcert.envs.continuous_seek import continuous_seek_goal, continuous_seek_move, continuous_seek_reward
from rlcert.envs.drive_seek import GRID, drive_seek_move, drive_seek_observation, drive_seek_rounded, sample_drive_goals
from rlcert.envs.goal_set import goal_set_reward, item_rewards, pack_goal_set
from rlcert.envs.noisy_seek import noisy_seek_move, noisy_seek_noise, noisy_seek_observation, sample_clustered_goals

Obs = dict[str, th.Tensor]


class TorchGoalEnv(abc.ABC):
    """Common state: ``n`` copies, step counter ``t``, latched ``success`` ("a goal was ever reached"); the tensors
    named in ``state_names`` are the copies' state (saved by :meth:`state_dict`)."""

    obs_dim: int
    goal_dim: int  # size of the flat goal (n_max * 3 for goal sets)
    goal_shape: tuple[int, ...]
    action_dim: int
    max_steps: int
    action_low: float = -1.0  # the gymnasium env's Box bounds (continuous actions)
    action_high: float = 1.0
    state_names: tuple[str, ...] = ("state", "goal")

    def __init__(self, generators: list[th.Generator]) -> None:
        self.generators = list(generators)
        self.n = len(self.generators)
        first = self.generators[0] if self.generators else None
        self.device = first.device if first is not None else th.device("cpu")  # None: a shape probe, never reset
        self.t = 0
        self.success = th.zeros(self.n, dtype=th.bool, device=self.device)

    @abc.abstractmethod
    def compute_reward(self, achieved_goal: th.Tensor, desired_goal: th.Tensor) -> th.Tensor:
        """Reward for achieved goals (..., dim) and desired goals (..., goal_shape) -> (...) float32."""

    @abc.abstractmethod
    def observation(self) -> Obs:
        """The current observation dict."""

    @abc.abstractmethod
    def reset(self) -> Obs:
        """New episode for every copy (goals from each copy's generator)."""

    @abc.abstractmethod
    def step(self, action: th.Tensor) -> tuple[Obs, th.Tensor, bool, th.Tensor]:
        """One step of every copy (see the module docstring)."""

    def achieved_goal(self) -> th.Tensor:
        return self.state

    @property
    def achieved_dim(self) -> int:
        """Size of the achieved goal (the goal itself, except for goal sets: the rounded position)."""
        return self.goal_dim

    def reached(self, reward: th.Tensor) -> th.Tensor:
        """Whether a step reward means "the goal was reached" (sparse -1/0 rewards: reward 0)."""
        return reward == 0

    def _start(self) -> None:
        self.t = 0
        self.success = self.reached(self.compute_reward(self.achieved_goal(), self.goal))

    def _finish_step(self) -> tuple[Obs, th.Tensor, bool, th.Tensor]:
        """After the state moved: count the step, reward, latch success; the return value of ``step``."""
        self.t += 1
        reward = self.compute_reward(self.achieved_goal(), self.goal)
        self.success = self.success | self.reached(reward)
        return self.observation(), reward, self.t >= self.max_steps, self.success.clone()

    def state_dict(self) -> dict:
        return {"t": self.t, "success": self.success.clone(),
                **{name: getattr(self, name).clone() for name in self.state_names}}

    def load_state_dict(self, state: dict) -> None:
        self.t, self.success = int(state["t"]), state["success"].clone()
        for name in self.state_names:
            setattr(self, name, state[name].clone())


class TorchContinuousSeek(TorchGoalEnv):
    """ContinuousSeek (thesis §8.3) for n copies: float32 state, s_0 = 0, goals U[-D, D]^d; rules of
    :mod:`rlcert.envs.continuous_seek` (the reward evaluated in float64, as the gymnasium env)."""

    def __init__(self, generators: list[th.Generator], d: int = 5, D: float = 5.0, eps: float = 0.1,
                 max_steps: int = 10) -> None:
        super().__init__(generators)
        self.d = _validate.positive_int("d", d)
        self.D, self.eps = _validate.positive_float("D", D), _validate.positive_float("eps", eps)
        self.max_steps = _validate.positive_int("max_steps", max_steps)
        self.obs_dim = self.goal_dim = self.action_dim = self.d
        self.goal_shape = (self.d,)
        self.state = th.zeros(self.n, self.d, device=self.device)
        self.goal = th.zeros(self.n, self.d, device=self.device)

    def compute_reward(self, achieved_goal: th.Tensor, desired_goal: th.Tensor) -> th.Tensor:
        return continuous_seek_reward(achieved_goal, desired_goal, self.eps).float()

    def observation(self) -> Obs:
        return {"observation": self.state.clone(), "achieved_goal": self.state.clone(),
                "desired_goal": self.goal.clone()}

    def reset(self) -> Obs:
        self.goal = th.stack([continuous_seek_goal(g, self.d, self.D) for g in self.generators])
        self.state = th.zeros(self.n, self.d, device=self.device)
        self.t, self.success = 0, th.zeros(self.n, dtype=th.bool, device=self.device)  # s_0 = 0: never a goal hit
        return self.observation()

    def step(self, action: th.Tensor) -> tuple[Obs, th.Tensor, bool, th.Tensor]:
        """action (n, d)."""
        self.state = continuous_seek_move(self.state, action.to(th.float32), self.D)
        return self._finish_step()


class TorchBitFlipping(TorchGoalEnv):
    """Bit-Flipping for n copies: state, goal ~ U{0,1}^n_bits (float32); action = index of the bit to flip;
    rules of :mod:`rlcert.envs.bit_flipping`; episodes of ``max_steps`` (default n_bits) steps."""

    def __init__(self, generators: list[th.Generator], n_bits: int = 10, max_steps: int | None = None) -> None:
        super().__init__(generators)
        self.n_bits = _validate.positive_int("n_bits", n_bits)
        self.max_steps = _validate.positive_int("max_steps", self.n_bits if max_steps is None else max_steps)
        self.obs_dim = self.goal_dim = self.n_bits
        self.goal_shape = (self.n_bits,)
        self.action_dim = 1
        self.n_actions = self.n_bits
        self.state = th.zeros(self.n, self.n_bits, device=self.device)
        self.goal = th.zeros(self.n, self.n_bits, device=self.device)

    def compute_reward(self, achieved_goal: th.Tensor, desired_goal: th.Tensor) -> th.Tensor:
        return bit_flipping_reward(achieved_goal, desired_goal).float()

    def observation(self) -> Obs:
        return {"observation": self.state.clone(), "achieved_goal": self.state.clone(),
                "desired_goal": self.goal.clone()}

    def reset(self) -> Obs:
        pairs = [bit_flipping_start(g, self.n_bits) for g in self.generators]
        self.state = th.stack([s for s, _ in pairs])
        self.goal = th.stack([g for _, g in pairs])
        self._start()
        return self.observation()

    def step(self, action: th.Tensor) -> tuple[Obs, th.Tensor, bool, th.Tensor]:
        """action (n,) or (n, 1) integer bit indices."""
        idx = action.reshape(self.n).long()
        if ((idx < 0) | (idx >= self.n_bits)).any():
            raise ValueError(f"action must be bit indices in [0, {self.n_bits - 1}]")
        self.state = bit_flip(self.state, idx)
        return self._finish_step()


class TorchGoalSetEnv(TorchGoalEnv):
    """Shared part of the goal-set twins: goals (n, n_max, 3) float32 (rows (b, x, y), as
    :func:`rlcert.envs.pack_goal_set`), reward R = sum_i b_i^2 R_item, success = "a goal was ever reached"."""

    coord_bound: float = float("inf")

    def __init__(self, generators: list[th.Generator], n_max: int, max_steps: int) -> None:
        super().__init__(generators)
        self.n_max = _validate.positive_int("n_max", n_max)
        self.max_steps = _validate.positive_int("max_steps", max_steps)
        self.goal_shape = (self.n_max, 3)
        self.goal_dim = 3 * self.n_max
        self.goal = th.zeros(self.n, self.n_max, 3, device=self.device)

    @abc.abstractmethod
    def _sample_goals(self, generator: th.Generator) -> th.Tensor:
        """Integer goal points (k, 2) of one copy."""

    @property
    def achieved_dim(self) -> int:
        return 2

    def _new_goals(self) -> None:
        self.goal = th.stack([pack_goal_set(self._sample_goals(g), self.n_max) for g in self.generators])

    def compute_reward(self, achieved_goal: th.Tensor, desired_goal: th.Tensor) -> th.Tensor:
        return goal_set_reward(achieved_goal, desired_goal).float()

    def item_rewards(self, achieved_goal: th.Tensor, desired_goal: th.Tensor) -> th.Tensor:
        """R_item: (..., 2), (..., n_max, 3) -> (..., n_max) float32."""
        return item_rewards(achieved_goal, desired_goal)

    def reached(self, reward: th.Tensor) -> th.Tensor:
        return reward > 0


class TorchDriveSeek(TorchGoalSetEnv):
    """DriveSeek for n copies (rules of :mod:`rlcert.envs.drive_seek`): float64 position (n, 2) and heading (n,);
    actions (n, 1) or (n,) in radians (clipped to ``max_turn``)."""

    state_names = ("pos", "heading", "goal")
    obs_dim = 6
    coord_bound = 10.0

    def __init__(self, generators: list[th.Generator], n_max: int = 200, max_steps: int = 40,
                 max_turn: float = 0.5) -> None:
        _validate.positive_int("n_max", n_max, upper=len(GRID))
        super().__init__(generators, n_max, max_steps)
        self.max_turn = _validate.positive_float("max_turn", max_turn)
        self.action_low, self.action_high = -self.max_turn, self.max_turn
        self.action_dim = 1
        self.pos = th.zeros(self.n, 2, dtype=th.float64, device=self.device)
        self.heading = th.zeros(self.n, dtype=th.float64, device=self.device)

    def _sample_goals(self, generator: th.Generator) -> th.Tensor:
        return sample_drive_goals(generator, self.n_max)

    def achieved_goal(self) -> th.Tensor:
        return drive_seek_rounded(self.pos)

    def observation(self) -> Obs:
        return {"observation": drive_seek_observation(self.pos, self.heading).float(),
                "achieved_goal": self.achieved_goal().float(), "desired_goal": self.goal.clone()}

    def reset(self) -> Obs:
        self._new_goals()
        self.pos = th.zeros(self.n, 2, dtype=th.float64, device=self.device)
        self.heading = th.zeros(self.n, dtype=th.float64, device=self.device)
        self.t, self.success = 0, th.zeros(self.n, dtype=th.bool, device=self.device)  # rewards start with a step
        return self.observation()

    def step(self, action: th.Tensor) -> tuple[Obs, th.Tensor, bool, th.Tensor]:
        turn = action.reshape(self.n).to(th.float64)
        self.pos, self.heading = drive_seek_move(self.pos, self.heading, turn, self.max_turn)
        return self._finish_step()


class TorchNoisySeek(TorchGoalSetEnv):
    """NoisySeek for n copies (rules of :mod:`rlcert.envs.noisy_seek`): float64 position (n, 2); actions (n, 2)
    scaled onto the unit ball; noise N(0, noise_std^2 I) from each copy's generator."""

    state_names = ("pos", "goal")
    obs_dim = 4

    def __init__(self, generators: list[th.Generator], n_max: int = 200, max_steps: int = 40,
                 noise_std: float = 1.0) -> None:
        super().__init__(generators, n_max, max_steps)
        if not float(noise_std) >= 0 or noise_std == float("inf"):
            raise ValueError(f"noise_std must be a finite number >= 0, got {noise_std!r}")
        self.noise_std = float(noise_std)
        self.action_dim = 2
        self.pos = th.zeros(self.n, 2, dtype=th.float64, device=self.device)

    def _sample_goals(self, generator: th.Generator) -> th.Tensor:
        return sample_clustered_goals(generator, self.n_max)

    def achieved_goal(self) -> th.Tensor:
        return _xp.rint(self.pos)

    def observation(self) -> Obs:
        return {"observation": noisy_seek_observation(self.pos).float(),
                "achieved_goal": self.achieved_goal().float(), "desired_goal": self.goal.clone()}

    def reset(self) -> Obs:
        self._new_goals()
        self.pos = th.zeros(self.n, 2, dtype=th.float64, device=self.device)
        self.t, self.success = 0, th.zeros(self.n, dtype=th.bool, device=self.device)
        return self.observation()

    def _noise(self) -> th.Tensor:
        """(n, 2) float64 motion noise, one draw per copy from its generator."""
        return th.stack([noisy_seek_noise(g, self.noise_std) for g in self.generators])

    def step(self, action: th.Tensor) -> tuple[Obs, th.Tensor, bool, th.Tensor]:
        self.pos = noisy_seek_move(self.pos, action.reshape(self.n, 2).to(th.float64), self._noise())
        return self._finish_step()


TORCH_TWINS: dict[str, type[TorchGoalEnv]] = {
    "rlcert/ContinuousSeek-v0": TorchContinuousSeek,
    "rlcert/BitFlipping-v0": TorchBitFlipping,
    "rlcert/DriveSeek-v0": TorchDriveSeek,
    "rlcert/NoisySeek-v0": TorchNoisySeek,
}

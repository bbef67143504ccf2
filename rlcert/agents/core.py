"""What every agent of ``rlcert.agents`` shares: the options, the one critic-loss hook and the saved-model convention.

An agent is ``Family + Loop + SB3 algorithm``:

* a *family* says which input x of the critic is differentiated and which reward gradient enters the target:
  :class:`GoalInput` (ReenGAGE: x = the goal ``obs[goal_key]``, reward gradient from ``reward_fn`` in dense mode,
  sparse mask otherwise) or ``GateInput`` (Multi-ReenGAGE: x = the goal gates, reward gradient 2 R_item; in
  :mod:`rlcert.agents.multi_reengage`);
* a *loop* (:mod:`rlcert.agents.loops`) is SB3's ``train()`` for the TD3 family (DDPG, TD3), SAC or DQN, written
  once, calling :meth:`GradientMatching.critic_loss_terms` for the critic's values, TD target and extra loss.

With ``alpha = 0`` the hook evaluates exactly SB3's expressions, so every agent reproduces its stock SB3 algorithm
bit for bit (tests/agents/test_sb3_equivalence.py, test_multi_agents.py).

**Saved models.** ``agents_convention`` (an attribute saved with the model) records the meaning of ``alpha``:
2 = coordinate mean (``goal_reduction="mean"`` default), SAC 0.5 * (TD + alpha * error), DeepSets pooling divided
by n_max. A model saved before it (no attribute: convention 1) is converted on load so that it keeps its meaning
(``goal_reduction="sum"``, SAC alpha doubled, DeepSets ``pooling="sum"``), with a one-line warning; a model from
an unknown convention is refused.
"""

from __future__ import annotations

import abc
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.running_mean_std import RunningMeanStd
from stable_baselines3.common.torch_layers import CombinedExtractor

from rlcert.agents import goal_gradient as gg
from rlcert.agents.loops import TD3NextValue

CONVENTION = 2
MODES = ("sparse", "dense")
GOAL_WEIGHTINGS = (None, "running_std")
Obs = dict[str, th.Tensor]


def check_alpha(alpha: float) -> float:
    """alpha as a float; ValueError unless finite and >= 0."""
    if not np.isfinite(alpha) or alpha < 0:
        raise ValueError(f"alpha must be a finite number >= 0, got {alpha!r}")
    return float(alpha)


def check_reduction(goal_reduction: str) -> str:
    if goal_reduction not in gg.REDUCTIONS:
        raise ValueError(f"goal_reduction must be one of {gg.REDUCTIONS}, got {goal_reduction!r}")
    return goal_reduction


def with_goal(obs: Obs, key: str, goal: th.Tensor) -> Obs:
    """A shallow copy of a Dict observation batch with ``obs[key]`` replaced by ``goal``."""
    out = dict(obs)
    out[key] = goal
    return out


class GradientMatching(abc.ABC):
    """Base of every agent: ``alpha``, ``goal_reduction``, ``through_target_actor``, the hook and the convention.

    Subclasses (the families) define ``_x_of``, ``_features``, ``_actor_features``, ``_act``, ``_act_log_prob``,
    ``_q`` and ``_reward_gradient_and_mask``; the loops call :meth:`critic_loss_terms`.
    """

    alpha: float
    goal_reduction: str
    through_target_actor: bool
    agents_convention: int | None
    _extra_log_key = "train/reengage_loss"

    def _setup_matching(self, alpha: float, goal_reduction: str, through_target_actor: bool,
                        kwargs: dict[str, Any]) -> None:
        self.alpha = check_alpha(alpha)
        self.goal_reduction = check_reduction(goal_reduction)
        self.through_target_actor = bool(through_target_actor)
        self._last_mask_frac = 1.0
        if kwargs.get("_init_setup_model", True):
            self.agents_convention = CONVENTION
        else:  # SB3's load(): the saved data replaces these next; if it does not, the model predates convention 2
            self.agents_convention = None
            self.goal_reduction = "sum"

    # --- saved-model convention -------------------------------------------------------------------------------
    def _setup_model(self) -> None:
        if self.agents_convention is None:
            self._convert_convention_1()
            self.agents_convention = CONVENTION
        elif self.agents_convention != CONVENTION:
            raise ValueError(f"this model was saved with agents convention {self.agents_convention!r}; this version "
                             f"of rlcert reads conventions 1 and {CONVENTION} only (alpha would change meaning)")
        super()._setup_model()  # type: ignore[misc]

    def _convert_convention_1(self) -> None:
        """Keep the meaning of a model saved before convention 2 (alpha on the squared norm)."""
        warnings.warn(f"{type(self).__name__}: model saved before agents convention {CONVENTION}; loaded with "
                      f"goal_reduction={self.goal_reduction!r} and alpha={self.alpha:g} so that its loss keeps its "
                      "meaning", stacklevel=3)

    # --- the family interface ---------------------------------------------------------------------------------
    @abc.abstractmethod
    def _x_of(self, obs: Obs) -> th.Tensor:
        """Family interface (see the class docstring)."""

    @abc.abstractmethod
    def _features(self, net: Any, obs: Obs, x: th.Tensor | None) -> Any:
        """Family interface (see the class docstring)."""

    @abc.abstractmethod
    def _actor_features(self, actor: Any, critic: Any, obs: Obs, x: th.Tensor | None, critic_features: Any) -> Any:
        """Family interface (see the class docstring)."""

    @abc.abstractmethod
    def _act(self, actor: Any, features: Any) -> th.Tensor:
        """Family interface (see the class docstring)."""

    @abc.abstractmethod
    def _act_log_prob(self, actor: Any, features: Any) -> tuple[th.Tensor, th.Tensor]:
        """Family interface (see the class docstring)."""

    @abc.abstractmethod
    def _q(self, critic: Any, features: Any, actions: th.Tensor) -> tuple[th.Tensor, ...]:
        """Family interface (see the class docstring)."""

    @abc.abstractmethod
    def _reward_gradient_and_mask(self, data: Any, x_next: th.Tensor) -> tuple[th.Tensor | None, th.Tensor | None]:
        """Family interface (see the class docstring)."""

    def _input_weight(self, x: th.Tensor) -> th.Tensor | None:
        return None

    def _target_and_gradient(self, next_value: Callable[[th.Tensor], Any], x_next: th.Tensor, data: Any,
                             discounts: th.Tensor | float, rows: th.Tensor | None) -> tuple[th.Tensor, th.Tensor]:
        """TD target (B, 1) and (1 - done) discount dV'/dx (B, ...), detached; only ``rows`` of the gradient are used
        (None: all)."""
        return gg.target_and_goal_gradient(next_value, x_next, data.rewards, data.dones, discounts)

    def _values_and_input_gradients(self, critic: Any, obs: Obs, actions: th.Tensor, rows: th.Tensor | None = None
                                    ) -> tuple[tuple[th.Tensor, ...], list[th.Tensor], th.Tensor | None]:
        """Each critic's Q(s, a, x), its d/dx Q (trainable) and the rows the gradients are for (None: all rows; a
        family may restrict them to ``rows``, the only ones the loss uses). x: the observation's own input."""
        x = gg.make_goal_leaf(self._x_of(obs))
        current = self._q(critic, self._features(critic, obs, x), actions)
        return current, gg.critic_goal_gradient(current, x), None

    def _trained_critic(self) -> Any:
        return self.critic  # type: ignore[attr-defined]

    # --- the one critic-loss hook -----------------------------------------------------------------------------
    def critic_loss_terms(self, data: Any, discounts: th.Tensor | float,
                          next_value: Callable[[th.Tensor | None], Any]
                          ) -> tuple[tuple[th.Tensor, ...], th.Tensor, th.Tensor | None]:
        """(current Q values per critic, TD target (B, 1), gradient-matching loss summed over critics or None).

        ``next_value(x)`` is the loop's bootstrap value V'(s', x) (B, 1), or a pair (value for the target, value to
        differentiate), as a function of the differentiated input x of the next observation (``None``: the
        observation's own, no gradient). The extra loss is unweighted (the loop multiplies it by alpha).
        """
        obs, next_obs, critic = data.observations, data.next_observations, self._trained_critic()
        if self.alpha == 0:  # SB3's expressions, in SB3's order
            with th.no_grad():
                out = next_value(None)
                value = out[0] if isinstance(out, tuple) else out
                target = data.rewards + (1 - data.dones) * discounts * value
            return self._q(critic, self._features(critic, obs, None), data.actions), target, None
        x_next = self._x_of(next_obs)
        reward_grad, mask = self._reward_gradient_and_mask(data, x_next)
        rows = None if mask is None else mask.nonzero().reshape(-1)
        target, grad_target = self._target_and_gradient(next_value, x_next, data, discounts, rows)
        if reward_grad is not None:
            grad_target = grad_target + reward_grad
        current, grads, used = self._values_and_input_gradients(critic, obs, data.actions, rows)
        weight = self._input_weight(self._x_of(obs))
        if used is None:
            extra = sum(gg.reengage_penalty(g, grad_target, mask, weight, self.goal_reduction) for g in grads)
        elif used.numel() == 0:
            extra = th.zeros((), dtype=target.dtype, device=target.device)
        else:  # the mean over the batch of the masked terms: the rows' mean times their share of the batch
            share = used.numel() / target.shape[0]
            extra = share * sum(gg.reengage_penalty(g, grad_target[used], None, weight, self.goal_reduction)
                                for g in grads)
        self._last_mask_frac = 1.0 if mask is None else float(mask.mean())
        return current, target, extra


class GoalInput(GradientMatching):
    """ReenGAGE: the differentiated input is the raw goal ``obs[goal_key]`` of SB3's stock Dict-observation policies.

    Options: ``reengage_mode`` "sparse" (the term only on transitions whose relabelled, recomputed reward equals
    ``c_low``) or "dense" (``reward_fn(next_achieved_goal, goal) -> (B,)``, differentiable torch, adds grad_g R);
    ``goal_weighting`` None or "running_std" (coordinate i weighted by sigma_i^2, its running variance, App. G.4).
    """

    reengage_mode: str
    c_low: float
    goal_key: str

    def __init__(self, *args: Any, alpha: float = 0.2, reengage_mode: str = "sparse", c_low: float = -1.0,
                 reward_fn: Callable[[th.Tensor, th.Tensor], th.Tensor] | None = None, goal_key: str = "desired_goal",
                 goal_weighting: str | None = None, goal_reduction: str = "mean", through_target_actor: bool = True,
                 **kwargs: Any) -> None:
        if reengage_mode not in MODES:
            raise ValueError(f"reengage_mode must be one of {MODES}, got {reengage_mode!r}")
        if reengage_mode == "dense" and reward_fn is None and alpha > 0:
            raise ValueError("reengage_mode='dense' needs reward_fn(next_achieved_goal, goal) -> (B,) in torch")
        if goal_weighting not in GOAL_WEIGHTINGS:
            raise ValueError(f"goal_weighting must be one of {GOAL_WEIGHTINGS}, got {goal_weighting!r}")
        self._setup_matching(alpha, goal_reduction, through_target_actor, kwargs)
        self.reengage_mode, self.c_low, self.reward_fn = reengage_mode, float(c_low), reward_fn
        self.goal_key, self.goal_weighting = goal_key, goal_weighting
        self._goal_rms: RunningMeanStd | None = None
        super().__init__(*args, **kwargs)
        self._check_share_features()

    def _check_share_features(self) -> None:
        if self.alpha > 0 and self.policy_kwargs.get("share_features_extractor", False):  # type: ignore[attr-defined]
            raise ValueError("ReenGAGE needs share_features_extractor=False (SB3 runs a shared critic extractor "
                             "without gradients)")

    def _x_of(self, obs: Obs) -> th.Tensor:
        if not isinstance(obs, dict) or self.goal_key not in obs:
            raise ValueError(f"ReenGAGE needs Dict observations with key goal_key={self.goal_key!r}")
        if self._vec_normalize_env is not None:  # type: ignore[attr-defined]
            raise ValueError("ReenGAGE takes the gradient w.r.t. the raw goal; VecNormalize is not supported")
        return obs[self.goal_key]

    def _features(self, net: Any, obs: Obs, x: th.Tensor | None) -> Obs:
        return obs if x is None else with_goal(obs, self.goal_key, x)

    def _actor_features(self, actor: Any, critic: Any, obs: Obs, x: th.Tensor | None, critic_features: Obs) -> Obs:
        return critic_features if self.through_target_actor else obs  # obs: the same goal, not differentiated

    def _act(self, actor: Any, features: Obs) -> th.Tensor:
        return actor(features)

    def _act_log_prob(self, actor: Any, features: Obs) -> tuple[th.Tensor, th.Tensor]:
        return actor.action_log_prob(features)

    def _q(self, critic: Any, features: Obs, actions: th.Tensor) -> tuple[th.Tensor, ...]:
        return critic(features, actions)

    def _critic_for_actor(self, obs: Obs, actions: th.Tensor) -> tuple[th.Tensor, ...]:
        return self.critic(obs, actions)  # type: ignore[attr-defined]

    def _actor_q1(self, obs: Obs) -> th.Tensor:
        return self.critic.q1_forward(obs, self.actor(obs))  # type: ignore[attr-defined]

    def _reward_gradient_and_mask(self, data: Any, x_next: th.Tensor) -> tuple[th.Tensor | None, th.Tensor | None]:
        if self.reengage_mode == "dense":
            return gg.reward_goal_gradient(self.reward_fn, data.next_observations["achieved_goal"], x_next), None
        return None, gg.sparse_mask(data.rewards, self.c_low)

    analytic_gradient = True  # SB3 MLP critics: d/dg Q written out (first-order graph); False: autograd only

    def _values_and_input_gradients(self, critic: Any, obs: Obs, actions: th.Tensor, rows: th.Tensor | None = None
                                    ) -> tuple[tuple[th.Tensor, ...], list[th.Tensor], th.Tensor | None]:
        cols = self._goal_columns(critic) if self.analytic_gradient else None
        if cols is not None:
            self._x_of(obs)  # input checks
            features = critic.extract_features(obs, critic.features_extractor)
            qvalue_input = th.cat([features, actions], dim=1)
            pairs = [gg.relu_mlp_input_gradient(q_net, qvalue_input, cols, rows) for q_net in critic.q_networks]
            if all(p is not None for p in pairs):
                return tuple(q for q, _ in pairs), [g for _, g in pairs], rows
        return super()._values_and_input_gradients(critic, obs, actions, rows)

    def _target_and_gradient(self, next_value: Callable[[th.Tensor], Any], x_next: th.Tensor, data: Any,
                             discounts: th.Tensor | float, rows: th.Tensor | None) -> tuple[th.Tensor, th.Tensor]:
        if self.analytic_gradient and isinstance(next_value, TD3NextValue):
            out = self._td3_target_in_closed_form(next_value, rows)
            if out is not None:
                value, grad = out
                scale = (1 - data.dones) * discounts
                return data.rewards + scale * value, scale * grad
        return super()._target_and_gradient(next_value, x_next, data, discounts, rows)

    @th.no_grad()
    def _td3_target_in_closed_form(self, next_value: TD3NextValue, rows: th.Tensor | None
                                   ) -> tuple[th.Tensor, th.Tensor] | None:
        """(V'(s', g) (B, 1), dV'/dg (B, d) on ``rows``, 0 elsewhere) for SB3's MLP target actor and critics, the
        derivative written out (total: through the target actor unless ``through_target_actor`` is False)."""
        actor, critic, obs = self.actor_target, self.critic_target, next_value.next_obs  # type: ignore[attr-defined]
        cols_c, cols_a = self._goal_columns(critic), self._goal_columns(actor, need_unshared=False)
        mu = list(getattr(actor, "mu", []))
        if cols_c is None or cols_a is None or not mu or type(mu[-1]) is not th.nn.Tanh:
            return None
        fa = actor.extract_features(obs, actor.features_extractor)
        critic_in = critic.extract_features(obs, critic.features_extractor)
        return gg.td3_target_and_goal_gradient(th.nn.Sequential(*mu[:-1]), list(critic.q_networks), fa, critic_in,
                                               next_value.noise, cols_c, cols_a, rows, self.through_target_actor)

    def _goal_columns(self, net: Any, need_unshared: bool = True) -> slice | None:
        """Where the goal sits in the input of SB3's MLP heads (``CombinedExtractor`` features first), or None when
        the extractor is not a concatenation of flattened vectors with a 1-D float goal."""
        extractor = getattr(net, "features_extractor", None)
        if not isinstance(extractor, CombinedExtractor) or (need_unshared
                                                            and getattr(net, "share_features_extractor", True)):
            return None
        start = 0
        for key, module in extractor.extractors.items():
            sub = self.observation_space.spaces[key]  # type: ignore[attr-defined]
            if type(module) is not th.nn.Flatten:
                return None
            size = int(np.prod(sub.shape))
            if key == self.goal_key:
                ok = len(sub.shape) == 1 and np.issubdtype(sub.dtype, np.floating)
                return slice(start, start + size) if ok else None
            start += size
        return None

    def _input_weight(self, x: th.Tensor) -> th.Tensor | None:
        """sigma_i^2 per goal coordinate (running over the sampled batches), or None."""
        if self.goal_weighting is None:
            return None
        flat = x.detach().reshape(x.shape[0], -1).cpu().numpy().astype(np.float64)
        if self._goal_rms is None:
            self._goal_rms = RunningMeanStd(shape=flat.shape[1:])
        self._goal_rms.update(flat)
        return th.as_tensor(self._goal_rms.var, dtype=x.dtype, device=x.device).reshape(x.shape[1:])

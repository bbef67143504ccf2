"""One fleet update == the agent's own train() on the same parameters and batch, at full width (256).

The agent runs its real ``train()`` (rlcert.agents' loops, SB3's for stock DDPG/TD3/SAC): its replay buffer is a
stub that returns our batch, and its random draws (TD3 target noise, SAC's reparameterisation noise) are
reproduced from the global generator and handed to the fleet. Every member, several consecutive steps (Adam
moments, policy delay, polyak, the entropy coefficient all exercised). The comparison is tight enough that a
partial instead of total target derivative, a 1.5x alpha and a sum instead of a mean goal reduction each fail it
(tests below).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch as th
from stable_baselines3 import DDPG, SAC, TD3
from stable_baselines3.common.type_aliases import DictReplayBufferSamples

from rlcert.agents import ReenGAGEDDPG, ReenGAGESAC, ReenGAGETD3
from rlcert.envs.continuous_seek import ContinuousSeekEnv
from rlcert.fleet.export import load_member
from rlcert.fleet.replay import Batch
from rlcert.fleet.sac import FleetSAC
from rlcert.fleet.td3 import FleetTD3
from rlcert.fleet.vector_envs import TorchContinuousSeek

D, B, ARCH, STEPS = 5, 48, [256, 256], 3
GRAD_TOL = 2e-5  # relative l2 error of each gradient tensor (float32 rounding at width 256: ~1e-6)
PARAM_TOL = 1e-2  # l2 error of each parameter tensor relative to its change (Adam turns rounding noise in
# near-zero gradient entries into up to lr-sized steps, so parameters are compared as a whole, not entry by entry)


class StubBuffer:
    """Stands in for the agent's replay buffer: ``sample`` returns the batch we hand it."""

    def __init__(self) -> None:
        self.batch = None

    def sample(self, batch_size, env=None):
        return self.batch


def make_agent(cls, seed, alpha, lr, reduction, **kw):
    env = ContinuousSeekEnv(d=D)
    extra = {} if cls in (DDPG, TD3, SAC) else {"alpha": alpha, "goal_reduction": reduction}
    model = cls("MultiInputPolicy", env, seed=seed, learning_starts=0, buffer_size=10, gamma=0.9, tau=0.05,
                learning_rate=lr, policy_kwargs={"net_arch": ARCH}, **extra, **kw)
    with th.no_grad():  # targets differ from the online networks, so the polyak step is visible
        for target in ("critic_target", "actor_target"):
            for p in getattr(model, target).parameters() if hasattr(model, target) else []:
                p.add_(0.01 * th.randn_like(p))
    model.replay_buffer = StubBuffer()
    model._setup_learn(1)  # a logger for train()
    return model


def random_batch(gen: np.random.Generator) -> dict:
    def t(x):
        return th.as_tensor(x, dtype=th.float32)

    s, g, s2 = (t(gen.uniform(-5, 5, (B, D))) for _ in range(3))
    g[: B // 4] = s2[: B // 4]  # some successful transitions (reward 0, masked out of the sparse term)
    r = -(np.abs(s2.numpy() - g.numpy()).max(axis=1) > 0.1).astype(np.float32)
    dones = (gen.uniform(size=B) < 0.2).astype(np.float32)
    return {"obs": {"achieved_goal": s, "desired_goal": g, "observation": s.clone()},
            "next": {"achieved_goal": s2, "desired_goal": g.clone(), "observation": s2.clone()},
            "actions": t(gen.uniform(-1, 1, (B, D))), "rewards": t(r).reshape(B, 1), "dones": t(dones).reshape(B, 1)}


def capture_gradients(opt, store: dict, key: str) -> None:
    """Record the gradients each step of the fleet's optimiser ``opt`` receives (the agent's are its ``.grad``)."""
    step = opt.step

    def recording(grads):
        store[key] = [g.detach().clone() for g in grads]
        step(grads)

    opt.step = recording


def fleet_of(family, models, mutate: dict):
    """The family's fleet with the settings read from the first agent (as ``rlcert train --seeds`` reads them from
    its probe), per-member learning rate / alpha from each agent, the agents' parameters, and ``mutate``."""
    settings = family.settings_from_agent(models[0], TorchContinuousSeek([None], d=D), len(models), "fp32")
    settings.learning_rate = [float(m.learning_rate) for m in models]
    settings.alpha = [float(getattr(m, "alpha", 0.0)) * mutate.get("alpha_factor", 1.0) for m in models]
    settings = dataclasses.replace(settings, **{k: v for k, v in mutate.items() if k != "alpha_factor"})
    fleet = family(settings)
    for k, m in enumerate(models):
        load_member(fleet, k, m)
        if family is FleetSAC:
            fleet.load_ent_coef(k, m)
    return fleet


def rel(ours: th.Tensor, theirs: th.Tensor, scale: th.Tensor) -> float:
    return float((ours - theirs).norm() / scale.norm().clamp_min(1e-30))


def member_errors(fleet, k, model, start: dict, grads: dict) -> tuple[float, float]:
    """(largest relative gradient error, largest parameter error relative to the parameter's change) of member k,
    over all its networks' tensors; gradients of the networks the last step trained."""
    grad_err, param_err = 0.0, 0.0
    for net, idx, linears in fleet.member_pairs(k, model):
        fleet_grads = None
        for key, opt in fleet.optimizers().items():
            params = opt.params
            if any(p is net.layers()[0][0] for p in params) and key in grads:
                pos = [i for i, p in enumerate(params) if p is net.layers()[0][0]][0]
                fleet_grads = grads[key][pos: pos + 2 * net.n_layers]
        for i, ((w, b), lin) in enumerate(zip(net.layers(), linears, strict=True)):
            for j, (ours, theirs) in enumerate(((w[idx].T, lin.weight), (b[idx, 0], lin.bias))):
                change = theirs.detach() - start[id(theirs)]
                if change.abs().max() > 0:
                    param_err = max(param_err, rel(ours.detach(), theirs.detach(), change))
                # stock SB3's actor backward() also fills the critics' .grad: gradients of rlcert's loops only
                if fleet_grads is not None and theirs.grad is not None and type(model) not in (DDPG, TD3, SAC):
                    g = fleet_grads[2 * i + j][idx]
                    g = g.T if j == 0 else g[0]
                    grad_err = max(grad_err, rel(g, theirs.grad, theirs.grad))
    if isinstance(fleet, FleetSAC) and model.ent_coef_optimizer is not None:
        ours, theirs = float(fleet.log_ent_coef[k].detach()), float(model.log_ent_coef.detach())
        param_err = max(param_err, abs(ours - theirs) / max(abs(theirs - start["log_ent_coef", k]), 1e-30))
    return grad_err, param_err


CASES = {  # name: (family, agent classes per member, alphas, goal_reduction, extra agent kwargs)
    "ddpg_reengage": (FleetTD3, [ReenGAGEDDPG] * 3, [0.2, 0.5, 0.0], "mean", {}),
    "ddpg_reengage_sum": (FleetTD3, [ReenGAGEDDPG] * 2, [0.2, 0.05], "sum", {}),
    "ddpg_reengage_strong": (FleetTD3, [ReenGAGEDDPG] * 2, [3.0, 10.0], "mean", {}),  # the penalty dominates
    "td3_reengage_strong": (FleetTD3, [ReenGAGETD3] * 2, [3.0, 10.0], "mean", {}),
    "ddpg_stock": (FleetTD3, [DDPG] * 2, [0.0, 0.0], "mean", {}),
    "td3_reengage": (FleetTD3, [ReenGAGETD3] * 2, [0.3, 0.1], "mean", {}),
    "td3_stock": (FleetTD3, [TD3] * 2, [0.0, 0.0], "mean", {}),
    "sac_reengage_auto": (FleetSAC, [ReenGAGESAC] * 2, [0.2, 0.5], "mean", {}),
    "sac_reengage_alpha0": (FleetSAC, [ReenGAGESAC] * 2, [0.0, 0.0], "mean", {}),
    "sac_reengage_fixed": (FleetSAC, [ReenGAGESAC] * 2, [0.3, 0.1], "mean", {"ent_coef": 0.05}),
    "sac_stock": (FleetSAC, [SAC] * 2, [0.0, 0.0], "mean", {}),
    # one learning rate for all members, as in training: StackedAdam's fused kernel (per-member rates: foreach)
    "ddpg_reengage_uniform_lr": (FleetTD3, [ReenGAGEDDPG] * 2, [0.2, 0.5], "mean", {}),
    "sac_reengage_uniform_lr": (FleetSAC, [ReenGAGESAC] * 2, [0.2, 0.5], "mean", {}),
}


def run_case(name: str, mutate: dict | None = None) -> tuple[float, float]:
    """(largest gradient error, largest parameter error) of the fleet against the agents over members and steps."""
    family, classes, alphas, reduction, extra = CASES[name]
    th.manual_seed(0)
    lrs = [1e-3] * 3 if name.endswith("_uniform_lr") else [1e-3, 5e-4, 2e-3]
    models = [make_agent(cls, 10 + k, a, lrs[k], reduction, **extra)
              for k, (cls, a) in enumerate(zip(classes, alphas, strict=True))]
    fleet = fleet_of(family, models, mutate or {})
    grads: dict = {}
    for key, opt in fleet.optimizers().items():
        capture_gradients(opt, grads, key)
    start = {id(p): p.detach().clone() for m in models for p in m.policy.parameters()}
    start.update({("log_ent_coef", k): float(m.log_ent_coef.detach()) for k, m in enumerate(models)
                  if getattr(m, "ent_coef_optimizer", None) is not None})
    gen = np.random.default_rng(1)
    worst, moved = (0.0, 0.0), False
    for step in range(STEPS):
        batches = [random_batch(gen) for _ in models]
        noises = []
        for k, (m, b) in enumerate(zip(models, batches, strict=True)):
            m.replay_buffer.batch = DictReplayBufferSamples(b["obs"], b["actions"], b["next"], b["dones"],
                                                           b["rewards"], None)
            th.manual_seed(100 * step + k)  # the agent's draws from the global generator, reproduced
            if family is FleetSAC:
                noises.append((th.empty(B, D).normal_(), th.empty(B, D).normal_()))
            else:
                noises.append(th.empty(B, D).normal_(0, m.target_policy_noise).clamp(-m.target_noise_clip,
                                                                                       m.target_noise_clip))
            th.manual_seed(100 * step + k)
            before = next(m.actor.parameters()).detach().clone()
            for p in m.policy.parameters():
                p.grad = None
            m.train(gradient_steps=1, batch_size=B)
            moved = moved or not th.equal(before, next(m.actor.parameters()))
        stack = Batch({k: th.stack([b["obs"][k] for b in batches]) for k in batches[0]["obs"]},
                      th.stack([b["actions"] for b in batches]),
                      {k: th.stack([b["next"][k] for b in batches]) for k in batches[0]["next"]},
                      th.stack([b["rewards"] for b in batches]), th.stack([b["dones"] for b in batches]))
        if family is FleetSAC:
            fleet.update(stack, noise=(th.stack([n[0] for n in noises]), th.stack([n[1] for n in noises])))
        else:
            clip = max(m.target_noise_clip for m in models)
            fleet.update(stack, target_noise=th.stack(noises) if clip > 0 else None)
        for k, m in enumerate(models):
            errors = member_errors(fleet, k, m, start, grads)
            worst = (max(worst[0], errors[0]), max(worst[1], errors[1]))
    assert moved
    return worst


@pytest.mark.parametrize("name", list(CASES))
def test_fleet_update_equals_agent_train(name):
    grad_err, param_err = run_case(name)
    assert grad_err < GRAD_TOL and param_err < PARAM_TOL, (grad_err, param_err)


@pytest.mark.parametrize("name,mutate", [
    ("ddpg_reengage_strong", {"through_target_actor": False}),  # partial instead of total target derivative
    ("ddpg_reengage", {"alpha_factor": 1.5}),
    ("ddpg_reengage", {"goal_reduction": "sum"}),
    ("td3_reengage_strong", {"through_target_actor": False}),
    ("sac_reengage_auto", {"through_target_actor": False}),
    ("sac_reengage_auto", {"alpha_factor": 1.5}),
    ("sac_reengage_auto", {"goal_reduction": "sum"}),
], ids=lambda v: str(v))
def test_equivalence_check_catches_mutations(name, mutate):
    """Each mutation of the fleet's math exceeds the tolerance the real fleet meets (the test is not vacuous)."""
    grad_err, _ = run_case(name, mutate)
    assert grad_err > 10 * GRAD_TOL, grad_err

"""The Multi-ReenGAGE fleet (DeepSets, goal sets): one update == rlcert.agents' MultiReenGAGEDDPG / TD3 train() at
Table G.4 sizes (n_max 200, encoder 2 x 400, heads 1 x 400, embedding 20), tight enough that a missing /n_max, a sum
instead of a mean, or a mean over the real gates instead of all n_max fails; members bit-identical alone or among
others at width 256; the training loop runs on torch DriveSeek and NoisySeek."""

from __future__ import annotations

import numpy as np
import pytest
import torch as th
from stable_baselines3.common.type_aliases import DictReplayBufferSamples

import rlcert.fleet.goal_set as fleet_goal_set
from rlcert.agents import goal_gradient as gg
from rlcert.agents.deepsets import DeepSetsTD3Policy
from rlcert.agents.multi_reengage import MultiReenGAGEDDPG, MultiReenGAGETD3
from rlcert.envs import NoisySeekEnv, goal_set_reward
from rlcert.envs.torch_vector import TorchDriveSeek, TorchNoisySeek
from rlcert.fleet.config import Schedule
from rlcert.fleet.export import load_member
from rlcert.fleet.goal_set import FleetMultiReenGAGE, GoalSetSettings, ScaledDriveSeek, ScaledNoisySeek
from rlcert.fleet.replay import Batch
from rlcert.fleet.stacked import linears_of
from rlcert.fleet.trainer import Fleet

N_MAX, B, GAMMA = 200, 128, 0.95
G4 = {"embed_dim": 20, "encoder_arch": [400, 400], "head_arch": [400]}
GOAL_SETS = np.stack([NoisySeekEnv().reset(seed=s)[0]["desired_goal"] for s in range(300)])


def make_agent(cls, seed: int, alpha: float, lr: float, n_critics: int, share_encoder: bool = True):
    model = cls(DeepSetsTD3Policy, NoisySeekEnv(), alpha=alpha, seed=seed, learning_starts=0, buffer_size=10,
                gamma=GAMMA, tau=0.05, learning_rate=lr,
                policy_kwargs={**G4, "share_encoder": share_encoder, "n_critics": n_critics, "pooling": "n_max"})
    with th.no_grad():  # targets differ from the online networks, so the polyak step is visible
        for net in (model.critic_target, model.actor_target.mu):
            for p in net.parameters():
                p.add_(0.01 * th.randn_like(p))

    class Stub:
        batch = None

        def sample(self, batch_size, env=None):
            return self.batch

    model.replay_buffer = Stub()
    model._setup_learn(1)
    return model


def random_batch(gen: np.random.Generator) -> dict:
    dg = GOAL_SETS[gen.integers(0, len(GOAL_SETS), B)]
    pos, pos2 = gen.normal(0, 6, (B, 2)), gen.normal(0, 6, (B, 2))
    pos2[: B // 3] = dg[: B // 3, 0, 1:] + gen.uniform(-0.4, 0.4, (B // 3, 2))  # goal hits: reward 1, dR/db = 2
    ag, ag2 = np.rint(pos), np.rint(pos2)
    r = goal_set_reward(ag2, dg).astype(np.float32)
    t = lambda x: th.as_tensor(np.asarray(x, dtype=np.float32))  # noqa: E731
    return {"obs": {"achieved_goal": t(ag), "desired_goal": t(dg), "observation": t(np.c_[pos, ag])},
            "next": {"achieved_goal": t(ag2), "desired_goal": t(dg), "observation": t(np.c_[pos2, ag2])},
            "actions": t(gen.uniform(-1, 1, (B, 2))), "rewards": t(r).reshape(B, 1),
            "dones": t(gen.uniform(size=B) < 0.2).reshape(B, 1)}


def fleet_of(models, alphas, n_critics, delay, noise, clip, **changes) -> FleetMultiReenGAGE:
    S = len(models)
    changes.setdefault("share_encoder", models[0].policy.share_encoder)
    cfg = GoalSetSettings(obs_dim=4, goal_dim=3 * N_MAX, action_dim=2, n_max=N_MAX, embed_dim=G4["embed_dim"],
                          encoder_arch=G4["encoder_arch"], net_arch=G4["head_arch"], n_critics=n_critics,
                          policy_delay=delay,
                          learning_rate=[m.learning_rate for m in models], alpha=list(alphas), gamma=[GAMMA] * S,
                          tau=[0.05] * S, target_policy_noise=[noise] * S, target_noise_clip=[clip] * S)
    for key, value in changes.items():
        setattr(cfg, key, value)
    fleet = FleetMultiReenGAGE(cfg)  # (share_encoder and the other changes are read at construction)
    for k, m in enumerate(models):
        load_member(fleet, k, m)
    return fleet


def opt_lr(model) -> float:
    return model.policy.critic.optimizer.param_groups[0]["lr"]


def assert_member_equal(fleet: FleetMultiReenGAGE, k: int, model) -> None:
    """Gradients (Adam's first moments) and parameters of member k equal the agent's (encoder, heads, actor).

    Adam's first steps are nearly lr * sign(gradient): an entry whose first gradient is ~1e-9 of the largest steps
    differently under float rounding (seen: 1-2 of 160,000 entries, by up to 4% of lr after two steps), so
    parameters must agree to 2e-6 except for at most 0.01% of the entries, and to 10% of lr everywhere; the
    gradients themselves are compared tightly everywhere (that is where a wrong convention shows)."""
    lr = float(opt_lr(model))
    pol = model.policy
    opts = {id(p): opt for opt in (pol.critic.optimizer, pol.actor.optimizer) for g in opt.param_groups
            for p in g["params"]}
    C = fleet.cfg.n_critics
    groups = [(fleet.encoder, fleet.encoder_opt, k, pol.critic.encoder),
              (fleet.actor, fleet.actor_opt, k, pol.actor.mu)]
    if not pol.share_encoder:
        groups.append((fleet.actor_encoder, fleet.actor_opt, k, pol.actor.features.goal_encoder))
    groups += [(fleet.critic, fleet.critic_opt, k * C + j, pol.critic.q_networks[j]) for j in range(C)]
    for net, opt, idx, module in groups:
        for (w, b), lin in zip(net.layers(), linears_of(module), strict=True):
            state = opts[id(lin.weight)].state
            m_w, m_b = (opt.exp_avg[next(j for j, q in enumerate(opt.params) if q is t)] for t in (w, b))
            for mine_m, mine_p, p in ((m_w[idx].T, w[idx].T, lin.weight), (m_b[idx, 0], b[idx, 0], lin.bias)):
                if p in state:  # (the actor's optimiser has no state before its first, delayed step)
                    theirs = state[p]["exp_avg"]
                    th.testing.assert_close(mine_m, theirs, rtol=2e-4, atol=2e-5 * float(theirs.abs().max()))
                diff = (mine_p.detach() - p.detach()).abs()
                assert float(diff.max()) <= 0.1 * lr and float((diff > 2e-6).float().mean()) < 1e-4
    targets = [(fleet.encoder_target, k, pol.critic_target.encoder), (fleet.actor_target, k, pol.actor_target.mu)]
    if not pol.share_encoder:
        targets.append((fleet.actor_encoder_target, k, pol.actor_target.features.goal_encoder))
    for net, idx, module in targets:
        for (w, _), lin in zip(net.layers(), linears_of(module), strict=True):
            th.testing.assert_close(w[idx].T, lin.weight, rtol=1e-5, atol=1e-5)


CASES = [  # (id, class, alphas per member, n_critics, policy_delay, target noise, clip, share_encoder)
    ("ddpg_mrg", MultiReenGAGEDDPG, [10.0, 20.0], 1, 1, 0.0, 0.0, True),
    ("ddpg_alpha0", MultiReenGAGEDDPG, [0.0, 0.0], 1, 1, 0.0, 0.0, True),
    ("td3_mrg", MultiReenGAGETD3, [5.0], 2, 2, 0.2, 0.5, True),
    ("ddpg_mrg_unshared", MultiReenGAGEDDPG, [10.0], 1, 1, 0.0, 0.0, False),
]


def run_case(case, steps: int = 2, **changes) -> None:
    _, cls, alphas, n_critics, delay, noise, clip, shared = case
    th.manual_seed(0)
    models = [make_agent(cls, seed=10 + k, alpha=a, lr=[1e-3, 5e-4][k], n_critics=n_critics, share_encoder=shared)
              for k, a in enumerate(alphas)]
    fleet = fleet_of(models, alphas, n_critics, delay, noise, clip, **changes)
    gen = np.random.default_rng(1)
    for step in range(steps):
        batches = [random_batch(gen) for _ in models]
        noises = []
        for k, (m, b) in enumerate(zip(models, batches, strict=True)):
            m.replay_buffer.batch = DictReplayBufferSamples(b["obs"], b["actions"], b["next"], b["dones"],
                                                           b["rewards"], None)
            th.manual_seed(100 * step + k)  # the agent's TD3 target noise comes from the global generator
            noises.append(th.empty(B, 2).normal_(0, noise).clamp(-clip, clip))
            th.manual_seed(100 * step + k)
            m.train(gradient_steps=1, batch_size=B)
        stack = Batch({key: th.stack([b["obs"][key] for b in batches]) for key in batches[0]["obs"]},
                      th.stack([b["actions"] for b in batches]),
                      {key: th.stack([b["next"][key] for b in batches]) for key in batches[0]["next"]},
                      th.stack([b["rewards"] for b in batches]), th.stack([b["dones"] for b in batches]))
        out = fleet.update(stack, target_noise=th.stack(noises) if clip > 0 else None)
        for k, m in enumerate(models):
            assert_member_equal(fleet, k, m)
            if alphas[k] > 0:
                logged = m.logger.name_to_value["train/gate_gradient_loss"]
                assert abs(float(out["gate_gradient_loss"][k]) - logged) <= 1e-4 * abs(logged)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_fleet_update_equals_multi_reengage_train(case):
    run_case(case)


def real_gates_mean(grad_q: th.Tensor, grad_target: th.Tensor, reduction: str) -> th.Tensor:
    """A wrong penalty: the squared error averaged over each row's real gates instead of all n_max."""
    sq = (grad_q - grad_target.detach()) ** 2
    real = (grad_target != 0) | (grad_q.detach() != 0)
    return (sq.sum(-1) / real.sum(-1).clamp(min=1)).mean(-1)


@pytest.mark.parametrize("mutation", ["pooling_without_n_max", "sum_over_gates", "mean_over_real_gates",
                                      "partial_target_derivative"])
def test_equivalence_check_fails_on_wrong_conventions(mutation, monkeypatch):
    """Not vacuous: each wrong convention is detected on the first update (the partial target derivative through
    Q' only, by the gate-penalty value; the others already by the gradients)."""
    changes = {"pooling_without_n_max": {"pooling": "sum"}, "sum_over_gates": {"goal_reduction": "sum"},
               "mean_over_real_gates": {}, "partial_target_derivative": {"through_target_actor": False}}[mutation]
    if mutation == "mean_over_real_gates":
        monkeypatch.setattr(fleet_goal_set, "gate_penalty", real_gates_mean)
        assert gg.reengage_penalty is not real_gates_mean  # the agent keeps its own
    if mutation == "pooling_without_n_max":  # the template encoder is built from the settings
        changes = {}
        original = fleet_goal_set.GoalSetEncoder
        monkeypatch.setattr(fleet_goal_set, "GoalSetEncoder",
                            lambda *a, divisor=1.0, **kw: original(*a, divisor=1.0, **kw))
    with pytest.raises(AssertionError):
        run_case(CASES[0], steps=1, **changes)


# ---- the loop ---------------------------------------------------------------------------------------------------
def make_fleet(seeds, env_cls=ScaledNoisySeek, width: int = 256, n_max: int = 20, alpha: float = 10.0,
               share_encoder: bool = True, n_critics: int = 1) -> Fleet:
    S = len(seeds)
    settings = GoalSetSettings(obs_dim=env_cls.obs_dim, goal_dim=3 * n_max, n_max=n_max,
                               action_dim=2 if env_cls is ScaledNoisySeek else 1, embed_dim=8,
                               encoder_arch=[width, width], net_arch=[width], learning_rate=[1e-3] * S,
                               alpha=[alpha] * S, gamma=[0.95] * S, tau=[0.05] * S,
                               target_noise_clip=[0.5 * (n_critics - 1)] * S, action_noise_sigma=[0.1] * S,
                               target_policy_noise=[0.2] * S, share_encoder=share_encoder, n_critics=n_critics,
                               policy_delay=n_critics)
    schedule = Schedule(learning_starts=45, train_freq=1, gradient_steps=1, batch_size=8, buffer_size=400,
                        n_sampled_goal=0, her=False)
    return Fleet(settings, schedule, seeds, env_cls, {"n_max": n_max, "max_steps": 10}, FleetMultiReenGAGE)


def member_params(fleet: Fleet, k: int) -> list[th.Tensor]:
    C = fleet.agent.cfg.n_critics
    return [p[k * C + j] if name.startswith("critic") else p[k] for name, net in fleet.agent.modules().items()
            for p in net.parameters() for j in range(C if name.startswith("critic") else 1)]


@pytest.mark.parametrize("variant", ["ddpg", "td3", "unshared"])
def test_member_alone_equals_member_among_others_at_width_256(variant):
    kw = {"ddpg": {}, "td3": {"n_critics": 2}, "unshared": {"share_encoder": False}}[variant]
    alone, crowd = make_fleet([2], **kw), make_fleet([0, 1, 2], **kw)
    alone.learn(60)
    crowd.learn(60)
    assert alone.agent.n_updates == 60 - 45
    for a, c in zip(member_params(alone, 0), member_params(crowd, 2), strict=True):
        assert th.equal(a, c)
    assert not all(th.equal(a, c) for a, c in zip(member_params(alone, 0), member_params(crowd, 1), strict=True))


@pytest.mark.parametrize("env_cls", [ScaledDriveSeek, ScaledNoisySeek])
def test_loop_runs_evaluates_and_resumes(env_cls):
    straight = make_fleet([0, 1], env_cls, width=16)
    straight.learn(55)
    first = make_fleet([0, 1], env_cls, width=16)
    first.learn(48)
    second = make_fleet([0, 1], env_cls, width=16)
    second.load_state_dict(first.state_dict())
    second.learn(55)
    for a, b in zip(member_params(straight, 1), member_params(second, 1), strict=True):
        assert th.equal(a, b)
    stats = straight.evaluate(episodes=3)
    assert stats["mean_return"].shape == (2,) and bool((stats["mean_return"] >= 0).all())


def test_actions_are_unscaled_as_sb3_does():
    """The fleet acts in SB3's scaled space [-1, 1]; the env twin receives SB3's unscale_action of it."""
    from types import SimpleNamespace

    from stable_baselines3.common.policies import BasePolicy

    from rlcert.envs import DriveSeekEnv

    policy = SimpleNamespace(action_space=DriveSeekEnv(max_turn=0.3).action_space)
    scaled = np.linspace(-1, 1, 7, dtype=np.float32).reshape(7, 1)
    env = ScaledDriveSeek([th.Generator().manual_seed(i) for i in range(7)], max_turn=0.3)
    env.reset()
    env.step(th.as_tensor(scaled))
    unscaled = BasePolicy.unscale_action(policy, scaled)  # what SB3 hands the gymnasium env
    for i in range(7):
        gym_env = DriveSeekEnv(max_turn=0.3)
        gym_env.reset(seed=0)
        gym_env.step(unscaled[i])
        assert gym_env._heading == float(env.heading[i])
    assert issubclass(ScaledNoisySeek, TorchNoisySeek) and issubclass(ScaledDriveSeek, TorchDriveSeek)

"""Multi-ReenGAGE agents: encoder sharing, alpha = 0 equals stock SB3, save/load, input validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

try:  # works whether or not tests/agents is a package
    from multi_helpers import SMALL, goal_set_batch, noisy_env
except ImportError:  # pragma: no cover
    from .multi_helpers import SMALL, goal_set_batch, noisy_env
from stable_baselines3 import DDPG, SAC, TD3

from rlcert.agents.deepsets import DeepSetsSACPolicy, DeepSetsTD3Policy
from rlcert.agents.multi_reengage import MultiReenGAGEDDPG, MultiReenGAGESAC, MultiReenGAGETD3

COMMON = dict(learning_starts=50, batch_size=16, buffer_size=1000, seed=3, policy_kwargs=SMALL)


def _params(model) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.policy.parameters()]


def _identical(a, b) -> bool:
    pa, pb = _params(a), _params(b)
    assert len(pa) == len(pb)
    return all(torch.equal(x, y) for x, y in zip(pa, pb))


@pytest.fixture
def hook_calls(monkeypatch):
    """Counts calls of the agents' critic-loss hook: the equivalence tests must run our loop, not SB3's."""
    from rlcert.agents.core import GradientMatching

    calls = []
    original = GradientMatching.critic_loss_terms

    def counted(self, *args, **kwargs):
        calls.append(type(self).__name__)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(GradientMatching, "critic_loss_terms", counted)
    return calls


def test_shared_encoder_gets_no_gradient_from_actor_loss():
    model = MultiReenGAGEDDPG(DeepSetsTD3Policy, noisy_env(), alpha=0.1, **COMMON)
    model.policy.double()
    obs = goal_set_batch(batch=8, seed=7)
    model.policy.zero_grad(set_to_none=True)
    (-model._actor_q1(obs).mean()).backward()
    assert all(p.grad is None for p in model.critic.encoder.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.actor.parameters())
    assert not any(p is q for p in model.actor.parameters() for q in model.critic.encoder.parameters())
    # The actor's own forward (used by predict and by stock SB3's actor loss) does not reach the encoder either.
    model.policy.zero_grad(set_to_none=True)
    model.actor(obs).sum().backward()
    assert all(p.grad is None for p in model.critic.encoder.parameters())


def test_unshared_encoder_is_the_actors_own_and_trained_by_actor_loss():
    model = MultiReenGAGEDDPG(DeepSetsTD3Policy, noisy_env(), alpha=0.1,
                              **{**COMMON, "policy_kwargs": {**SMALL, "share_encoder": False}})
    model.policy.double()
    model.policy.zero_grad(set_to_none=True)
    (-model._actor_q1(goal_set_batch(batch=8, seed=7)).mean()).backward()
    assert all(p.grad is None for p in model.critic.encoder.parameters())
    enc = model.actor.features.goal_encoder
    assert enc is not model.critic.encoder
    assert all(p.grad is not None for p in enc.parameters())


@pytest.mark.parametrize(("ours", "stock", "kwargs"), [
    (MultiReenGAGEDDPG, DDPG, {}),
    (MultiReenGAGETD3, TD3, {"policy_kwargs": {**SMALL, "n_critics": 2}}),
])
def test_alpha_zero_equals_stock_td3_ddpg_update(ours, stock, kwargs, hook_calls):
    cfg = {**COMMON, **kwargs}
    a = ours(DeepSetsTD3Policy, noisy_env(), alpha=0.0, **cfg).learn(120)
    assert len(hook_calls) == 120 - 50  # one hook call per update: our loop ran
    b = stock(DeepSetsTD3Policy, noisy_env(), **cfg).learn(120)
    assert _identical(a, b)  # bit for bit
    # ... and a positive alpha changes the result (the gate term is really there).
    c = ours(DeepSetsTD3Policy, noisy_env(), alpha=1.0, **cfg).learn(120)
    assert max((x - y).abs().max().item() for x, y in zip(_params(c), _params(b))) > 1e-4


def test_alpha_zero_equals_stock_sac_update(hook_calls):
    a = MultiReenGAGESAC(DeepSetsSACPolicy, noisy_env(), alpha=0.0, **COMMON).learn(120)
    assert len(hook_calls) == 120 - 50
    b = SAC(DeepSetsSACPolicy, noisy_env(), **COMMON).learn(120)
    assert _identical(a, b)  # bit for bit
    c = MultiReenGAGESAC(DeepSetsSACPolicy, noisy_env(), alpha=1.0, **COMMON).learn(120)
    assert max((x - y).abs().max().item() for x, y in zip(_params(c), _params(b))) > 1e-4


def test_save_load_roundtrip(tmp_path):
    model = MultiReenGAGEDDPG(DeepSetsTD3Policy, noisy_env(), alpha=0.25, **COMMON).learn(60)
    model.save(tmp_path / "m.zip")
    loaded = MultiReenGAGEDDPG.load(tmp_path / "m.zip", env=noisy_env())
    assert loaded.alpha == 0.25
    obs, _ = noisy_env().reset(seed=0)
    np.testing.assert_allclose(model.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0])
    # the target actor still borrows the (loaded) target critic's encoder
    assert loaded.actor_target.features.goal_encoder is loaded.critic_target.encoder


@pytest.mark.parametrize("alpha", [-0.1, float("nan")])
def test_bad_alpha_rejected(alpha):
    with pytest.raises(ValueError, match="alpha"):
        MultiReenGAGEDDPG(DeepSetsTD3Policy, noisy_env(), alpha=alpha, **COMMON)


def test_non_goal_set_env_rejected():
    import gymnasium as gym

    with pytest.raises(ValueError, match="desired_goal"):
        MultiReenGAGEDDPG(DeepSetsTD3Policy, gym.make("rlcert/ContinuousSeek-v0"), **COMMON)


def test_critic_counts_follow_sb3_defaults():
    small = {k: v for k, v in COMMON.items() if k != "policy_kwargs"}
    assert len(MultiReenGAGEDDPG(DeepSetsTD3Policy, noisy_env(), **small).critic.q_networks) == 1
    assert len(MultiReenGAGETD3(DeepSetsTD3Policy, noisy_env(), **small).critic.q_networks) == 2
    assert len(MultiReenGAGESAC(DeepSetsSACPolicy, noisy_env(), **small).critic.q_networks) == 2
    with pytest.raises(ValueError, match="n_critics"):
        MultiReenGAGEDDPG(DeepSetsTD3Policy, noisy_env(), **{**COMMON, "policy_kwargs": {**SMALL, "n_critics": 0}})


def test_policy_alone_save_load_and_unknown_kwargs(tmp_path):
    from rlcert.agents.drive_seek_cnn import DriveSeekCnnTD3Policy  # noqa: F401  (same constructor path)

    for algo, policy_cls in ((MultiReenGAGEDDPG, DeepSetsTD3Policy), (MultiReenGAGESAC, DeepSetsSACPolicy)):
        model = algo(policy_cls, noisy_env(), **COMMON)
        model.policy.save(tmp_path / "p.pt")
        loaded = policy_cls.load(tmp_path / "p.pt")
        obs, _ = noisy_env().reset(seed=1)
        np.testing.assert_allclose(model.policy.predict(obs, deterministic=True)[0],
                                   loaded.predict(obs, deterministic=True)[0], rtol=1e-6)
        with pytest.raises(TypeError, match="encoder_archs"):
            algo(policy_cls, noisy_env(), **{**COMMON, "policy_kwargs": {"encoder_archs": [8]}})

"""Policy adaptor and masks: the adaptor reproduces SB3's own predict; masks never perturb what they exclude."""

from __future__ import annotations

import itertools
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

import rlcert  # noqa: F401  (registers the environments)
from rlcert.certify.policy import (
    MaskedNoise,
    ObservationLayout,
    ObservationNoiseWrapper,
    PolicyFunction,
    make_certifier,
    rollout,
)

KEYS = ("observation", "achieved_goal", "desired_goal")


def _obs_batch(env: gym.Env, n: int, seed: int = 0) -> dict[str, np.ndarray]:
    obs = []
    for i in range(n):
        o, _ = env.reset(seed=seed + i)
        for _ in range(i % 3):
            o, *_ = env.step(env.action_space.sample())
        obs.append(o)
    return {k: np.stack([o[k] for o in obs]) for k in obs[0]}


def test_import_rlcert_certify_does_not_import_the_policy_package():
    code = ("import sys, rlcert.certify; bad = [m for m in ('rlcert.certify.policy', 'stable_baselines3') "
            "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.parametrize("method", ["gaussian", "laplace"])
@pytest.mark.parametrize("perturb", [c for r in (1, 2, 3) for c in itertools.combinations(KEYS, r)])
def test_masked_noise_touches_exactly_the_masked_entries(perturb, method):
    env = gym.make("rlcert/ContinuousSeek-v0", d=3)
    layout = ObservationLayout(env.observation_space, perturb)
    x = layout.flatten(_obs_batch(env, 4))
    noise = MaskedNoise(make_certifier(method, 0.3), layout)
    g = torch.Generator().manual_seed(0)
    for i in range(len(x)):
        out = torch.empty((50, layout.dim))
        noise.perturb_(out, x[i], g)
        changed = (out != x[i]).all(dim=0)
        same = (out == x[i]).all(dim=0)
        for k in KEYS:
            sl = layout.slices[k]
            if k in perturb:
                assert bool(changed[sl].all()), k
            else:
                assert bool(same[sl].all()), k


def test_goal_set_mask_perturbs_only_real_goal_coordinates():
    env = gym.make("rlcert/NoisySeek-v0", n_max=6)
    layout = ObservationLayout(env.observation_space, ["desired_goal"])
    assert layout.goal_set
    batch = _obs_batch(env, 5)
    dg = batch["desired_goal"]
    assert (dg[:, :, 0] == 0).any() and (dg[:, :, 0] > 0).any()  # both real goals and padding present
    x = layout.flatten(batch)
    noise = MaskedNoise(make_certifier("gaussian", 0.5), layout)
    g = torch.Generator().manual_seed(1)
    for i in range(len(x)):
        out = torch.empty((20, layout.dim))
        noise.perturb_(out, x[i], g)
        noisy = layout.unflatten(out)
        assert torch.equal(noisy["desired_goal"][:, :, 0], torch.as_tensor(dg[i, :, 0]).expand(20, -1))  # gates
        real = dg[i, :, 0] > 0
        moved = (noisy["desired_goal"][:, :, 1:] != torch.as_tensor(dg[i, :, 1:])).all(dim=0).all(dim=-1)
        stayed = (noisy["desired_goal"][:, :, 1:] == torch.as_tensor(dg[i, :, 1:])).all(dim=0).all(dim=-1)
        assert bool(moved[torch.as_tensor(real)].all()) and bool(stayed[torch.as_tensor(~real)].all())
        for k in ("observation", "achieved_goal"):
            assert torch.equal(noisy[k], torch.as_tensor(batch[k][i]).expand_as(noisy[k]))


def test_rollout_and_wrapper_feed_the_policy_masked_noise_only():
    env = gym.make("rlcert/ContinuousSeek-v0", d=2)
    seen: list[dict[str, torch.Tensor]] = []

    def act(obs):
        seen.append({k: v.clone() for k, v in obs.items()})
        return torch.zeros(obs["observation"].shape[0], 2)

    pf = PolicyFunction(act, env.observation_space, env.action_space, ["desired_goal"])
    noise = MaskedNoise(make_certifier("gaussian", 0.2), pf.layout)
    rollout(pf, lambda: gym.make("rlcert/ContinuousSeek-v0", d=2), range(3), seed=0, noise=noise, num_envs=3)
    assert len(seen) == 10  # the zero policy never moves: observation = achieved_goal = 0 exactly
    for o in seen:
        assert torch.all(o["observation"] == 0) and torch.all(o["achieved_goal"] == 0)
        assert torch.all(o["desired_goal"] != seen[0]["desired_goal"][0]) or o is seen[0]
    w = ObservationNoiseWrapper(gym.make("rlcert/ContinuousSeek-v0", d=2), sigma=0.2, perturb=["desired_goal"])
    clean, _ = env.reset(seed=3)
    noisy, _ = w.reset(seed=3)
    assert np.array_equal(noisy["observation"], clean["observation"])
    assert np.array_equal(noisy["achieved_goal"], clean["achieved_goal"])
    assert np.all(noisy["desired_goal"] != clean["desired_goal"])
    again, _ = w.reset(seed=3)
    assert np.array_equal(again["desired_goal"], noisy["desired_goal"])  # seeded


def test_layout_rejects_unknown_entries():
    env = gym.make("rlcert/ContinuousSeek-v0", d=2)
    with pytest.raises(ValueError, match="perturb"):
        ObservationLayout(env.observation_space, ["goal"])
    with pytest.raises(ValueError, match="perturb"):
        ObservationLayout(env.observation_space, [])


def _sb3_cases():
    from stable_baselines3 import DDPG, DQN, SAC, TD3

    from rlcert.agents import ReenGAGEDDPG, ReenGAGEDQN, ReenGAGESAC
    from rlcert.agents.deepsets import DeepSetsTD3Policy
    from rlcert.agents.multi_reengage import MultiReenGAGEDDPG

    seek = lambda: gym.make("rlcert/ContinuousSeek-v0", d=3)  # noqa: E731
    bits = lambda: gym.make("rlcert/BitFlipping-v0", n_bits=5)  # noqa: E731
    noisy = lambda: gym.make("rlcert/NoisySeek-v0", n_max=5)  # noqa: E731
    drive = lambda: gym.make("rlcert/DriveSeek-v0", n_max=4)  # noqa: E731  (action box [-0.5, 0.5])
    small = {"net_arch": [16]}
    rg = {"goal_reduction": "mean"}
    sets = {"embed_dim": 4, "encoder_arch": [8], "head_arch": [8]}
    return [
        ("DDPG", lambda: DDPG("MultiInputPolicy", seek(), policy_kwargs=small), seek),
        ("TD3", lambda: TD3("MultiInputPolicy", drive(), policy_kwargs=small), drive),
        ("SAC", lambda: SAC("MultiInputPolicy", drive(), policy_kwargs=small), drive),
        ("DQN", lambda: DQN("MultiInputPolicy", bits(), policy_kwargs=small), bits),
        ("ReenGAGEDDPG", lambda: ReenGAGEDDPG("MultiInputPolicy", seek(), policy_kwargs=small, **rg), seek),
        ("ReenGAGESAC", lambda: ReenGAGESAC("MultiInputPolicy", seek(), policy_kwargs=small, **rg), seek),
        ("ReenGAGEDQN", lambda: ReenGAGEDQN("MultiInputPolicy", bits(), policy_kwargs=small, **rg), bits),
        ("rlcert.agents.multi_reengage:MultiReenGAGEDDPG",
         lambda: MultiReenGAGEDDPG(DeepSetsTD3Policy, noisy(), policy_kwargs=sets), noisy),
    ]


@pytest.mark.parametrize("case", range(8))
def test_adaptor_matches_sb3_predict_and_survives_save_load(case, tmp_path):
    algo, build, make = _sb3_cases()[case]
    model = build()
    batch = _obs_batch(make(), 6, seed=11)
    ref, _ = model.predict(batch, deterministic=True)
    pf = PolicyFunction.from_sb3(model, ["desired_goal"])
    got = pf(pf.flatten(batch)).detach().cpu().numpy()
    np.testing.assert_allclose(got.reshape(ref.shape), ref, rtol=1e-5, atol=1e-6)
    if not pf.discrete and float(pf.high.max()) != 1.0:  # the raw tanh output would not match SB3's unscaling
        raw = model.policy._predict(model.policy.obs_to_tensor(batch)[0], deterministic=True).detach().numpy()
        assert not np.allclose(raw.reshape(ref.shape), ref)
    model.save(tmp_path / "model.zip")
    loaded = PolicyFunction.load(tmp_path / "model.zip", algo=algo, device="cpu")
    np.testing.assert_allclose(loaded(loaded.flatten(batch)).detach().numpy().reshape(ref.shape), ref,
                               rtol=1e-5, atol=1e-6)


class _OldMasked:
    """The pre-refactor MaskedNoise, inlined as the reference: the certifier's sampler on zeros, times the mask."""

    def __init__(self, certifier, layout):
        self.certifier, self.layout = certifier, layout

    def perturb_(self, out, x, generator):
        self.certifier.perturb_(out, torch.zeros_like(x), generator)
        out.mul_(self.layout.mask(x)).add_(x)


@pytest.mark.parametrize("method", ["gaussian", "laplace"])
def test_masked_noise_is_a_noise_with_unchanged_samples_and_certificates(method):
    """MaskedNoise is a rlcert.certify Noise (sigma, lambd, norm, radius of the wrapped noise) built from a noise
    object; its draws equal the old certifier-wrapping implementation bit for bit, and so do the per-step
    certificates of a discrete policy (prediction, radius, p_lower)."""
    from rlcert.certify.core.smoothing import SmoothingCertifier
    from rlcert.certify.policy import MaskedCertifier, certify_discrete
    from rlcert.certify.randomized.noise import Noise, make_noise

    env = gym.make("rlcert/NoisySeek-v0", n_max=4)
    layout = ObservationLayout(env.observation_space, ["desired_goal", "observation"])
    x = layout.flatten(_obs_batch(env, 3))
    cert = make_certifier(method, 0.3, n0=20, n=300, alpha=0.01, batch=64)
    noise = MaskedNoise(make_noise(method, sigma=0.3), layout)
    assert isinstance(noise, Noise) and noise.method == method and noise.norm == cert.norm
    assert noise.sigma == pytest.approx(0.3) and noise.lambd == cert.noise.lambd
    p = np.array([0.3, 0.7, 0.99])
    assert np.array_equal(noise.radius(p), cert.radius(p))
    old = _OldMasked(cert, layout)
    for i in range(len(x)):
        a, b = torch.empty(40, layout.dim), torch.empty(40, layout.dim)
        noise.perturb_(a, x[i], torch.Generator().manual_seed(i))
        old.perturb_(b, x[i], torch.Generator().manual_seed(i))
        assert torch.equal(a, b)
    s = noise.sample(x, torch.Generator().manual_seed(5))  # training augmentation of a batch: the same law
    m = layout.mask(x) > 0
    assert torch.equal(s[~m], x[~m]) and bool((s[m] != x[m]).all())
    # certificates: the new path (certify_discrete) vs a certifier whose perturb_ is the old implementation
    w = torch.randn(layout.dim, generator=torch.Generator().manual_seed(0))
    pf = PolicyFunction(lambda o: (layout.flatten(o) @ w > 0).long(), env.observation_space, spaces.Discrete(2))

    class Old(SmoothingCertifier):
        name, norm = cert.name, cert.norm

        def perturb_(self, out, xi, generator):
            old.perturb_(out, xi, generator)

        def radius(self, p_lower):
            return cert.radius(p_lower)

    new = certify_discrete(pf, cert, x, seeds=[0, 1, 2])
    ref = Old(n0=20, n=300, alpha=0.01, batch=64).certify(pf, x, seeds=[0, 1, 2])
    assert [(c.prediction, c.radius, c.p_lower) for c in new] == [(c.prediction, c.radius, c.p_lower) for c in ref]
    assert isinstance(MaskedCertifier(cert, noise).noise, Noise)


@pytest.mark.parametrize("name", ["ssn", "wasserstein"])
def test_masked_noise_refuses_non_additive_noises(name):
    from rlcert.certify.randomized.noise import make_noise

    env = gym.make("rlcert/ContinuousSeek-v0", d=2)
    layout = ObservationLayout(env.observation_space, ["desired_goal"])
    with pytest.raises(ValueError, match="additive") as e:
        MaskedNoise(make_noise(name, sigma=0.3), layout)
    assert "\n" not in str(e.value)

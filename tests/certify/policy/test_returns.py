"""Episode certificates: closed forms, brute-force integration, monotonicity, calibration, and a one-step episode
whose worst-case attacked return is known exactly (the policy-smoothing bound is tight there)."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from scipy.stats import norm as normal

from rlcert.certify.core.stats import cp_lower
from rlcert.certify.policy import (
    MaskedNoise,
    PolicyFunction,
    certify_return_cp,
    certify_return_dkw,
    dkw_slack,
    integer_levels,
    make_certifier,
    phi_shift,
    rollout,
    total_budget,
)

EPS = np.array([0.0, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0])


def test_phi_shift_values():
    assert phi_shift(0.5, 0.0, 1.0) == pytest.approx(0.5)
    assert phi_shift(normal.cdf(1.0), 1.0, 1.0) == pytest.approx(0.5)
    assert phi_shift(0.0, 0.3, 0.5) == 0.0 and phi_shift(1.0, 0.3, 0.5) == 1.0
    assert total_budget(0.1, 16, per_step=True) == pytest.approx(0.4)
    assert total_budget(0.1, 16, per_step=False) == pytest.approx(0.1)


def test_constant_return_at_the_minimum_is_certified_exactly():
    r = np.full(30, -10.0)
    np.testing.assert_array_equal(certify_return_dkw(r, EPS, 0.2, 0.05, r_min=-10), -10.0)
    np.testing.assert_array_equal(certify_return_cp(r, EPS, 0.2, 0.05, r_min=-10, r_max=0), -10.0)


def test_constant_return_closed_forms_at_eps_zero():
    n, alpha, ret = 200, 0.05, -4.0
    r = np.full(n, ret)
    dkw = certify_return_dkw(r, 0.0, 0.3, alpha, r_min=-10)
    assert dkw == pytest.approx(-10 + 6 * (1 - math.sqrt(math.log(2 / alpha) / (2 * n))))
    cp = certify_return_cp(r, 0.0, 0.3, alpha, r_min=-10, r_max=0)
    assert cp == pytest.approx(-10 + 6 * (alpha / 10) ** (1 / n))  # k = n hits at 6 of the 10 levels
    assert dkw < ret and cp < ret


def _brute_force_dkw(r, eps, sigma, alpha, r_min, grid=200_001):
    t = np.linspace(r_min, r.max() + 1, grid)
    tail = (r[None, :] > t[:, None]).mean(axis=1)
    f = normal.cdf(normal.ppf(np.maximum(tail - dkw_slack(len(r), alpha), 0)) - eps / sigma)
    return r_min + np.sum((f[1:] + f[:-1]) / 2 * np.diff(t))


def test_dkw_matches_brute_force_integration_and_cp_matches_its_definition():
    rng = np.random.default_rng(0)
    r = np.round(rng.uniform(-10, 0, 300) ** 1, 3)
    for e in (0.0, 0.3):
        assert certify_return_dkw(r, e, 0.5, 0.05, r_min=-10) == pytest.approx(
            _brute_force_dkw(r, e, 0.5, 0.05, -10), abs=2e-3)
    ri = rng.integers(-10, 1, 300).astype(float)
    lv = integer_levels(-10, 0)
    p = cp_lower(np.array([(ri >= v).sum() for v in lv]), 300, 0.05 / 10)
    for e in (0.0, 0.3):
        want = -10 + np.sum(normal.cdf(normal.ppf(p) - e / 0.5))
        assert certify_return_cp(ri, e, 0.5, 0.05, r_min=-10, r_max=0) == pytest.approx(want, rel=1e-12)
    # with integer returns and eps = 0 and no confidence slack the CP sum is exactly the mean
    assert -10 + np.sum([(ri >= v).mean() for v in lv]) == pytest.approx(ri.mean())


@pytest.mark.parametrize("dist", ["uniform", "bimodal", "integer"])
def test_certified_return_non_increasing_in_eps_and_below_the_empirical_mean(dist):
    rng = np.random.default_rng(1)
    r = {"uniform": rng.uniform(-10, 0, 500), "bimodal": np.where(rng.random(500) < 0.3, -10.0, -2.0),
         "integer": rng.integers(-10, 1, 500).astype(float)}[dist]
    for vals in (certify_return_dkw(r, EPS, 0.25, 0.05, r_min=-10),
                 certify_return_cp(r, EPS, 0.25, 0.05, r_min=-10, levels=np.linspace(-9, 0, 10))):
        assert np.all(np.diff(vals) <= 1e-12)
        assert vals[0] < r.mean() and vals[-1] >= -10
        assert vals[0] > vals[-1]  # the budget does cost something


def test_bad_inputs_name_the_parameter():
    with pytest.raises(ValueError, match="r_min"):
        certify_return_dkw([-3.0, -11.0], 0.1, 0.2, 0.05, r_min=-10)
    with pytest.raises(ValueError, match="eps"):
        certify_return_dkw([-3.0], -0.1, 0.2, 0.05, r_min=-10)
    with pytest.raises(ValueError, match="sigma"):
        certify_return_dkw([-3.0], 0.1, 0.0, 0.05, r_min=-10)
    with pytest.raises(ValueError, match="alpha"):
        certify_return_cp([-3.0], 0.1, 0.2, 1.5, r_min=-10, r_max=0)
    with pytest.raises(ValueError, match="levels or r_max"):
        certify_return_cp([-3.0], 0.1, 0.2, 0.05, r_min=-10)


@pytest.mark.parametrize("method", ["dkw", "cp"])
def test_calibration_certified_return_exceeds_the_true_mean_at_most_alpha(method):
    """Returns i.i.d. from a known integer law: over 400 seeded repeats of N = 40 episodes the eps = 0 certificate
    exceeds the true mean in at most alpha of them; the "too generous" certificate with a quarter of the
    confidence slack (DKW) / alpha not split over the levels (CP) exceeds it far more often."""
    vals = np.arange(-6, 1, dtype=float)
    probs = np.array([0.3, 0.05, 0.05, 0.1, 0.1, 0.1, 0.3])
    true_mean = float(vals @ probs)
    rng = np.random.default_rng(5)
    alpha, n, reps = 0.1, 40, 400
    fail, loose = 0, 0
    for _ in range(reps):
        r = rng.choice(vals, size=n, p=probs)
        if method == "dkw":
            fail += certify_return_dkw(r, 0.0, 1.0, alpha, r_min=-6) > true_mean
            u = np.unique(np.concatenate([[-6.0], r]))
            tail = np.array([(r > v).mean() for v in u[:-1]])
            loose += -6 + np.sum(np.diff(u) * np.maximum(tail - dkw_slack(n, alpha) / 4, 0)) > true_mean
        else:
            fail += certify_return_cp(r, 0.0, 1.0, alpha, r_min=-6, r_max=0) > true_mean
            p = cp_lower(np.array([(r >= v).sum() for v in vals[1:]]), n, 0.5)  # no Bonferroni, median bound
            loose += -6 + p.sum() > true_mean
    assert fail / reps <= alpha
    assert loose / reps > alpha


class OneStep(gym.Env):
    """One-step episode: goal g ~ U[-1, 1]^2, reward 1 iff the action is 1. With the threshold policy
    a = 1[w . g > -b] and Gaussian goal noise, the worst l2-eps attack on the goal gives exactly
    P(R = 1) = Phi((w . g + b) / (sigma ||w||) - eps / sigma) (shift against w)."""

    def __init__(self, goal: tuple[float, float] | None = None) -> None:
        self.fixed = goal
        box = spaces.Box(-1, 1, (2,), np.float32)
        self.observation_space = spaces.Dict({"achieved_goal": box, "desired_goal": box, "observation": box})
        self.action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.g = np.array(self.fixed if self.fixed is not None else self.np_random.uniform(-1, 1, 2), np.float32)
        z = np.zeros(2, np.float32)
        return {"achieved_goal": z, "desired_goal": self.g.copy(), "observation": z}, {}

    def step(self, action):
        z = np.zeros(2, np.float32)
        return ({"achieved_goal": z, "desired_goal": self.g.copy(), "observation": z}, float(int(action) == 1),
                True, False, {})


def _one_step_returns(w, b, sigma, goal, n):
    wt = torch.tensor(w, dtype=torch.float32)
    env = OneStep(goal)
    pf = PolicyFunction(lambda o: ((o["desired_goal"] @ wt + b) > 0).long(), env.observation_space,
                        env.action_space, ["desired_goal"])
    noise = MaskedNoise(make_certifier("gaussian", sigma), pf.layout)
    eps_list = rollout(pf, lambda: OneStep(goal), range(n), seed=2, noise=noise, num_envs=64)
    return np.array([e.ret for e in sorted(eps_list, key=lambda e: e.idx)])


def test_one_step_episode_certificate_is_sound_against_the_exact_attack():
    """Random goals: the adversary's best response per goal is known exactly; the certificate stays below."""
    from rlcert.certify.policy.episodes import env_seed

    w, b, sigma = np.array([1.0, 0.5]), 0.6, 0.5
    r = _one_step_returns(w, b, sigma, None, 3000)
    goals = np.array([OneStep().reset(seed=env_seed(2, i))[0]["desired_goal"] for i in range(3000)], float)
    margin = (goals @ w + b) / (sigma * np.linalg.norm(w))
    assert r.mean() == pytest.approx(normal.cdf(margin).mean(), abs=0.03)  # the rollout is the smoothed policy
    for e in (0.0, 0.1, 0.3, 0.6):
        attacked = normal.cdf(margin - e / sigma).mean()  # per-goal worst case, averaged over goals
        assert certify_return_dkw(r, e, sigma, 0.05, r_min=0.0) <= attacked
        assert certify_return_cp(r, e, sigma, 0.05, r_min=0.0, r_max=1.0) <= attacked


def test_one_step_episode_certificate_is_tight_for_a_fixed_goal():
    """Fixed goal: the attacked success probability is exactly Phi(Phi^-1(p) - eps / sigma), so the certificate
    is nearly attained, and certifying 0.8 eps instead of eps (one step too generous) exceeds the attack."""
    w, b, sigma, goal = np.array([1.0, 0.5]), 0.1, 0.5, (0.2, -0.1)
    r = _one_step_returns(w, b, sigma, goal, 4000)
    m = (np.array(goal) @ w + b) / (sigma * np.linalg.norm(w))
    for e in (0.3, 0.6):
        attacked = normal.cdf(m - e / sigma)
        for cert in (lambda x: certify_return_dkw(r, x, sigma, 0.05, r_min=0.0),
                     lambda x: certify_return_cp(r, x, sigma, 0.05, r_min=0.0, r_max=1.0)):
            assert attacked - 0.06 < cert(e) <= attacked
            assert cert(0.8 * e) > attacked

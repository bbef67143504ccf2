"""Per-step certificates: closed forms of linear / threshold / constant policies, attacks within the radius,
calibration of the confidence bounds, and "one step too generous" counterparts that must fail."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from gymnasium import spaces
from scipy.stats import norm as normal

from rlcert.certify import GaussianCertifier, LaplaceCertifier
from rlcert.certify.policy import (
    ActionBounds,
    Ball,
    Cone,
    PolicyFunction,
    certified_set_radius,
    certify_continuous,
    certify_discrete,
)

D = 3  # observation, achieved_goal, desired_goal each in R^3
OBS_SPACE = spaces.Dict({k: spaces.Box(-10, 10, (D,), np.float32)
                         for k in ("achieved_goal", "desired_goal", "observation")})
BOX = spaces.Box(-2.0, 3.0, (2,), np.float32)  # a = -2, b = 3
LOW, HIGH = -2.0, 3.0
W = np.array([[1.0, -2.0, 0.5], [0.3, 0.0, -1.0]])  # action j depends on the goal through W_j
C = np.array([0.2, -0.4])
SIGMA = 0.5


def _policy(kind: str) -> PolicyFunction:
    w, c = torch.tensor(W, dtype=torch.float32), torch.tensor(C, dtype=torch.float32)

    def act(obs):
        z = obs["desired_goal"] @ w.T + c + 5.0 * obs["observation"][:, :2]  # observation is never perturbed
        if kind == "linear":    # clip(z) inside [a, b]
            return z.clamp(LOW, HIGH)
        if kind == "threshold":  # a or b: the worst case of the bounded-output argument (tight)
            return torch.where(z > 0, torch.tensor(HIGH), torch.tensor(LOW))
        if kind == "constant":
            return torch.full((z.shape[0], 2), 0.7)
        raise AssertionError(kind)

    return PolicyFunction(act, OBS_SPACE, BOX, ["desired_goal"])


def _x(goal, obs=(0.1, -0.2, 0.0)) -> torch.Tensor:
    flat = {"achieved_goal": np.zeros((1, D)), "desired_goal": np.asarray(goal, float)[None],
            "observation": np.asarray(obs, float)[None]}
    return _policy("constant").flatten(flat)


def _z(goal, obs=(0.1, -0.2, 0.0)) -> np.ndarray:
    return W @ np.asarray(goal, float) + C + 5.0 * np.asarray(obs, float)[:2]


def smoothed_linear(goal) -> np.ndarray:
    """E[clip(Z, a, b)], Z ~ N(mu, s^2): a Phi(al) + b (1 - Phi(be)) + mu (Phi(be) - Phi(al))
    + s (phi(al) - phi(be))."""
    mu, s = _z(goal), SIGMA * np.linalg.norm(W, axis=1)
    al, be = (LOW - mu) / s, (HIGH - mu) / s
    return (LOW * normal.cdf(al) + HIGH * normal.sf(be) + mu * (normal.cdf(be) - normal.cdf(al))
            + s * (normal.pdf(al) - normal.pdf(be)))


def smoothed_threshold(goal) -> np.ndarray:
    return LOW + (HIGH - LOW) * normal.cdf(_z(goal) / (SIGMA * np.linalg.norm(W, axis=1)))


GOAL = np.array([0.4, 0.1, -0.3])


def _random_deltas(eps: float, k: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    d = rng.normal(size=(k, D))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    return d * eps * rng.uniform(0, 1, size=(k, 1)) ** (1 / D)


def _gradient_deltas(eps: float, smoothed, steps: int = 30) -> list[np.ndarray]:
    """Projected gradient descent/ascent (finite-difference gradients of the exact smoothed action) per coordinate."""
    out = []
    for j in range(2):
        for sign in (-1.0, 1.0):
            d = np.zeros(D)
            for _ in range(steps):
                grad = np.array([(smoothed(GOAL + d + h)[j] - smoothed(GOAL + d - h)[j]) / 2e-5
                                 for h in np.eye(D) * 1e-5])
                d = d + sign * 0.25 * eps * grad / (np.linalg.norm(grad) + 1e-12)
                d = d * min(1.0, eps / np.linalg.norm(d))
            out.append(d)
    return out


def test_linear_policy_smoothed_action_matches_closed_form():
    pf = _policy("linear")
    goal = np.array([1.5, -0.3, 0.0])  # action 0 near the top of the box: clipping matters
    b = certify_continuous(pf, SIGMA, _x(goal), n=40_000, alpha=0.001, seed=3)[0]
    exact = smoothed_linear(goal)
    lo, hi = b.at(0.0)
    assert np.all(lo <= exact) and np.all(exact <= hi)
    # the Monte Carlo mean is within 4 standard errors of the closed form (std <= (b - a) / 2)
    assert np.all(np.abs(b.mean - exact) < 4 * (HIGH - LOW) / 2 / math.sqrt(40_000))
    assert not np.allclose(exact, np.clip(_z(goal), LOW, HIGH), atol=5e-2)  # smoothing does change the action


@pytest.mark.parametrize("kind", ["linear", "threshold"])
def test_bounds_contain_the_smoothed_action_under_random_and_gradient_attacks(kind):
    smoothed = smoothed_linear if kind == "linear" else smoothed_threshold
    pf = _policy(kind)
    b = certify_continuous(pf, SIGMA, _x(GOAL), n=200_000, alpha=0.001, seed=1, batch=20_000)[0]
    worst_gap = np.inf
    for eps in (0.1, 0.3, 0.6):
        lo, hi = b.at(eps)
        attacks = list(_random_deltas(eps, 200, seed=int(eps * 10))) + _gradient_deltas(eps, smoothed)
        values = np.array([smoothed(GOAL + d) for d in attacks])
        assert np.all(np.linalg.norm(attacks, axis=1) <= eps + 1e-9)
        assert np.all(values >= lo - 1e-12) and np.all(values <= hi + 1e-12)
        # one step too generous: the certificate at 0.9 eps is violated by the gradient attack (threshold: tight)
        lo9, hi9 = b.at(0.9 * eps)
        worst_gap = min(worst_gap, float(np.min(values.min(0) - lo9)), float(np.min(hi9 - values.max(0))))
    if kind == "threshold":  # the bounded-output bound is tight for a threshold policy
        assert worst_gap < 0  # the attack breaks the too-generous bound: the test can fail


def test_constant_policy_bounds_are_the_closed_form_confidence_slack():
    pf = _policy("constant")
    n, alpha = 5000, 0.01
    b = certify_continuous(pf, SIGMA, _x(GOAL), n=n, alpha=alpha)[0]
    y = (float(np.float32(0.7)) - LOW) / (HIGH - LOW)  # the policy's action is a float32
    t = math.sqrt(math.log(2 * 2 / alpha) / (2 * n))  # Hoeffding at alpha / (2 m), m = 2
    np.testing.assert_allclose(b.mean, 0.7, rtol=1e-6)
    np.testing.assert_allclose(b.p_lower, y - t, rtol=1e-6)
    np.testing.assert_allclose(b.p_upper, y + t, rtol=1e-6)
    for eps in (0.0, 0.2, 1.0):
        lo, hi = b.at(eps)
        np.testing.assert_allclose(lo, LOW + (HIGH - LOW) * normal.cdf(normal.ppf(y - t) - eps / SIGMA), rtol=1e-9)
        np.testing.assert_allclose(hi, LOW + (HIGH - LOW) * normal.cdf(normal.ppf(y + t) + eps / SIGMA), rtol=1e-9)
    # the width shrinks to zero with n: empirical Bernstein (zero sample variance) is O(1/n)
    bb = certify_continuous(pf, SIGMA, _x(GOAL), n=200_000, alpha=alpha, bound="bernstein", batch=50_000)[0]
    lo, hi = bb.at(0.0)
    assert np.all(hi - lo < 2e-3) and np.all(lo <= 0.7) and np.all(hi >= 0.7)


@pytest.mark.parametrize("bound", ["hoeffding", "bernstein"])
def test_calibration_bounds_fail_at_most_at_the_stated_rate(bound):
    """Threshold policy with exactly known H = Phi(z / (sigma ||W_j||)): over 300 seeded certificates at n = 60,
    the bound pair of one observation misses H in at most alpha of them (binomial slack); with a quarter of the
    confidence slack (too generous: both bounds are conservative by a factor 2-4 at this n) it misses more often."""
    pf = _policy("threshold")
    alpha, n, reps = 0.2, 60, 300
    goal = np.array([0.0, 0.0, -1.4])  # z = 0 for both coordinates: H = 1/2, the largest variance
    exact = (smoothed_threshold(goal) - LOW) / (HIGH - LOW)
    xs = _x(goal).repeat(reps, 1)
    certs = certify_continuous(pf, SIGMA, xs, n=n, alpha=alpha, bound=bound, seed=7)
    miss = np.array([np.any(c.p_lower > exact) or np.any(c.p_upper < exact) for c in certs])
    assert miss.mean() <= alpha + 3 * math.sqrt(alpha * (1 - alpha) / reps)
    loose = []
    for c in certs:
        centre = (c.mean - LOW) / (HIGH - LOW)
        half_slack = (c.p_upper - c.p_lower) / 8  # a quarter of the slack
        loose.append(np.any(centre - half_slack > exact) or np.any(centre + half_slack < exact))
    assert np.mean(loose) > alpha


def test_set_radius_closed_form_and_bisection():
    pf = _policy("threshold")
    b = certify_continuous(pf, SIGMA, _x(GOAL), n=20_000, alpha=0.001)[0]
    ball = Ball(b.clean, 3.5, norm="linf")
    r = certified_set_radius(b, ball)
    # closed form for an l_inf ball: every coordinate's [lower, upper] within [c - R, c + R]
    span = HIGH - LOW
    lo_t = np.clip((b.clean - 3.5 - LOW) / span, 0, 1)
    hi_t = np.clip((b.clean + 3.5 - LOW) / span, 0, 1)
    with np.errstate(divide="ignore"):
        cand = np.concatenate([SIGMA * (normal.ppf(b.p_lower) - normal.ppf(lo_t)),
                               SIGMA * (normal.ppf(hi_t) - normal.ppf(b.p_upper))])
    assert r == pytest.approx(max(0.0, float(cand.min())), abs=2e-6)
    lo, hi = b.at(r)
    assert ball.contains_box(lo, hi)
    lo, hi = b.at(r + 1e-3)
    assert not ball.contains_box(lo, hi)  # one step more is not certified
    cone = Cone(b.mean, 40.0)
    rc = certified_set_radius(b, cone)
    assert rc >= 0 and cone.contains_box(*b.at(rc)) and not cone.contains_box(*b.at(rc + 1e-3))
    assert certified_set_radius(b, Ball(b.mean, 1e-4)) == -1.0
    assert certified_set_radius(b, Ball(b.mean, 100.0)) == math.inf


def test_discrete_radius_is_sound_and_nearly_tight_for_a_linear_classifier():
    """Two actions, a = 1[w . g + c > 0]: the smoothed classifier equals the base classifier and the exact l2
    robustness of the smoothed action is the margin |w . g + c| / ||w|| (Cohen et al. 2019)."""
    w = torch.tensor([1.0, -2.0, 0.5])
    space = spaces.Dict({k: spaces.Box(-10, 10, (D,), np.float32)
                         for k in ("achieved_goal", "desired_goal", "observation")})
    pf = PolicyFunction(lambda o: ((o["desired_goal"] @ w + 0.1 + 3 * o["observation"][:, 0]) > 0).long(),
                        space, spaces.Discrete(2), ["desired_goal"])
    goals = np.array([[0.4, 0.1, -0.3], [-0.3, 0.2, 0.1], [0.9, -0.2, 0.0]])
    x = pf.flatten({"achieved_goal": np.zeros((3, D)), "desired_goal": goals, "observation": np.zeros((3, D))})
    certs = certify_discrete(pf, GaussianCertifier(sigma=0.5, n0=100, n=100_000, alpha=0.001, batch=20_000), x)
    margin = np.abs(goals @ w.numpy() + 0.1) / float(torch.linalg.norm(w))
    for c, m, g in zip(certs, margin, goals):
        assert c.prediction == int(g @ w.numpy() + 0.1 > 0)
        assert c.norm == "l2" and 0 < c.radius <= m
        assert c.radius > 0.9 * m  # nearly tight at n = 1e5
        # the attack of size 1.05 * margin along -w flips the (smoothed = base) decision: a certificate
        # 1.12 x more generous would be wrong
        direction = (1 if c.prediction == 1 else -1) * w.numpy() / np.linalg.norm(w.numpy())
        flipped = int((g - 1.12 * c.radius * direction) @ w.numpy() + 0.1 > 0)
        assert flipped != c.prediction
    lap = certify_discrete(pf, LaplaceCertifier(sigma=0.5, n0=100, n=20_000, alpha=0.001), x)
    assert all(c.norm == "l1" and c.radius > 0 for c in lap)


def test_wrong_action_type_is_refused():
    with pytest.raises(ValueError, match="discrete"):
        certify_discrete(_policy("linear"), GaussianCertifier(sigma=0.5), _x(GOAL))
    with pytest.raises(ValueError, match="sigma"):
        certify_continuous(_policy("linear"), -1.0, _x(GOAL))
    with pytest.raises(ValueError, match="bound"):
        certify_continuous(_policy("linear"), 0.5, _x(GOAL), bound="chernoff")
    assert isinstance(certify_continuous(_policy("linear"), 0.5, _x(GOAL), n=10)[0], ActionBounds)


def test_bounds_contain_the_smoothed_action_of_a_network_under_pgd():
    """A random tanh MLP policy: PGD on the Monte Carlo smoothed action (common random numbers, gradients through
    the network) pushes each coordinate up or down within the radius; fresh Monte Carlo estimates of the attacked
    smoothed action stay inside the certified bounds (up to 4 standard errors), and PGD does move the action."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(2 * D, 32), torch.nn.Tanh(), torch.nn.Linear(32, 2), torch.nn.Tanh())

    def act(obs):
        z = net(torch.cat([obs["desired_goal"], obs["observation"]], dim=1))
        return LOW + (z + 1) * (HIGH - LOW) / 2

    pf = PolicyFunction(act, OBS_SPACE, BOX, ["desired_goal"])
    x = _x(GOAL)
    b = certify_continuous(pf, SIGMA, x, n=50_000, alpha=0.001, batch=25_000)[0]
    g = torch.Generator().manual_seed(9)
    crn = torch.randn(4000, D, generator=g) * SIGMA
    gs = pf.layout.slices["desired_goal"]
    fresh = torch.randn(40_000, D, generator=torch.Generator().manual_seed(10)) * SIGMA
    se = 4 * (HIGH - LOW) / 2 / math.sqrt(len(fresh))
    moved = 0.0
    for eps in (0.2, 0.5):
        lo, hi = b.at(eps)
        for j in range(2):
            for sign in (-1.0, 1.0):
                delta = torch.zeros(D, requires_grad=True)
                for _ in range(25):
                    xs = x.repeat(len(crn), 1)
                    xs[:, gs] = xs[:, gs] + crn + delta
                    obj = sign * pf(xs)[:, j].mean()
                    (grad,) = torch.autograd.grad(obj, delta)
                    with torch.no_grad():
                        delta += 0.2 * eps * grad / (grad.norm() + 1e-12)
                        delta *= min(1.0, eps / float(delta.detach().norm()))
                with torch.no_grad():
                    xs = x.repeat(len(fresh), 1)
                    xs[:, gs] = xs[:, gs] + fresh + delta
                    value = float(pf(xs)[:, j].double().mean())
                assert float(delta.detach().norm()) <= eps + 1e-6
                assert lo[j] - se <= value <= hi[j] + se
                moved = max(moved, abs(value - b.mean[j]))
    assert moved > 0.05

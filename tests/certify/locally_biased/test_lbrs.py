"""LBRS (Anderson & Sojoudi): radii vs hand-computed cases, exact/brute-force soundness per norm, limits."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from scipy.optimize import linprog

from rlcert.certify.locally_biased import (
    LinearScore,
    LocallyBiasedSmoothing,
    TorchScore,
    dual_norm,
    nonlinear_base_radius,
    primal_norm,
)

NORMS = ("l1", "l2", "linf")


# ---- hand-computed 2-D fixtures (spec §7.3 LB1; the l1 case computed by hand here) ---------------------------
def test_fixture_a_l2_and_tightness():
    m = LocallyBiasedSmoothing(LinearScore([1.0, 0.0], 0.0), [[1, 0], [-1, 0]], [1, -1], bias=0.2, norm="l2")
    r = m.certify([[0.5, 0.0]])
    assert r.nn_index[0] == 0 and r.label[0] == 1
    assert r.g_mu[0] == pytest.approx(0.7, abs=1e-12)
    assert r.r_base[0] == pytest.approx(0.7, abs=1e-12)
    assert r.r_data[0] == pytest.approx(0.5, abs=1e-12)      # (2.25 - 0.25) / (2 * 2)
    assert r.radius[0] == pytest.approx(0.5, abs=1e-12)
    # tight: just past the bisector x1 = 0 the NN is (-1, 0) and g_mu = -0.5e-6... - 0.2 < 0
    assert m.predict([[0.5 - 0.5 - 1e-6, 0.0]])[0] == -1
    assert m.predict([[0.5 - 0.5 + 1e-6, 0.0]])[0] == 1


@pytest.mark.parametrize("norm, g_mu, hyper, r_data, radius", [
    ("l2", 0.39142135623730956, 0.2767766952966369, 0.5303300858899106, 0.2767766952966369),
    ("linf", 0.45, 0.225, 0.375, 0.225),
    ("l1", 0.35, 0.35, 0.75, 0.35),   # dual linf: ||a|| = 1; r_data = 3 / (2 * ||(2, 2)||_inf)
])
def test_fixture_b(norm, g_mu, hyper, r_data, radius):
    m = LocallyBiasedSmoothing(LinearScore([1.0, 1.0], -0.5), [[1, 1], [-1, -1]], [1, -1], bias=0.1, norm=norm)
    r = m.certify(np.array([[0.5, 0.25]]))
    assert r.g_mu[0] == pytest.approx(g_mu, abs=1e-12)
    assert r.r_base[0] == pytest.approx(hyper, abs=1e-12)
    assert r.r_data[0] == pytest.approx(r_data, abs=1e-12)
    assert r.radius[0] == pytest.approx(radius, abs=1e-12)


def test_fixture_c_oracle_disagrees_with_base():
    m = LocallyBiasedSmoothing(LinearScore([1.0, 0.0]), [[1, 0], [-3, 0]], [1, -1], bias=0.3, norm="l2")
    x = np.array([[-0.1, 0.0]])
    assert np.sign(x @ m.score.weight)[0] == -1           # base says -1
    r = m.certify(x)
    assert r.label[0] == 1 and r.g_mu[0] == pytest.approx(0.2, abs=1e-12)
    assert r.radius[0] == pytest.approx(0.2, abs=1e-12)   # min(0.2, (9.61 - 1.21) / 8 = 1.05)
    assert r.r_data[0] == pytest.approx((2.9 ** 2 - 1.1 ** 2) / 8, abs=1e-12)
    assert m.predict([[-0.3 - 1e-6, 0.0]])[0] == -1 and m.predict([[-0.3 + 1e-6, 0.0]])[0] == 1


def test_ties_and_empty_opposite_set():
    # NN tie between labels -> r_data = 0 (index 0 wins the tie)
    m = LocallyBiasedSmoothing(LinearScore([1.0, 0.0], 0.5), [[0, 1], [0, -1]], [1, -1], bias=0.1, norm="l2")
    r = m.certify([[3.0, 0.0]])
    assert r.nn_index[0] == 0 and r.r_data[0] == 0.0 and r.radius[0] == 0.0
    # one label only: the oracle is constant, r_data = inf, radius = hyperplane term
    m = LocallyBiasedSmoothing(LinearScore([1.0, 0.0], 0.5), [[0, 1], [0, -1]], [1, 1], bias=0.1, norm="l2")
    r = m.certify([[3.0, 0.0]])
    assert np.isinf(r.r_data[0]) and r.radius[0] == pytest.approx(3.6, abs=1e-12)
    # the same point stored with both labels: r_data = 0, never NaN
    m = LocallyBiasedSmoothing(LinearScore([1.0, 0.0], 0.5), [[0, 1], [0, 1]], [1, -1], bias=0.1, norm="linf")
    r = m.certify([[3.0, 0.0]])
    assert r.r_data[0] == 0.0 and r.radius[0] == 0.0
    # g_mu = 0 -> label +1, radius 0, flagged
    m = LocallyBiasedSmoothing(LinearScore([1.0, 0.0], 0.0), [[1, 0]], [-1], bias=1.0, norm="l2")
    r = m.certify([[1.0, 0.0]])
    assert r.tie[0] and r.label[0] == 1 and r.radius[0] == 0.0


def test_nonlinear_without_lipschitz_is_refused():
    net = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    m = LocallyBiasedSmoothing(TorchScore(net), [[1, 0], [-1, 0]], [1, -1], bias=0.1)
    assert m.predict([[0.3, 0.2]]).shape == (1,)
    with pytest.raises(ValueError, match="lipschitz"):
        m.certify([[0.3, 0.2]])


@pytest.mark.parametrize("kwargs, match", [
    (dict(bias=-1.0), "bias"), (dict(norm="l3"), "norm"), (dict(lipschitz=0.0), "lipschitz"),
])
def test_bad_arguments(kwargs, match):
    base = dict(score=LinearScore([1.0, 0.0]), ref_x=[[1, 0]], ref_y=[1], bias=0.1)
    with pytest.raises(ValueError, match=match):
        LocallyBiasedSmoothing(**{**base, **kwargs})
    with pytest.raises(ValueError, match="ref_y"):
        LocallyBiasedSmoothing(LinearScore([1.0, 0.0]), [[1, 0]], [0], bias=0.1)


# ---- limits ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("norm", NORMS)
def test_bias_zero_is_the_base(norm):
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=4), 0.3
    ref_x, ref_y = rng.normal(size=(12, 4)), rng.choice([-1, 1], 12)
    m = LocallyBiasedSmoothing(LinearScore(a, b), ref_x, ref_y, bias=0.0, norm=norm)
    x = rng.normal(size=(200, 4))
    g = x @ a + b
    r = m.certify(x)
    assert np.array_equal(r.label, np.where(g >= 0, 1, -1))
    np.testing.assert_allclose(r.radius, np.minimum(np.abs(g) / dual_norm(a, norm), r.r_data), rtol=1e-12)


def test_large_bias_is_the_1nn():
    rng = np.random.default_rng(2)
    ref_x, ref_y = rng.normal(size=(15, 3)), rng.choice([-1, 1], 15)
    m = LocallyBiasedSmoothing(LinearScore(rng.normal(size=3), 0.1), ref_x, ref_y, bias=1e6, norm="l2")
    x = rng.normal(size=(1000, 3))
    nn = ((x[:, None] - ref_x[None]) ** 2).sum(-1).argmin(1)
    assert np.array_equal(m.predict(x), ref_y[nn])


def test_r_base_regression_and_linear_limit():
    r = nonlinear_base_radius(np.array([0.8]), np.array([1.5]), bias=0.5, lipschitz=2.0)[0]
    assert r == pytest.approx(0.264170962188937, abs=1e-12)
    assert 2.0 * r * r + (0.5 * 2.0 + 1.5) * r - 0.8 == pytest.approx(0.0, abs=1e-12)
    rng = np.random.default_rng(3)
    a, ref_x, ref_y = rng.normal(size=3), rng.normal(size=(10, 3)), rng.choice([-1, 1], 10)
    lin = torch.nn.Linear(3, 1).double()
    with torch.no_grad():
        lin.weight[:] = torch.tensor(a)[None]
        lin.bias[:] = 0.2
    x = rng.normal(size=(50, 3))
    for norm in NORMS:
        r6 = LocallyBiasedSmoothing(LinearScore(a, 0.2), ref_x, ref_y, 0.4, norm).certify(x)
        ts = TorchScore(lambda z: lin(z.double()))
        r8 = LocallyBiasedSmoothing(ts, ref_x, ref_y, 0.4, norm, lipschitz=1e-12).certify(x)
        np.testing.assert_allclose(r8.radius, r6.radius, atol=1e-6)


def test_r_data_is_distance_to_the_bisector():
    rng = np.random.default_rng(4)
    ref_x, ref_y = rng.normal(size=(8, 3)), np.array([1, -1] * 4)
    x = rng.normal(size=(30, 3))
    for norm in NORMS:
        r = LocallyBiasedSmoothing(LinearScore(np.ones(3)), ref_x, ref_y, 0.1, norm).certify(x)
        for b in range(len(x)):
            i = r.nn_index[b]
            # distance from x to {z: c.z + e = 0}, c = 2 (x_i - x_j), e = |x_j|^2 - |x_i|^2, minimised over j
            dists = [abs(2 * (ref_x[i] - ref_x[j]) @ x[b] + ref_x[j] @ ref_x[j] - ref_x[i] @ ref_x[i])
                     / dual_norm(2 * (ref_x[i] - ref_x[j]), norm) for j in range(8) if ref_y[j] != ref_y[i]]
            assert r.r_data[b] == pytest.approx(min(dists), rel=1e-10)


# ---- exact soundness for linear g: minimal ||delta|| to a flip, cell by cell --------------------------------
def _exact_flip_distance(m: LocallyBiasedSmoothing, x: np.ndarray, norm: str) -> float:
    """inf ||z - x|| over {z : f_mu(z) != f_mu(x)}: per Voronoi cell k, the closure of the flipped half-space.

    l1 / linf: linear programs; l2 (d = 2 only): exact projection onto a convex polygon by enumeration."""
    a, b, s = m.score.weight, m.score.bias, dual_norm(m.score.weight, norm)
    label = m.predict(x[None])[0]
    X, d = m.ref_x, len(x)
    best = np.inf
    for k in range(len(X)):
        # cell k: 2 (x_j - x_k) . z <= |x_j|^2 - |x_k|^2 ; flip: label * (a.z + b + bias y_k s) <= 0
        A = [2 * (X[j] - X[k]) for j in range(len(X)) if j != k]
        ub = [X[j] @ X[j] - X[k] @ X[k] for j in range(len(X)) if j != k]
        A.append(label * a)
        ub.append(-label * (b + m.bias * m.ref_y[k] * s))
        A, ub = np.array(A), np.array(ub)
        if norm == "l2":
            best = min(best, _polygon_distance(A, ub, x))
            continue
        if norm == "linf":   # variables (z, t): min t, |z - x|_i <= t
            c = np.r_[np.zeros(d), 1.0]
            box = np.vstack([np.c_[np.eye(d), -np.ones(d)], np.c_[-np.eye(d), -np.ones(d)]])
        else:                # variables (z, u): min sum u, |z - x|_i <= u_i
            c = np.r_[np.zeros(d), np.ones(d)]
            box = np.vstack([np.c_[np.eye(d), -np.eye(d)], np.c_[-np.eye(d), -np.eye(d)]])
        nv = len(c)
        A_ub = np.vstack([np.c_[A, np.zeros((len(A), nv - d))], box])
        b_ub = np.r_[ub, x, -x]
        res = linprog(c, A_ub=A_ub, b_ub=b_ub, bounds=[(None, None)] * nv, method="highs")
        if res.status == 0:
            best = min(best, res.fun)
    return best


def _polygon_distance(A: np.ndarray, ub: np.ndarray, x: np.ndarray) -> float:
    """Exact l2 distance from x to {z in R^2 : A z <= ub} (inf if empty)."""
    feas = lambda z: np.all(A @ z <= ub + 1e-9)  # noqa: E731
    if feas(x):
        return 0.0
    cands = []
    for r in range(len(A)):   # projections onto each edge line
        n = A[r]
        z = x - (n @ x - ub[r]) / (n @ n) * n
        if feas(z):
            cands.append(np.linalg.norm(z - x))
    for r, q in itertools.combinations(range(len(A)), 2):   # vertices
        M = np.array([A[r], A[q]])
        if abs(np.linalg.det(M)) < 1e-12:
            continue
        z = np.linalg.solve(M, [ub[r], ub[q]])
        if feas(z):
            cands.append(np.linalg.norm(z - x))
    return min(cands) if cands else np.inf


@pytest.mark.parametrize("norm", NORMS)
def test_linear_certificate_exact_soundness(norm):
    """radius <= exact flip distance always, with equality when the hyperplane term binds (so radius * (1 + 1e-3)
    would be unsound there: the 'one step too generous' certificate fails)."""
    rng = np.random.default_rng(10 + NORMS.index(norm))
    d = 2 if norm == "l2" else 3
    n_binding, n_too_generous = 0, 0
    for _ in range(40):
        n_ref = int(rng.integers(2, 8))
        ref_x, ref_y = rng.normal(size=(n_ref, d)), rng.choice([-1, 1], n_ref)
        ref_y[0], ref_y[1] = 1, -1
        m = LocallyBiasedSmoothing(LinearScore(rng.normal(size=d), rng.normal()), ref_x, ref_y,
                                   bias=float(rng.uniform(0, 1)), norm=norm)
        x = rng.normal(size=d)
        r = m.certify(x[None])
        exact = _exact_flip_distance(m, x, norm)
        assert r.radius[0] <= exact + 1e-7
        if r.r_base[0] < r.r_data[0] - 1e-6:
            n_binding += 1
            assert r.radius[0] == pytest.approx(exact, abs=1e-7)
            n_too_generous += int(r.radius[0] * (1 + 1e-3) > exact + 1e-9)
    assert n_binding >= 5 and n_too_generous == n_binding


# ---- brute-force soundness by dense sampling of the ball --------------------------------------------------
def _ball_samples(d: int, t: float, norm: str, rng: np.random.Generator, n: int) -> np.ndarray:
    """Points with ||delta|| = t (surface, incl. vertices) and inside the ball."""
    if norm == "l2":
        v = rng.normal(size=(n, d))
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        verts = np.eye(d)
    elif norm == "linf":
        v = rng.uniform(-1, 1, size=(n, d))
        v[np.arange(n), rng.integers(0, d, n)] = rng.choice([-1.0, 1.0], n)
        verts = np.array(list(itertools.product([-1.0, 1.0], repeat=d)))
    else:
        v = rng.laplace(size=(n, d))
        v /= np.abs(v).sum(1, keepdims=True)
        verts = np.eye(d)
    surf = np.vstack([v, verts, -verts]) * t
    inside = surf[: n // 2] * rng.uniform(0, 1, size=(n // 2, 1))
    return np.vstack([surf, inside])


def _flips(m: LocallyBiasedSmoothing, x: np.ndarray, t: float, rng: np.random.Generator, extra=()) -> bool:
    deltas = _ball_samples(len(x), t, m.norm, rng, 4000)
    if len(extra):
        e = np.asarray(extra, dtype=np.float64)
        deltas = np.vstack([deltas, e / primal_norm(e, m.norm)[:, None] * t])
    return bool((m.predict(x[None] + deltas) != m.predict(x[None])[0]).any())


def _worst_directions(m: LocallyBiasedSmoothing, x: np.ndarray) -> list[np.ndarray]:
    """Directions of steepest descent of label * g in the threat norm (hits the shifted hyperplane first)."""
    _, grad = m.score.value_and_grad(x[None])
    gvec = -np.sign(m.certify(x[None]).g_mu[0]) * grad[0]
    if m.norm == "l2":
        return [gvec]
    if m.norm == "linf":
        return [np.sign(gvec)]
    e = np.zeros_like(gvec)
    e[np.argmax(np.abs(gvec))] = np.sign(gvec[np.argmax(np.abs(gvec))])
    return [e]


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("d", [2, 5])
def test_linear_certificate_brute_force(norm, d):
    rng = np.random.default_rng(100 * d + NORMS.index(norm))
    caught, binding = 0, 0
    for _ in range(30):
        n_ref = int(rng.integers(2, 10))
        ref_x, ref_y = rng.normal(size=(n_ref, d)), rng.choice([-1, 1], n_ref)
        ref_y[:2] = [1, -1]
        m = LocallyBiasedSmoothing(LinearScore(rng.normal(size=d), rng.normal()), ref_x, ref_y,
                                   bias=float(rng.uniform(0, 2)), norm=norm)
        x = rng.normal(size=d)
        r = m.certify(x[None])
        if r.radius[0] == 0:
            continue
        extra = _worst_directions(m, x)
        assert not _flips(m, x, 0.999 * r.radius[0], rng, extra)
        if r.r_base[0] < 0.99 * r.r_data[0]:     # hyperplane binds: 1.001 * radius is caught
            binding += 1
            caught += int(_flips(m, x, 1.001 * r.radius[0], rng, extra))
    assert binding >= 3 and caught == binding


class QuadraticScore:
    """g(x) = x.Qx / 2 + c.x + b0, grad = Qx + c (nonlinear, gradient-Lipschitz)."""

    linear = False

    def __init__(self, Q: np.ndarray, c: np.ndarray, b0: float) -> None:
        self.Q, self.c, self.b0 = Q, c, b0

    def value_and_grad(self, x):
        return 0.5 * np.einsum("bi,ij,bj->b", x, self.Q, x) + x @ self.c + self.b0, x @ self.Q.T + self.c


def _lipschitz(Q: np.ndarray, norm: str) -> float:
    """sup ||Q v||_* / ||v|| (operator norm from the threat norm to its dual)."""
    if norm == "l2":
        return float(np.linalg.norm(Q, 2))
    if norm == "l1":   # (l1 -> linf): largest |Q_ij|
        return float(np.abs(Q).max())
    return max(float(np.abs(Q @ np.array(v)).sum()) for v in itertools.product([-1.0, 1.0], repeat=len(Q)))


@pytest.mark.parametrize("norm", NORMS)
def test_nonlinear_certificate_brute_force(norm):
    rng = np.random.default_rng(7 + NORMS.index(norm))
    d, caught = 3, 0
    for _ in range(15):
        M = rng.normal(size=(d, d))
        Q = (M + M.T) / 2
        score = QuadraticScore(Q, rng.normal(size=d), float(rng.normal()))
        ref_x, ref_y = 3 * rng.normal(size=(4, d)), np.array([1, -1, 1, -1])
        L = _lipschitz(Q, norm)
        x = rng.normal(size=d)
        bias = float(rng.uniform(0, 1))
        m = LocallyBiasedSmoothing(score, ref_x, ref_y, bias=bias, norm=norm, lipschitz=L)
        r = m.certify(x[None])
        if r.radius[0] == 0:
            continue
        assert not _flips(m, x, 0.999 * r.radius[0], rng, _worst_directions(m, x))
        # a wrong (100x too small) L gives a too-generous radius that the same check catches in some cases
        loose = LocallyBiasedSmoothing(score, ref_x, ref_y, bias=bias, norm=norm, lipschitz=L / 100).certify(x[None])
        caught += int(_flips(m, x, 0.999 * loose.radius[0], rng, _worst_directions(m, x)))
    assert caught >= 1


class SinLinear(torch.nn.Linear):
    """An nn.Linear subclass that is not affine: g(x) = sin(3 (w.x + b))."""

    def forward(self, x):
        return torch.sin(3 * super().forward(x))


def _sin_model():
    m = SinLinear(2, 1)
    with torch.no_grad():
        m.weight[:] = torch.tensor([[1.0, 0.0]])
        m.bias[:] = 0.4
    return m


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit.script
def test_only_exact_affine_modules_count_as_affine():
    from rlcert.certify.locally_biased import is_affine

    assert is_affine(torch.nn.Linear(2, 1))
    assert is_affine(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(2, 1), torch.nn.Identity()))
    assert not is_affine(_sin_model())
    assert not is_affine(torch.nn.Sequential(torch.nn.Flatten(), _sin_model()))

    class Seq(torch.nn.Sequential):
        def forward(self, x):
            return super().forward(x) ** 3

    assert not is_affine(Seq(torch.nn.Linear(2, 1)))
    hooked = torch.nn.Linear(2, 1)
    handle = hooked.register_forward_hook(lambda mod, inp, out: torch.tanh(out))
    assert not is_affine(hooked)
    handle.remove()
    assert is_affine(hooked)
    assert not is_affine(torch.jit.script(torch.nn.Linear(2, 1)))


def test_linear_subclass_with_nonlinear_forward_is_refused_and_would_be_unsound():
    """The issue's case: a Linear subclass with forward sin(3 * linear(x)) was certified by Theorem 6. The label
    flips (brute force along the line towards the zero of g) well inside the radius Theorem 6 would give, so the
    certifier must refuse it without a Lipschitz constant, and Theorem 8 with the true L must stay sound."""
    from rlcert.certify import LocallyBiasedCertifier

    ref_x, ref_y = np.array([[0.0, 0.1], [0.0, 10.0]]), np.array([1, -1])
    model = _sin_model()
    x = np.array([[0.0, 0.0]])
    # brute force: the first label flip on the segment x - t e1 (g = sin(3 (x1 + 0.4)) hits 0 at x1 = -0.4)
    ts = np.linspace(0, 1, 100_001)
    line = np.stack([-ts, np.zeros_like(ts)], 1)
    plain = LocallyBiasedSmoothing(TorchScore(model, linear=False), ref_x, ref_y, bias=0.0)
    labels = plain.predict(line)
    flip = ts[np.argmax(labels != labels[0])]
    assert flip == pytest.approx(0.4, abs=1e-4)
    # Theorem 6 on the declared-affine model gives |g| / |grad g| = sin(1.2) / (3 cos(1.2)) > flip: unsound
    claimed = LocallyBiasedSmoothing(TorchScore(model, linear=True), ref_x, ref_y, bias=0.0).certify(x).radius[0]
    assert claimed == pytest.approx(np.sin(1.2) / (3 * np.cos(1.2)), rel=1e-5) and claimed > 2 * flip
    # so by default it is not affine: refused (one line, naming the parameters), at construction and in certify
    with pytest.raises(ValueError, match="lipschitz") as e:
        LocallyBiasedCertifier((ref_x, ref_y), bias=0.0, model=model)
    assert "\n" not in str(e.value) and "linear=True" in str(e.value)
    with pytest.raises(ValueError, match="lipschitz"):
        LocallyBiasedCertifier((ref_x, ref_y), bias=0.0).certify(model, torch.zeros(1, 2))
    with pytest.raises(ValueError, match="lipschitz"):
        LocallyBiasedSmoothing(TorchScore(model), ref_x, ref_y, bias=0.0).certify(x)
    # Theorem 8 with the true gradient-Lipschitz constant (|g''| <= 9 |w|^2 = 9) is sound: radius < flip
    cert = LocallyBiasedCertifier((ref_x, ref_y), bias=0.0, lipschitz=9.0, model=model)
    (c,) = cert.certify(model, torch.zeros(1, 2))
    assert 0 < c.radius < flip
    # an explicit linear=True is the user's claim and is honoured
    lin = LocallyBiasedCertifier((ref_x, ref_y), bias=0.0, model=model, linear=True)
    assert lin.certify(model, torch.zeros(1, 2))[0].radius == pytest.approx(claimed, rel=1e-6)

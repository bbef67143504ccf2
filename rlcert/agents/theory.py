"""Theory check of ReenGAGE (thesis §8.6.2, App. G.1, Propositions 8.1 and 8.2), exact and fast.

Dense rotation environment: s, a, g in R^d, ||a||_2 <= 1, s' = s + U a (U an unknown rotation), R(s', g) = g^T s'.
Sparse rotation environment: s = (s1; s2) in R^2d, R(s', g) = g^T s1', T(s, a) = (0; s1 + U a) if s1 != 0 else
(s2; 0).

Model class Q_Ũ: the closed-form optimal Q for an estimate Ũ of U (Eq. G.1 / G.3), with the policy
pi_Ũ(g) = Ũ^T g / ||g||. The loss of a set of transitions (s, a, g, s') identifies U iff the Jacobian of its
residuals with respect to the tangent coordinates of the rotation group at Ũ = U (Ũ = U expm(K), K skew, d(d-1)/2
coordinates) has full rank d(d-1)/2 (local identifiability; the target parameter Ū is held fixed at U as in a TD
fixed point). Residuals per transition:

* TD loss:       Q_Ũ(s,a,g) - [R(s',g) + gamma Q_Ū(s', pi_Ū(g), g)]                      (1 scalar)
* ReenGAGE loss: grad_g Q_Ũ(s,a,g) - grad_g[R(s',g) + gamma Q_Ū(s', pi_Ū(g), g)]          (d numbers; sparse:
  no reward-gradient term and only transitions with s1 != 0, where R(s', g) = 0 = c_low)

Both residuals are computed with :mod:`rlcert.agents.goal_gradient` (autograd, total derivative through pi_Ū).
Propositions 8.1/8.2: ReenGAGE needs O(d) transitions (here exactly d - 1), TD needs O(d^2) (d(d-1)/2).

    python -m rlcert.agents.theory [--max-d 10]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch as th

from rlcert.agents import goal_gradient as gg

GAMMA = 0.9


def random_rotation(d: int, rng: np.random.Generator) -> th.Tensor:
    """A uniformly random rotation (det +1), float64 (d, d)."""
    q, r = np.linalg.qr(rng.normal(size=(d, d)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return th.as_tensor(q)


def skew(params: th.Tensor, d: int) -> th.Tensor:
    """The d x d skew-symmetric matrix with the d(d-1)/2 upper-triangle entries ``params``."""
    K = th.zeros(d, d, dtype=params.dtype)
    iu = th.triu_indices(d, d, offset=1)
    K = K.index_put((iu[0], iu[1]), params)
    return K - K.T


def policy(U: th.Tensor, g: th.Tensor) -> th.Tensor:
    """pi_U(g) = U^T g / ||g||, rows of g: (B, d) -> (B, d)."""
    return g @ U / th.linalg.vector_norm(g, dim=1, keepdim=True)


def dense_q(U: th.Tensor, s: th.Tensor, a: th.Tensor, g: th.Tensor, gamma: float = GAMMA) -> th.Tensor:
    """Eq. G.1: g^T(s + U a)/(1 - gamma) + gamma ||g|| / (1 - gamma)^2; (B,)."""
    gn = th.linalg.vector_norm(g, dim=1)
    return (g * (s + a @ U.T)).sum(1) / (1 - gamma) + gamma * gn / (1 - gamma) ** 2


def sparse_q(U: th.Tensor, s: th.Tensor, a: th.Tensor, g: th.Tensor, gamma: float = GAMMA) -> th.Tensor:
    """Eq. G.3 with s = (s1; s2) of shape (B, 2d); (B,)."""
    d = g.shape[1]
    s1, s2 = s[:, :d], s[:, d:]
    gn = th.linalg.vector_norm(g, dim=1)
    c = 1 - gamma ** 2
    moving = gamma * (g * (s1 + a @ U.T)).sum(1) / c + gamma ** 3 * gn / c ** 2
    waiting = (g * s2).sum(1) / c + gamma ** 2 * gn / c ** 2
    nonzero = th.linalg.vector_norm(s1, dim=1) > 0
    return th.where(nonzero, moving, waiting)


def dense_step(U: th.Tensor, s: th.Tensor, a: th.Tensor) -> th.Tensor:
    return s + a @ U.T


def sparse_step(U: th.Tensor, s: th.Tensor, a: th.Tensor) -> th.Tensor:
    d = a.shape[1]
    s1, s2 = s[:, :d], s[:, d:]
    nonzero = (th.linalg.vector_norm(s1, dim=1) > 0)[:, None]
    moved = th.cat([th.zeros_like(s1), s1 + a @ U.T], 1)
    waited = th.cat([s2, th.zeros_like(s2)], 1)
    return th.where(nonzero, moved, waited)


def reward(s_next: th.Tensor, g: th.Tensor) -> th.Tensor:
    """R(s', g) = g^T s'_1 (dense: s'_1 = s')."""
    return (g * s_next[:, : g.shape[1]]).sum(1)


def sample_transitions(kind: str, U: th.Tensor, n: int, rng: np.random.Generator):
    """n transitions (s, a, g, s') in general position; sparse ones all have s1 != 0 (the informative case)."""
    d = U.shape[0]
    a = rng.normal(size=(n, d))
    a = th.as_tensor(a / np.linalg.norm(a, axis=1, keepdims=True))
    g = th.as_tensor(rng.normal(size=(n, d)))
    s = th.as_tensor(rng.normal(size=(n, d if kind == "dense" else 2 * d)))
    s_next = (dense_step if kind == "dense" else sparse_step)(U, s, a)
    return s, a, g, s_next


def residuals(kind: str, loss: str, U_est: th.Tensor, U_target: th.Tensor, s, a, g, s_next) -> th.Tensor:
    """TD (n,) or ReenGAGE (n*d,) residuals of the model class at estimate U_est, target estimate U_target."""
    q = dense_q if kind == "dense" else sparse_q

    def next_value(goal: th.Tensor) -> th.Tensor:  # gamma * Q_Ū(s', pi_Ū(g), g), total derivative in g
        return q(U_target, s_next, policy(U_target, goal), goal)[:, None]

    r = reward(s_next, g)[:, None]
    zeros = th.zeros_like(r)
    target, target_grad = gg.target_and_goal_gradient(next_value, g, r, zeros, GAMMA)
    if loss == "td":
        return (q(U_est, s, a, g)[:, None] - target).reshape(-1)
    if kind == "dense":
        target_grad = target_grad + gg.reward_goal_gradient(lambda ag, goal: reward(ag, goal), s_next, g)
    leaf = gg.make_goal_leaf(g)
    (grad_q,) = gg.critic_goal_gradient([q(U_est, s, a, leaf)], [leaf])
    return (grad_q - target_grad).reshape(-1)


def identifies(kind: str, loss: str, U: th.Tensor, s, a, g, s_next) -> bool:
    """Whether the loss on these transitions pins down U locally on the rotation group (full Jacobian rank)."""
    d = U.shape[0]
    m = d * (d - 1) // 2
    jac = th.autograd.functional.jacobian(
        lambda p: residuals(kind, loss, U @ th.linalg.matrix_exp(skew(p, d)), U, s, a, g, s_next),
        th.zeros(m, dtype=th.float64))
    return int(th.linalg.matrix_rank(jac.reshape(-1, m), rtol=1e-9)) == m


def transitions_needed(kind: str, loss: str, d: int, seed: int = 0) -> int:
    """Smallest number of unique transitions whose loss identifies U (random general-position transitions)."""
    rng = np.random.default_rng(seed)
    U = random_rotation(d, rng)
    s, a, g, s_next = sample_transitions(kind, U, d * d, rng)
    lo = 1
    for n in range(lo, d * d + 1):
        if identifies(kind, loss, U, s[:n], a[:n], g[:n], s_next[:n]):
            return n
    raise RuntimeError(f"{loss} loss did not identify U with {d * d} transitions (d={d})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-d", type=int, default=10)
    args = parser.parse_args(argv)
    if args.max_d < 2:
        parser.error("--max-d must be >= 2")
    print("unique transitions needed to identify the rotation U (Props 8.1/8.2); d(d-1)/2 = degrees of freedom")
    print(f"{'d':>3} {'dof':>5} | {'dense RG':>9} {'dense TD':>9} | {'sparse RG':>9} {'sparse TD':>9}")
    for d in range(2, args.max_d + 1):
        row = [transitions_needed(k, loss, d) for k in ("dense", "sparse") for loss in ("reengage", "td")]
        print(f"{d:>3} {d * (d - 1) // 2:>5} | {row[0]:>9} {row[1]:>9} | {row[2]:>9} {row[3]:>9}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The ReenGAGE term against finite differences and hand-computed values (independent of the agents' code)."""

import numpy as np
import pytest
import torch as th

from rlcert.agents import goal_gradient as gg

B, DS, DA, DG = 5, 3, 2, 4


def mlp(n_in: int, n_out: int, seed: int) -> th.nn.Module:
    th.manual_seed(seed)
    return th.nn.Sequential(th.nn.Linear(n_in, 8), th.nn.Tanh(), th.nn.Linear(8, n_out)).double()


@pytest.fixture
def nets():
    critic = mlp(DS + DA + DG, 1, 0)
    actor = mlp(DS + DG, DA, 1)
    rng = np.random.default_rng(0)
    s, a, g = (th.as_tensor(rng.normal(size=(B, n))) for n in (DS, DA, DG))
    return critic, actor, s, a, g


def central_difference(f, g: th.Tensor, h: float = 1e-6) -> th.Tensor:
    """(B, d) per-sample derivative of f: (B, d) -> (B,) by central differences."""
    out = th.zeros_like(g)
    for i in range(g.shape[1]):
        e = th.zeros_like(g)
        e[:, i] = h
        out[:, i] = (f(g + e) - f(g - e)) / (2 * h)
    return out


def test_critic_goal_gradient_matches_finite_differences(nets):
    critic, _, s, a, g = nets
    leaf = gg.make_goal_leaf(g)
    (grad,) = gg.critic_goal_gradient([critic(th.cat([s, a, leaf], 1))], [leaf])
    assert grad.requires_grad  # create_graph=True: trainable
    fd = central_difference(lambda x: critic(th.cat([s, a, x], 1)).reshape(-1), g)
    assert th.allclose(grad, fd, atol=1e-7)


def test_separate_leaves_give_per_critic_gradients(nets):
    critic, _, s, a, g = nets
    critic2 = mlp(DS + DA + DG, 1, 7)
    l1, l2 = gg.make_goal_leaf(g), gg.make_goal_leaf(g)
    g1, g2 = gg.critic_goal_gradient([critic(th.cat([s, a, l1], 1)), critic2(th.cat([s, a, l2], 1))], [l1, l2])
    fd2 = central_difference(lambda x: critic2(th.cat([s, a, x], 1)).reshape(-1), g)
    assert th.allclose(g2, fd2, atol=1e-7) and not th.allclose(g1, g2)


def test_target_gradient_is_total_derivative_through_actor(nets):
    critic, actor, s, _, g = nets
    rewards = th.full((B, 1), -1.0, dtype=th.float64)
    dones = th.tensor([[0.0], [1.0], [0.0], [0.0], [0.0]], dtype=th.float64)
    gamma = 0.95

    def next_value(x):
        return critic(th.cat([s, actor(th.cat([s, x], 1)), x], 1))

    target, grad = gg.target_and_goal_gradient(next_value, g, rewards, dones, gamma)
    assert not target.requires_grad and not grad.requires_grad  # detached targets
    y = lambda x: (rewards + (1 - dones) * gamma * next_value(x)).reshape(-1)  # noqa: E731
    assert th.allclose(target.reshape(-1), y(g))
    assert th.allclose(grad, central_difference(y, g), atol=1e-7)
    assert th.all(grad[1] == 0)  # terminal transition: no bootstrap gradient
    # The partial derivative (actor output held fixed) is different: the actor path matters.
    a_fixed = actor(th.cat([s, g], 1)).detach()
    partial = central_difference(lambda x: (gamma * critic(th.cat([s, a_fixed, x], 1))).reshape(-1), g)
    assert not th.allclose(grad[0], partial[0], atol=1e-4)


def test_penalty_equals_hand_computed_value_for_linear_models():
    """Q = u.g + v.s + c.a; target actor pi'(s', g) = M g + N s'; target Q' = u'.g + v'.s' + c'.a'.

    Then grad_g Q = u, total grad_g Q'(s', pi'(s', g), g) = u' + M^T c'; dense reward R = -||ag - g||^2 has
    grad_g R = 2 (ag - g).
    """
    rng = np.random.default_rng(1)
    u, v, c, u2, v2, c2 = (rng.normal(size=n) for n in (DG, DS, DA, DG, DS, DA))
    M, N = rng.normal(size=(DA, DG)), rng.normal(size=(DA, DS))
    s, a, s2, ag, g = (rng.normal(size=(B, n)) for n in (DS, DA, DS, DG, DG))
    rewards = rng.choice([-1.0, 0.0], size=(B, 1))
    dones = np.array([[0.0], [0.0], [1.0], [0.0], [0.0]])
    gamma = 0.9
    T = lambda x: th.as_tensor(x)  # noqa: E731
    q = lambda ss, aa, gg_: gg_ @ T(u) + ss @ T(v) + aa @ T(c)  # noqa: E731
    qt = lambda ss, aa, gg_: gg_ @ T(u2) + ss @ T(v2) + aa @ T(c2)  # noqa: E731
    pit = lambda ss, gg_: gg_ @ T(M).T + ss @ T(N).T  # noqa: E731
    _, tgrad = gg.target_and_goal_gradient(lambda x: qt(T(s2), pit(T(s2), x), x)[:, None], T(g), T(rewards),
                                           T(dones), gamma)
    rgrad = gg.reward_goal_gradient(lambda ag_, x: -((ag_ - x) ** 2).sum(1), T(ag), T(g))
    leaf = gg.make_goal_leaf(T(g))
    (qgrad,) = gg.critic_goal_gradient([q(T(s), T(a), leaf)], [leaf])
    sigma2 = rng.uniform(0.5, 2.0, size=DG)
    mask = gg.sparse_mask(T(rewards))
    sparse = gg.reengage_penalty(qgrad, tgrad, mask, reduction="sum").item()
    dense = gg.reengage_penalty(qgrad, tgrad + rgrad, None, T(sigma2), reduction="sum").item()
    dense_mean = gg.reengage_penalty(qgrad, tgrad + rgrad, None, T(sigma2)).item()  # default: coordinate mean

    tg = (1 - dones) * gamma * (u2 + M.T @ c2)  # (B, DG)
    diff_sparse = u - tg
    want_sparse = np.mean((rewards[:, 0] == -1) * (diff_sparse ** 2).sum(1))
    diff_dense = u - (tg + 2 * (ag - g))
    want_dense = np.mean((sigma2 * diff_dense ** 2).sum(1))
    assert sparse == pytest.approx(want_sparse, rel=1e-12)
    assert dense == pytest.approx(want_dense, rel=1e-12)
    assert dense_mean == pytest.approx(np.mean(sigma2 * diff_dense ** 2), rel=1e-12)  # mean over batch x coords


def test_sparse_mask_selects_exactly_c_low_transitions():
    rewards = th.tensor([[-1.0], [0.0], [-1.0], [0.5], [-0.999]])
    assert gg.sparse_mask(rewards).tolist() == [1.0, 0.0, 1.0, 0.0, 0.0]
    assert gg.sparse_mask(rewards, c_low=0.0).tolist() == [0.0, 1.0, 0.0, 0.0, 0.0]
    grad_q, tgt = th.randn(5, 3), th.randn(5, 3)
    p = gg.reengage_penalty(grad_q, tgt, gg.sparse_mask(rewards))
    grad_q2 = grad_q.clone()
    grad_q2[[1, 3, 4]] += 100.0  # masked-out rows must not matter
    assert gg.reengage_penalty(grad_q2, tgt, gg.sparse_mask(rewards)) == p
    want = ((grad_q - tgt) ** 2).mean(1)[[0, 2]].sum() / 5  # batch mean over all 5 rows, coordinate mean
    assert th.allclose(p, want)


def test_penalty_backpropagates_into_critic_parameters():
    """Double backprop: d/du of mean_{b,i} (u_i - t_bi)^2 is 2 (u - t) averaged over the batch, / d."""
    u = th.randn(DG, dtype=th.float64, requires_grad=True)
    g = gg.make_goal_leaf(th.randn(B, DG, dtype=th.float64))
    t = th.randn(B, DG, dtype=th.float64)
    (qgrad,) = gg.critic_goal_gradient([(g @ u)[:, None]], [g])
    gg.reengage_penalty(qgrad, t).backward()
    assert th.allclose(u.grad, (2 * (u.detach() - t)).mean(0) / DG)


def test_dqn_soft_target_gradient_matches_finite_differences():
    from rlcert.agents.dqn import hard_and_soft_values, soft_value

    qnet = mlp(DS + DG, 4, 3)
    rng = np.random.default_rng(2)
    s, g = th.as_tensor(rng.normal(size=(B, DS))), th.as_tensor(rng.normal(size=(B, DG)))
    rewards, dones = -th.ones(B, 1, dtype=th.float64), th.zeros(B, 1, dtype=th.float64)
    q = lambda x: qnet(th.cat([s, x], 1))  # noqa: E731
    for tau in (0.0, 0.5):
        target, grad = gg.target_and_goal_gradient(lambda x, t=tau: hard_and_soft_values(q(x), t), g, rewards,
                                                   dones, 0.9)
        assert th.allclose(target, rewards + 0.9 * q(g).max(1, keepdim=True)[0])  # TD target stays hard
        fd = central_difference(lambda x, t=tau: 0.9 * soft_value(q(x), t).reshape(-1), g)
        assert th.allclose(grad, fd, atol=1e-6)
    assert th.allclose(soft_value(q(g), 1e-4), q(g).max(1, keepdim=True)[0], atol=1e-3)  # tau -> 0: hard max


def test_mean_reduction_is_sum_divided_by_goal_dims():
    grad_q, tgt, mask = th.randn(5, 4), th.randn(5, 4), th.tensor([1.0, 0.0, 1.0, 1.0, 0.0])
    total = gg.reengage_penalty(grad_q, tgt, mask, reduction="sum")
    assert th.allclose(gg.reengage_penalty(grad_q, tgt, mask), total / 4)  # the default is the mean
    with pytest.raises(ValueError, match="reduction"):
        gg.reengage_penalty(grad_q, tgt, reduction="max")

"""One ReenGAGE-TD3 critic update against an independent torch.func computation of the same loss gradient."""

import gymnasium as gym
import pytest
import torch as th
from stable_baselines3 import HerReplayBuffer
from torch.func import functional_call, grad, vmap

import rlcert  # noqa: F401
from rlcert.agents import ReenGAGEDDPG, ReenGAGEDQN, ReenGAGESAC, ReenGAGETD3
from rlcert.agents import goal_gradient as gg


def test_critic_gradient_matches_torch_func_reference():
    th.manual_seed(0)
    env = gym.make("rlcert/ContinuousSeek-v0", d=3)
    alpha, gamma = 0.7, 0.9
    # policy_delay=2: the first update changes only the critic, so critic .grad is the critic-loss gradient.
    model = ReenGAGETD3("MultiInputPolicy", env, alpha=alpha, gamma=gamma, learning_starts=40, batch_size=16,
                        policy_delay=2, target_policy_noise=0.0, replay_buffer_class=HerReplayBuffer,
                        policy_kwargs=dict(net_arch=[16, 16]), seed=0)
    model.learn(40)  # fills the buffer, no update yet
    batch = model.replay_buffer.sample(16, env=None)
    model.replay_buffer.sample = lambda *a, **k: batch  # the update sees exactly this batch
    # perturb target nets so that they differ from the online nets
    with th.no_grad():
        for p in list(model.critic_target.parameters()) + list(model.actor_target.parameters()):
            p.add_(0.05 * th.randn_like(p))
    critic, critic_t, actor_t = model.critic, model.critic_target, model.actor_target
    params = {k: v.detach().clone() for k, v in critic.named_parameters()}
    tparams = {k: v.detach() for k, v in critic_t.named_parameters()}
    aparams = {k: v.detach() for k, v in actor_t.named_parameters()}
    obs, nobs = batch.observations, batch.next_observations
    mask = (batch.rewards.reshape(-1) == -1.0).float()

    def one(o: dict, x: th.Tensor) -> dict:
        return {k: (x if k == "desired_goal" else v).unsqueeze(0) for k, v in o.items()}

    def y_single(g, o_next, r):  # per-sample TD target as a function of the goal (total derivative)
        ob = one(o_next, g)
        a_next = functional_call(actor_t, aparams, (ob,)).clamp(-1, 1)
        qs = functional_call(critic_t, tparams, (ob, a_next))
        return r + gamma * th.min(th.cat(qs, 1))

    def q_single(p, j, g, o, a):
        return functional_call(critic, p, (one(o, g), a.unsqueeze(0)))[j].squeeze()

    in_dims = (0, {k: 0 for k in nobs}, 0)
    y = vmap(y_single, in_dims=in_dims)(nobs["desired_goal"], nobs, batch.rewards.squeeze(1))
    gy = vmap(grad(y_single), in_dims=in_dims)(nobs["desired_goal"], nobs, batch.rewards.squeeze(1))

    def loss_fn(p):
        total = 0.0
        for j in range(2):
            qd = {k: 0 for k in obs}
            q = vmap(q_single, in_dims=(None, None, 0, qd, 0))(p, j, obs["desired_goal"], obs, batch.actions)
            gq = vmap(grad(q_single, argnums=2), in_dims=(None, None, 0, qd, 0))(p, j, obs["desired_goal"], obs,
                                                                                  batch.actions)
            total = total + ((q - y.detach()) ** 2).mean()
            total = total + alpha * (mask * ((gq - gy.detach()) ** 2).mean(1)).mean()  # batch x goal-coordinate mean
        return total

    want = th.autograd.grad(loss_fn({k: v.requires_grad_(True) for k, v in params.items()}), list(params.values()))
    model.train(1, 16)
    for (name, p), w in zip(critic.named_parameters(), want):
        assert th.allclose(p.grad, w, rtol=1e-4, atol=1e-6), name
    assert 0 < mask.mean() < 1  # both kinds of transitions are present


def _capture_step_grads(optimizer, params) -> list:
    """Make ``optimizer.step`` record the parameters' .grad just before its first step (the loss gradient)."""
    seen, step = [], optimizer.step

    def recording_step(*args, **kwargs):
        if not seen:
            seen.append([p.grad.detach().clone() for p in params])
        return step(*args, **kwargs)

    optimizer.step = recording_step
    return seen


def _fixed_batch(model, n: int):
    batch = model.replay_buffer.sample(n, env=None)
    model.replay_buffer.sample = lambda *a, **k: batch
    return batch


def test_sac_critic_gradient_matches_torch_func_reference(monkeypatch):
    """One ReenGAGE-SAC critic step: 0.5 * sum_j [mse(Q_j, y) + alpha * mean_{b,i} mask_b (dQ_j/dg - dy/dg)_i^2],
    y(g) = r + gamma (min_j Q'_j(s', a'(g), g) - ent log pi(a'(g) | s', g)), a'(g) = tanh(mu + std * eps), derived
    here with torch.func from the reparameterisation noise the update drew (the log-density written out by hand)."""
    import copy
    import math

    th.manual_seed(0)
    alpha, gamma, ent = 0.7, 0.9, 0.2
    model = ReenGAGESAC("MultiInputPolicy", gym.make("rlcert/ContinuousSeek-v0", d=3), alpha=alpha, gamma=gamma,
                        ent_coef=ent, learning_starts=40, batch_size=16, buffer_size=200,
                        replay_buffer_class=HerReplayBuffer, policy_kwargs=dict(net_arch=[16, 16]), seed=0)
    model.learn(40)
    batch = _fixed_batch(model, 16)
    with th.no_grad():
        for p in model.critic_target.parameters():
            p.add_(0.05 * th.randn_like(p))
    actor, critic_t = copy.deepcopy(model.actor), copy.deepcopy(model.critic_target)
    critic = model.critic
    params = {k: v.detach().clone() for k, v in critic.named_parameters()}
    noises = []

    def rsample(self, sample_shape=()):
        eps = th.randn(self._extended_shape(sample_shape), dtype=self.loc.dtype)
        noises.append(eps)
        return self.loc + eps * self.scale

    monkeypatch.setattr(th.distributions.Normal, "rsample", rsample)
    grads = _capture_step_grads(critic.optimizer, list(critic.parameters()))
    model.train(1, 16)
    eps_next = noises[1]  # [0]: the actor's own action at s; [1]: a' at s' (the target)
    obs, nobs = batch.observations, batch.next_observations
    mask = (batch.rewards.reshape(-1) == -1.0).float()

    def one(o: dict, x: th.Tensor) -> dict:
        return {k: (x if k == "desired_goal" else v).unsqueeze(0) for k, v in o.items()}

    def y_single(g, o_next, r, eps):
        ob = one(o_next, g)
        mu, log_std, _ = actor.get_action_dist_params(ob)
        std = log_std.clamp(-20, 2).exp()
        u = mu + std * eps
        a = th.tanh(u)
        logp = (-0.5 * ((u - mu) / std) ** 2 - th.log(std) - 0.5 * math.log(2 * math.pi)).sum()
        logp = logp - th.log(1 - a ** 2 + 1e-6).sum()
        q = th.min(th.cat(critic_t(ob, a), 1))
        return r + gamma * (q - ent * logp)

    in_dims = (0, {k: 0 for k in nobs}, 0, 0)
    args = (nobs["desired_goal"], nobs, batch.rewards.squeeze(1), eps_next)
    y = vmap(y_single, in_dims=in_dims)(*args)
    gy = vmap(grad(y_single), in_dims=in_dims)(*args)

    def q_single(p, j, g, o, a):
        return functional_call(critic, p, (one(o, g), a.unsqueeze(0)))[j].squeeze()

    def loss_fn(p):
        total = 0.0
        qd = {k: 0 for k in obs}
        for j in range(2):
            q = vmap(q_single, in_dims=(None, None, 0, qd, 0))(p, j, obs["desired_goal"], obs, batch.actions)
            gq = vmap(grad(q_single, argnums=2), in_dims=(None, None, 0, qd, 0))(p, j, obs["desired_goal"], obs,
                                                                                  batch.actions)
            total = total + ((q - y.detach()) ** 2).mean()
            total = total + alpha * (mask * ((gq - gy.detach()) ** 2).mean(1)).mean()
        return 0.5 * total

    want = th.autograd.grad(loss_fn({k: v.requires_grad_(True) for k, v in params.items()}), list(params.values()))
    for (name, _), got, w in zip(critic.named_parameters(), grads[0], want):
        assert th.allclose(got, w, rtol=1e-4, atol=1e-6), name
    assert 0 < mask.mean() < 1 and len(noises) == 2


def test_dqn_gradient_matches_torch_func_reference():
    """One ReenGAGE-DQN step: Huber(Q_a, r + gamma max Q') + alpha mean_{b,i} mask_b (dQ_a/dg - gamma dS/dg)_i^2,
    S(g) = sum_a softmax(Q'(s', g) / tau)_a Q'_a(s', g), derived here with torch.func."""
    th.manual_seed(0)
    alpha, gamma, tau = 0.7, 0.9, 0.5
    model = ReenGAGEDQN("MultiInputPolicy", gym.make("rlcert/BitFlipping-v0", n_bits=5), alpha=alpha, gamma=gamma,
                        softmax_tau=tau, learning_starts=40, batch_size=16, buffer_size=200, max_grad_norm=1e9,
                        train_freq=1, gradient_steps=1, replay_buffer_class=HerReplayBuffer,
                        policy_kwargs=dict(net_arch=[16, 16]), seed=0)
    model.learn(40)
    batch = _fixed_batch(model, 16)
    with th.no_grad():
        for p in model.q_net_target.parameters():
            p.add_(0.05 * th.randn_like(p))
    q_net, q_t = model.q_net, model.q_net_target
    params = {k: v.detach().clone() for k, v in q_net.named_parameters()}
    grads = _capture_step_grads(model.policy.optimizer, list(q_net.parameters()))
    model.train(1, 16)
    obs, nobs = batch.observations, batch.next_observations
    mask = (batch.rewards.reshape(-1) == -1.0).float()
    not_done = 1 - batch.dones.squeeze(1)

    def one(o: dict, x: th.Tensor) -> dict:
        return {k: (x if k == "desired_goal" else v).unsqueeze(0) for k, v in o.items()}

    def soft_single(g, o_next):
        q = q_t(one(o_next, g))[0]
        return (th.softmax(q / tau, 0) * q).sum()

    nd = {k: 0 for k in nobs}
    with th.no_grad():
        y = batch.rewards.squeeze(1) + not_done * gamma * q_t(nobs).max(1).values
    gs = gamma * not_done[:, None] * vmap(grad(soft_single), in_dims=(0, nd))(nobs["desired_goal"], nobs)

    def q_single(p, g, o, a):
        return (functional_call(q_net, p, (one(o, g),))[0] * a).sum()  # a: one-hot action

    def loss_fn(p):
        od = {k: 0 for k in obs}
        acts = th.nn.functional.one_hot(batch.actions.long().squeeze(1), 5).float()
        q = vmap(q_single, in_dims=(None, 0, od, 0))(p, obs["desired_goal"], obs, acts)
        gq = vmap(grad(q_single, argnums=1), in_dims=(None, 0, od, 0))(p, obs["desired_goal"], obs, acts)
        diff = (q - y).abs()
        huber = th.where(diff < 1, 0.5 * diff ** 2, diff - 0.5).mean()
        return huber + alpha * (mask * ((gq - gs) ** 2).mean(1)).mean()

    want = th.autograd.grad(loss_fn({k: v.requires_grad_(True) for k, v in params.items()}), list(params.values()))
    for (name, _), got, w in zip(q_net.named_parameters(), grads[0], want):
        assert th.allclose(got, w, rtol=1e-4, atol=1e-6), name
    assert 0 < mask.mean() < 1


@pytest.mark.parametrize("cls", [ReenGAGETD3, ReenGAGESAC])
def test_analytic_goal_gradient_equals_autograd_double_backward(cls):
    """The written-out d/dg Q of SB3's ReLU MLP critics (default) and autograd's create_graph path give the same
    critic values, goal-gradients and loss gradients in the critic weights."""
    th.manual_seed(0)
    model = cls("MultiInputPolicy", gym.make("rlcert/ContinuousSeek-v0", d=3), alpha=0.5, learning_starts=40,
                batch_size=16, buffer_size=200, replay_buffer_class=HerReplayBuffer,
                policy_kwargs=dict(net_arch=[16, 16]), seed=0)
    model.learn(40)
    batch = model.replay_buffer.sample(16, env=None)
    assert model._goal_columns(model.critic) == slice(3, 6)  # achieved_goal, desired_goal, observation
    results, target = [], th.randn(16, 3)
    for analytic in (True, False):
        model.analytic_gradient = analytic
        model.critic.zero_grad()
        values, grads, rows = model._values_and_input_gradients(model.critic, batch.observations, batch.actions)
        assert rows is None
        sum(((g - target) ** 2).mean() + v.sum() for v, g in zip(values, grads)).backward()
        results.append(([v.detach() for v in values], [g.detach() for g in grads],
                        [p.grad.clone() for p in model.critic.parameters()]))
    for a, b in zip(results[0], results[1]):
        for x, y in zip(a, b):
            assert th.allclose(x, y, rtol=1e-5, atol=1e-7)
    assert results[0][1][0].abs().sum() > 0


@pytest.mark.parametrize("cls, total", [(ReenGAGETD3, True), (ReenGAGETD3, False), (ReenGAGEDDPG, True)])
def test_closed_form_td3_target_gradient_equals_autograd(cls, total):
    """The written-out TD3 target value and its goal-gradient (min over critics, clamp of pi' + noise, tanh, the
    target actor's ReLU layers) equal autograd's first-order derivative of the same function, on the given rows."""
    from rlcert.agents.loops import td3_next_value

    th.manual_seed(1)
    model = cls("MultiInputPolicy", gym.make("rlcert/ContinuousSeek-v0", d=3), alpha=0.5, learning_starts=40,
                batch_size=32, buffer_size=200, replay_buffer_class=HerReplayBuffer, through_target_actor=total,
                policy_kwargs=dict(net_arch=[16, 16]), seed=0)
    model.learn(40)
    with th.no_grad():
        for p in [*model.critic_target.parameters(), *model.actor_target.parameters()]:
            p.add_(0.3 * th.randn_like(p))  # large weights: some actions clamp
    batch = model.replay_buffer.sample(32, env=None)
    noise = 0.4 * th.randn_like(batch.actions)
    value_fn = td3_next_value(model, batch.next_observations, noise)
    rows = th.tensor([0, 3, 4, 7, 8, 20, 31])
    value, grad = model._td3_target_in_closed_form(value_fn, rows)
    goal = batch.next_observations["desired_goal"]
    zeros = th.zeros(32, 1)
    want_value, want_grad = gg.target_and_goal_gradient(value_fn, goal, zeros, zeros, 1.0)
    assert th.allclose(value, want_value, atol=1e-6)
    assert th.allclose(grad[rows], want_grad[rows], rtol=1e-4, atol=1e-6)
    assert th.all(grad[[1, 2, 5]] == 0)  # rows not asked for
    pre = model.actor_target(batch.next_observations) + noise
    assert ((pre.abs() > 1).any(dim=1)[rows]).any()  # the clamp's zero derivative is exercised

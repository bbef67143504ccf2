"""One ReenGAGE-TD3 critic update against an independent torch.func computation of the same loss gradient."""

import gymnasium as gym
import torch as th
from stable_baselines3 import HerReplayBuffer
from torch.func import functional_call, grad, vmap

import rlcert  # noqa: F401
from rlcert.agents import ReenGAGETD3


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

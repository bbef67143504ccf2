"""The fleet's training loop: S members acting in one batched env, one replay tensor, one update per step.

:class:`Fleet` follows SB3's off-policy loop for each member (``OffPolicyAlgorithm.learn`` with
``train_freq=(n, "step")``): before ``learning_starts`` steps SB3's random actions, afterwards the family's
exploration (:meth:`rlcert.fleet.family.FleetAlgorithm.explore`: the actor plus action noise, a policy sample, ...);
after every ``train_freq`` steps, once more than ``learning_starts`` steps are collected, ``gradient_steps``
updates of ``batch_size``. Callbacks (evaluation, checkpoints) run after the step is collected and before its
training, as SB3's callbacks do.

Random numbers: member k owns one generator seeded with its seed, used for its initial parameters, its goals,
its actions and noise, its replay samples and its update's noise, always in the same order; evaluation uses a
second generator (seed 10_000 + seed). So member k's run does not depend on which other members train with it.
"""

from __future__ import annotations

import torch as th

from rlcert.fleet.config import Schedule
from rlcert.fleet.family import FleetAlgorithm, MemberSettings
from rlcert.fleet.replay import EpisodeReplay
from rlcert.fleet.td3 import FleetTD3
from rlcert.fleet.vector_envs import TorchGoalEnv


def _generator(seed: int) -> th.Generator:
    g = th.Generator()
    g.manual_seed(int(seed))
    return g


class Fleet:
    """S independent learners of one family (``family``, default DDPG/TD3) with seeds ``seeds`` on copies of a
    torch env."""

    def __init__(self, settings: MemberSettings, schedule: Schedule, seeds: list[int], env_cls: type,
                 env_kwargs: dict | None = None, family: type[FleetAlgorithm] = FleetTD3) -> None:
        if len(seeds) != settings.n_members:
            raise ValueError(f"need one seed per member ({settings.n_members}), got {len(seeds)}")
        self.seeds, self.schedule, self.env_kwargs = [int(s) for s in seeds], schedule, dict(env_kwargs or {})
        self.generators = [_generator(s) for s in self.seeds]
        self.eval_generators = [_generator(10_000 + s) for s in self.seeds]
        self.agent: FleetAlgorithm = family(settings, self.generators)
        self.env_cls = env_cls
        self.env: TorchGoalEnv = env_cls(self.generators, **self.env_kwargs)
        self.device = th.device(settings.device)  # networks and replay; the env steps on the CPU (cheap)
        self.replay = EpisodeReplay(len(seeds), schedule.buffer_size, self.env.max_steps, self.env.obs_dim,
                                    self.env.goal_dim, self.env.action_dim, schedule.n_sampled_goal, schedule.her,
                                    self.device, self.env.achieved_dim)
        self.num_timesteps = 0
        self.total_timesteps: int | None = None  # the current learn() call's target
        self.trained_through = 0  # the last env step whose training (if due) is done
        self.obs: dict[str, th.Tensor] | None = None

    @property
    def n_members(self) -> int:
        return len(self.seeds)

    def _train_if_due(self) -> None:
        sch = self.schedule
        if self.trained_through >= self.num_timesteps:
            return
        self.trained_through = self.num_timesteps
        if self.num_timesteps > sch.learning_starts and self.num_timesteps % sch.train_freq == 0:
            for gradient_step in range(sch.gradient_steps):
                batch = self.replay.sample(sch.batch_size, self.generators, self.env.compute_reward)
                self.agent.update(batch, self.generators, gradient_step)

    def step(self) -> None:
        """Collect one env step for every member (its training happens at the start of the next call, or
        by :meth:`finish_step`)."""
        self._train_if_due()
        if self.obs is None:
            self.obs = self.env.reset()
            self.replay.start_episode(self.obs)
        obs = {k: v.to(self.device) for k, v in self.obs.items()}
        action = self.agent.explore(obs, self.generators, self.num_timesteps < self.schedule.learning_starts)
        next_obs, reward, truncated, _ = self.env.step(action.cpu())
        self.replay.add(action, reward, next_obs, truncated)
        self.num_timesteps += 1
        self.agent.on_step(self.num_timesteps, self.total_timesteps)
        self.obs = None if truncated else next_obs

    def finish_step(self) -> None:
        """Run the training due after the last collected step."""
        self._train_if_due()

    def learn(self, total_timesteps: int, callback=None) -> None:
        """Step until ``total_timesteps``; ``callback(fleet)`` after each collected step (before its training).

        Like SB3, a started rollout of ``train_freq`` steps is completed (and trained on) even if that passes
        ``total_timesteps``."""
        self.total_timesteps = int(total_timesteps)
        while self.num_timesteps < total_timesteps or self.num_timesteps % self.schedule.train_freq:
            self.step()
            if callback is not None:
                callback(self)
        self.finish_step()

    @th.no_grad()
    def evaluate(self, episodes: int) -> dict[str, th.Tensor]:
        """``episodes`` deterministic episodes per member on fresh env copies (goals from the members' evaluation
        generators); per-member (S,) success "ever" and "final" as counts of successful episodes (exact
        integers: rates are count / episodes), mean and std of the return."""
        S = self.n_members
        env = self.env_cls([g for g in self.eval_generators for _ in range(episodes)], **self.env_kwargs)
        obs = env.reset()
        total = th.zeros(S * episodes, dtype=th.float64)
        truncated = False
        while not truncated:
            a = self.agent.act({k: v.reshape(S, episodes, -1).to(self.device) for k, v in obs.items()})
            a = a.reshape(S * episodes, -1).cpu()
            obs, reward, truncated, success = env.step(a)
            total += reward.double()
        ret = total.reshape(S, episodes)
        # "final" = info["is_success"] at the last step, as rlcert.agents.callbacks.evaluate reads it; the envs
        # latch it, so for them it equals "ever"
        return {"successes_ever": env.success.reshape(S, episodes).sum(1),
                "successes_final": success.reshape(S, episodes).sum(1),
                "mean_return": ret.mean(1), "std_return": ret.std(1, unbiased=False)}

    def state_dict(self) -> dict:
        return {"seeds": self.seeds, "num_timesteps": self.num_timesteps, "trained_through": self.trained_through,
                "obs": self.obs, "agent": self.agent.state_dict(), "replay": self.replay.state_dict(),
                "env": self.env.state_dict(), "generators": [g.get_state() for g in self.generators],
                "eval_generators": [g.get_state() for g in self.eval_generators]}

    def load_state_dict(self, state: dict) -> None:
        if list(state["seeds"]) != self.seeds:
            raise ValueError(f"checkpoint seeds {state['seeds']} differ from the fleet's {self.seeds}")
        self.num_timesteps, self.trained_through = int(state["num_timesteps"]), int(state["trained_through"])
        self.obs = state["obs"]
        self.agent.load_state_dict(state["agent"])
        self.replay.load_state_dict(state["replay"])
        self.env.load_state_dict(state["env"])
        for g, s in zip(self.generators + self.eval_generators, state["generators"] + state["eval_generators"],
                        strict=True):
            g.set_state(s)

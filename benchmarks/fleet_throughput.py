"""Member env-steps per second with training every step: the fleet (S members in one process) vs S sequential
SB3 runs, side by side. ContinuousSeek d = 10, Table G.1 sizes (2 x 256 actor and critic, HER k = 4 future,
one gradient step per env step), Table G.2 batch / lr (DDPG+HER 256 / 5e-4; ReenGAGE 512 / 1e-3).

    python benchmarks/fleet_throughput.py [--members 1 4 10 20] [--steps 200] [--sb3-steps 300] [--reengage]

SB3's throughput is measured on one short run (training every step) and multiplied: S sequential runs take S
times as long. Each measurement is repeated ``--repeats`` times, alternating fleet and SB3, and the best
(least disturbed) is kept. Memory per member: bytes of the member's slices of every tensor (parameters, targets,
Adam moments, replay at the config's buffer_size = 1e6). ``--vmap`` also times one critic forward+backward with
``torch.func.stack_module_state`` + ``vmap`` against the batched matmuls the fleet uses.
"""

from __future__ import annotations

import argparse
import time

import torch as th


def config(reengage: bool, total: int) -> dict:
    kw = {"replay_buffer_class": "HerReplayBuffer",
          "replay_buffer_kwargs": {"n_sampled_goal": 4, "goal_selection_strategy": "future"},
          "action_noise": {"type": "normal", "sigma": 0.03}, "policy_kwargs": {"net_arch": [256, 256]},
          "learning_rate": 1e-3 if reengage else 5e-4, "batch_size": 512 if reengage else 256,
          "buffer_size": 1_000_000, "learning_starts": 100, "gamma": 0.95, "tau": 0.005, "train_freq": 1,
          "gradient_steps": 1}
    if reengage:
        kw.update({"alpha": 0.2, "goal_reduction": "mean", "reengage_mode": "sparse", "c_low": -1.0})
    return {"name": "bench", "algo": "ReenGAGEDDPG" if reengage else "DDPG", "policy": "MultiInputPolicy",
            "env": "rlcert/ContinuousSeek-v0", "env_kwargs": {"d": 10}, "n_envs": 1, "seed": 0,
            "total_timesteps": total, "algo_kwargs": kw, "eval": {"freq": 10**9, "episodes": 1, "metric": "ever"}}


def fleet_rate(cfg: dict, n: int, steps: int) -> tuple[float, int]:
    """(member env-steps per second while training, bytes per member) for a fleet of n members."""
    from rlcert.fleet.config import read_config
    from rlcert.fleet.trainer import Fleet

    settings, schedule, noise, env_cls = read_config(cfg, n)
    fleet = Fleet(settings, schedule, list(range(n)), env_cls, cfg["env_kwargs"], noise)
    fleet.learn(schedule.learning_starts + 20)  # warm-up, training has started
    t0 = time.perf_counter()
    fleet.learn(fleet.num_timesteps + steps)
    rate = n * steps / (time.perf_counter() - t0)
    a = fleet.agent
    tensors = [*a.actor.parameters(), *a.critic.parameters(), *a.actor_target.parameters(),
               *a.critic_target.parameters(), *a.actor_opt.exp_avg, *a.actor_opt.exp_avg_sq,
               *a.critic_opt.exp_avg, *a.critic_opt.exp_avg_sq]
    r = fleet.replay
    tensors += [r.obs, r.ag, r.goal, r.actions, r.rewards]
    per_member = sum(t.numel() * t.element_size() for t in tensors) // n
    return rate, per_member


def sb3_bytes(model) -> int:
    """Bytes of an SB3 run's replay arrays, parameters and Adam moments (what a member replaces)."""
    import numpy as np

    total = 0
    for value in vars(model.replay_buffer).values():
        for arr in (value.values() if isinstance(value, dict) else [value]):
            if isinstance(arr, np.ndarray) and arr.dtype != object:
                total += arr.nbytes
    params = sum(p.numel() * p.element_size() for p in model.policy.parameters())
    return total + 2 * params  # + Adam's two moments (targets are part of policy.parameters())


def sb3_rate(cfg: dict, steps: int) -> tuple[float, int]:
    """(env-steps per second of one SB3 run after learning_starts, training every step; bytes per run)."""
    from rlcert.training import build_algo_kwargs, make_env, resolve_algo

    env = make_env(cfg["env"], cfg["env_kwargs"])
    kw = build_algo_kwargs(cfg, env.action_space)
    model = resolve_algo(cfg["algo"])("MultiInputPolicy", env, seed=0, **kw)
    start = cfg["algo_kwargs"]["learning_starts"] + 20
    model.learn(start)
    t0 = time.perf_counter()
    model.learn(steps, reset_num_timesteps=False)
    return steps / (time.perf_counter() - t0), sb3_bytes(model)


def vmap_vs_bmm(n: int = 10, batch: int = 256, reps: int = 20) -> tuple[float, float]:
    """Seconds per critic forward+backward for n members: (batched matmuls, torch.func vmap)."""
    from torch import nn
    from torch.func import functional_call, stack_module_state, vmap

    from rlcert.fleet.stacked import StackedMLP

    nets = [nn.Sequential(nn.Linear(40, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 1))
            for _ in range(n)]
    params, buffers = stack_module_state(nets)
    base = nets[0]

    def one(p, b, x):
        return functional_call(base, (p, b), (x,))

    stacked = StackedMLP(n, 40, [256, 256], 1)
    x = th.randn(n, batch, 40)

    def run_bmm():
        stacked(x).sum().backward()

    def run_vmap():
        vmap(one)(params, buffers, x).sum().backward()

    out = []
    for fn in (run_bmm, run_vmap):
        fn()
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        out.append((time.perf_counter() - t0) / reps)
    return out[0], out[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--members", type=int, nargs="+", default=[1, 4, 10, 20])
    p.add_argument("--steps", type=int, default=200, help="fleet env steps timed per measurement")
    p.add_argument("--sb3-steps", type=int, default=300, help="SB3 env steps timed per measurement")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--reengage", action="store_true", help="ReenGAGE (alpha 0.2, batch 512) instead of DDPG+HER")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--vmap", action="store_true", help="also time torch.func vmap against batched matmuls")
    args = p.parse_args()
    if min(args.members) < 1 or args.steps < 1 or args.sb3_steps < 1 or args.repeats < 1:
        p.error("--members, --steps, --sb3-steps and --repeats must be positive")
    th.set_num_threads(args.threads)
    cfg = config(args.reengage, 10**7)
    print(f"{'ReenGAGE' if args.reengage else 'DDPG+HER'}, ContinuousSeek d=10, {args.threads} thread(s)")
    sb3 = []
    rows = []
    for n in args.members:
        best, mem = 0.0, 0
        for _ in range(args.repeats):
            rate, mem = fleet_rate(cfg, n, args.steps)
            best = max(best, rate)
            rate_sb3, sb3_mem = sb3_rate(cfg, args.sb3_steps)
            sb3.append(rate_sb3)
        rows.append((n, best, mem))
    sb3_best = max(sb3)
    print(f"SB3, one run: {sb3_best:.1f} env-steps/s (best of {len(sb3)}; S sequential runs: the same rate); "
          f"memory per run {sb3_mem / 2**20:.1f} MiB (replay arrays at buffer_size 1e6, parameters, Adam)")
    print("| S | fleet member-steps/s | S sequential SB3 runs, steps/s | speed-up | memory per member (MiB) |")
    print("|---|---|---|---|---|")
    for n, rate, mem in rows:
        print(f"| {n} | {rate:.1f} | {sb3_best:.1f} | {rate / sb3_best:.2f}x | {mem / 2**20:.1f} |")
    if args.vmap:
        bmm, vm = vmap_vs_bmm()
        print(f"critic forward+backward, 10 members, batch 256: batched matmuls {bmm * 1e3:.2f} ms, "
              f"torch.func vmap {vm * 1e3:.2f} ms ({vm / bmm:.2f}x)")


if __name__ == "__main__":
    main()

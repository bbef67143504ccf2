"""Member env-steps per second with training every step: the fleet (S members in one process) against the same
number of sequential SB3 runs, side by side, measured honestly.

    python benchmarks/fleet_throughput.py            # full run, <= 8 minutes on a quiet machine (one thread)
    python benchmarks/fleet_throughput.py --quick    # a check that everything runs, < 1 minute

Method:
* every measurement runs in its own subprocess (fresh interpreter, one torch thread), so no run inherits another's
  caches, allocator state or memory; rounds are interleaved (round r measures every (family, S, precision) and SB3
  once before round r + 1 starts), and the table gives the median with [min, max] over rounds;
* both sides use the same config (Table G.1/G.2/G.3 sizes, ContinuousSeek d = 10; DQN: Bit-Flipping n = 40;
  Multi-ReenGAGE: NoisySeek at Table G.4 sizes) with the same capped replay
  buffer (``buffer_size`` 10 000 on both sides, as training caps it), warmed up past ``learning_starts`` and a few
  updates, then timed for ``--seconds`` of wall time;
* S sequential SB3 runs take S times as long as one, so their member env-steps/s is one run's env-steps/s;
* memory: the subprocess's peak resident set (RSS, ``ru_maxrss``) divided by S for the fleet, per run for SB3;
* the update's achieved GFLOP/s (matmul FLOPs of one update counted by ``torch.utils.flop_counter``, divided by the
  time of one update) next to a pure batched-GEMM probe ((S, B, 256) x (S, 256, 256) ``baddbmm``) in fp32 and bf16:
  how close the update runs to this CPU's matmul limit;
* the ReenGAGE update against the DDPG update at the same batch (issue 18 target <= 1.25x).

Families are rows of :data:`FAMILIES` (adding a family is one row: a name and its ``rlcert train`` config).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HER = {"replay_buffer_class": "HerReplayBuffer",
       "replay_buffer_kwargs": {"n_sampled_goal": 4, "goal_selection_strategy": "future"}}
COMMON = {"buffer_size": 10_000, "learning_starts": 100, "gamma": 0.95, "tau": 0.005, "train_freq": 1,
          "gradient_steps": 1, "policy_kwargs": {"net_arch": [256, 256]}}
SEEK = {"env": "rlcert/ContinuousSeek-v0", "env_kwargs": {"d": 10}}
# name -> rlcert train config (the part that differs); Table G.2 (DDPG+HER, ReenGAGE d = 10), G.3 (SAC d = 10)
FAMILIES: dict[str, dict] = {
    "DDPG+HER": {**SEEK, "algo": "DDPG", "algo_kwargs": {
        **COMMON, **HER, "batch_size": 256, "learning_rate": 5e-4, "action_noise": {"type": "normal", "sigma": 0.03}}},
    "ReenGAGE": {**SEEK, "algo": "ReenGAGEDDPG", "algo_kwargs": {
        **COMMON, **HER, "batch_size": 512, "learning_rate": 1e-3, "action_noise": {"type": "normal", "sigma": 0.03},
        "alpha": 0.2, "goal_reduction": "mean"}},
    "SAC": {**SEEK, "algo": "SAC", "algo_kwargs": {**COMMON, **HER, "batch_size": 1024, "learning_rate": 1.5e-3}},
    # configs/bit_flipping_n40_reengage.yaml, but training every step like the rows above
    "DQN": {"env": "rlcert/BitFlipping-v0", "env_kwargs": {"n_bits": 40}, "algo": "ReenGAGEDQN", "algo_kwargs": {
        **COMMON, **HER, "policy_kwargs": {"net_arch": [256]}, "batch_size": 128, "learning_rate": 1e-3,
        "gamma": 0.98, "tau": 0.05, "target_update_interval": 640, "exploration_initial_eps": 0.2,
        "exploration_final_eps": 0.2, "alpha": 1.0, "softmax_tau": 0.5, "goal_reduction": "mean"}},
    # Table G.4 (NoisySeek, n_max = 200): configs/noisy_seek_multi_reengage.yaml with the capped buffer
    "Multi-ReenGAGE": {"env": "rlcert/NoisySeek-v0", "env_kwargs": {},
                       "algo": "rlcert.agents.multi_reengage:MultiReenGAGEDDPG",
                       "policy": "rlcert.agents.deepsets:DeepSetsTD3Policy", "algo_kwargs": {
        **COMMON, "policy_kwargs": {"embed_dim": 20, "encoder_arch": [400, 400], "head_arch": [400],
                                    "share_encoder": True, "pooling": "n_max"},
        "batch_size": 256, "learning_rate": 1e-3, "action_noise": {"type": "normal", "sigma": 0.1}, "alpha": 10.0}},
}


def full_config(family: str, precision: str = "fp32") -> dict:
    base = json.loads(json.dumps(FAMILIES[family]))
    return {"name": "bench", "policy": "MultiInputPolicy", "n_envs": 1, "seed": 0, "total_timesteps": 10**6,
            "eval": {"freq": 10**9, "episodes": 1, "metric": "ever"}, "log_dir": "/tmp/rlcert-bench",
            "precision": precision, **base}


def _rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- measurements (each runs in its own subprocess: ``python fleet_throughput.py --worker JSON``) -------------------
def measure_fleet(family: str, members: int, precision: str, seconds: float, compile_update: bool = False,
                  device: str = "cpu") -> dict:
    """Fleet member env-steps/s, peak RSS, one update's time and achieved GFLOP/s. ``precision`` "tf32" is fp32
    with CUDA's TF32 matmuls allowed."""
    import torch as th

    from rlcert.fleet.config import read_config
    from rlcert.fleet.trainer import Fleet

    if precision == "tf32":
        th.backends.cuda.matmul.allow_tf32 = True
        th.backends.cudnn.allow_tf32 = True
    cfg = full_config(family, "bf16" if precision == "bf16" else "fp32")
    settings, schedule, fam, env_cls = read_config(cfg, members)
    settings.device = device

    def sync() -> None:
        if device.startswith("cuda"):
            th.cuda.synchronize()

    fleet = Fleet(settings, schedule, list(range(members)), env_cls, cfg["env_kwargs"], fam)
    if compile_update:
        fleet.agent.update = th.compile(fleet.agent.update)
    fleet.learn(schedule.learning_starts + 5)  # past the warm-up, a few updates (and compilation) done
    t0, steps = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds or steps < 3:
        fleet.step()
        steps += 1
    rate = members * steps / (time.perf_counter() - t0)
    batch = fleet.replay.sample(schedule.batch_size, fleet.generators, fleet.env.compute_reward)
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fleet.agent.update(batch, fleet.generators)
    sync()
    reps, t1 = 0, time.perf_counter()
    while time.perf_counter() - t1 < min(seconds, 0.5) or reps < 2:
        fleet.agent.update(batch, fleet.generators)
        reps += 1
        sync()
    update_s = (time.perf_counter() - t1) / reps
    return {"rate": rate, "rss_mib": _rss_mib(), "update_ms": update_s * 1e3,
            "gflops": counter.get_total_flops() / update_s / 1e9}


def measure_sb3(family: str, seconds: float) -> dict:
    from stable_baselines3.common.callbacks import BaseCallback

    from rlcert.training import build_algo_kwargs, import_object, make_env, resolve_algo

    cfg = full_config(family)
    env = make_env(cfg["env"], cfg["env_kwargs"])
    policy = import_object(cfg["policy"]) if ":" in cfg["policy"] else cfg["policy"]
    model = resolve_algo(cfg["algo"])(policy, env, seed=0, device="cpu", **build_algo_kwargs(cfg, env.action_space))
    model.learn(cfg["algo_kwargs"]["learning_starts"] + 5)

    class Stop(BaseCallback):
        def _on_training_start(self) -> None:
            self.t0, self.steps = time.perf_counter(), 0

        def _on_step(self) -> bool:
            self.steps += 1
            return time.perf_counter() - self.t0 < seconds or self.steps < 3

    stop = Stop()
    model.learn(10**7, callback=stop, reset_num_timesteps=False)
    return {"rate": stop.steps / (time.perf_counter() - stop.t0), "rss_mib": _rss_mib()}


def measure_gemm(members: int, batch: int, precision: str, seconds: float, device: str = "cpu") -> dict:
    """GFLOP/s of (S, B, 256) x (S, 256, 256) baddbmm (the fleet's hidden layer), fp32 or bf16 autocast."""
    import contextlib

    import torch as th

    x, w = th.randn(members, batch, 256, device=device), th.randn(members, 256, 256, device=device)
    b = th.randn(members, 1, 256, device=device)
    ctx = (th.autocast(th.device(device).type, dtype=th.bfloat16, cache_enabled=False) if precision == "bf16"
           else contextlib.nullcontext())
    with ctx:
        th.baddbmm(b, x, w)
        reps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds or reps < 3:
            th.baddbmm(b, x, w)
            reps += 1
            if device.startswith("cuda") and reps % 50 == 0:
                th.cuda.synchronize()
        if device.startswith("cuda"):
            th.cuda.synchronize()
    return {"gflops": 2 * members * batch * 256 * 256 * reps / (time.perf_counter() - t0) / 1e9}


def measure_update_ratio(members: int, batch: int, seconds: float) -> dict:
    """Seconds of one fleet update, DDPG (alpha 0) and ReenGAGE (alpha 0.2), the same networks and batch."""
    from rlcert.fleet.config import read_config
    from rlcert.fleet.trainer import Fleet

    times = {}
    for algo in ("DDPG", "ReenGAGE"):
        cfg = full_config(algo if algo != "DDPG" else "DDPG+HER")
        cfg["algo_kwargs"]["batch_size"] = batch
        settings, schedule, fam, env_cls = read_config(cfg, members)
        fleet = Fleet(settings, schedule, list(range(members)), env_cls, cfg["env_kwargs"], fam)
        fleet.learn(schedule.learning_starts + 3)
        times[algo] = fleet
    batch_data = times["DDPG"].replay.sample(batch, times["DDPG"].generators, times["DDPG"].env.compute_reward)
    out = {"DDPG": [], "ReenGAGE": []}
    for _ in range(3):  # interleaved
        for algo, fleet in times.items():
            reps, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < seconds / 3 or reps < 2:
                fleet.agent.update(batch_data, fleet.generators)
                reps += 1
            out[algo].append((time.perf_counter() - t0) / reps)
    return {k: statistics.median(v) * 1e3 for k, v in out.items()}


WORKERS = {"fleet": measure_fleet, "sb3": measure_sb3, "gemm": measure_gemm, "update_ratio": measure_update_ratio}


def run_worker(job: dict, threads: int) -> dict:
    """Run one measurement in a fresh subprocess with ``threads`` torch threads; its result dict."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker",
                          json.dumps({**job, "threads": threads})], capture_output=True, text=True, cwd=ROOT, env=env)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"measurement {job} failed: {out.stderr.strip().splitlines()[-1:]}")
    return json.loads(lines[-1][len("RESULT "):])


def med(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} [{min(values):.1f}, {max(values):.1f}]"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="S = 1, 4; one round; short windows (< 1 minute)")
    p.add_argument("--families", nargs="+", default=list(FAMILIES), choices=list(FAMILIES))
    p.add_argument("--members", type=int, nargs="+", default=[1, 4, 10, 20])
    p.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "tf32", "bf16"],
                   help="tf32: fp32 with CUDA TF32 matmuls (GPU only)")
    p.add_argument("--device", default="cpu", help="the fleet's device (SB3 always runs on the CPU)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=1.0, help="timed wall time of each measurement")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--compile", action="store_true", help="torch.compile the fleet's update (off by default)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        import torch as th

        job = json.loads(args.worker)
        th.set_num_threads(int(job.pop("threads")))
        print("RESULT " + json.dumps(WORKERS[job.pop("kind")](**job)))
        return
    if args.quick:
        args.members, args.rounds, args.seconds, args.precisions = [1, 4], 1, 0.3, ["fp32"]
    if min(args.members) < 1 or args.rounds < 1 or args.seconds <= 0 or args.threads < 1:
        p.error("--members, --rounds, --seconds and --threads must be positive")
    start = time.perf_counter()
    fleet_jobs = [{"kind": "fleet", "family": f, "members": s, "precision": pr, "seconds": args.seconds,
                   "compile_update": args.compile, "device": args.device}
                  for f in args.families for s in args.members for pr in args.precisions]
    sb3_jobs = [{"kind": "sb3", "family": f, "seconds": args.seconds} for f in args.families]
    results: dict[str, list[dict]] = {}
    for r in range(args.rounds):  # interleaved rounds
        for job in fleet_jobs + sb3_jobs:
            key = json.dumps(job, sort_keys=True)
            results.setdefault(key, []).append(run_worker(dict(job), args.threads))
        print(f"round {r + 1}/{args.rounds} done ({time.perf_counter() - start:.0f} s)", file=sys.stderr)
    probe_s = 0.3 if args.quick else 1.0
    s_probe = 10 if 10 in args.members else max(args.members)
    gemm = {pr: run_worker({"kind": "gemm", "members": s_probe, "batch": 256, "precision": pr, "seconds": probe_s,
                            "device": args.device}, args.threads)["gflops"] for pr in ("fp32", "bf16")}
    ratio = run_worker({"kind": "update_ratio", "members": s_probe, "batch": 256, "seconds": 3 * probe_s},
                       args.threads)

    def get(job: dict) -> list[dict]:
        return results[json.dumps(job, sort_keys=True)]

    print("ContinuousSeek d = 10 (Table G.1-G.3), Bit-Flipping n = 40 (DQN), NoisySeek (Table G.4); "
          f"fleet on {args.device}, SB3 on the CPU, "
          f"{args.threads} thread(s), buffer_size 10000 on both sides, "
          f"{args.rounds} interleaved round(s) of {args.seconds:g} s, each measurement in its own process; "
          "median [min, max]\n")
    print("| family | S | precision | fleet member-steps/s | S sequential SB3 runs, steps/s | speed-up | "
          "update GFLOP/s | RSS per member (MiB) | SB3 RSS per run (MiB) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for f in args.families:
        sb3 = get({"kind": "sb3", "family": f, "seconds": args.seconds})
        sb3_rates = [x["rate"] for x in sb3]
        for s in args.members:
            for pr in args.precisions:
                fl = get({"kind": "fleet", "family": f, "members": s, "precision": pr, "seconds": args.seconds,
                          "compile_update": args.compile, "device": args.device})
                rates = [x["rate"] for x in fl]
                ups = [a / statistics.median(sb3_rates) for a in rates]
                print(f"| {f} | {s} | {pr} | {med(rates)} | {med(sb3_rates)} | {statistics.median(ups):.2f}x | "
                      f"{med([x['gflops'] for x in fl])} | {statistics.median([x['rss_mib'] for x in fl]) / s:.0f} | "
                      f"{statistics.median([x['rss_mib'] for x in sb3]):.0f} |")
    print(f"\nbatched-GEMM probe on {args.device}, ({s_probe}, 256, 256) x ({s_probe}, 256, 256): "
          f"fp32 {gemm['fp32']:.1f} GFLOP/s, bf16 {gemm['bf16']:.1f} GFLOP/s")
    print(f"update at batch 256, S = {s_probe}, CPU: DDPG {ratio['DDPG']:.1f} ms, ReenGAGE {ratio['ReenGAGE']:.1f} ms "
          f"({ratio['ReenGAGE'] / ratio['DDPG']:.2f}x; target <= 1.25x)")
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()

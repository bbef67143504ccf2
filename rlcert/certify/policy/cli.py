"""``rlcert certify-policy``: certify a saved agent's decisions (per step) and its return (per episode).

    rlcert certify-policy --model runs/train/continuous_seek_d2_smoothed/seed0/model.zip \\
        --perturb desired_goal --method gaussian --sigma 0.1 --episodes 1000 --eps 0,0.05,0.1,0.2 \\
        --out runs/certify_policy/seek.tsv --plot-dir runs/certify_policy

Model: a ``model.zip`` saved by ``rlcert train`` (algo, env and env_kwargs are read from the ``config.yaml`` next
to it) or by SB3 (then give ``--algo`` and ``--env``). Writes:

* ``<out>``: one row per episode (``kind`` = smoothed: policy sees Gaussian noise on the ``--perturb`` entries;
  clean: the base policy), flushed as episodes finish. Rerunning with the same ``--out`` resumes (episodes
  already in the file are not re-run; the settings in ``<out>.json`` must match); episode i is seeded from
  (``--seed``, i) so results do not depend on interruptions or ``--num-envs``.
* ``<out>.json``: the settings and the certificates: certified expected return for each total l2 budget in
  ``--eps`` (DKW band and Bonferroni-Clopper-Pearson, at level 1 - ``--alpha``), the per-step-budget variant
  (``--eps`` read per step: total = sqrt(T) eps), the empirical clean and smoothed mean returns, and per-step
  certificates at ``--steps`` observations the clean policy visits (observation i: step i mod T of episode i;
  discrete: smoothed action + radius at ``--step-alpha``; continuous: certified action bounds over ``--radii``
  and the largest radius keeping the smoothed action in an l2 ball of radius ``--ball`` around the clean
  action).
* with ``--plot-dir``: ``action_bounds.png`` (or ``action_radii.png`` for discrete actions) and
  ``certified_return.png``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from tqdm.auto import tqdm

from rlcert import runs
from rlcert.certify.core.checks import check_count, check_positive
from rlcert.certify.core.stats import check_alpha
from rlcert.certify.io import check_output_file
from rlcert.certify.policy import episodes
from rlcert.certify.policy.adaptor import PolicyFunction, load_model
from rlcert.certify.policy.noise import NOISE_METHODS, MaskedNoise, make_certifier
from rlcert.certify.policy.plot import plot_action_bounds, plot_certified_return, plot_radii
from rlcert.certify.policy.returns import certify_return_cp, certify_return_dkw, integer_levels, total_budget
from rlcert.certify.policy.steps import Ball, certified_set_radius, certify_continuous, certify_discrete
from rlcert.envs import BitFlippingEnv, ContinuousSeekEnv
from rlcert.training import make_env

EPISODE_FIELDS = ("kind", "idx", "return", "length", "success")
EPISODE_HEADER = "\t".join(EPISODE_FIELDS)
RESUME_KEYS = ("model", "algo", "env", "env_kwargs", "perturb", "method", "sigma", "seed", "precision")
RESUME_DEFAULTS = {"precision": "fp32"}  # what a record written before the flag means


def _floats(text: str, name: str) -> list[float]:
    try:
        vals = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"{name} must be comma-separated numbers, got {text!r}") from None
    if not vals or any(not math.isfinite(v) or v < 0 for v in vals):
        raise ValueError(f"{name} must be non-empty, finite and >= 0, got {text!r}")
    return vals


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rlcert certify-policy", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="saved agent (.zip)")
    p.add_argument("--algo", default=None, help="agent class (default: from config.yaml next to the model)")
    p.add_argument("--env", default=None, help="gymnasium id (default: from config.yaml)")
    p.add_argument("--env-kwargs", default=None, help="JSON dict of env kwargs (default: from config.yaml)")
    p.add_argument("--perturb", nargs="+", default=["desired_goal"],
                   help="observation entries the attacker/noise perturbs (default desired_goal)")
    p.add_argument("--method", default="gaussian", help="noise: gaussian (l2; episodes and continuous actions) "
                                                        "or laplace (l1; discrete per-step certificates only)")
    p.add_argument("--sigma", type=float, required=True, help="noise standard deviation per coordinate")
    p.add_argument("--episodes", type=int, default=200, help="smoothed (and clean) episodes (default 200)")
    p.add_argument("--eps", default="0,0.05,0.1,0.2,0.4", help="total l2 budgets to certify (comma-separated)")
    p.add_argument("--alpha", type=float, default=0.05, help="failure probability of the return certificate")
    p.add_argument("--r-min", type=float, default=None, help="lower bound of every return (default: known envs)")
    p.add_argument("--r-max", type=float, default=None, help="upper bound of every return (Clopper-Pearson levels)")
    p.add_argument("--steps", type=int, default=8, help="observations for per-step certificates (default 8)")
    p.add_argument("--n", type=int, default=10_000, help="noise samples per observation (per-step)")
    p.add_argument("--n0", type=int, default=100, help="selection samples (discrete per-step)")
    p.add_argument("--step-alpha", type=float, default=0.001, help="failure probability per observation (per-step)")
    p.add_argument("--bound", choices=("hoeffding", "bernstein"), default="hoeffding",
                   help="confidence bound on the smoothed action (continuous)")
    p.add_argument("--radii", default=None, help="radii for the action-bound curves (default: 0..2 sigma)")
    p.add_argument("--ball", type=float, default=0.25, help="l2 ball around the clean action for the set radius")
    p.add_argument("--num-envs", type=int, default=16, help="environments stepped together (default 16)")
    p.add_argument("--seed", type=int, default=0, help="seed of episodes and noise (default 0)")
    p.add_argument("--device", default="auto", help="torch device (default: cuda if available)")
    p.add_argument("--out", type=Path, required=True, help="episode TSV (the JSON goes to <out>.json)")
    p.add_argument("--plot-dir", type=Path, default=None, help="write the PNG plots here")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16"),
                   help="policy forward pass: fp32 (default) or bf16 autocast (the certificates are then about "
                        "the bf16 policy, which must also be the deployed one)")
    p.add_argument("--ray", action="store_true",
                   help="shard the episodes over Ray workers (pip install 'rlcert[sweep]'); same rows as one process")
    p.add_argument("--address", default=None, help="with --ray: join this Ray cluster (default: local Ray)")
    p.add_argument("--workers", type=int, default=None, help="with --ray: Ray workers (default: the CPU count)")
    return p


def known_return_range(env: Any) -> tuple[float, float] | None:
    """(r_min, r_max) for rlcert's ContinuousSeek and Bit-Flipping (reward -1 or 0 per step, max_steps steps)."""
    u = env.unwrapped
    if isinstance(u, (ContinuousSeekEnv, BitFlippingEnv)):
        return -float(u.max_steps), 0.0
    return None


def _resolve(args: argparse.Namespace) -> dict[str, Any]:
    """Validate everything and load the model; raises ValueError (one line) before anything is written."""
    check_positive(args.sigma, "--sigma")
    if args.method not in NOISE_METHODS:
        raise ValueError(f"--method must be one of {NOISE_METHODS}, got {args.method!r}")
    check_count(args.episodes, "--episodes", 0)
    check_count(args.steps, "--steps", 0)
    check_count(args.n, "--n", 2)
    check_count(args.n0, "--n0", 1)
    check_count(args.num_envs, "--num-envs", 1)
    check_count(args.seed, "--seed", 0)
    if getattr(args, "workers", None) is not None:
        check_count(args.workers, "--workers", 1)
    if not getattr(args, "ray", False) and (getattr(args, "address", None) or getattr(args, "workers", None)):
        raise ValueError("--address/--workers need --ray")
    check_alpha(args.alpha, "--alpha")
    check_alpha(args.step_alpha, "--step-alpha")
    check_positive(args.ball, "--ball")
    eps = _floats(args.eps, "--eps")
    model_path = Path(args.model)
    if not model_path.exists():
        raise ValueError(f"--model {str(model_path)!r} does not exist")
    cfg: dict = {}
    for folder in (model_path.parent, model_path.parent.parent):
        if (folder / "config.yaml").exists():
            cfg = yaml.safe_load((folder / "config.yaml").read_text()) or {}
            break
    env_id = args.env or cfg.get("env")
    if env_id is None:
        raise ValueError("--env is needed (no config.yaml next to the model)")
    if args.env_kwargs is not None:
        try:
            env_kwargs = json.loads(args.env_kwargs)
        except json.JSONDecodeError:
            raise ValueError(f"--env-kwargs must be a JSON object, got {args.env_kwargs!r}") from None
        if not isinstance(env_kwargs, dict):
            raise ValueError(f"--env-kwargs must be a JSON object, got {args.env_kwargs!r}")
    else:
        env_kwargs = dict(cfg.get("env_kwargs") or {}) if env_id == cfg.get("env") else {}
    algo = args.algo or cfg.get("algo")
    try:
        env = make_env(env_id, env_kwargs)
    except Exception as e:  # gymnasium raises several error types for unknown ids / bad kwargs
        raise ValueError(f"--env {env_id!r} with --env-kwargs {env_kwargs} cannot be made: {e}") from None
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    model = load_model(model_path, algo, device, who="--model", algo_who="--algo")
    try:
        policy = PolicyFunction.from_sb3(model, args.perturb, precision=getattr(args, "precision", "fp32"))
    except ValueError as e:
        raise ValueError(f"--perturb: {e}") from None
    if env.observation_space != model.observation_space:
        raise ValueError(f"--env {env_id} has observation space {env.observation_space}, the model "
                         f"{model.observation_space}")
    if args.method != "gaussian" and (args.episodes > 0 or not policy.discrete):
        raise ValueError("--method laplace only certifies discrete per-step actions: use --episodes 0 with a "
                         "discrete-action agent, or --method gaussian")
    rng = known_return_range(env)
    r_min = args.r_min if args.r_min is not None else (rng[0] if rng else None)
    r_max = args.r_max if args.r_max is not None else (rng[1] if rng else None)
    if args.episodes > 0 and r_min is None:
        raise ValueError(f"--r-min (a lower bound on every return) is needed for --env {env_id}")
    radii = _floats(args.radii, "--radii") if args.radii else list(np.linspace(0, 2 * args.sigma, 21))
    horizon = int(getattr(env.unwrapped, "max_steps", 0)) or None
    certifier = make_certifier(args.method, args.sigma, n0=args.n0, n=args.n, alpha=args.step_alpha, seed=args.seed)
    return dict(policy=policy, env_id=env_id, env_kwargs=env_kwargs, algo=algo, eps=eps, r_min=r_min,
                r_max=r_max, radii=radii, horizon=horizon, certifier=certifier, env=env)


def rollout_rows(args: argparse.Namespace, r: dict[str, Any], kind: str,
                 idx: list[int]) -> list[tuple[str, int, float, int, float]]:
    """Episodes ``idx`` of ``kind`` (smoothed/clean) as rows (kind, idx, return, length, success), seeded from
    (``--seed``, idx) exactly as in ``run`` (one Ray task of ``--ray``)."""
    noise = MaskedNoise(r["certifier"], r["policy"].layout) if kind == "smoothed" else None
    eps = episodes.rollout(r["policy"], lambda: make_env(r["env_id"], r["env_kwargs"]), idx, seed=args.seed,
                           noise=noise, num_envs=args.num_envs)
    return [(kind, ep.idx, ep.ret, ep.length, ep.success) for ep in eps]


class EpisodeWorker:
    """A Ray actor of ``--ray``: the policy and environments of the run, built once per worker."""

    def __init__(self, args: argparse.Namespace) -> None:
        torch.set_num_threads(1)
        self.args = args
        self.r = _resolve(args)

    def run(self, kind: str, idx: list[int]) -> list[tuple[str, int, float, int, float]]:
        return rollout_rows(self.args, self.r, kind, idx)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the certification described by ``args``; returns the JSON summary (also written to <out>.json).

    The settings (:data:`RESUME_KEYS`) are written to ``<out>.json`` before the first episode and compared on
    resume (:mod:`rlcert.runs`); the episode rows are append-only, a partial last row is dropped."""
    r = _resolve(args)
    policy, certifier = r["policy"], r["certifier"]
    meta = {"model": str(args.model), "algo": str(r["algo"]), "env": r["env_id"], "env_kwargs": r["env_kwargs"],
            "perturb": list(args.perturb), "method": args.method, "sigma": args.sigma, "seed": args.seed,
            "precision": getattr(args, "precision", "fp32")}
    meta_path = args.out.with_name(args.out.name + ".json")
    check_output_file(args.out, "--out", also=(meta_path,))
    table = runs.Rows(args.out, EPISODE_FIELDS, delimiter="\t", fsync=False)  # flushed per episode
    runs.ensure_settings(meta_path, meta, key="settings", what=f"--out {args.out}", have_results=len(table) > 0,
                         diff=lambda old, new: runs.settings_diff(
                             {k: {**RESUME_DEFAULTS, **old}.get(k) for k in RESUME_KEYS},
                             {k: new.get(k) for k in RESUME_KEYS}))
    done = {(r["kind"], int(r["idx"])): (float(r["return"]), int(r["length"]), float(r["success"])) for r in table}
    t0 = time.perf_counter()

    def make() -> Any:
        return make_env(r["env_id"], r["env_kwargs"])

    noise = MaskedNoise(certifier, policy.layout)
    kinds = (("smoothed", noise), ("clean", None))
    todos = {kind: [i for i in range(args.episodes) if (kind, i) not in done] for kind, _ in kinds}

    def write(row: tuple[str, int, float, int, float], bar: Any) -> None:
        k, idx, ret, length, success = row
        table.append([k, idx, f"{ret:.10g}", length, f"{success:g}"])
        done[(k, idx)] = (ret, length, success)
        bar.update(1)

    if getattr(args, "ray", False):
        from rlcert.certify.distributed import run_sharded  # --ray only (Ray is an optional extra)

        size = max(1, args.num_envs)  # one task: the episodes one process steps together
        tasks = [(kind, todo[i: i + size]) for kind, todo in todos.items() for i in range(0, len(todo), size)]
        with tqdm(total=sum(map(len, todos.values())), disable=args.no_progress, unit="episode",
                  desc="episodes (ray)") as bar:
            if tasks:
                run_sharded(EpisodeWorker, args, tasks, lambda rows: [write(row, bar) for row in rows],
                            args.workers, args.address)
    else:
        for kind, nz in kinds:
            with tqdm(total=len(todos[kind]), disable=args.no_progress, unit="episode",
                      desc=f"{kind} episodes") as bar:
                episodes.rollout(policy, make, todos[kind], seed=args.seed, noise=nz, num_envs=args.num_envs,
                                 on_episode=lambda ep, kind=kind, bar=bar: write((kind, ep.idx, ep.ret, ep.length,
                                                                                  ep.success), bar))

    summary: dict[str, Any] = {"settings": meta}
    if args.episodes > 0:
        sm = np.array([done[("smoothed", i)][0] for i in range(args.episodes)])
        cl = np.array([done[("clean", i)][0] for i in range(args.episodes)])
        eps = np.array(r["eps"])
        ret: dict[str, Any] = {"episodes": args.episodes, "alpha": args.alpha, "r_min": r["r_min"],
                               "r_max": r["r_max"], "eps": eps.tolist(), "clean_mean": float(cl.mean()),
                               "smoothed_mean": float(sm.mean()),
                               "dkw": certify_return_dkw(sm, eps, args.sigma, args.alpha, r["r_min"]).tolist()}
        integer = r["r_max"] is not None and np.all(sm == np.round(sm)) and float(r["r_min"]).is_integer() \
            and float(r["r_max"]).is_integer()
        if integer:
            ret["cp"] = certify_return_cp(sm, eps, args.sigma, args.alpha, r["r_min"],
                                          levels=integer_levels(r["r_min"], r["r_max"])).tolist()
        if r["horizon"]:
            ret["horizon"] = r["horizon"]
            ret["dkw_per_step_eps"] = certify_return_dkw(sm, total_budget(eps, r["horizon"], True), args.sigma,
                                                         args.alpha, r["r_min"]).tolist()
        summary["return"] = ret

    # ---- per-step certificates at observations the clean policy visits -----------------------------------
    if args.steps > 0:
        x = episodes.visited_observations(policy, make, args.steps, args.seed, r["horizon"])
        steps: dict[str, Any] = {"observations": args.steps, "n": args.n, "alpha": args.step_alpha}
        if policy.discrete:
            certs = certify_discrete(policy, certifier, x, seeds=list(range(args.steps)))
            with torch.no_grad():
                clean = policy(x).cpu().numpy()
            steps.update(norm=certs[0].norm, n0=args.n0, clean_action=clean.tolist(),
                         smoothed_action=[c.prediction for c in certs], radius=[c.radius for c in certs],
                         p_lower=[c.p_lower for c in certs])
        else:
            bounds = certify_continuous(policy, args.sigma, x, n=args.n, alpha=args.step_alpha, bound=args.bound,
                                        seed=args.seed, seeds=list(range(args.steps)))
            radii = np.array(r["radii"])
            steps.update(bound=args.bound, radii=radii.tolist(), ball=args.ball, per_observation=[],
                         low=policy.low.cpu().tolist(), high=policy.high.cpu().tolist())
            for b in bounds:
                lo, hi = b.at(radii)
                steps["per_observation"].append({
                    "clean": b.clean.tolist(), "smoothed_mean": b.mean.tolist(), "lower": lo.tolist(),
                    "upper": hi.tolist(), "ball_radius": certified_set_radius(b, Ball(b.clean, args.ball))})
        summary["steps"] = steps
    summary["seconds"] = time.perf_counter() - t0
    runs.write_json_atomic(meta_path, summary)
    if args.plot_dir is not None:
        summary["plots"] = [str(p) for p in write_plots(summary, args.plot_dir, policy.discrete)]
    return summary


def _least_saturated(per_observation: list[dict], low: list[float], high: list[float]) -> int:
    """The observation to plot: among those whose smoothed action keeps >= 10% of the box width from its edges,
    the one whose action coordinates differ most (so the curves do not overlap); else the least saturated."""
    lo, hi = np.array(low), np.array(high)
    means = [np.array(o["smoothed_mean"]) for o in per_observation]
    gaps = np.array([float(np.min(np.minimum(m - lo, hi - m) / (hi - lo))) for m in means])
    interior = np.flatnonzero(gaps >= 0.1)
    if len(interior) == 0:
        return int(np.argmax(gaps))
    spread = [float(np.ptp((means[i] - lo) / (hi - lo))) for i in interior]
    return int(interior[int(np.argmax(spread))])


def write_plots(summary: dict[str, Any], folder: Path, discrete: bool) -> list[Path]:
    """The PNGs of a summary: action bounds (or radii) vs radius, certified return vs eps."""
    folder.mkdir(parents=True, exist_ok=True)
    s = summary["settings"]
    tag = f"{s['env'].split('/')[-1]}, {s['algo']}, {s['method']} sigma={s['sigma']} on {'+'.join(s['perturb'])}"
    out = []
    st = summary.get("steps")
    if st and discrete:
        out.append(plot_radii(np.array(st["radius"]), folder / "action_radii.png",
                              f"Certified smoothed action\n{tag}", st["norm"]))
    elif st:
        i = _least_saturated(st["per_observation"], st["low"], st["high"])
        o = st["per_observation"][i]
        out.append(plot_action_bounds(np.array(st["radii"]), np.array(o["lower"]), np.array(o["upper"]),
                                      np.array(o["clean"]), np.array(o["smoothed_mean"]),
                                      folder / "action_bounds.png",
                                      f"Certified smoothed action (observation {i}, n={st['n']})\n{tag}"))
    rt = summary.get("return")
    if rt:
        curves = {"certified, DKW band": np.array(rt["dkw"])}
        if "cp" in rt:
            curves["certified, Bonferroni-Clopper-Pearson"] = np.array(rt["cp"])
        if "dkw_per_step_eps" in rt:
            curves[f"certified (DKW), eps read per step (total sqrt({rt['horizon']}) eps)"] = \
                np.array(rt["dkw_per_step_eps"])
        out.append(plot_certified_return(np.array(rt["eps"]), curves, rt["clean_mean"], rt["smoothed_mean"],
                                         folder / "certified_return.png",
                                         f"Certified return, {rt['episodes']} episodes, alpha={rt['alpha']}\n{tag}"))
    return out


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    return runs.run_command("rlcert certify-policy", lambda: _main(args),
                            f"finished episodes are kept in {args.out} (rerun to resume)")


def _main(args: argparse.Namespace) -> int:
    summary = run(args)
    rt = summary.get("return")
    if rt:
        cert = ", ".join(f"eps={e:g}: {v:.3f}" for e, v in zip(rt["eps"], rt["dkw"]))
        print(f"clean return {rt['clean_mean']:.3f}, smoothed {rt['smoothed_mean']:.3f}; certified (DKW) {cert}")
    print(f"-> {args.out}.json" + (f", plots in {args.plot_dir}" if args.plot_dir else ""))
    return 0

if __name__ == "__main__":
    raise SystemExit(main())

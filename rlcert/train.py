"""One training run (:func:`train`), the library under ``rlcert train`` (the command: :mod:`rlcert.train_cli`).

Trains an SB3 / ReenGAGE agent from a YAML config (schema: :mod:`rlcert.training.config`) and writes
``{log_dir}/{name}/seed{seed}/``: ``config.yaml`` (resolved; written before the first result), ``eval.csv`` (one
row per evaluation, flushed), ``tb/`` (tensorboard), ``checkpoints/latest_*`` (model + replay buffer +
``latest_state.json``, for ``--resume``) and the final ``model.zip`` (reload with ``ALGOS[algo].load(path,
env=...)``).

Every value is checked (algo_kwargs names against the algorithm's constructor) before anything is written; a bad
one is a one-line error naming the key. An existing run folder is refused unless ``--resume`` is given (nothing
is ever overwritten silently), and ``--resume`` with a config that differs from the folder's ``config.yaml`` in
anything but ``total_timesteps`` / ``torch_threads`` / ``notes`` is refused in one line naming the keys. Ctrl-C
checkpoints the current step and ends with one line (exit 130); ``--resume`` continues from that step
(``wall_time_s`` accumulates over resumes). The final step is always evaluated. ``buffer_size`` larger than
total_timesteps is capped to it (same behaviour, as the buffer never wraps; keeps checkpoints small).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch as th
import yaml
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import CallbackList
from stable_baselines3.common.logger import Logger

from rlcert import runs
from rlcert.agents.callbacks import CSV_FIELDS, EvalCheckpointCallback, TqdmCallback, checkpoint_wall_time
from rlcert.training import (
    build_algo_kwargs,
    build_envs,
    grow_replay_buffer,
    import_object,
    load_config,
    make_env,
    make_train_env,
    resolve_algo,
    run_dir_of,
)

__all__ = ["MAY_CHANGE_ON_RESUME", "check_run_config", "load_config", "make_env", "make_train_env", "run_dir_of",
           "train"]

# Config entries a resumed run may change (a larger budget, other threads, a note).
MAY_CHANGE_ON_RESUME = ("total_timesteps", "torch_threads", "notes")


def _read_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text()) or {}


def _dump_yaml(obj: dict) -> str:
    return yaml.safe_dump(obj, sort_keys=False)


def check_run_config(config: dict, write: bool = False) -> bool:
    """Compare ``config`` with the ``config.yaml`` of its run folder (keys in :data:`MAY_CHANGE_ON_RESUME` may
    differ); with ``write`` store it there (before the first result). Returns True when the folder had one.
    A difference is a one-line ``ValueError`` naming the keys."""
    path = run_dir_of(config) / "config.yaml"
    kw = dict(what=f"{path.parent}", ignore=MAY_CHANGE_ON_RESUME, read=_read_yaml)
    if write:
        return runs.ensure_settings(path, config, update=True, dump=_dump_yaml, **kw)
    return runs.compare_settings(path, config, **kw)


def train(config: dict, resume: bool = False, progress: bool = True, verbose: int = 0) -> tuple[BaseAlgorithm, Path]:
    """Train from a resolved config (see :func:`load_config`); returns (model, run_dir).

    Everything that can be refused (env arguments, constructor arguments, an existing run folder without
    ``resume``, a resume with another config) is checked before anything is written, as a one-line
    ``ValueError``. The final step is always evaluated, also when ``total_timesteps`` is not a multiple of
    ``eval.freq``. Ctrl-C (SIGINT, in the main thread) checkpoints the current step, then raises
    ``KeyboardInterrupt``.
    """
    if config.get("precision", "fp32") != "fp32":
        raise ValueError(f"precision {config['precision']!r} is a fleet setting (rlcert train --seeds with a config "
                         "the fleet supports); one run trains in fp32")
    if config.get("torch_threads"):
        th.set_num_threads(int(config["torch_threads"]))
    algo_cls = resolve_algo(config["algo"])
    run_dir = run_dir_of(config)
    ckpt = run_dir / "checkpoints" / "latest_model.zip"
    seed = int(config["seed"])
    existing = run_dir.exists() and any(run_dir.iterdir())
    if existing and not resume:
        raise ValueError(f"{run_dir} already holds a run; pass --resume to continue it, or choose another "
                         "--log-dir, --seed or name (nothing was overwritten)")
    resumed = resume and ckpt.exists()
    if resumed:
        check_run_config(config)
    vec_env, eval_env = build_envs(config, seed)
    if resumed:
        model = algo_cls.load(ckpt, env=vec_env, tensorboard_log=str(run_dir / "tb"))
        buffer = run_dir / "checkpoints" / "latest_replay_buffer.pkl"
        if buffer.exists():
            model.load_replay_buffer(buffer)
            want = build_algo_kwargs(config, vec_env.action_space)["buffer_size"]
            grow_replay_buffer(model.replay_buffer, want)
        print(f"resuming {run_dir} from step {model.num_timesteps}")
    else:
        policy = config["policy"]
        try:
            kwargs = build_algo_kwargs(config, vec_env.action_space)
            if isinstance(policy, str) and ":" in policy:
                policy = import_object(policy)
            model = algo_cls(policy, vec_env, seed=seed, verbose=verbose, tensorboard_log=str(run_dir / "tb"),
                             **kwargs)
        except (TypeError, ValueError, AssertionError, KeyError, ImportError, AttributeError) as e:
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ValueError(f"{config['algo']} rejected the config (algo_kwargs / policy): {msg}") from None
        if existing:  # resume requested but no checkpoint yet: start this seed again
            print(f"no checkpoint in {run_dir}; starting from scratch")
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
    check_run_config(config, write=True)  # the settings go first
    rows = runs.Rows(run_dir / "eval.csv", CSV_FIELDS)
    # Rows written after the checkpoint are dropped (they are re-evaluated); all earlier ones are kept.
    rows.keep(lambda r: int(r["timesteps"]) <= model.num_timesteps)
    wall = checkpoint_wall_time(run_dir, model.num_timesteps) if resumed else None
    if wall is None:
        wall = float(rows.rows[-1]["wall_time_s"]) if resumed and len(rows) else 0.0
    ev = config["eval"]
    with runs.deferred_interrupt() as stop:
        evaluator = EvalCheckpointCallback(eval_env, run_dir, int(ev["freq"]), int(ev["episodes"]), ev["metric"],
                                           seed=10_000 + seed, checkpoint=config.get("checkpoint", True),
                                           rows=rows, wall_offset=wall, stop=stop)
        callbacks = [evaluator]
        remaining = config["total_timesteps"] - model.num_timesteps
        if progress:
            callbacks.append(TqdmCallback(config["total_timesteps"]))
        if remaining > 0:
            model.learn(remaining, callback=CallbackList(callbacks), reset_num_timesteps=not resumed,
                        tb_log_name="run")
        if evaluator.last_step < model.num_timesteps:  # the final step is always evaluated
            if getattr(evaluator, "model", None) is None:
                evaluator.init_callback(model)
            if not hasattr(model, "_logger"):
                model.set_logger(Logger(folder=None, output_formats=[]))
            evaluator.num_timesteps = model.num_timesteps
            evaluator.evaluate_now()
            if evaluator.checkpoint:
                evaluator.save_checkpoint()
        with runs.atomic_path(run_dir / "model.zip") as tmp:
            model.save(tmp)
    return model, run_dir


if __name__ == "__main__":  # ``python -m rlcert.train`` is the ``rlcert train`` command
    from rlcert.train_cli import main

    raise SystemExit(main())

"""Training callbacks: success-rate evaluation to CSV (flushed per row), checkpoints, a tqdm progress bar.

The files are written through the run-folder layer (:mod:`rlcert.runs`): ``eval.csv`` is an append-only
:class:`~rlcert.runs.Rows`, checkpoints are atomic, and a Ctrl-C (a :class:`~rlcert.runs.deferred_interrupt`)
checkpoints the current step at the next step boundary before training stops.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from tqdm import tqdm

from rlcert.runs import Rows, atomic_path, deferred_interrupt, read_json, write_json_atomic

METRICS = ("ever", "final", "return")
CSV_FIELDS = ["timesteps", "success_rate", "mean_return", "std_return", "episodes", "metric", "wall_time_s"]


def evaluate(model, env, episodes: int, seed: int, deterministic: bool = True) -> dict[str, float]:
    """Run ``episodes`` episodes on a gymnasium env; success "ever" = any step's ``info["is_success"]``,
    "final" = ``is_success`` at the last step; returns success_ever, success_final, mean/std return."""
    ever, final, returns = [], [], []
    for ep in range(episodes):
        obs, info = env.reset(seed=seed + ep)
        done, total, hit, last = False, 0.0, False, 0.0
        while not done:
            action, _ = model.predict(obs, deterministic=deterministic)
            obs, reward, terminated, truncated, info = env.step(action)
            total += float(reward)
            last = float(info.get("is_success", 0.0))
            hit = hit or last > 0
            done = terminated or truncated
        ever.append(float(hit))
        final.append(last)
        returns.append(total)
    return {"success_ever": float(np.mean(ever)), "success_final": float(np.mean(final)),
            "mean_return": float(np.mean(returns)), "std_return": float(np.std(returns))}


class EvalCheckpointCallback(BaseCallback):
    """Every ``freq`` env steps: evaluate (CSV row appended + flushed, tensorboard ``eval/*``), then write a
    checkpoint (model + replay buffer + ``latest_state.json``, each atomically replaced) so ``--resume`` can
    continue from it.

    rows: the run's ``eval.csv`` (default: opened from ``run_dir``); wall_offset: seconds spent by earlier
    (interrupted) processes of this run, so ``wall_time_s`` accumulates over resumes; stop: a
    :class:`~rlcert.runs.deferred_interrupt` polled at the start of every rollout (after the previous step's
    transition is stored and its gradient steps are done): a Ctrl-C checkpoints that step, then stops training
    with ``KeyboardInterrupt``."""

    def __init__(self, eval_env, run_dir: Path, freq: int, episodes: int, metric: str, seed: int,
                 checkpoint: bool = True, rows: Rows | None = None, wall_offset: float = 0.0,
                 stop: deferred_interrupt | None = None) -> None:
        super().__init__()
        if metric not in METRICS:
            raise ValueError(f"eval.metric must be one of {METRICS}, got {metric!r}")
        if freq <= 0 or episodes <= 0:
            raise ValueError(f"eval.freq and eval.episodes must be positive, got {freq}, {episodes}")
        self.eval_env, self.run_dir, self.freq, self.episodes = eval_env, Path(run_dir), freq, episodes
        self.metric, self.seed, self.checkpoint = metric, seed, checkpoint
        self.csv_path = self.run_dir / "eval.csv"
        self.rows = rows if rows is not None else Rows(self.csv_path, CSV_FIELDS)
        self.stop = stop
        self._t0 = time.perf_counter() - float(wall_offset)
        self._next = None

    @property
    def last_step(self) -> int:
        """Largest evaluated ``timesteps`` in the CSV (-1 when there is none)."""
        return max((int(s) for s in self.rows.column("timesteps")), default=-1)

    def wall_time(self) -> float:
        """Seconds of training so far, over every (resumed) process of the run."""
        return time.perf_counter() - self._t0

    def _on_training_start(self) -> None:
        self._next = (self.num_timesteps // self.freq + 1) * self.freq
        if self.num_timesteps == 0 and 0 not in {int(s) for s in self.rows.column("timesteps")}:
            self.evaluate_now()

    def evaluate_now(self) -> dict[str, float]:
        stats = evaluate(self.model, self.eval_env, self.episodes, self.seed)
        rate = {"ever": stats["success_ever"], "final": stats["success_final"], "return": float("nan")}[self.metric]
        self.rows.append({"timesteps": self.num_timesteps, "success_rate": rate, "mean_return": stats["mean_return"],
                          "std_return": stats["std_return"], "episodes": self.episodes, "metric": self.metric,
                          "wall_time_s": round(self.wall_time(), 2)})
        self.logger.record("eval/success_rate", rate)
        self.logger.record("eval/mean_return", stats["mean_return"])
        return stats

    def save_checkpoint(self) -> None:
        """Model, replay buffer and ``latest_state.json`` ({num_timesteps, wall_time_s}) under ``checkpoints/``,
        each written to a temporary file and renamed: a crash never leaves a half-written "latest" file."""
        ckpt = self.run_dir / "checkpoints"
        if hasattr(self.model, "save_replay_buffer") and self.model.replay_buffer is not None:
            with atomic_path(ckpt / "latest_replay_buffer.pkl") as tmp:
                self.model.save_replay_buffer(tmp)
        with atomic_path(ckpt / "latest_model.zip") as tmp:
            self.model.save(tmp)
        write_json_atomic(ckpt / "latest_state.json", {"num_timesteps": int(self.model.num_timesteps),
                                                       "wall_time_s": round(self.wall_time(), 2)})

    def _on_rollout_start(self) -> None:
        if self.stop is not None and self.stop.requested:
            self.stop.check(self.save_checkpoint if self.checkpoint else None)

    def _on_step(self) -> bool:
        if self.num_timesteps >= self._next:
            self._next += self.freq
            self.evaluate_now()
            if self.checkpoint:
                self.save_checkpoint()
        return True


def checkpoint_wall_time(run_dir: Path, num_timesteps: int) -> float | None:
    """``wall_time_s`` recorded with the checkpoint of ``num_timesteps`` in ``run_dir`` (None if not recorded)."""
    path = Path(run_dir) / "checkpoints" / "latest_state.json"
    if not path.exists():
        return None
    state = read_json(path)
    return float(state["wall_time_s"]) if int(state.get("num_timesteps", -1)) == int(num_timesteps) else None


class TqdmCallback(BaseCallback):
    """A tqdm progress bar over env steps (SB3's own bar needs ``rich``, which is not a dependency)."""

    def __init__(self, total: int) -> None:
        super().__init__()
        self.total = total
        self.bar = None

    def _on_training_start(self) -> None:
        self.bar = tqdm(total=self.total, initial=self.num_timesteps, unit="step", dynamic_ncols=True, mininterval=2.0)

    def _on_step(self) -> bool:
        self.bar.update(self.num_timesteps - self.bar.n)
        return True

    def _on_training_end(self) -> None:
        self.bar.close()

"""Training callbacks: success-rate evaluation to CSV (flushed per row), checkpoints, a tqdm progress bar."""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from tqdm import tqdm

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
    checkpoint (model + replay buffer, atomically replaced) so ``--resume`` can continue from it."""

    def __init__(self, eval_env, run_dir: Path, freq: int, episodes: int, metric: str, seed: int,
                 checkpoint: bool = True) -> None:
        super().__init__()
        if metric not in METRICS:
            raise ValueError(f"eval.metric must be one of {METRICS}, got {metric!r}")
        if freq <= 0 or episodes <= 0:
            raise ValueError(f"eval.freq and eval.episodes must be positive, got {freq}, {episodes}")
        self.eval_env, self.run_dir, self.freq, self.episodes = eval_env, Path(run_dir), freq, episodes
        self.metric, self.seed, self.checkpoint = metric, seed, checkpoint
        self.csv_path = self.run_dir / "eval.csv"
        self._t0 = time.perf_counter()
        self._next = None

    def _on_training_start(self) -> None:
        self._next = (self.num_timesteps // self.freq + 1) * self.freq
        if self.num_timesteps == 0 and not self._has_row(0):
            self.evaluate_now()

    def _has_row(self, step: int) -> bool:
        if not self.csv_path.exists():
            return False
        with open(self.csv_path) as f:
            return any(int(r["timesteps"]) == step for r in csv.DictReader(f))

    def evaluate_now(self) -> dict[str, float]:
        stats = evaluate(self.model, self.eval_env, self.episodes, self.seed)
        rate = {"ever": stats["success_ever"], "final": stats["success_final"], "return": float("nan")}[self.metric]
        row = {"timesteps": self.num_timesteps, "success_rate": rate, "mean_return": stats["mean_return"],
               "std_return": stats["std_return"], "episodes": self.episodes, "metric": self.metric,
               "wall_time_s": round(time.perf_counter() - self._t0, 2)}
        new = not self.csv_path.exists()
        with open(self.csv_path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
            if new:
                writer.writeheader()
            writer.writerow(row)
            f.flush()
            os.fsync(f.fileno())
        self.logger.record("eval/success_rate", rate)
        self.logger.record("eval/mean_return", stats["mean_return"])
        return stats

    def save_checkpoint(self) -> None:
        ckpt = self.run_dir / "checkpoints"
        ckpt.mkdir(parents=True, exist_ok=True)
        # Write to temporary names, then rename: a crash never leaves a half-written "latest" checkpoint.
        self.model.save(ckpt / "tmp_model.zip")
        if hasattr(self.model, "save_replay_buffer") and self.model.replay_buffer is not None:
            self.model.save_replay_buffer(ckpt / "tmp_replay_buffer.pkl")
            os.replace(ckpt / "tmp_replay_buffer.pkl", ckpt / "latest_replay_buffer.pkl")
        os.replace(ckpt / "tmp_model.zip", ckpt / "latest_model.zip")

    def _on_step(self) -> bool:
        if self.num_timesteps >= self._next:
            self._next += self.freq
            self.evaluate_now()
            if self.checkpoint:
                self.save_checkpoint()
        return True


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

"""Plots of policy certificates: certified action bounds vs radius, certified return vs eps."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_action_bounds(radii: np.ndarray, lower: np.ndarray, upper: np.ndarray, clean: np.ndarray,
                       mean: np.ndarray, path: str | Path, title: str) -> Path:
    """radii (R,), lower/upper (R, m), clean/mean (m,): one colour per action coordinate."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for j in range(lower.shape[1]):
        c = f"C{j}"
        ax.fill_between(radii, lower[:, j], upper[:, j], color=c, alpha=0.2)
        ax.plot(radii, lower[:, j], color=c, label=f"a[{j}] certified lower/upper")
        ax.plot(radii, upper[:, j], color=c)
        ax.axhline(mean[j], color=c, ls=":", label=f"a[{j}] smoothed (MC mean)")
        ax.plot([0], [clean[j]], "o", color=c, label=f"a[{j}] clean policy")
    ax.set_xlabel("l2 radius of the observation perturbation (masked coordinates)")
    ax.set_ylabel("action coordinate")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def plot_radii(radii: np.ndarray, path: str | Path, title: str, norm: str) -> Path:
    """Discrete actions: fraction of observations whose smoothed action is certified at each radius."""
    r = np.sort(np.asarray(radii, dtype=float))
    grid = np.linspace(0, max(float(r.max()), 1e-6) * 1.1, 200)
    frac = [(r >= g).mean() if g > 0 else (r > 0).mean() for g in grid]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.plot(grid, frac, label=f"certified smoothed action ({len(r)} observations)")
    ax.set_xlabel(f"{norm} radius of the observation perturbation (masked coordinates)")
    ax.set_ylabel("fraction of observations certified")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def plot_certified_return(eps: np.ndarray, curves: dict[str, np.ndarray], clean: float | None, smoothed: float,
                          path: str | Path, title: str) -> Path:
    """curves: label -> certified lower bound at each total budget eps; horizontal lines for the empirical means."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for i, (label, v) in enumerate(curves.items()):
        ax.plot(eps, v, marker="o", ms=3, color=f"C{i}", label=label)
    if clean is not None:
        ax.axhline(clean, color="k", ls="--", label=f"clean policy, empirical mean {clean:.2f}")
    ax.axhline(smoothed, color="grey", ls=":", label=f"smoothed policy, empirical mean {smoothed:.2f}")
    ax.set_xlabel("l2 budget eps: total over the episode (per step where marked)")
    ax.set_ylabel("expected return")
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def plot_return_comparison(panels: dict[str, dict[str, dict]], path: str | Path, title: str) -> Path:
    """One panel per environment; in each, certified return (DKW) vs eps for each agent (e.g. plain vs
    smoothed-trained) with its clean empirical mean as a dashed line. panels[env][agent] = summary["return"]."""
    fig, axes = plt.subplots(1, len(panels), figsize=(6.0 * len(panels), 4.2), squeeze=False)
    for ax, (env, agents) in zip(axes[0], panels.items()):
        for i, (agent, rt) in enumerate(agents.items()):
            c = f"C{i}"
            ax.plot(rt["eps"], rt["dkw"], marker="o", ms=3, color=c, label=f"{agent}: certified (DKW)")
            ax.axhline(rt["clean_mean"], color=c, ls="--", lw=1, label=f"{agent}: clean mean {rt['clean_mean']:.2f}")
            ax.axhline(rt["smoothed_mean"], color=c, ls=":", lw=1,
                       label=f"{agent}: smoothed mean {rt['smoothed_mean']:.2f}")
        ax.set_xlabel("total l2 budget eps over the episode")
        ax.set_ylabel("expected return")
        ax.set_title(env, fontsize=10)
        ax.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)

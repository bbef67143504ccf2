"""``rlcert sweep-report SWEEP_DIR [--out DIR] [--metric success_rate|mean_return]``: summarise a sweep.

Reads ``{SWEEP_DIR}/results.csv`` (gathered again from the trial folders first, so a report of a running sweep
shows what has finished) and writes under ``--out`` (default ``{SWEEP_DIR}/report``):

* ``settings.csv``: per setting: method (with its ``method_keys`` values), the tuned values, number of seeds,
  area under the curve (mean +- std over seeds), final value (mean +- std), rank within its method;
* ``report.md``: a Table G.2-style table of the best setting per method, then every setting ranked;
* ``best_curves.png``: the best setting of each method, mean +- std over seeds (thesis Fig. 8.2 style);
* ``settings/{setting}.png``: one figure per setting (each seed, and the mean +- std band).

Area under the curve (AUC) = trapezoidal integral of the metric over the evaluation steps divided by the step
span, i.e. the time-averaged metric (a success rate's AUC lies in [0, 1]). Curves are aligned on the steps every
seed of a setting has reached. Ranking uses the AUC of the seed-mean curve (= the mean of the per-seed AUCs).
"""

from __future__ import annotations

import argparse
import csv
import json
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from rlcert import runs  # noqa: E402

METRIC_LABELS = {"success_rate": "success rate", "mean_return": "mean return"}


def area_under_curve(steps: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Time-averaged value: trapezoid integral over ``steps`` / (last - first step); ``values`` (..., n_steps).
    One step: that value."""
    steps = np.asarray(steps, dtype=float)
    values = np.asarray(values, dtype=float)
    if steps.size == 1:
        return values[..., 0]
    widths = np.diff(steps)
    return (0.5 * (values[..., 1:] + values[..., :-1]) * widths).sum(-1) / (steps[-1] - steps[0])


@dataclass
class SettingSummary:
    """One setting's curves (aligned on common steps) and its statistics."""

    setting: str
    method: str           # the method label plus its method_keys values, e.g. "ReenGAGE alpha=0.2"
    params: dict
    seeds: list[int]
    steps: np.ndarray
    values: np.ndarray    # (n_seeds, n_steps)
    auc_mean: float
    auc_std: float
    final_mean: float
    final_std: float
    rank: int = 0


def short(key: str) -> str:
    """``algo_kwargs.learning_rate`` -> ``learning_rate``."""
    return key.split(".")[-1]


def fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def load_results(sweep_dir: Path) -> tuple[dict, list[dict]]:
    """(manifest, rows of results.csv); re-gathers results.csv from the trial folders first."""
    from rlcert.sweep.runner import collect_results

    sweep_dir = Path(sweep_dir)
    if not (sweep_dir / "sweep.json").exists():
        raise ValueError(f"{str(sweep_dir)!r} is not a sweep folder (no sweep.json; run rlcert sweep first)")
    path = collect_results(sweep_dir)
    manifest = json.loads((sweep_dir / "sweep.json").read_text())
    with open(path) as f:
        return manifest, list(csv.DictReader(f))


def summarise(manifest: dict, rows: list[dict], metric: str) -> list[SettingSummary]:
    """Per setting with at least one evaluation: aligned curves, AUC and final value (mean, std over seeds),
    rank (1 = largest AUC) within its method; sorted by method, then rank."""
    method_keys = manifest.get("method_keys", [])
    by_setting: dict[str, dict[int, dict[int, float]]] = {}
    for r in rows:
        by_setting.setdefault(r["setting"], {}).setdefault(int(r["seed"]), {})[int(r["step"])] = float(r[metric])
    out = []
    for sid, info in manifest["settings"].items():
        seeds = by_setting.get(sid)
        if not seeds:
            continue
        common = sorted(set.intersection(*(set(c) for c in seeds.values())))
        if not common:
            continue
        steps = np.array(common)
        values = np.array([[seeds[s][t] for t in common] for s in sorted(seeds)])
        aucs = area_under_curve(steps, values)
        label = " ".join([info["method"]] + [f"{short(k)}={fmt(info['params'][k])}" for k in method_keys
                                             if k in info["params"]])
        out.append(SettingSummary(sid, label, info["params"], sorted(seeds), steps, values, float(aucs.mean()),
                                  float(aucs.std()), float(values[:, -1].mean()), float(values[:, -1].std())))
    methods = list(dict.fromkeys(s.method for s in out))
    ranked = []
    for m in methods:
        group = sorted((s for s in out if s.method == m), key=lambda s: (-s.auc_mean, s.setting))
        for i, s in enumerate(group, 1):
            s.rank = i
        ranked += group
    return ranked


def tuned_keys(manifest: dict) -> list[str]:
    return [k for k in manifest["swept_keys"] if k not in manifest.get("method_keys", [])]


def write_settings_csv(summaries: list[SettingSummary], manifest: dict, path: Path) -> Path:
    keys = manifest["swept_keys"]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["method", "rank", "setting", *keys, "n_seeds", "last_step", "auc_mean", "auc_std", "final_mean",
                    "final_std"])
        for s in summaries:
            w.writerow([s.method, s.rank, s.setting, *[s.params.get(k, "") for k in keys], len(s.seeds),
                        int(s.steps[-1]), f"{s.auc_mean:.6g}", f"{s.auc_std:.6g}", f"{s.final_mean:.6g}",
                        f"{s.final_std:.6g}"])
    return path


def markdown_tables(summaries: list[SettingSummary], manifest: dict, metric: str) -> list[str]:
    """Table G.2 style (best setting per method), then every setting ranked within its method."""
    tuned = tuned_keys(manifest)
    head = ["method", *[short(k) for k in tuned], f"AUC of {metric} (mean ± std)", f"final {metric}", "seeds"]
    lines = ["### Best setting per method (ranked by area under the curve)", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in summaries:
        if s.rank == 1:
            lines.append(f"| {s.method} | " + " | ".join(fmt(s.params.get(k, "–")) for k in tuned)
                         + f" | {s.auc_mean:.3f} ± {s.auc_std:.3f} | {s.final_mean:.3f} ± {s.final_std:.3f} | "
                         f"{len(s.seeds)} |")
    head = ["method", "rank", *[short(k) for k in tuned], "AUC (mean ± std)", "final (mean ± std)", "seeds",
            "last step", "setting"]
    lines += ["", "### Every setting", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in summaries:
        lines.append(f"| {s.method} | {s.rank} | " + " | ".join(fmt(s.params.get(k, "–")) for k in tuned)
                     + f" | {s.auc_mean:.3f} ± {s.auc_std:.3f} | {s.final_mean:.3f} ± {s.final_std:.3f} | "
                     f"{len(s.seeds)} | {int(s.steps[-1])} | [{s.setting}](settings/{s.setting}.png) |")
    return lines


def _setup_axes(ax, metric: str) -> None:
    ax.set_xlabel("environment steps")
    ax.set_ylabel(METRIC_LABELS.get(metric, metric))
    if metric == "success_rate":
        ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)


def plot_best_curves(summaries: list[SettingSummary], manifest: dict, metric: str, path: Path) -> Path:
    """Thesis Fig. 8.2 style: the best setting of each method, mean ± std over seeds."""
    tuned = tuned_keys(manifest)
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for s in summaries:
        if s.rank != 1:
            continue
        mean, std = s.values.mean(0), s.values.std(0)
        values = ", ".join(f"{short(k)}={fmt(s.params[k])}" for k in tuned if k in s.params)
        line, = ax.plot(s.steps, mean, lw=2, label=f"{s.method} ({values}; AUC {s.auc_mean:.2f}, {len(s.seeds)} seeds)")
        ax.fill_between(s.steps, mean - std, mean + std, alpha=0.2, color=line.get_color())
    _setup_axes(ax, metric)
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title(f"{manifest['name']}: best setting per method by area under the curve\n(mean ± std over seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_setting(s: SettingSummary, manifest: dict, metric: str, path: Path) -> Path:
    """One setting: each seed (thin) and the mean ± std band."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for seed, v in zip(s.seeds, s.values):
        ax.plot(s.steps, v, lw=0.8, alpha=0.6, label=f"seed {seed}")
    mean, std = s.values.mean(0), s.values.std(0)
    ax.plot(s.steps, mean, lw=2.2, color="black", label="mean")
    ax.fill_between(s.steps, mean - std, mean + std, alpha=0.15, color="black", label="± std")
    _setup_axes(ax, metric)
    ax.legend(fontsize=8, loc="upper left", ncol=2)
    values = ", ".join(f"{short(k)}={fmt(v)}" for k, v in s.params.items())
    ax.set_title(f"{s.method} (rank {s.rank}): {values}\nAUC {s.auc_mean:.3f} ± {s.auc_std:.3f} over "
                 f"{len(s.seeds)} seeds [{s.setting}]", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_report(sweep_dir: Path, out: Path | None = None, metric: str | None = None) -> Path:
    """Write settings.csv, report.md, best_curves.png and settings/*.png; returns the report.md path."""
    sweep_dir = Path(sweep_dir)
    manifest, rows = load_results(sweep_dir)
    metric = metric or manifest.get("metric", "success_rate")
    summaries = summarise(manifest, rows, metric)
    if not summaries:
        raise ValueError(f"no evaluation rows yet under {str(sweep_dir / 'trials')!r}")
    out = Path(out) if out is not None else sweep_dir / "report"
    (out / "settings").mkdir(parents=True, exist_ok=True)
    write_settings_csv(summaries, manifest, out / "settings.csv")
    plot_best_curves(summaries, manifest, metric, out / "best_curves.png")
    for s in summaries:
        plot_setting(s, manifest, metric, out / "settings" / f"{s.setting}.png")
    n_total = len(manifest["settings"])
    lines = [f"# Sweep report: {manifest['name']}", "",
             f"{len(summaries)} of {n_total} settings have evaluations; metric `{metric}`; "
             "AUC = time-averaged metric over the evaluated steps (seeds aligned on common steps).", "",
             *markdown_tables(summaries, manifest, metric), "", "![best curves](best_curves.png)", ""]
    last = {int(s.steps[-1]) for s in summaries}
    if len(last) > 1:
        lines[4:4] = [f"**Note:** the settings end at different steps ({sorted(last)}: unfinished or still running), "
                      "so their AUCs cover different spans and the ranking is provisional.", ""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rlcert sweep-report", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep_dir", type=Path, help="the sweep folder ({log_dir}/{name})")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default SWEEP_DIR/report)")
    parser.add_argument("--metric", default=None, choices=sorted(METRIC_LABELS), help="default: the sweep's metric")
    args = parser.parse_args(argv)
    def body() -> int:
        print(f"wrote {write_report(args.sweep_dir, args.out, args.metric)}")
        return 0

    return runs.run_command("rlcert sweep-report", body)


if __name__ == "__main__":
    raise SystemExit(main())

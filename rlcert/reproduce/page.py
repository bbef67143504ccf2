"""Results page of one experiment: curves (mean +- std over seeds), a table at fixed steps, the verdict per claim
(rule: :mod:`rlcert.reproduce.verdict`), seeds, steps, precision, CPU time spent and the compute still needed."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from rlcert import runs  # noqa: E402
from rlcert.plots import read_eval_csv  # noqa: E402
from rlcert.reproduce.experiments import Experiment, Plan, estimate_time, format_hours, load_costs  # noqa: E402
from rlcert.reproduce.verdict import RULE, ClaimResult, judge, overall  # noqa: E402

N_TABLE_STEPS = 6


def last_step(run_dir: Path) -> int:
    """Largest ``timesteps`` of ``run_dir/eval.csv`` (-1 when missing or empty)."""
    path = Path(run_dir) / "eval.csv"
    if not path.exists():
        return -1
    with open(path) as f:
        return max((int(r["timesteps"]) for r in csv.DictReader(f)), default=-1)


def load_method(exp_dir: Path, key: str, seeds: list[int], steps: int, column: str) -> tuple[np.ndarray, np.ndarray]:
    """(eval steps, values[n_seeds, n_steps]) of ``seeds`` on the steps every one of them reached (<= steps)."""
    curves = []
    for s in seeds:
        t, v = read_eval_csv(Path(exp_dir) / key / f"seed{s}" / "eval.csv", column)
        keep = t <= steps
        curves.append(dict(zip(t[keep].tolist(), v[keep].tolist())))
    common = sorted(set.intersection(*(set(c) for c in curves)))
    return np.array(common, dtype=int), np.array([[c[t] for t in common] for c in curves])


def done_member_steps(exp: Experiment, exp_dir: Path) -> dict[str, int]:
    """Member-steps trained per method (the first ``exp.seeds`` seed folders, each capped at ``exp.steps``)."""
    out = {}
    for m in exp.methods:
        dirs = sorted((Path(exp_dir) / m.key).glob("seed*"), key=lambda d: int(d.name[4:]))[: exp.seeds]
        out[m.key] = sum(max(0, min(last_step(d), exp.steps)) for d in dirs)
    return out


def claim_values(steps_a: np.ndarray, va: np.ndarray, steps_b: np.ndarray, vb: np.ndarray, kind: str
                 ) -> tuple[int, np.ndarray, np.ndarray]:
    """(step, per-seed a, per-seed b): the last step both reached; for 'beats_auc' each seed's mean over the
    steps both reached up to there."""
    both = sorted(set(steps_a.tolist()) & set(steps_b.tolist()))
    if not both:
        raise ValueError("the two methods share no evaluation step")
    at = both[-1]
    if kind != "beats_auc":
        return at, va[:, list(steps_a).index(at)], vb[:, list(steps_b).index(at)]
    ia = [list(steps_a).index(t) for t in both]
    ib = [list(steps_b).index(t) for t in both]
    return at, va[:, ia].mean(1), vb[:, ib].mean(1)


def judge_all(p: Plan, curves: dict[str, tuple[np.ndarray, np.ndarray]]) -> list[tuple[str, int, ClaimResult]]:
    full = len(p.seeds) >= p.exp.seeds and p.steps >= p.exp.steps
    out = []
    for c in p.exp.comparisons:
        at, a, b = claim_values(*curves[c.a], *curves[c.b], c.kind)
        label = f"{p.exp.method(c.a).label} {c.kind.replace('_auc', ' (area under the curve)')} " \
                f"{p.exp.method(c.b).label}"
        out.append((label, at, judge(a, b, c.kind, c.delta, c.floor, full)))
    return out


def plot(p: Plan, curves: dict[str, tuple[np.ndarray, np.ndarray]], out: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for m in p.exp.methods:
        steps, values = curves[m.key]
        mean, std = values.mean(0), values.std(0)
        label = f"{m.label} ({values.shape[0]} seeds)"
        if m.reference:
            ax.axhline(mean[-1], ls="--", color="k", lw=1.5, label=label)
            ax.axhspan(mean[-1] - std[-1], mean[-1] + std[-1], color="k", alpha=0.08)
            continue
        ax.plot(steps, mean, lw=2, label=label)
        ax.fill_between(steps, mean - std, mean + std, alpha=0.2)
    ax.set_xlabel("environment steps")
    ax.set_ylabel({"success_rate": "success rate", "mean_return": "mean return (goal hits per episode)"}
                  .get(p.exp.column, p.exp.column))
    if p.exp.column == "success_rate":
        ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    ax.set_title(f"{p.exp.figure.split(' (')[0]}: {p.exp.name}\n{len(p.seeds)} seeds, mean ± std, {p.precision}",
                 fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def table_steps(curves: dict[str, tuple[np.ndarray, np.ndarray]], trained: list[str]) -> list[int]:
    steps = sorted(set.intersection(*(set(curves[k][0].tolist()) for k in trained))) if trained else []
    if len(steps) <= N_TABLE_STEPS:
        return steps
    idx = np.unique(np.linspace(0, len(steps) - 1, N_TABLE_STEPS).round().astype(int))
    return [steps[i] for i in idx]


def write_page(p: Plan, cpu_s: dict[str, float]) -> Path:
    """Write ``{results_dir}/{name}.md`` and ``.png``; returns the page's path."""
    exp = p.exp
    curves = {m.key: load_method(p.exp_dir, m.key, p.seeds, p.steps, exp.column) for m in exp.methods}
    claims = judge_all(p, curves)
    verdict = overall([r.verdict for _, _, r in claims])
    png = plot(p, curves, p.results_dir / f"{exp.name}.png")
    rel_dir = Path(os.path.relpath(p.exp_dir.resolve(), p.results_dir.resolve()))
    costs = load_costs()
    need = estimate_time(exp, exp.seeds, exp.steps, costs, done_member_steps(exp, p.exp_dir))
    seeds_txt = f"{p.seeds[0]}-{p.seeds[-1]}" if p.seeds == list(range(p.seeds[0], p.seeds[-1] + 1)) else \
        ",".join(map(str, p.seeds))
    lines = [
        f"# {exp.figure}: `{exp.name}`", "",
        f"Thesis finding: {exp.finding}." + (f" ({exp.note})" if exp.note else ""), "",
        f"**Verdict: {verdict}** with {len(p.seeds)} seeds (thesis: {exp.seeds}) at {p.steps} env steps "
        f"(thesis: {exp.steps}), precision {p.precision}.", "",
        "<!-- doc-test: skip (the command that produced this page; hours of CPU) -->", "```bash",
        p.command or f"rlcert reproduce {exp.name} --seeds {seeds_txt} --steps {p.steps} --precision {p.precision}",
        "```", "",
        "## Methods", "",
        "| method | config (configs/) | overrides | trained by | seeds | steps | CPU time spent |",
        "|---|---|---|---|---|---|---|",
    ]
    for m in exp.methods:
        how = "fleet" if p.fleet[m.key] is None else p.fleet[m.key]
        lines.append(f"| {m.label} | `{m.config}` | {', '.join(f'`{s}`' for s in m.set) or '-'} | {how} | "
                     f"{seeds_txt} | {p.steps} | {format_hours(cpu_s.get(m.key, 0.0))} |")
    ev = p.configs[exp.methods[0].key]["eval"]
    lines += ["", f"Evaluation: {ev['episodes']} deterministic episodes every {ev['freq']} env steps, metric "
              f"`{ev['metric']}`; column `{exp.column}`. Runs: `{rel_dir}/<method>/seed<k>/eval.csv`. CPU time: "
              "process CPU time of the invocations that ended (a killed invocation's share is not counted). "
              "GPU time spent: none (the runs train on the CPU; the fleet's device is not a config setting yet).", "",
              "## Curves", "", f"![{exp.name}]({png.name})", "",
              f"## {exp.column} at fixed steps (mean ± std over seeds)", ""]
    trained = [m.key for m in exp.methods if not m.reference]
    ts = table_steps(curves, trained)
    lines += ["| method | " + " | ".join(str(t) for t in ts) + " |", "|---" * (len(ts) + 1) + "|"]
    for m in exp.methods:
        steps, values = curves[m.key]
        cells = []
        for t in ts:
            i = len(steps) - 1 if m.reference else list(steps).index(t)
            cells.append(f"{values[:, i].mean():.2f} ± {values[:, i].std():.2f}")
        lines.append(f"| {m.label} | " + " | ".join(cells) + " |")
    lines += ["", "## Verdict", ""]
    for label, at, r in claims:
        lines.append(f"* **{r.verdict}**: {label}, at {at} steps: {r.detail}.")
    lines += ["", "Rule (`rlcert/reproduce/verdict.py`):", "", *[f"> {s}" if s else ">" for s in
                                                                  RULE.strip().splitlines()], ""]
    lines += ["## Still needed", ""]
    if need.cpu_s == 0:
        lines.append("Nothing: the thesis' seeds and steps have been run.")
    else:
        lines.append(f"To the thesis' budget ({exp.seeds} seeds x {exp.steps} steps per method): about "
                     f"{format_hours(need.cpu_s)} CPU, GPU {format_hours(need.gpu_s)}"
                     + (" (rates of rlcert/reproduce/costs.yaml: estimates)" if need.estimate else "") + ".")
    path = p.results_dir / f"{exp.name}.md"
    runs.write_text_atomic(path, "\n".join(lines) + "\n")
    return path

"""The thesis experiments that ``rlcert reproduce`` runs: figure, methods (configs), seeds, steps, finding.

Settings live in ``configs/*.yaml`` (Tables G.1-G.4, one source of truth); a method here names its config and at
most the value that makes it this method (ReenGAGE's alpha). Seeds and steps are the thesis' budget
(``--seeds`` / ``--steps`` cut them, never the problem). Costs come from ``costs.yaml`` (member env-steps/s per
cost family, estimates until the fleet benchmark fills them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

# configs/ of the checkout this package lives in; an installed wheel has none: then ./configs (run from a checkout)
_CHECKOUT_CONFIGS = Path(__file__).resolve().parents[2] / "configs"
CONFIGS = _CHECKOUT_CONFIGS if _CHECKOUT_CONFIGS.is_dir() else Path("configs")
COSTS_FILE = Path(__file__).resolve().parent / "costs.yaml"


@dataclass(frozen=True)
class Method:
    """One curve: ``config`` (a file of configs/) plus ``set`` (``--set``-style overrides), or, when ``reference``
    names an env id of :data:`rlcert.envs.reference.REFERENCE_POLICIES`, that hand-written policy (evaluated only)."""

    key: str
    label: str
    config: str
    cost: str
    set: tuple[str, ...] = ()
    reference: bool = False


@dataclass(frozen=True)
class Comparison:
    """A claim at the final evaluated step (``kind`` 'beats' / 'similar') or over the whole curve ('beats_auc',
    the mean of every evaluation up to the last common step): method ``a`` against method ``b``.

    ``delta``: the smallest difference that counts (beats) or the largest allowed (similar), in the metric's units;
    ``floor``: for 'similar', both means must reach it (two failing methods are not "similar")."""

    a: str
    b: str
    kind: str = "beats"
    delta: float = 0.1
    floor: float = 0.5


@dataclass(frozen=True)
class Experiment:
    name: str
    figure: str
    finding: str
    methods: tuple[Method, ...]
    comparisons: tuple[Comparison, ...]
    seeds: int
    steps: int
    column: str = "success_rate"
    note: str = ""
    listed_only: str = ""  # non-empty: why this experiment is for tests/smoke checks, not a thesis finding

    def method(self, key: str) -> Method:
        return next(m for m in self.methods if m.key == key)


@dataclass
class Plan:
    """One invocation of an experiment, resolved and checked before anything is written (see run.plan)."""

    exp: Experiment
    seeds: list[int]
    steps: int
    precision: str
    exp_dir: Path
    results_dir: Path
    configs: dict[str, dict]
    fleet: dict[str, str | None]  # method -> None (fleet) or the reason it trains seed by seed
    command: str
    only: tuple[str, ...] = ()  # the methods this invocation trains (--methods); empty = every method


def _alphas(d: int, ddpg_cost: str, reengage_cost: str) -> tuple[Method, ...]:
    base = Method("ddpg_her", "DDPG+HER", f"continuous_seek_d{d}_ddpg_her.yaml", ddpg_cost)
    return (base, *(Method(f"reengage_a{a}", f"ReenGAGE alpha={a}", f"continuous_seek_d{d}_reengage.yaml",
                           reengage_cost, (f"algo_kwargs.alpha={a}",)) for a in (0.1, 0.2, 0.3)))


def _fig82(d: int, ddpg_cost: str, reengage_cost: str, kind: str, finding: str) -> Experiment:
    return Experiment(
        name=f"fig8.2-d{d}", figure=f"Fig. 8.2 (ContinuousSeek d = {d}; Tables G.1, G.2)", finding=finding,
        methods=_alphas(d, ddpg_cost, reengage_cost),
        comparisons=tuple(Comparison(f"reengage_a{a}", "ddpg_her", kind) for a in (0.1, 0.2, 0.3)),
        seeds=20, steps=200_000)


def _tableg3(d: int) -> Experiment:
    return Experiment(
        name=f"tableG.3-d{d}", figure=f"Table G.3 (ContinuousSeek d = {d}, SAC; best settings per agent)",
        finding="ReenGAGE-SAC ahead of SAC+HER (the spec records only the settings; tested as Fig. 8.2's claim)",
        methods=(Method("sac_her", "SAC+HER", f"continuous_seek_d{d}_sac_her.yaml", "continuous_seek_sac"),
                 Method("reengage_sac_a0.2", "ReenGAGE-SAC alpha=0.2", f"continuous_seek_d{d}_sac_reengage.yaml",
                        "continuous_seek_sac")),
        comparisons=(Comparison("reengage_sac_a0.2", "sac_her", "beats" if d > 5 else "similar"),),
        seeds=10, steps=200_000)


def _fig84(env: str, noisy: bool) -> Experiment:
    methods = (Method("ddpg", "DDPG (DeepSets)", f"{env}_ddpg.yaml", "goal_set_g4"),
               Method("multi_reengage", "Multi-ReenGAGE alpha=10", f"{env}_multi_reengage.yaml", "goal_set_g4"),
               Method("greedy", "greedy (nearest goal)", f"{env}_ddpg.yaml", "greedy_reference", reference=True))
    comps = (Comparison("multi_reengage", "ddpg", "beats", delta=1.0),)
    if noisy:
        comps += (Comparison("multi_reengage", "greedy", "beats", delta=1.0),
                  Comparison("ddpg", "greedy", "beats", delta=1.0))
    title = "NoisySeek" if noisy else "DriveSeek"
    return Experiment(
        name=f"fig8.4-{title.lower()}", figure=f"Fig. 8.4 ({title}, Table G.4 sizes)",
        finding="Multi-ReenGAGE substantially beats DDPG" + ("; the learned agents beat the greedy agent"
                                                              if noisy else ""),
        methods=methods, comparisons=comps, seeds=5, steps=160_000, column="mean_return",
        note="metric: goal hits per 40-step episode (mean return of 100 evaluation episodes)")


EXPERIMENTS: dict[str, Experiment] = {e.name: e for e in [
    _fig82(5, "continuous_seek_ddpg_b512", "continuous_seek_reengage_b512", "similar",
           "little difference between ReenGAGE and DDPG+HER at d = 5"),
    _fig82(10, "continuous_seek_ddpg_b256", "continuous_seek_reengage_b512", "beats",
           "ReenGAGE clearly beats DDPG+HER at d = 10"),
    _fig82(20, "continuous_seek_ddpg_b256", "continuous_seek_reengage_b128", "beats",
           "ReenGAGE clearly beats DDPG+HER at d = 20"),
    _tableg3(5), _tableg3(10), _tableg3(20),
    Experiment(
        name="figG.1-n40", figure="Fig. G.1 (Bit-Flipping n = 40, DQN; HER paper settings)",
        finding="the gradient-term-only soft target (ReenGAGE-DQN) beats DQN+HER",
        methods=(Method("dqn_her", "DQN+HER", "bit_flipping_n40_dqn_her.yaml", "bit_flipping_dqn"),
                 Method("reengage_dqn", "ReenGAGE-DQN alpha=1, tau=0.5", "bit_flipping_n40_reengage.yaml",
                        "bit_flipping_reengage_dqn")),
        comparisons=(Comparison("reengage_dqn", "dqn_her", "beats"),), seeds=5, steps=1_600_000,
        note="1.6M env steps = the HER paper's 50 epochs x 50 cycles x 16 episodes x 40 steps"),
    _fig84("drive_seek", noisy=False),
    _fig84("noisy_seek", noisy=True),
    Experiment(
        name="fig8.3-handreach", figure="Fig. 8.3 (HandReach-v3, gymnasium-robotics)",
        finding="ReenGAGE converges faster than DDPG+HER (success at the final step of an episode)",
        methods=(Method("ddpg_her", "DDPG+HER", "hand_reach_ddpg_her.yaml", "hand_reach_ddpg"),
                 Method("reengage", "ReenGAGE alpha=1e-5", "hand_reach_reengage.yaml", "hand_reach_reengage")),
        comparisons=(Comparison("reengage", "ddpg_her", "beats_auc"),), seeds=5, steps=4_750_000,
        note="not a fleet family (mujoco env): the seeds train one after another with rlcert train; "
             "4.75M steps = 50 thesis epochs of 95,000 env steps"),
    Experiment(
        name="smoke", figure="Smoke check (ContinuousSeek d = 2, 32-wide networks: seconds; not a thesis figure)",
        finding="ReenGAGE alpha=0.2 vs alpha=0 on a toy problem: no thesis claim",
        methods=(Method("alpha0", "ReenGAGE alpha=0 (DDPG+HER)", "sweeps/tiny_train.yaml", "tiny",
                        ("algo_kwargs.alpha=0.0",)),
                 Method("alpha0.2", "ReenGAGE alpha=0.2", "sweeps/tiny_train.yaml", "tiny")),
        comparisons=(Comparison("alpha0.2", "alpha0", "similar", delta=1.0, floor=0.0),), seeds=2, steps=300,
        listed_only="tests and smoke checks"),
]}


@dataclass
class Cost:
    cpu: float | None
    gpu: float | None
    estimate: bool
    source: str = ""


def load_costs(path: Path = COSTS_FILE) -> dict[str, Cost]:
    """Member env-steps/s per cost family (``costs.yaml``)."""
    raw = yaml.safe_load(Path(path).read_text())["families"]
    return {k: Cost(v.get("cpu"), v.get("gpu"), bool(v.get("estimate", True)), v.get("source", ""))
            for k, v in raw.items()}


def format_hours(seconds: float | None) -> str:
    if seconds is None:
        return "unmeasured"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


@dataclass
class Estimate:
    cpu_s: float | None
    gpu_s: float | None
    estimate: bool
    per_method: dict[str, float | None] = field(default_factory=dict)


def estimate_time(exp: Experiment, n_seeds: int, steps: int, costs: dict[str, Cost] | None = None,
                  done_steps: dict[str, int] | None = None) -> Estimate:
    """CPU / GPU seconds for ``n_seeds`` x ``steps`` per method, minus ``done_steps[method]`` (member-steps done),
    at the rates of ``costs.yaml``. GPU is None (unmeasured) unless every method's family has a GPU figure."""
    costs = load_costs() if costs is None else costs
    cpu, gpu, est, per = 0.0, 0.0, False, {}
    for m in exp.methods:
        c = costs[m.cost]
        todo = max(0, n_seeds * steps - (done_steps or {}).get(m.key, 0))
        per[m.key] = None if not c.cpu else todo / c.cpu
        cpu = None if cpu is None or not c.cpu else cpu + todo / c.cpu
        gpu = None if gpu is None or not c.gpu else gpu + todo / c.gpu
        est = est or c.estimate
    return Estimate(cpu, gpu, est, per)

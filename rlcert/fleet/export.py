"""Move one member between the fleet and an ordinary SB3 / rlcert agent (DDPG, TD3, ReenGAGEDDPG, ReenGAGETD3).

:func:`load_member` copies an agent's actor, critics and targets into member k; :func:`store_member` copies
member k into an agent; :func:`export_member` builds the agent for a gymnasium env and saves it as a ``.zip``
that ``<AgentClass>.load(path)`` reads back (its ``predict`` gives the member's deterministic actions).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rlcert.fleet.stacked import linears_of, load_linear_stack, store_linear_stack
from rlcert.fleet.td3 import FleetTD3


def _pairs(fleet: FleetTD3, k: int, model: Any) -> list[tuple[Any, int, list]]:
    C = fleet.cfg.n_critics
    if len(model.critic.q_networks) != C:
        raise ValueError(f"agent has {len(model.critic.q_networks)} critics, the fleet {C}")
    pairs = [(fleet.actor, k, linears_of(model.actor.mu)), (fleet.actor_target, k, linears_of(model.actor_target.mu))]
    for j in range(C):
        pairs.append((fleet.critic, k * C + j, linears_of(model.critic.q_networks[j])))
        pairs.append((fleet.critic_target, k * C + j, linears_of(model.critic_target.q_networks[j])))
    return pairs


def load_member(fleet: FleetTD3, k: int, model: Any) -> None:
    """Member k := the agent's actor, critics and their targets (parameters only; optimiser state untouched)."""
    for net, idx, lins in _pairs(fleet, k, model):
        load_linear_stack(net, idx, lins)


def store_member(fleet: FleetTD3, k: int, model: Any) -> None:
    """The agent's actor, critics and targets := member k's."""
    for net, idx, lins in _pairs(fleet, k, model):
        store_linear_stack(net, idx, lins)


def export_member(fleet: FleetTD3, k: int, algo_cls: type, env: Any, path: str | Path,
                  algo_kwargs: dict | None = None) -> Path:
    """Save member k as ``algo_cls`` (e.g. ``rlcert.agents.ReenGAGEDDPG``) for ``env`` to ``path`` (.zip).

    ``algo_kwargs`` are constructor kwargs (hyper-parameters to record); the replay buffer is not exported
    (buffer_size 1 unless given), so the file loads without ``env=``. Returns the written path.
    """
    kw = {"buffer_size": 1, "learning_starts": 0, **(algo_kwargs or {})}
    kw.pop("replay_buffer_class", None)
    kw.pop("replay_buffer_kwargs", None)
    kw.setdefault("policy_kwargs", {})
    kw["policy_kwargs"] = {**kw["policy_kwargs"], "net_arch": list(fleet.cfg.net_arch)}
    model = algo_cls("MultiInputPolicy", env, **kw)
    store_member(fleet, k, model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return path if path.suffix == ".zip" else path.with_suffix(path.suffix + ".zip")

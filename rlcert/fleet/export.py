"""Move one member between the fleet and an ordinary SB3 / rlcert agent (any family: DDPG, TD3, SAC, ReenGAGE*).

:func:`load_member` copies an agent's networks and targets into member k; :func:`store_member` copies member k
into an agent; :func:`export_member` builds the agent for a gymnasium env and saves it as a ``.zip`` that
``<AgentClass>.load(path)`` reads back (its ``predict`` gives the member's deterministic actions). The mapping
of networks is the family's :meth:`rlcert.fleet.family.FleetAlgorithm.member_pairs`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rlcert.fleet.family import FleetAlgorithm
from rlcert.fleet.stacked import load_linear_stack, store_linear_stack


def load_member(fleet: FleetAlgorithm, k: int, model: Any) -> None:
    """Member k := the agent's networks and their targets (parameters only; optimiser state untouched)."""
    for net, idx, lins in fleet.member_pairs(k, model):
        load_linear_stack(net, idx, lins)


def store_member(fleet: FleetAlgorithm, k: int, model: Any) -> None:
    """The agent's networks and targets := member k's."""
    for net, idx, lins in fleet.member_pairs(k, model):
        store_linear_stack(net, idx, lins)


def export_member(fleet: FleetAlgorithm, k: int, algo_cls: type, env: Any, path: str | Path,
                  algo_kwargs: dict | None = None, policy: Any = "MultiInputPolicy") -> Path:
    """Save member k as ``algo_cls`` (e.g. ``rlcert.agents.ReenGAGEDDPG``) for ``env`` to ``path`` (.zip).

    ``algo_kwargs`` are constructor kwargs (hyper-parameters to record); the replay buffer is not exported
    (buffer_size 1 unless given), so the file loads without ``env=``. ``policy``: the config's policy (a class for
    the goal-set agents' ``DeepSetsTD3Policy``, whose sizes come from ``algo_kwargs["policy_kwargs"]``; the
    MultiInputPolicy's ``net_arch`` is the fleet's). Returns the written path.
    """
    kw = {"buffer_size": 1, "learning_starts": 0, **(algo_kwargs or {})}
    kw.pop("replay_buffer_class", None)
    kw.pop("replay_buffer_kwargs", None)
    kw.setdefault("policy_kwargs", {})
    if policy == "MultiInputPolicy":
        kw["policy_kwargs"] = {**kw["policy_kwargs"], "net_arch": list(fleet.cfg.net_arch)}
    model = algo_cls(policy, env, **kw)
    store_member(fleet, k, model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return path if path.suffix == ".zip" else path.with_suffix(path.suffix + ".zip")

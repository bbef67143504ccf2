"""Certification sharded over Ray workers (``rlcert certify --ray``, ``rlcert certify-policy --ray``).

The per-input (per-episode) seeding makes the work embarrassingly parallel: input i's noise comes from
``derive_seed(seed, i)`` whatever process certifies it. The driver cuts the inputs into the **same groups** as
one process (``--inputs-per-call``), so every forward pass packs exactly the same samples, and hands them to
``--workers`` Ray actors; each actor (a worker class of the command: ``CertifyWorker`` in
``rlcert.certify.cli.certify``, ``EpisodeWorker`` in ``rlcert.certify.policy.cli``) builds the certifier, model
and data once from the parsed CLI arguments. This module is the generic engine and imports no rlcert module. The
driver writes the rows in the order of the groups (the file equals the single-process file row for row, up to
the ``time`` column); groups that finish early are held until their predecessors are written, and are flushed
(out of order) on Ctrl-C, so a finished input is never lost or recomputed. A worker that dies (killed, node lost)
has its group redone on a fresh actor (at most ``MAX_RETRIES`` times per group). Resuming works as without Ray:
the inputs already in ``--out`` are skipped.

Ray is an optional dependency (``pip install 'rlcert[sweep]'``) imported lazily; ``import rlcert.certify`` never
imports this module. Without ``--address`` a local Ray instance is started in-process (``ray.init(num_cpus=...)``)
and shut down at the end; an already initialised Ray (e.g. a test's) is reused and left running.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from rlcert import ray_connect

MAX_RETRIES = 3
RAY_HINT = "--ray needs Ray: pip install 'rlcert[sweep]' (or pip install 'ray==2.60.0')"


def import_ray() -> Any:
    """The ``ray`` module, or a one-line ValueError telling how to install it."""
    try:
        import ray
    except ImportError:
        raise ValueError(RAY_HINT) from None
    return ray


def worker_env() -> dict[str, str]:
    """Environment of the Ray workers: this checkout importable, one BLAS/OpenMP thread per worker."""
    root = str(Path(__file__).resolve().parents[2])
    return {"PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p),
            "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def init_ray(address: str | None = None, num_cpus: int | None = None) -> bool:
    """Start local Ray with ``num_cpus`` CPUs (``address`` None) or join the cluster at ``address`` (a refused
    connection, e.g. token authentication, is a one-line ValueError naming ``RAY_AUTH_MODE=token``); does nothing
    if Ray is already initialised. Returns True when this call started/joined it (the caller shuts it down)."""
    ray = import_ray()
    if ray.is_initialized():
        return False
    ray_connect.init_ray(address, num_cpus, worker_env())  # the one start/join rule, shared with rlcert sweep
    return True


def _num_workers(ray: Any, requested: int | None, tasks: int) -> int:
    n = requested or max(1, int(ray.cluster_resources().get("CPU", 1)))
    return max(1, min(n, tasks))


def run_sharded(actor_class: type, args: argparse.Namespace, tasks: Sequence[tuple], write: Callable[[Any], None],
                workers: int | None = None, address: str | None = None, log: IO[str] | None = None) -> int:
    """Run ``actor.run(*task)`` for every task on Ray actors of ``actor_class(args)``; ``write(result)`` is called
    in task order (held results are written out of order if interrupted). Returns the number of tasks redone after
    a worker died. Worker exceptions other than a lost worker propagate (a ValueError as itself)."""
    ray = import_ray()
    from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError, RayTaskError

    log = log or sys.stderr
    started = init_ray(address, workers)
    actors: list[Any] = []
    results: dict[int, Any] = {}
    written = 0
    try:
        n = _num_workers(ray, workers, len(tasks))
        remote_cls = ray.remote(num_cpus=1, max_restarts=0)(actor_class)
        actors = [remote_cls.remote(args) for _ in range(n)]
        try:  # every worker built (model, data) before any task: no worker races ahead while another starts up
            ray.get([a.__ray_ready__.remote() for a in actors])
        except RayTaskError as e:
            cause = e.as_instanceof_cause()
            if isinstance(cause, ValueError):
                raise ValueError(str(cause).strip().splitlines()[-1]) from None
            raise
        idle = list(actors)
        pending = deque(range(len(tasks)))
        inflight: dict[Any, tuple[int, Any]] = {}
        tries = [0] * len(tasks)
        redone = 0
        while pending or inflight:
            while pending and idle:
                a, t = idle.pop(), pending.popleft()
                inflight[a.run.remote(*tasks[t])] = (t, a)
            ready, _ = ray.wait(list(inflight), num_returns=1)
            for ref in ready:
                t, a = inflight.pop(ref)
                try:
                    results[t] = ray.get(ref)
                except (ActorDiedError, ActorUnavailableError, RayActorError) as e:
                    tries[t] += 1
                    if tries[t] > MAX_RETRIES:
                        raise RuntimeError(f"task {t} lost its worker {tries[t]} times; giving up") from e
                    print(f"ray: a worker died; redoing its {len(tasks[t][-1])} item(s) on a new worker",
                          file=log, flush=True)
                    redone += 1
                    actors.remove(a)
                    fresh = remote_cls.remote(args)
                    actors.append(fresh)
                    idle.append(fresh)
                    pending.appendleft(t)
                    continue
                except RayTaskError as e:
                    cause = e.as_instanceof_cause()
                    if isinstance(cause, ValueError):
                        raise ValueError(str(cause).strip().splitlines()[-1]) from None
                    raise
                idle.append(a)
                while written in results:
                    write(results.pop(written))
                    written += 1
        return redone
    finally:
        for t in sorted(results):  # interrupted: keep what finished, even out of order
            write(results.pop(t))
        for a in actors:
            ray.kill(a)
        if started:
            ray.shutdown()

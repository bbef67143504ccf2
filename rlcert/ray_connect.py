"""Start or join Ray (``rlcert sweep``, ``rlcert certify --ray``), a failed connection turned into one line that
names the setting to change. Ray is an optional extra: imported lazily.

Ray 2.60 turns token authentication on for a cluster started with ``ray start --head`` whenever a token exists
(``~/.ray/auth_token``, which any earlier local ``ray.init()`` creates). A driver then sends the token only when it
finds the cluster itself (``--address auto``) or when ``RAY_AUTH_MODE=token`` is set; with an explicit address and
no setting, ``ray.init`` waits about 20 s and raises a ``ConnectionError`` caused by an ``AuthenticationError``.
"""

from __future__ import annotations

import os
from typing import Any

AUTH_SETTING = "RAY_AUTH_MODE=token"


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    while exc is not None and exc not in out:
        out.append(exc)
        exc = exc.__cause__ or exc.__context__
    return out


def connection_error(address: str, exc: BaseException) -> str:
    """One line (no traceback) for a failed ``ray.init(address=...)``; names the authentication setting when any
    exception in the chain is Ray's ``AuthenticationError`` or speaks of an authentication token."""
    chain = _chain(exc)
    if any(type(e).__name__ == "AuthenticationError" or "auth" in str(e).lower() for e in chain):
        mode = os.environ.get("RAY_AUTH_MODE", "unset")
        return (f"--address {address}: the Ray cluster refused this driver's connection: it uses token "
                "authentication (Ray 2.60's `ray start --head` turns it on once a token exists) and RAY_AUTH_MODE is "
                f"{mode}; set {AUTH_SETTING} (the token is read from ~/.ray/auth_token, RAY_AUTH_TOKEN_PATH or "
                "RAY_AUTH_TOKEN, the same as the cluster's) or use --address auto on the head node; see docs/sweep.md")
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return (f"--address {address}: cannot connect to a Ray cluster there ({first}); is `ray start --head` running, "
            "and is the address host:port of its GCS (default port 6379)?")


def init_ray(address: str | None, num_cpus: int | None, env_vars: dict[str, str]) -> None:
    """Start a local Ray instance (``address`` None, ``num_cpus`` CPUs, default all) or join ``address``.
    Raises ``ValueError`` (one line, see :func:`connection_error`) when joining fails."""
    import ray

    common: dict[str, Any] = {"log_to_driver": False, "runtime_env": {"env_vars": env_vars},
                              "configure_logging": False}
    if address is None:
        ray.init(num_cpus=num_cpus or os.cpu_count(), include_dashboard=False, **common)
        return
    try:
        ray.init(address=address, **common)
    except (ConnectionError, RuntimeError, ray.exceptions.RayError) as exc:
        ray.shutdown()
        raise ValueError(connection_error(address, exc)) from None

"""Name -> certifier class, for the CLI's ``--method``. Certifier modules register themselves on import."""

from __future__ import annotations

from rlcert.certify.base import Certifier

METHODS: dict[str, type[Certifier]] = {}


def register(cls: type[Certifier]) -> type[Certifier]:
    """Class decorator: make ``cls`` available as ``--method cls.name``."""
    if cls.name in METHODS and METHODS[cls.name] is not cls:
        raise ValueError(f"certifier name {cls.name!r} is already registered by {METHODS[cls.name].__name__}")
    METHODS[cls.name] = cls
    return cls


def get(name: str) -> type[Certifier]:
    if name not in METHODS:
        raise ValueError(f"--method must be one of {sorted(METHODS)}, got {name!r}")
    return METHODS[name]

"""Name -> certifier class, for the CLI's ``--method``, and the one list of modules that define certifiers.

To add a method: write a module whose certifier class is decorated with ``@register`` and add its dotted path to
``METHOD_MODULES`` below (one line). ``import rlcert.certify`` imports every listed module (registering the
methods) and exports every registered class by its class name.
"""

from __future__ import annotations

import importlib

from rlcert.certify.core.certifier import Certifier

# One line per module that registers certifiers (``@register``); order = order in ``--method`` listings.
METHOD_MODULES: list[str] = [
    "rlcert.certify.randomized.gaussian",
    "rlcert.certify.randomized.laplace",
    "rlcert.certify.randomized.uniform",
    "rlcert.certify.randomized.ssn",
    "rlcert.certify.randomized.ablation",
    "rlcert.certify.randomized.wasserstein",
    "rlcert.certify.deterministic.dssn",
    "rlcert.certify.deterministic.variable_lambda",
    "rlcert.certify.deterministic.patch",
    "rlcert.certify.poisoning.dpa",
    "rlcert.certify.locally_biased.certifier",
    "rlcert.certify.adaptive.certifier",
]

METHODS: dict[str, type[Certifier]] = {}


def register(cls: type[Certifier]) -> type[Certifier]:
    """Class decorator: make ``cls`` available as ``--method cls.name``."""
    if cls.name in METHODS and METHODS[cls.name] is not cls:
        raise ValueError(f"certifier name {cls.name!r} is already registered by {METHODS[cls.name].__name__}")
    METHODS[cls.name] = cls
    return cls


def load_methods() -> dict[str, type[Certifier]]:
    """Import every module of ``METHOD_MODULES`` (idempotent); returns ``METHODS``."""
    for module in METHOD_MODULES:
        importlib.import_module(module)
    return METHODS


def get(name: str) -> type[Certifier]:
    """The certifier class registered as ``name``; ValueError listing the choices otherwise."""
    load_methods()
    if name not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}, got {name!r}")
    return METHODS[name]

"""Certified robustness: one API (``Certifier.certify(classifier, x) -> list[Certificate]``), many methods.

Layout (see docs/certify.md): ``core`` (statistics, sampling engine, vote certificate, classifier adaptor,
``Certifier`` base, registry, smoothing loop), ``randomized`` (noise objects and their certifiers),
``deterministic`` (DSSN, variable-Lambda, l0, column/block), ``poisoning`` (DPA, SS-DPA), ``models`` (the digits
model zoo, partition models), ``cli`` (``rlcert certify``, data loaders, TSV, plots).

Importing this package imports every module of ``core.registry.METHOD_MODULES`` (registering the CLI's
``--method`` choices) and exports each registered certifier class under its class name, e.g.
``rlcert.certify.GaussianCertifier``. It does not import gymnasium or stable-baselines3.
"""

from rlcert.certify.core.certificate import ABSTAIN, Certificate
from rlcert.certify.core.certifier import Certifier
from rlcert.certify.core.classifier import BaseClassifier
from rlcert.certify.core.registry import METHOD_MODULES, METHODS, get, load_methods, register
from rlcert.certify.core.smoothing import SmoothingCertifier

load_methods()
for _cls in METHODS.values():  # every registered certifier, exported by its class name
    globals()[_cls.__name__] = _cls

__all__ = ["ABSTAIN", "METHODS", "METHOD_MODULES", "BaseClassifier", "Certificate", "Certifier",
           "SmoothingCertifier", "get", "load_methods", "register",
           *sorted(_cls.__name__ for _cls in METHODS.values())]
del _cls

"""Certified robustness by randomized smoothing: one API (``Certifier`` -> ``Certificate``), many noises.

Importing this package registers every certifier for the CLI's ``--method``.
"""

from rlcert.certify import gaussian, laplace, ssn, uniform  # noqa: F401  (register the methods)
from rlcert.certify.base import Certifier
from rlcert.certify.classifier import BaseClassifier
from rlcert.certify.gaussian import GaussianCertifier
from rlcert.certify.laplace import LaplaceCertifier
from rlcert.certify.registry import METHODS, get, register
from rlcert.certify.result import ABSTAIN, Certificate
from rlcert.certify.smoothing import SmoothingCertifier
from rlcert.certify.ssn import SSNCertifier
from rlcert.certify.uniform import UniformCertifier

__all__ = ["ABSTAIN", "METHODS", "BaseClassifier", "Certificate", "Certifier", "GaussianCertifier",
           "LaplaceCertifier", "SSNCertifier", "SmoothingCertifier", "UniformCertifier", "get", "register"]

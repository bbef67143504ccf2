"""Certified robustness by randomized smoothing: one API (``Certifier`` -> ``Certificate``), many noises.

Importing this package registers every certifier for the CLI's ``--method``: randomized (gaussian, laplace,
uniform, ssn) and deterministic (dssn, variable-lambda, deterministic-l0, column, block, dpa, ssdpa).
"""

from rlcert.certify import dpa, dssn, gaussian, laplace, patch, ssn, uniform, variable_lambda  # noqa: F401
from rlcert.certify.adaptive import AdaptiveCertifier, AdaptivePipeline, ARSModel, GaussianQueries  # noqa: E402
from rlcert.certify.adaptive.certifier import ARSCertifier
from rlcert.certify.base import Certifier
from rlcert.certify.classifier import BaseClassifier
from rlcert.certify.gaussian import GaussianCertifier
from rlcert.certify.laplace import LaplaceCertifier
from rlcert.certify.locally_biased import LocallyBiasedSmoothing
from rlcert.certify.locally_biased.certifier import LocallyBiasedCertifier
from rlcert.certify.registry import METHODS, get, register
from rlcert.certify.result import ABSTAIN, Certificate
from rlcert.certify.smoothing import SmoothingCertifier
from rlcert.certify.ssn import SSNCertifier
from rlcert.certify.uniform import UniformCertifier

__all__ = ["ABSTAIN", "ARSCertifier", "ARSModel", "AdaptiveCertifier", "AdaptivePipeline", "BaseClassifier",
           "Certificate", "Certifier", "GaussianCertifier", "GaussianQueries", "LaplaceCertifier",
           "LocallyBiasedCertifier", "LocallyBiasedSmoothing", "METHODS", "SSNCertifier", "SmoothingCertifier",
           "UniformCertifier", "get", "register"]

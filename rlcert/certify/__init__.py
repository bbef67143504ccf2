"""Randomized-smoothing certifiers (see the certification issues).

Importing this package registers the deterministic certifiers (``--method dssn | variable-lambda |
deterministic-l0 | column | block | dpa | ssdpa``) with ``rlcert.certify.registry``.
"""

from rlcert.certify import dpa, dssn, patch, variable_lambda  # noqa: F401  (register the certifiers)

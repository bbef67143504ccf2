"""The observation layout, its mask and the masked noise of policy certificates.

They live in :mod:`rlcert.envs.observation_noise` (the lowest floor, beside smoothed training's
``ObservationNoiseWrapper`` that uses them); re-exported here for ``rlcert.certify.policy``.
"""

from rlcert.envs.observation_noise import NOISE_METHODS, MaskedNoise, ObservationLayout, make_certifier

__all__ = ["NOISE_METHODS", "MaskedNoise", "ObservationLayout", "make_certifier"]

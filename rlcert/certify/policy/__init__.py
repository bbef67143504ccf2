"""Certifying agents: randomized smoothing on a policy's observation inputs, per step and per episode.

Not imported by ``import rlcert.certify`` (it needs gymnasium / stable-baselines3); import it explicitly:

* ``PolicyFunction`` -- a saved SB3/rlcert agent as a batched base function of its flat observation, with the mask
  of perturbed entries (``observation``, ``desired_goal``, ``achieved_goal``; real goals only for goal sets);
* ``certify_discrete`` / ``certify_continuous`` -- per-step certificates (smoothed action + radius; certified
  bounds of the smoothed action), ``certified_set_radius`` with ``Ball`` / ``Cone``;
* ``rollout`` + ``certify_return_dkw`` / ``certify_return_cp`` -- policy smoothing episode certificates;
* ``ObservationNoiseWrapper`` -- smoothed training with the same noise object.
"""

from rlcert.certify.policy.adaptor import PolicyFunction, load_model
from rlcert.certify.policy.episodes import Episode, rollout
from rlcert.certify.policy.noise import MaskedNoise, ObservationLayout, make_certifier
from rlcert.certify.policy.returns import (
    certify_return_cp,
    certify_return_dkw,
    dkw_slack,
    integer_levels,
    phi_shift,
    total_budget,
)
from rlcert.certify.policy.steps import (
    ActionBounds,
    Ball,
    Cone,
    MaskedCertifier,
    certified_set_radius,
    certify_continuous,
    certify_discrete,
)
from rlcert.envs.observation_noise import ObservationNoiseWrapper

__all__ = [
    "ActionBounds", "Ball", "Cone", "Episode", "MaskedCertifier", "MaskedNoise", "ObservationLayout",
    "ObservationNoiseWrapper", "PolicyFunction", "certified_set_radius", "certify_continuous", "certify_discrete",
    "certify_return_cp", "certify_return_dkw", "dkw_slack", "integer_levels", "load_model", "make_certifier",
    "phi_shift", "rollout", "total_budget",
]

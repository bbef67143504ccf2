"""rlcert: goal-conditioned RL (ReenGAGE, Multi-ReenGAGE) and certified robustness (randomized smoothing).

Importing ``rlcert`` registers the environments ``rlcert/ContinuousSeek-v0``, ``rlcert/DriveSeek-v0``,
``rlcert/NoisySeek-v0`` and ``rlcert/BitFlipping-v0`` with gymnasium.
"""

from rlcert import envs  # noqa: F401  (registers the environments)

__version__ = "0.1.0"

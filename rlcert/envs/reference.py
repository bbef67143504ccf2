"""Hand-written reference policies for the rlcert environments (used by the demo and as sanity baselines)."""

from __future__ import annotations

import numpy as np

from rlcert.envs.drive_seek import greedy_drive_action
from rlcert.envs.noisy_seek import greedy_action


def straight_line_action(obs: dict[str, np.ndarray]) -> np.ndarray:
    """ContinuousSeek: move straight at the goal with l-inf steps of at most 1 (optimal: reaches it in
    ceil(max_i |g_i - s_i|) steps)."""
    return np.clip(obs["desired_goal"] - obs["achieved_goal"], -1.0, 1.0).astype(np.float32)


def first_differing_bit(obs: dict[str, np.ndarray]) -> int:
    """BitFlipping: flip the first bit that differs from the goal (optimal); bit 0 if none differs."""
    diff = np.flatnonzero(np.rint(obs["achieved_goal"]) != np.rint(obs["desired_goal"]))
    return int(diff[0]) if diff.size else 0


REFERENCE_POLICIES = {
    "rlcert/ContinuousSeek-v0": straight_line_action,
    "rlcert/DriveSeek-v0": greedy_drive_action,
    "rlcert/NoisySeek-v0": greedy_action,
    "rlcert/BitFlipping-v0": first_differing_bit,
}

"""Propositions 8.1/8.2 (thesis App. G.1): ReenGAGE identifies the rotation from O(d) transitions, TD needs O(d^2)."""

import numpy as np
import pytest
import torch as th

from rlcert.agents import theory


@pytest.mark.parametrize("kind", ["dense", "sparse"])
def test_closed_form_q_is_a_bellman_fixed_point(kind):
    """At the true U both residuals vanish (Q_U solves the Bellman equation and its goal-derivative);
    at a wrong rotation they do not."""
    rng = np.random.default_rng(0)
    d = 4
    U = theory.random_rotation(d, rng)
    batch = theory.sample_transitions(kind, U, 6, rng)
    for loss in ("td", "reengage"):
        assert th.allclose(theory.residuals(kind, loss, U, U, *batch), th.zeros(1, dtype=th.float64), atol=1e-10)
        wrong = theory.random_rotation(d, rng)
        assert theory.residuals(kind, loss, wrong, U, *batch).abs().max() > 1e-3


@pytest.mark.parametrize("kind", ["dense", "sparse"])
@pytest.mark.parametrize("d", [3, 4, 5])
def test_transitions_needed_grow_linearly_vs_quadratically(kind, d):
    # d(d-1)/2 degrees of freedom; a ReenGAGE transition gives d - i new equations, a TD transition 1.
    assert theory.transitions_needed(kind, "reengage", d) == d - 1
    assert theory.transitions_needed(kind, "td", d) == d * (d - 1) // 2

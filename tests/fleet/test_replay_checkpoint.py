"""EpisodeReplay checkpoints: a buffer sized for exactly the steps run takes its own final checkpoint (a resume with
the same or a smaller --steps exports without training), older checkpoints with an empty slot after the last
finished episode still load, and data that does not fit is refused."""

from __future__ import annotations

import pytest
import torch as th

from rlcert.fleet.replay import EpisodeReplay

T = 3


def filled(capacity_steps: int, episodes: int, extra_steps: int = 0) -> EpisodeReplay:
    rep = EpisodeReplay(2, capacity_steps, T, 2, 2, 2, n_sampled_goal=4)
    k = 0
    for ep in range(episodes + (1 if extra_steps else 0)):
        x = th.full((2, 2), float(k))
        rep.start_episode({"observation": x, "achieved_goal": x, "desired_goal": x})
        for t in range(T if ep < episodes else extra_steps):
            k += 1
            x = th.full((2, 2), float(k))
            rep.add(th.zeros(2, 2), th.full((2,), -1.0), {"observation": x, "achieved_goal": x}, t == T - 1)
    return rep


def same(a: EpisodeReplay, b: EpisodeReplay) -> bool:
    n = a.n_valid + (1 if 0 < a.t < T else 0)
    return (a.n_finished, a.t) == (b.n_finished, b.t) and all(
        th.equal(getattr(a, k)[:, :n], getattr(b, k)[:, :n]) for k in ("obs", "ag", "goal", "actions", "rewards"))


def test_a_finished_run_checkpoint_fits_a_buffer_of_exactly_its_steps():
    big = filled(30 * T, 2)  # trained with a larger --steps, checkpointed after 2 episodes
    exact = EpisodeReplay(2, 2 * T, T, 2, 2, 2)  # resumed with --steps = 2 episodes
    exact.load_state_dict(big.state_dict())
    assert same(big, exact)


def test_an_episode_in_progress_is_kept():
    big = filled(30 * T, 2, extra_steps=2)
    again = EpisodeReplay(2, 3 * T, T, 2, 2, 2)
    again.load_state_dict(big.state_dict())
    assert same(big, again) and again.t == 2
    with pytest.raises(ValueError, match="checkpoint holds 3 episodes, more than the buffer's 2"):
        EpisodeReplay(2, 2 * T, T, 2, 2, 2).load_state_dict(big.state_dict())


def test_older_checkpoints_with_an_empty_slot_after_the_last_episode_load():
    big = filled(30 * T, 2)
    state = big.state_dict()
    state = {**state, **{k: th.cat([v, th.zeros_like(v[:, :1])], 1) for k, v in state.items() if th.is_tensor(v)}}
    exact = EpisodeReplay(2, 2 * T, T, 2, 2, 2)
    exact.load_state_dict(state)
    assert same(big, exact)

"""Rendering: torus wrap-arounds drawn as wraps, readable titled frames with legends, env error messages."""

import gymnasium as gym
import numpy as np
import pytest

import rlcert  # noqa: F401
from rlcert.envs.render import FRAME_LEGENDS, Canvas, draw_goal_set_frame, frame_figure


def black_columns(image: np.ndarray) -> np.ndarray:
    return np.flatnonzero((image == 0).all(-1).any(0))


def test_wrap_is_drawn_through_both_edges_not_across_the_middle():
    canvas = Canvas(-10.5, 10.5, -10.5, 10.5, px_per_unit=10)
    # one step from x = 10.2 to x = -10.2 (= 10.8 on the torus): a 0.6 move across the x = +-10.5 edge
    canvas.polyline(np.array([[10.2, 0.0], [-10.2, 0.0]]), Canvas.BLACK, period=21.0)
    cols = black_columns(canvas.image)
    assert cols.min() == 0 and cols.max() == canvas.w - 1  # leaves through the right edge, enters on the left
    assert not ((cols > 10) & (cols < canvas.w - 11)).any()  # nothing drawn across the middle
    # the two pieces together are as long as the true move (0.6 world units = 6 px, + 2 px line width)
    assert 6 <= len(cols) <= 8
    # an ordinary step is unchanged
    plain = Canvas(-10.5, 10.5, -10.5, 10.5, px_per_unit=10)
    plain.polyline(np.array([[-1.0, 0.0], [1.0, 0.0]]), Canvas.BLACK, period=21.0)
    assert black_columns(plain.image).min() == 95 and black_columns(plain.image).max() == 116


def test_drive_seek_frame_draws_the_wrap():
    env = gym.make("rlcert/DriveSeek-v0", render_mode="rgb_array").unwrapped
    env.reset(seed=0)
    env._path = [np.array([9.8, 0.2]), np.array([-10.3, 0.2])]  # a wrap along x (true move +0.9)
    env._visited, env._reached = set(), set()
    cols = black_columns(draw_goal_set_frame(Canvas(-10.5, 10.5, -10.5, 10.5, 24), env._goals, set(), set(),
                                             np.array(env._path), period=21.0))
    frame_cols = black_columns(env.render())
    for c in (cols, frame_cols):
        assert c.min() <= 1 and c.max() >= 21 * 24 - 2 and not ((c > 40) & (c < 21 * 24 - 40)).any()


@pytest.mark.parametrize("env_id", ["rlcert/BitFlipping-v0", "rlcert/ContinuousSeek-v0", "rlcert/DriveSeek-v0",
                                    "rlcert/NoisySeek-v0"])
def test_frame_figure_has_title_legend_and_readable_size(env_id, tmp_path):
    import matplotlib.image
    import matplotlib.pyplot as plt

    env = gym.make(env_id, render_mode="rgb_array")
    env.reset(seed=0)
    env.step(env.action_space.sample())
    name = env_id.split("/")[1].split("-")[0]
    fig = frame_figure(env.render(), f"{name} frame", FRAME_LEGENDS[name])
    ax = fig.axes[0]
    assert ax.get_title() == f"{name} frame"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [e[0] for e in FRAME_LEGENDS[name]]
    fig.savefig(tmp_path / "f.png", dpi=110)
    plt.close(fig)
    h, w = matplotlib.image.imread(tmp_path / "f.png").shape[:2]
    assert w >= 800 and h >= 400  # BitFlipping's raw frame is 120 x 144 px


@pytest.mark.parametrize("env_id, kwargs, message", [
    ("rlcert/ContinuousSeek-v0", {"d": 0}, "d must be an integer >= 1, got 0"),
    ("rlcert/BitFlipping-v0", {"n_bits": 2.5}, "n_bits must be an integer >= 1, got 2.5"),
])
def test_env_errors_read_naturally(env_id, kwargs, message):
    with pytest.raises(ValueError) as err:
        gym.make(env_id, **kwargs)
    assert str(err.value) == message

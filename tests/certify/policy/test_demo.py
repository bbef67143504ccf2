"""The demo section trains four tiny agents and certifies them; it writes only under <out>/certify_policy/."""

from __future__ import annotations

import pytest


@pytest.mark.slow
def test_certify_policy_demo_quick(tmp_path):
    from rlcert.demo.certify_policy import run

    lines = run(tmp_path, quick=True)
    text = "\n".join(lines)
    for agent in ("ContinuousSeek", "Bit-Flipping"):
        assert f"| {agent}" in text
    assert text.count("| plain |") == 2 and text.count("| smoothed |") == 2
    assert {p.name for p in tmp_path.iterdir()} == {"certify_policy"}
    base = tmp_path / "certify_policy"
    assert (base / "certified_return_plain_vs_smoothed.png").stat().st_size > 10_000
    for name in ("continuous_seek_plain", "continuous_seek_smoothed"):
        assert (base / name / "action_bounds.png").exists() and (base / name / "certified_return.png").exists()
    for name in ("bit_flipping_plain", "bit_flipping_smoothed"):
        assert (base / name / "action_radii.png").exists() and (base / name / "certified_return.png").exists()

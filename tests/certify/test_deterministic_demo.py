"""Smoke test of the deterministic-certifier demo section (quick budgets)."""

import json

import pytest

from rlcert.demo.certify_deterministic import run


@pytest.mark.slow
def test_quick_demo(tmp_path):
    lines = run(tmp_path, quick=True)
    assert any(line.startswith("- DSSN") for line in lines)
    assert (tmp_path / "deterministic" / "certified_accuracy.png").stat().st_size > 10_000
    summary = json.loads((tmp_path / "deterministic" / "summary.json").read_text())
    assert len(summary) == 5
    for r in summary.values():
        assert 0.0 <= r["clean_accuracy"] <= 1.0

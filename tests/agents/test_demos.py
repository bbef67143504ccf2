"""The "Agents" and "Multi-ReenGAGE" demo sections run at --quick budgets and write only under their own folder."""

from __future__ import annotations

import pytest


@pytest.mark.slow
@pytest.mark.parametrize("module, folder, png", [("rlcert.demo.agents", "agents", "reengage_vs_ddpg.png"),
                                                 ("rlcert.demo.multi_goal", "multi_goal", "multi_reengage.png")])
def test_quick_demo_section(module, folder, png, tmp_path):
    import importlib

    lines = importlib.import_module(module).run(tmp_path, quick=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == [folder]  # writes only under its own folder
    assert (tmp_path / folder / png).stat().st_size > 10_000
    table = [ln for ln in lines if ln.startswith("| ") and ln[2].isdigit()]
    assert len(table) >= 3 and all(len(ln.split("|")) == 5 for ln in table)  # steps + two agents
    assert f"({folder}/{png})" in lines[-1]

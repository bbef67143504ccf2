"""The digits demo section of randomized ablation / Wasserstein smoothing, on two of its settings (quick budgets)."""

from __future__ import annotations

import json

import rlcert.demo.certify_ablation_wasserstein as demo


def test_quick_demo_writes_only_its_folder(tmp_path, monkeypatch):
    keep = ["randomized ablation k=16", "Wasserstein sigma=0.01"]
    monkeypatch.setattr(demo, "SETTINGS", {k: demo.SETTINGS[k] for k in keep})
    lines = demo.run(tmp_path, quick=True)
    folder = tmp_path / "ablation_wasserstein"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ablation_wasserstein"]
    assert (folder / "certified_accuracy.png").stat().st_size > 5000
    summary = json.loads((folder / "summary.json").read_text())["results"]
    assert list(summary) == keep
    assert summary["Wasserstein sigma=0.01"]["clean_accuracy"] > 0.5  # a flow-noise-trained CNN on digits
    for r in summary.values():
        assert r["images"] == 40 and len(r["radii"]) == 40
    assert any(line.startswith("- randomized ablation k=16") for line in lines)
    assert any("--method wasserstein --sigma 0.01" in line for line in lines)

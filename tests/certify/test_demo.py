from rlcert.certify.cli.tsv import load_tsv
from rlcert.demo.certify import run


def test_quick_demo_section(tmp_path):
    lines = run(tmp_path, quick=True)
    png = tmp_path / "certify" / "certify_l2.png"
    assert png.stat().st_size > 5000
    rows = load_tsv(tmp_path / "certify" / "gaussian_s0.25_n1000.tsv")
    assert len(rows["idx"]) == 40
    # a noise-trained CNN on digits certifies most test images at r = 0
    assert rows["correct"].mean() > 0.7
    assert any("certified acc" in line for line in lines)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["certify"]  # writes only under its own folder

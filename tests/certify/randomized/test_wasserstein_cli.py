"""``rlcert certify --method wasserstein``: the common TSV for both noise domains, and one-line errors before
anything is written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rlcert.certify.cli.certify import main
from rlcert.certify.cli.tsv import HEADER, load_tsv

MODEL = ["--model", "rlcert.demo.certify_ablation_wasserstein:digits_plain_cnn"]
pytestmark = pytest.mark.filterwarnings("ignore")  # untrained factory weights


@pytest.mark.parametrize("domain", ["flow", "pixel"])
def test_wasserstein_through_the_cli(tmp_path, domain):
    out = tmp_path / f"{domain}.tsv"
    argv = [*MODEL, "--data", "digits", "--method", "wasserstein", "--sigma", "0.01", "--noise-domain", domain,
            "--n0", "10", "--n", "100", "--alpha", "0.05", "--batch", "200", "--max", "3", "--out", str(out),
            "--no-progress"]
    assert main(argv) == 0
    assert out.read_text().splitlines()[0] == HEADER
    d = load_tsv(out)
    assert list(d["norm"]) == ["wasserstein-l2"] * 3 and np.all(d["radius"] >= 0)
    assert main([*argv[:-3], "--ground-metric", "l1", "--out", str(tmp_path / "l1.tsv"), "--no-progress"]) == 0
    assert list(load_tsv(tmp_path / "l1.tsv")["norm"]) == ["wasserstein-l1"] * 3


def test_wasserstein_cli_errors_before_writing(tmp_path, capsys):
    data = tmp_path / "d.npz"
    x = np.random.default_rng(0).uniform(0, 1, (3, 1, 8, 8)).astype(np.float32)
    x[1, 0, 0, 0] = -0.5  # negative intensity: not a mass distribution (every input is checked up front)
    np.savez(data, x=x, y=np.zeros(3, dtype=np.int64))
    # negative data: refused by the data loader ([0, 1] images) or, for general inputs, by the method
    for extra, messages in [([], ["--method wasserstein needs exactly one of --sigma"]),
                            (["--sigma", "-1"], ["sigma must be a finite number > 0"]),
                            (["--sigma", "0.1", "--data", str(data)], ["non-negative intensities", "[0, 1]"])]:
        out = tmp_path / "bad.tsv"
        code = main([*MODEL, "--data", "digits", "--method", "wasserstein", *extra, "--out", str(out),
                     "--no-progress"])
        err = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("warning:")]
        assert code == 2 and len(err) == 1 and any(m in err[0] for m in messages), err
        assert not Path(out).exists()

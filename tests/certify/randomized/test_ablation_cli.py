"""``rlcert certify --method ablation``: the common TSV, resume, and one-line errors before anything is written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rlcert.certify.cli.certify import main
from rlcert.certify.cli.tsv import HEADER, load_tsv

MODEL = ["--model", "rlcert.demo.certify_ablation_wasserstein:digits_null_cnn"]
pytestmark = pytest.mark.filterwarnings("ignore")  # untrained factory weights


def test_ablation_through_the_cli_and_resume(tmp_path):
    out = tmp_path / "abl.tsv"
    argv = [*MODEL, "--data", "digits", "--method", "ablation", "--k", "10", "--n0", "10", "--n", "100",
            "--alpha", "0.05", "--batch", "200", "--max", "3", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    lines = out.read_text().splitlines()
    assert lines[0] == HEADER and len(lines) == 4
    d = load_tsv(out)
    assert list(d["norm"]) == ["l0"] * 3
    assert np.all(d["radius"] == np.floor(d["radius"]))  # whole pixels
    assert main([*argv[:-5], "--max", "5", "--out", str(out), "--no-progress"]) == 0  # resumes: 2 more rows
    assert len(out.read_text().splitlines()) == 6


@pytest.mark.parametrize("extra,message", [([], "--k (pixels kept per sample) is required"),
                                           (["--k", "65"], "k (retained pixels) must be in [1, d=64]"),
                                           (["--k", "0"], "k (retained pixels) must be an integer >= 1")])
def test_ablation_cli_errors_before_writing(tmp_path, capsys, extra, message):
    out = tmp_path / "bad.tsv"
    code = main([*MODEL, "--data", "digits", "--method", "ablation", *extra, "--out", str(out), "--no-progress"])
    err = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("warning:")]
    assert code == 2 and len(err) == 1 and message in err[0]
    assert not Path(out).exists()

"""--method ars through the CLI: two TorchScript models, l-infinity radii from the TSV's p_lower."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import norm as normal
from torch import nn

from rlcert.certify.cli.certify import main

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit


class Base(nn.Module):
    def forward(self, x):
        v = x[:, 0, 0, 0] - 0.5
        return torch.stack([v, -v], dim=1)


class Mask(nn.Module):
    def forward(self, m1):
        return torch.zeros_like(m1)   # sigmoid -> w = 1/2 everywhere


@pytest.fixture()
def files(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (8, 1, 2, 2)).astype(np.float32)
    np.savez(tmp_path / "d.npz", x=x, y=(x[:, 0, 0, 0] <= 0.5).astype(np.int64))
    torch.jit.script(Base()).save(str(tmp_path / "base.pt"))
    torch.jit.script(Mask()).save(str(tmp_path / "mask.pt"))
    return tmp_path


def cli(tmp, out, *extra):
    return main(["--method", "ars", "--base-model", str(tmp / "base.pt"), "--mask-model", str(tmp / "mask.pt"),
                 "--data", str(tmp / "d.npz"), "--n0", "20", "--n", "400", "--batch", "100", "--out", str(out),
                 "--no-progress", *extra])


def test_cli_ars_radius_is_sigma_phi_inv_over_sqrt_d(files):
    out = files / "ars.tsv"
    assert cli(files, out, "--sigma", "0.2", "--sigma1", "0.4", "--num-classes", "2") == 0
    lines = Path(out).read_text().splitlines()[1:]
    assert len(lines) == 8
    certified = 0
    for line in lines:
        cols = line.split("\t")
        assert cols[7] == "linf"
        if int(cols[2]) >= 0:
            certified += 1
            expect = 0.2 * normal.ppf(float(cols[6])) / math.sqrt(4)
            assert float(cols[3]) == pytest.approx(expect, abs=2e-6)
    assert certified >= 4


@pytest.mark.parametrize("extra, match", [
    (["--sigma", "0.2", "--sigma1", "0.2", "--num-classes", "2"], "sigma1"),
    (["--sigma", "0.2", "--sigma1", "0.4"], "num-classes"),
    (["--sigma1", "0.4", "--num-classes", "2"], "sigma"),
])
def test_cli_ars_bad_input(files, capsys, extra, match):
    assert cli(files, files / "x.tsv", *extra) == 2
    assert match in capsys.readouterr().err
    assert not (files / "x.tsv").exists()

"""--method lbrs through the CLI and the Certifier interface."""

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from rlcert.certify import LocallyBiasedCertifier
from rlcert.certify.cli.certify import main
from rlcert.certify.locally_biased import LinearScore, LocallyBiasedSmoothing

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit


class Quadratic(nn.Module):
    """Logits (0, g) with g(x) = |x|^2 / 2 - 0.6: grad g = x is 1-Lipschitz in (l2, l2)."""

    def forward(self, x):
        g = 0.5 * x.flatten(1).pow(2).sum(1) - 0.6
        return torch.stack([torch.zeros_like(g), g], dim=1)


@pytest.fixture()
def files(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (10, 1, 2, 2)).astype(np.float32)
    g = 0.5 * (x.reshape(10, -1) ** 2).sum(1) - 0.6
    np.savez(tmp_path / "d.npz", x=x, y=(g > 0).astype(np.int64))
    xr = rng.uniform(0, 1, (6, 1, 2, 2)).astype(np.float32)
    np.savez(tmp_path / "ref.npz", x=xr, y=np.array([0, 1, 0, 1, 0, 1]))
    torch.jit.script(Quadratic()).save(str(tmp_path / "q.pt"))
    return tmp_path


def cli(tmp, out, *extra):
    return main(["--method", "lbrs", "--score-model", str(tmp / "q.pt"), "--data", str(tmp / "d.npz"),
                 "--reference", str(tmp / "ref.npz"), "--out", str(out), "--no-progress", *extra])


def test_cli_rows_match_the_python_api(files):
    out = files / "lbrs.tsv"
    assert cli(files, out, "--bias", "0.2", "--lipschitz", "1.0") == 0
    lines = Path(out).read_text().splitlines()[1:]
    assert len(lines) == 10
    x = np.load(files / "d.npz")["x"].reshape(10, -1).astype(np.float64)
    ref = np.load(files / "ref.npz")

    class Q:
        linear = False

        def value_and_grad(self, z):
            return 0.5 * (z ** 2).sum(1) - 0.6, z

    expect = LocallyBiasedSmoothing(Q(), ref["x"], 2 * ref["y"] - 1, 0.2, "l2", lipschitz=1.0).certify(x)
    for line, lab, r in zip(lines, expect.label, expect.radius):
        cols = line.split("\t")
        assert int(cols[2]) == int(lab > 0) and cols[7] == "l2" and cols[6] == "nan"
        assert float(cols[3]) == pytest.approx(r, abs=1e-6)
    assert any(float(line.split("\t")[3]) > 0 for line in lines)


def test_cli_refuses_nonlinear_without_lipschitz_and_bad_flags(files, capsys):
    assert cli(files, files / "a.tsv", "--bias", "0.2") == 2
    assert "lipschitz" in capsys.readouterr().err
    assert not (files / "a.tsv").exists()
    assert cli(files, files / "b.tsv", "--bias", "-1", "--lipschitz", "1") == 2
    assert "bias" in capsys.readouterr().err
    np.savez(files / "bad.npz", x=np.zeros((2, 4)), y=np.array([0, 3]))
    assert main(["--method", "lbrs", "--score-model", str(files / "q.pt"), "--data", str(files / "d.npz"),
                 "--reference", str(files / "bad.npz"), "--bias", "1", "--out", str(files / "c.tsv")]) == 2
    assert "y must hold labels" in capsys.readouterr().err


def test_certifier_interface_affine_model_uses_theorem_6():
    lin = nn.Sequential(nn.Flatten(), nn.Linear(2, 1))
    with torch.no_grad():
        lin[1].weight[:] = torch.tensor([[1.0, 1.0]])
        lin[1].bias[:] = -0.5
    cert = LocallyBiasedCertifier((np.array([[1.0, 1.0], [-1.0, -1.0]]), np.array([1, -1])), bias=0.1,
                                  threat_norm="linf")
    c = cert.certify(lin, torch.tensor([[0.5, 0.25]]))[0]
    assert c.prediction == 1 and c.norm == "linf" and c.radius == pytest.approx(0.225, abs=1e-7)
    same = LocallyBiasedSmoothing(LinearScore([1, 1], -0.5), [[1, 1], [-1, -1]], [1, -1], 0.1, "linf")
    assert c.radius == pytest.approx(same.certify([[0.5, 0.25]]).radius[0], abs=1e-7)

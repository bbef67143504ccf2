import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from rlcert.certify.cli.certify import main
from rlcert.certify.cli.tsv import HEADER, load_tsv
from rlcert.certify.models.digits import digits_cnn

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit


class Tiny(nn.Module):
    """Logits (x_00 - 0.5, 0.5 - x_00) on (B, 1, 2, 2) inputs: class 0 iff x_00 > 0.5."""

    def forward(self, x):
        v = x[:, 0, 0, 0] - 0.5
        return torch.stack([v, -v], dim=1)


@pytest.fixture()
def setup(tmp_path):
    model = tmp_path / "tiny.pt"
    torch.jit.script(Tiny()).save(str(model))
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (12, 1, 2, 2)).astype(np.float32)
    y = (x[:, 0, 0, 0] <= 0.5).astype(np.int64)
    data = tmp_path / "d.npz"
    np.savez(data, x=x, y=y)
    return tmp_path, model, data, x


def args(model, data, out, *extra, sampling=True):
    """CLI arguments; ``sampling=False`` leaves out the noise/sampling flags (deterministic methods refuse them)."""
    noise = ["--sigma", "0.3", "--n0", "20", "--n", "500"] if sampling else []
    return ["--model", str(model), "--data", str(data), *noise, "--batch", "64", "--out", str(out), "--no-progress",
            *extra]


def rows(path):
    lines = Path(path).read_text().splitlines()
    return lines[0], [line.split("\t") for line in lines[1:]]


def strip_time(r):
    return [c for j, c in enumerate(r) if j != 5]


def test_round_trip_and_resume(setup):
    tmp, model, data, x = setup
    full = tmp / "full.tsv"
    assert main(args(model, data, full)) == 0
    header, full_rows = rows(full)
    assert header == HEADER and [int(r[0]) for r in full_rows] == list(range(12))
    for r in full_rows:
        dist = abs(x[int(r[0]), 0, 0, 0] - 0.5)  # l2 distance to the decision boundary
        if int(r[2]) >= 0:
            assert float(r[3]) <= dist + 1e-6 and r[4] == str(int(r[1] == r[2])) and r[7] == "l2"
    # a killed run: 4 complete rows and a partial one; rerun resumes and matches the uninterrupted run
    part = tmp / "part.tsv"
    assert main(args(model, data, part, "--max", "5")) == 0
    text = part.read_text().splitlines(keepends=True)
    part.write_text("".join(text[:5]) + text[5][:7])
    assert main(args(model, data, part)) == 0
    _, part_rows = rows(part)
    assert [int(r[0]) for r in part_rows] == list(range(12))  # no duplicates, no gaps
    assert [strip_time(r) for r in part_rows] == [strip_time(r) for r in full_rows]
    # rerun of a finished file certifies nothing new
    assert main(args(model, data, part)) == 0
    assert rows(part)[1] == part_rows
    # different settings on resume are refused
    assert main(args(model, data, part, "--seed", "3")) == 2


def test_skip_max_methods_and_plot(setup, capsys):
    tmp, model, data, _ = setup
    for method, extra in [("laplace", ["--sigma", "0.3"]), ("uniform", ["--lambda", "0.4"]),
                          ("ssn", ["--sigma", "0.3"]), ("gaussian", ["--sigma", "0.3", "--two-bound"])]:
        out = tmp / f"{method}.tsv"
        assert main(args(model, data, out, "--method", method, "--skip", "3", "--max", "3", "--n0", "20", "--n",
                         "500", *extra, sampling=False)) == 0
        cols = load_tsv(out)
        assert list(cols["idx"]) == [0, 3, 6]
        assert set(cols["norm"]) == {"l2" if method == "gaussian" else "l1"}
    png = tmp / "curve.png"
    assert main(args(model, data, tmp / "g.tsv", "--plot", str(png))) == 0
    assert png.stat().st_size > 1000
    from rlcert.certify.cli.plot import main as plot_main
    capsys.readouterr()
    assert plot_main([str(tmp / "g.tsv"), str(tmp / "laplace.tsv"), "--labels", "g,lap", "--out",
                      str(tmp / "two.png")]) == 0
    assert (tmp / "two.png").exists()
    out = capsys.readouterr().out
    assert "g: 12 points, l2 radii" in out and "lap: 3 points, l1 radii" in out  # one panel per norm
    assert plot_main([str(tmp / "g.tsv"), "--labels", "a,b", "--out", str(tmp / "x.png")]) == 2


def test_factory_with_weights_and_digits(tmp_path):
    w = tmp_path / "w.pt"
    torch.save(digits_cnn().state_dict(), w)
    out = tmp_path / "digits.tsv"
    from rlcert.cli import main as rlcert_main
    assert rlcert_main(["certify", "--model", "rlcert.certify.models:digits_cnn", "--weights", str(w),
                        "--data", "digits", "--sigma", "0.25", "--n0", "10", "--n", "100", "--max", "4",
                        "--out", str(out), "--no-progress"]) == 0
    cols = load_tsv(out)
    assert len(cols["idx"]) == 4 and np.all((cols["label"] >= 0) & (cols["label"] < 10))


@pytest.mark.parametrize("extra,match", [
    (["--sigma", "0"], "sigma"), (["--sigma", "-1"], "sigma"), (["--sigma", "nan"], "sigma"),
    (["--alpha", "1.5"], "alpha"), (["--alpha", "0"], "alpha"), (["--n", "0"], "n must"),
    (["--skip", "0"], "--skip"), (["--method", "nope"], "--method"),
    (["--lambda", "-2", "--method", "uniform"], "lambd"),
])
def test_bad_arguments_write_nothing(setup, capsys, extra, match):
    tmp, model, data, _ = setup
    out = tmp / "bad.tsv"
    assert main(args(model, data, out, *extra)) == 2
    assert match in capsys.readouterr().err
    assert not out.exists() and not (tmp / "bad.tsv.json").exists()


def test_bad_data_and_model(setup, capsys):
    tmp, model, _, _ = setup
    out = tmp / "bad.tsv"
    bad = tmp / "bad.npz"
    np.savez(bad, x=np.zeros((3,), np.float32), y=np.zeros(3, np.int64))
    assert main(args(model, bad, out)) == 2 and "(N, ...)" in capsys.readouterr().err
    nan = np.zeros((3, 1, 2, 2), np.float32)
    nan[1, 0, 0, 0] = np.nan
    np.savez(bad, x=nan, y=np.zeros(3, np.int64))
    assert main(args(model, bad, out)) == 2 and "NaN" in capsys.readouterr().err
    np.savez(bad, x=np.zeros((3, 1, 2, 2), np.float32) + 2, y=np.zeros(3, np.int64))
    assert main(args(model, bad, out, "--method", "ssn")) == 2  # only methods that need [0, 1] refuse it
    assert "does not suit --method ssn: this noise needs inputs in [0, 1]" in capsys.readouterr().err
    np.savez(bad, x=np.zeros((3, 1, 5, 5), np.float32), y=np.zeros(2, np.int64))
    assert main(args(model, bad, out)) == 2 and "y must" in capsys.readouterr().err
    np.savez(bad, x=np.zeros((3, 1, 2, 2), np.float32), y=np.zeros(3, np.int64))
    assert main(args("rlcert.certify.models:digits_cnn", bad, out)) == 2  # the 8x8 CNN on 2x2 inputs
    assert "--model failed on --data inputs of shape (1, 2, 2)" in capsys.readouterr().err
    assert main(args("rlcert.certify.models:digits_cnn", bad.with_name("none.npz"), out)) == 2
    assert "not found" in capsys.readouterr().err
    assert main(args("no.such.module:f", "digits", out)) == 2 and "--model" in capsys.readouterr().err
    assert not out.exists()


def test_python_m_entry_point(setup):
    tmp, model, data, _ = setup
    out = tmp / "m.tsv"
    r = subprocess.run([sys.executable, "-m", "rlcert.certify", *args(model, data, out, "--max", "2")],
                       capture_output=True, text=True, env={"PYTHONPATH": str(Path(__file__).parents[2]),
                                                            "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    assert len(load_tsv(out)["idx"]) == 2


def test_plugin_certifier_flags_are_honoured(setup):
    """A deterministic certifier registered elsewhere gets its own flags (even re-declaring --sigma)."""
    from rlcert.certify import Certificate, Certifier, register
    from rlcert.certify.core.registry import METHODS

    @register
    class Constant(Certifier):
        name, norm = "test-constant", "l0"

        def __init__(self, radius: float) -> None:
            self.r = radius

        def certify(self, classifier, x):
            pred = classifier.predict(x).tolist()
            return [Certificate(prediction=p, radius=self.r, norm=self.norm) for p in pred]

        @classmethod
        def add_arguments(cls, parser):
            parser.add_argument("--radius", type=float, required=True)
            parser.add_argument("--sigma", type=float, default=None, help="re-declared on purpose")

        @classmethod
        def from_arguments(cls, args):
            return cls(args.radius)

    try:
        tmp, model, data, x = setup
        out = tmp / "plugin.tsv"
        assert main(args(model, data, out, "--method", "test-constant", "--radius", "2.5", sampling=False)) == 0
        cols = load_tsv(out)
        assert np.all(cols["radius"] == 2.5) and set(cols["norm"]) == {"l0"}
        assert np.all(np.isnan(cols["p_lower"]))
        assert list(cols["predict"]) == [int(v <= 0.5) for v in x[:, 0, 0, 0]]
    finally:
        METHODS.pop("test-constant", None)


def test_resume_accepts_settings_recorded_before_layout_v2(setup):
    """An <out>.json written by the old CLI (sigma, n0, ... as top-level keys) still resumes with the same settings
    and is still refused with different ones."""
    import json

    tmp, model, data, _ = setup
    out = tmp / "old.tsv"
    assert main(args(model, data, out, "--max", "3")) == 0
    meta = out.with_name(out.name + ".json")
    old = {"method": "gaussian", "sigma": "0.3", "n0": "20", "n": "500", "alpha": "0.001", "seed": "0",
           "model": str(model), "weights": None, "data": str(data), "method_args": {"cp_mode": "one_sided",
                                                                                  "two_bound": "False"}}
    meta.write_text(json.dumps(old))
    assert main(args(model, data, out)) == 0 and len(load_tsv(out)["idx"]) == 12
    meta.write_text(json.dumps({**old, "sigma": "0.5"}))
    assert main(args(model, data, out)) == 2


def _written(tmp):
    return sorted(p.name for p in tmp.rglob("*") if p.suffix in (".tsv", ".json", ".png"))


def test_out_naming_a_directory_is_one_line_before_anything_is_written(setup, capsys):
    tmp, model, data, _ = setup
    (tmp / "outdir").mkdir()
    before = _written(tmp)
    assert main(args(model, data, tmp / "outdir")) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "is a directory" in err and err.count("\n") == 1 and "Traceback" not in err
    assert main(args(model, data, tmp / "ok.tsv", "--plot", str(tmp / "outdir"))) == 2
    err = capsys.readouterr().err
    assert "--plot" in err and "is a directory" in err and err.count("\n") == 1
    assert main(args(model, data, tmp / "d.npz" / "o.tsv")) == 2  # a file where a folder should be
    err = capsys.readouterr().err
    assert "is a file, not a directory" in err and err.count("\n") == 1
    assert _written(tmp) == before


def test_weights_of_another_model_are_one_line_naming_file_and_model(setup, capsys):
    tmp, _, data, _ = setup
    other = tmp / "wide.pt"
    torch.save(digits_cnn(width=32).state_dict(), other)  # the same factory, another width: 8 tensors differ
    out = tmp / "w.tsv"
    argv = ["--model", "rlcert.certify.models:digits_cnn", "--weights", str(other), "--data", "digits", "--n0", "10",
            "--n", "100", "--sigma", "0.25", "--max", "1", "--out", str(out), "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(other) in err and "rlcert.certify.models:digits_cnn" in err, err
    assert "size mismatch" not in err and "another shape" in err
    not_a_state = tmp / "junk.pt"
    not_a_state.write_bytes(b"not a torch file")
    assert main([*argv[:3], str(not_a_state), *argv[4:]]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(not_a_state) in err and "state dict" in err
    assert not out.exists() and not out.with_name("w.tsv.json").exists()


@pytest.mark.parametrize("content", ["garbage", "truncated", "pickled"])
def test_corrupt_npz_is_one_line_with_the_path(setup, capsys, content):
    tmp, model, data, _ = setup
    bad = tmp / "corrupt.npz"
    if content == "garbage":
        bad.write_bytes(b"garbage" * 10)
    elif content == "truncated":
        raw = data.read_bytes()
        bad.write_bytes(raw[: len(raw) // 2])
    else:
        np.savez(bad, x=np.array([{"a": 1}] * 3, dtype=object), y=np.zeros(3, np.int64))
    out = tmp / "c.tsv"
    assert main(args(model, bad, out)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(bad) in err and "--data" in err, err
    assert "unsafely" not in err and "allow_pickle" not in err
    assert not out.exists()


def test_n_too_small_to_certify_is_refused_and_n_below_n0_is_not(setup, capsys):
    """CERTIFY needs p_lower > 1/2, and the largest p_lower n samples can give is cp_lower(n, n, alpha) = alpha^(1/n):
    with alpha = 0.001 that is > 1/2 only from n = 10 on, whatever n0 is. n < n0 itself is a valid budget (n0 only
    selects the class; Cohen et al. use independent n0 and n), so it is accepted and certifies."""
    tmp, model, data, x = setup
    out = tmp / "n.tsv"
    base = ["--model", str(model), "--data", str(data), "--sigma", "0.3", "--batch", "64", "--out", str(out),
            "--no-progress", "--max", "3"]
    assert main([*base, "--n0", "100", "--n", "9", "--alpha", "0.001"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "n must be >= 10" in err and not out.exists()
    # two_sided Clopper-Pearson halves alpha: one more sample is needed
    assert main([*base, "--n0", "5", "--n", "10", "--alpha", "0.001", "--cp-mode", "two_sided"]) == 2
    assert "n must be >= 11" in capsys.readouterr().err and not out.exists()
    assert main([*base, "--n0", "100", "--n", "50", "--alpha", "0.001"]) == 0
    _, written = rows(out)
    assert len(written) == 3 and any(int(r[2]) != -1 for r in written)  # n = 50 < n0 = 100 certifies


def test_a_torchscript_model_of_another_input_shape_is_one_line(tmp_path, capsys):
    model = tmp_path / "m.pt"
    torch.jit.script(nn.Sequential(nn.Flatten(), nn.Linear(5, 2))).save(str(model))
    data = tmp_path / "d.npz"
    np.savez(data, x=np.zeros((3, 4), np.float32), y=np.zeros(3, np.int64))
    assert main(args(model, data, tmp_path / "o.tsv")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "it expects (B, ..., 5)" in err and "mat1 and mat2" in err, err
    assert not (tmp_path / "o.tsv").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_device_cuda_without_cuda_is_one_line(setup, capsys):
    tmp, model, data, _ = setup
    assert main(args(model, data, tmp / "g.tsv", "--device", "cuda")) == 2
    err = capsys.readouterr().err
    assert err == "rlcert certify: error: --device cuda: CUDA is not available on this machine (use the cpu)\n"
    assert not (tmp / "g.tsv").exists()

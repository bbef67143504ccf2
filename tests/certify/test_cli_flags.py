"""CLI v2: per-method help, one meaning per flag, refused old spellings, Ctrl-C, --inputs-per-call, help examples
that run as written, radii rounded down."""

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from rlcert.certify import METHODS
from rlcert.certify.cli import certify as cli
from rlcert.certify.cli.plot import build_parser as plot_parser
from rlcert.certify.cli.tsv import format_radius, load_tsv
from tests.test_docs import bin_dir_with_python, doc_environment

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit


def method_flags(method):
    parser = cli.build_parser(method)
    group = next(g for g in parser._action_groups if g.title == f"--method {method}")
    return {opt: a for a in group._group_actions for opt in a.option_strings}


def help_text(method, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--method", method, "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    shared = text[text.index("\noptions:"):text.index(f"\n--method {method}:")]
    assert "--sigma" not in shared and "--n0" not in shared  # the shared part holds no method's flags
    return text[text.index(f"\n--method {method}:"):]  # the method's own group


def test_per_method_help_lists_only_that_methods_flags(capsys):
    block = help_text("block", capsys)
    assert "--block-size" in block and "--theta" in block
    for other in ("--band-width", "--orientation", "--sigma", "--n0", "--alpha", "--lambda", "--q", "--scale",
                  "--partitions-dir", "--lambda-alpha"):
        assert other not in block, other
    gauss = help_text("gaussian", capsys)
    assert all(f in gauss for f in ("--sigma", "--n0", "--n ", "--alpha", "--two-bound", "--cp-mode"))
    for other in ("--lambda", "--scale", "--q ", "--theta", "--partitions-dir", "--block-size", "--l0-alpha"):
        assert other not in gauss, other
    lap = help_text("laplace", capsys)
    assert "--scale" in lap and "--bound" in lap and "--lambda" not in lap
    assert "--two-bound" in help_text("ssn", capsys)  # listed only where the noise has a two-bound certificate
    assert "--l0-alpha" not in help_text("variable-lambda", capsys)
    assert "--lambda-alpha" not in help_text("deterministic-l0", capsys)


# the meaning each shared flag name has, in every method that has it (a word its help must contain)
FLAG_MEANINGS = {"--sigma": "standard deviation", "--lambda": "half-width", "--q": "quantisation",
                 "--offset-seed": "offsets", "--n0": "selection", "--n": "estimation", "--alpha": "failure",
                 "--seed": "seed", "--theta": "threshold", "--stride": "stride", "--retain": "kept",
                 "--partitions-dir": "partition", "--cp-mode": "clopper", "--two-bound": "separately"}


def test_one_meaning_per_flag_name_across_methods():
    seen: dict[str, list[str]] = {}
    for method in METHODS:
        for flag, action in method_flags(method).items():
            assert action.help, f"--method {method}: {flag} has no help line"
            seen.setdefault(flag, []).append(method)
            if flag in FLAG_MEANINGS:
                assert FLAG_MEANINGS[flag] in action.help.lower(), (method, flag, action.help)
    shared = {f for f, ms in seen.items() if len(ms) > 1}
    assert shared <= set(FLAG_MEANINGS), f"flags shared by several methods need a stated meaning: {shared}"
    assert set(seen["--lambda"]) == {"uniform", "ssn", "dssn"}  # the half-width everywhere; Laplace: --scale


def test_every_option_has_a_help_line():
    for parser in [cli.build_parser(m) for m in METHODS] + [plot_parser()]:
        for action in parser._actions:
            assert action.help, f"{parser.prog}: {action.option_strings or action.dest} has no help line"


def test_old_spelling_is_refused_with_a_hint(tmp_path, capsys):
    out = tmp_path / "l.tsv"
    assert cli.main(["--method", "laplace", "--lambda", "0.3", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--scale" in err and "--lambda" in err and err.count("\n") == 1
    assert not out.exists()


class Slow(nn.Module):
    """A 2-class model on (B, 4) rows; a few matrix products per call so that certification takes a while."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(4, 256, generator=torch.Generator().manual_seed(0)))

    def forward(self, x):
        h = torch.tanh(x @ self.w)
        for _ in range(8):
            h = torch.tanh(h @ self.w.T @ self.w / 256)
        s = h.sum(1)
        return torch.stack([s, -s], 1)


def _rows(path):
    return [line for line in Path(path).read_text().splitlines()[1:] if line]


def test_ctrl_c_ends_with_one_line_and_keeps_rows(tmp_path):
    model, data, out = tmp_path / "slow.pt", tmp_path / "rows.npz", tmp_path / "rows.tsv"
    torch.jit.script(Slow()).save(str(model))
    rng = np.random.default_rng(0)
    np.savez(data, x=rng.normal(size=(400, 4)).astype(np.float32), y=np.zeros(400, np.int64))
    argv = [sys.executable, "-m", "rlcert.certify", "--model", str(model), "--data", str(data), "--method",
            "gaussian", "--sigma", "0.5", "--n0", "10", "--n", "3000", "--batch", "500", "--inputs-per-call", "1",
            "--device", "cpu", "--threads", "1", "--no-progress", "--out", str(out)]
    env = {**doc_environment(bin_dir_with_python(tmp_path)), "OMP_NUM_THREADS": "1"}
    # SIGINT back to its default in the child: a test run started in the background inherits SIG_IGN, and Python
    # then installs no KeyboardInterrupt handler
    proc = subprocess.Popen(argv, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while time.time() < deadline and (not out.exists() or len(_rows(out)) < 2):
        time.sleep(0.2)
    assert out.exists() and len(_rows(out)) >= 2, proc.communicate(timeout=60)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1
    m = re.fullmatch(r"rlcert certify: interrupted; (\d+) rows kept; rerun to resume", lines[0])
    assert m and int(m.group(1)) == len(_rows(out)) < 400
    # rerun resumes after the kept rows
    kept = int(m.group(1))
    r = subprocess.run(argv[:-2] + ["--max", str(kept + 1), "--out", str(out)], cwd=tmp_path, capture_output=True,
                       text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert [int(x.split("\t")[0]) for x in _rows(out)] == list(range(kept + 1))


@pytest.mark.parametrize("method,flags,expected", [
    ("gaussian", ["--sigma", "0.3", "--n0", "10", "--n", "50", "--batch", "100"], 10),  # ceil(100/10)=10 <= 1000/60
    ("gaussian", ["--sigma", "0.3", "--n0", "10", "--n", "500", "--batch", "100"], 1),  # 10*100 // 510 = 1
    ("gaussian", ["--sigma", "0.3", "--n0", "10", "--n", "50", "--batch", "100", "--inputs-per-call", "3"], 3),
    ("dssn", ["--lambda", "0.5", "--q", "4", "--batch", "100"], 100),  # no n0/n: min(batch, 256)
])
def test_inputs_per_call_default_does_what_its_help_says(tmp_path, monkeypatch, method, flags, expected):
    calls = []
    cls = METHODS[method]
    original = cls.certify

    def spy(self, classifier, x, *a, **k):
        calls.append(len(x))
        return original(self, classifier, x, *a, **k)

    monkeypatch.setattr(cls, "certify", spy)
    data = tmp_path / "d.npz"
    x = np.random.default_rng(0).integers(0, 5, (250, 1, 2, 2)).astype(np.float32) / 4
    np.savez(data, x=x, y=np.zeros(250, np.int64))
    model = tmp_path / "m.pt"
    torch.jit.script(nn.Sequential(nn.Flatten(), nn.Linear(4, 2))).save(str(model))
    assert cli.main(["--model", str(model), "--data", str(data), "--method", method, *flags, "--max", "120",
                     "--no-progress", "--out", str(tmp_path / "o.tsv")]) == 0
    assert calls[0] == min(expected, 120) and sum(calls) == 120


def _help_examples(text):
    """Commands in a help text: indented lines starting with python/rlcert, with backslash continuations."""
    cmds, cur = [], None
    for line in text.splitlines():
        s = line.strip()
        if cur is not None:
            cur += " " + s.rstrip("\\").strip()
            if not s.endswith("\\"):
                cmds.append(cur)
                cur = None
        elif line.startswith("    ") and s.split(" ")[0] in ("python", "rlcert"):
            if s.endswith("\\"):
                cur = s.rstrip("\\").strip()
            else:
                cmds.append(s)
    return cmds


@pytest.mark.slow
def test_every_help_example_runs_as_written(tmp_path):
    """The examples printed by `rlcert certify --help` and `rlcert plot-certified --help`, run verbatim (from a
    scratch folder with the repo's scripts/ linked in, so their runs/ outputs land there)."""
    env = doc_environment(bin_dir_with_python(tmp_path))
    (tmp_path / "scripts").symlink_to(ROOT / "scripts")
    examples = []
    for module in ("rlcert.certify.cli.certify", "rlcert.certify.cli.plot"):
        out = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, env=env,
                             cwd=tmp_path, timeout=120)
        assert out.returncode == 0, out.stderr
        examples += _help_examples(out.stdout)
    assert len(examples) == 3, examples
    for cmd in examples:
        r = subprocess.run(["bash", "-ec", cmd], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
        assert r.returncode == 0, f"{cmd}\n{r.stdout}\n{r.stderr}"
    assert len(load_tsv(tmp_path / "runs" / "certify" / "gaussian.tsv")["idx"]) == 20
    assert (tmp_path / "runs" / "certify" / "curve.png").stat().st_size > 5000


def test_radii_are_written_rounded_down(tmp_path):
    """DSSN at q = 255 with N = 3 outcomes certifies 1/255 for a constant model: the TSV must not say 0.003922."""
    data, model, out = tmp_path / "g.npz", tmp_path / "c.pt", tmp_path / "d.tsv"
    np.savez(data, x=np.full((2, 1, 2, 2), 51 / 255, np.float32), y=np.zeros(2, np.int64))

    class Const(nn.Module):
        def forward(self, x):
            return torch.stack([torch.ones(x.shape[0]), torch.zeros(x.shape[0])], 1)

    torch.jit.script(Const()).save(str(model))
    assert cli.main(["--model", str(model), "--data", str(data), "--method", "dssn", "--lambda", str(1.5 / 255),
                     "--q", "255", "--no-progress", "--out", str(out)]) == 0
    radius = [line.split("\t")[3] for line in _rows(out)]
    assert radius == ["0.003921", "0.003921"]
    assert float(radius[0]) <= 1 / 255 < float(radius[0]) + 1e-6
    assert f"{1 / 255:.6f}" == "0.003922"  # what nearest rounding would have written (above the certificate)
    for r in np.random.default_rng(0).uniform(0, 3, 2000):
        assert float(format_radius(r)) <= r < float(format_radius(r)) + 1.0000001e-6

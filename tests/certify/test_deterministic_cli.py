"""The deterministic certifiers through ``python -m rlcert.certify`` (tiny budgets, held-out digits).

Each method's TSV must hold the shared schema, the same predictions and radii as the certifier's Python API on the
same inputs, and resume without recertifying finished rows. The CLI feeds models ``certifier.base_input`` (2-channel
models never see raw images) and takes DPA's ensemble from ``--partitions-dir`` (no ``--model``).
"""

from pathlib import Path

import numpy as np
import pytest
import torch

from rlcert.certify import models as digit_models
from rlcert.certify.cli.certify import main
from rlcert.certify.cli.tsv import HEADER, load_tsv
from rlcert.certify.core.classifier import BaseClassifier
from rlcert.certify.deterministic.dssn import DSSN
from rlcert.certify.deterministic.lambda_design import milp_design, power_ecm
from rlcert.certify.deterministic.patch import BlockSmoothing, ColumnSmoothing
from rlcert.certify.deterministic.variable_lambda import DeterministicL0, VariableLambda
from rlcert.certify.io import DIGITS_TEST_SIZE, load_digits_split
from rlcert.certify.poisoning.dpa import DPA, SSDPA, PartitionEnsemble, train_partitions

N_INPUTS = 6

# method -> (CLI flags, model factory, the same certifier built through the Python API)
CASES = {
    "dssn": (["--lambda", "0.5", "--q", "16"], "digits_dssn_cnn", lambda: DSSN(0.5, q=16)),
    "variable-lambda": (["--p", "0.5", "--design", "milp", "--q", "16", "--budget", "20", "--lambda-alpha", "2"],
                        "digits_bounds_cnn",
                        lambda: VariableLambda(milp_design(power_ecm(0.5), 16, 20), p=0.5, alpha=2.0)),
    "deterministic-l0": (["--l0-alpha", "4", "--q", "16"], "digits_bounds_cnn",
                         lambda: DeterministicL0(4, q=16, unit="pixel")),
    "column": (["--band-width", "2", "--theta", "0.3"], "digits_null_cnn", lambda: ColumnSmoothing(2, theta=0.3)),
    "block": (["--block-size", "3"], "digits_null_cnn", lambda: BlockSmoothing(3)),
}


def test_digits_split_is_disjoint_and_complete():
    """The split used by the CLI (--data digits) and by every demo/training script: train and test images form a
    partition of all 1797 digits (as a multiset, so duplicates in the data would also be caught)."""
    x_all, y_all = load_digits_split("all")
    x_tr, y_tr = load_digits_split("train")
    x_te, y_te = load_digits_split("test")
    assert len(x_te) == DIGITS_TEST_SIZE and len(x_tr) + len(x_te) == len(x_all)

    def rows(x, y):
        return sorted(map(tuple, np.concatenate([x.reshape(len(x), -1), y[:, None]], 1).tolist()))

    assert rows(np.concatenate([x_tr, x_te]), np.concatenate([y_tr, y_te])) == rows(x_all, y_all)
    # no test image (with its label) is also a training image, unless the raw data holds it twice
    counts: dict[tuple, int] = {}
    for r in rows(x_all, y_all):
        counts[r] = counts.get(r, 0) + 1
    train = set(rows(x_tr, y_tr))
    assert all(counts[r] > 1 for r in rows(x_te, y_te) if r in train)
    assert set(np.unique(y_te)) == set(range(10))


def _run(argv, out, n):
    return main([*argv, "--data", "digits", "--max", str(n), "--out", str(out), "--no-progress"])


def _check_round_trip(argv, out, certifier, classifier, capsys):
    """TSV schema, equality with the Python API on the same inputs, and resume."""
    assert _run(argv, out, 3) == 0
    assert _run(argv, out, N_INPUTS) == 0  # resumes: 3 done, 3 new
    assert "certified 3 inputs (3 already done)" in capsys.readouterr().out
    lines = Path(out).read_text().splitlines()
    assert lines[0] == HEADER == "idx\tlabel\tpredict\tradius\tcorrect\ttime\tp_lower\tnorm"
    cols = load_tsv(out)
    assert list(cols["idx"]) == list(range(N_INPUTS))
    x, y = load_digits_split("test")
    certs = certifier.certify(classifier, torch.as_tensor(x[:N_INPUTS]))
    assert list(cols["label"]) == list(y[:N_INPUTS])
    assert list(cols["predict"]) == [c.prediction for c in certs]
    np.testing.assert_allclose(cols["radius"], [c.radius for c in certs], atol=1e-6)
    assert list(cols["correct"]) == [int(c.prediction == t) for c, t in zip(certs, y[:N_INPUTS])]
    assert set(cols["norm"]) == {certifier.norm} and np.all(np.isnan(cols["p_lower"]))
    assert _run(argv, out, N_INPUTS) == 0 and len(load_tsv(out)["idx"]) == N_INPUTS  # nothing new
    assert "certified 0 inputs (6 already done)" in capsys.readouterr().out


@pytest.mark.parametrize("method", sorted(CASES))
def test_cli_round_trip(tmp_path, capsys, method):
    flags, factory, make = CASES[method]
    torch.manual_seed(0)
    model = getattr(digit_models, factory)().eval()
    weights = tmp_path / "w.pt"
    torch.save(model.state_dict(), weights)
    argv = ["--model", f"rlcert.certify.models:{factory}", "--weights", str(weights),
            "--method", method, *flags]
    _check_round_trip(argv, tmp_path / f"{method}.tsv", make(), BaseClassifier(model, 10), capsys)


@pytest.mark.parametrize("mode,cls", [("dpa", DPA), ("ssdpa", SSDPA)])
def test_cli_round_trip_partition_ensemble(tmp_path, capsys, mode, cls):
    x, y = load_digits_split("train")
    folder = tmp_path / mode
    train_partitions(x, y, 5, folder, mode=mode, epochs=20, hidden=8, progress=False)
    argv = ["--method", mode, "--partitions-dir", str(folder)]
    ens = PartitionEnsemble.load(folder)
    _check_round_trip(argv, tmp_path / f"{mode}.tsv", cls(), ens, capsys)
    # the ensemble is the method's own classifier: --model is refused, not silently ignored
    assert main([*argv, "--model", "rlcert.certify.models:digits_cnn", "--out", str(tmp_path / "x.tsv")]) == 2
    assert "brings its own base classifier" in capsys.readouterr().err
    assert not (tmp_path / "x.tsv").exists()


def test_cli_needs_a_classifier_and_feeds_base_input(tmp_path, capsys):
    out = tmp_path / "o.tsv"
    assert main(["--method", "dpa", "--out", str(out)]) == 2  # neither --model nor --partitions-dir
    assert "--partitions-dir" in capsys.readouterr().err
    assert main(["--method", "column", "--band-width", "2", "--out", str(out)]) == 2
    assert "--model is required for --method column" in capsys.readouterr().err
    # a 1-channel model under column smoothing: the probe uses the (x, 1-x) encoding and names it
    assert main(["--model", "rlcert.certify.models:digits_dssn_cnn", "--method", "column",
                 "--band-width", "2", "--out", str(out)]) == 2
    assert "fed as (2, 8, 8) by --method column" in capsys.readouterr().err
    # a 2-channel model under DSSN (which feeds raw images) fails the same way
    assert main(["--model", "rlcert.certify.models:digits_null_cnn", "--method", "dssn", "--lambda", "1",
                 "--q", "16", "--out", str(out)]) == 2
    assert "fed as (1, 8, 8) by --method dssn" in capsys.readouterr().err
    # off-grid data for a quantised method is reported against --data
    assert main(["--model", "rlcert.certify.models:digits_bounds_cnn", "--method", "variable-lambda",
                 "--design", "milp", "--q", "7", "--budget", "10", "--out", str(out)]) == 2
    assert "do not suit --method variable-lambda" in capsys.readouterr().err
    assert not out.exists()


def test_train_partitions_sharded_equals_unsharded(tmp_path):
    """``scripts/train_dpa.py --start/--stop`` shards: the same files as one run, bit for bit; finished files are
    kept on rerun (resume)."""
    x, y = load_digits_split("train")
    whole, shards = tmp_path / "whole", tmp_path / "shards"
    train_partitions(x, y, 4, whole, epochs=5, hidden=4, progress=False)
    train_partitions(x, y, 4, shards, start=2, stop=4, epochs=5, hidden=4, progress=False)
    assert len(list(shards.glob("partition_*.pt"))) == 2
    train_partitions(x, y, 4, shards, start=0, stop=2, epochs=5, hidden=4, progress=False)
    mtime = (shards / "partition_00003.pt").stat().st_mtime_ns
    train_partitions(x, y, 4, shards, epochs=5, hidden=4, progress=False)  # all done: nothing retrained
    assert (shards / "partition_00003.pt").stat().st_mtime_ns == mtime
    a, b = PartitionEnsemble.load(whole), PartitionEnsemble.load(shards)
    for ma, mb in zip(a.members, b.members):
        for pa, pb in zip(ma.net.state_dict().values(), mb.net.state_dict().values()):
            assert torch.equal(pa, pb)
    xt = torch.as_tensor(load_digits_split("test")[0][:50])
    assert np.array_equal(a.predict_all(xt), b.predict_all(xt))
    with pytest.raises(ValueError, match="mode"):
        train_partitions(x, y, 4, tmp_path / "bad", mode="nope")

"""--precision bf16: the certified base classifier is the bf16 model, the noise stays fp32, the record and resume
know the precision."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

from rlcert.certify import BaseClassifier, GaussianCertifier, LaplaceCertifier, UniformCertifier
from rlcert.certify.core.precision import PrecisionModule, check_precision
from rlcert.certify.models.digits import digits_cnn


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return digits_cnn().eval()


def hand_bf16(model: torch.nn.Module) -> BaseClassifier:
    """An independent bf16 base classifier: a bf16 copy of the weights fed the fp32 noisy input rounded to bf16,
    run through the default (fp32) path."""
    mb = copy.deepcopy(model).to(torch.bfloat16)
    return BaseClassifier(lambda z: mb(z.to(torch.bfloat16)).float(), 10)


@pytest.mark.parametrize("cls", [GaussianCertifier, LaplaceCertifier, UniformCertifier])
def test_bf16_counts_equal_a_hand_written_bf16_classifier(model, cls):
    from rlcert.certify.cli.data import load_digits_split

    x = torch.as_tensor(load_digits_split("test")[0][:6])
    cert = cls(sigma=0.5, n0=10, n=400, batch=256)
    bf16 = cert.sample(BaseClassifier(model, 10, precision="bf16"), x, 400, seeds=range(6))
    hand = cert.sample(hand_bf16(model), x, 400, seeds=range(6))
    np.testing.assert_array_equal(bf16, hand)
    with torch.inference_mode():  # not vacuous: the bf16 model is a different function from the fp32 one
        assert not torch.equal(BaseClassifier(model, 10, precision="bf16").logits(x), model(x))
    certs = cert.certify(BaseClassifier(model, 10, precision="bf16"), x, seeds=range(6))
    assert [c.prediction for c in certs] == [c.prediction for c in cert.certify(hand_bf16(model), x, seeds=range(6))]


def test_noise_reaches_the_model_in_fp32(model):
    seen = []

    def f(z: torch.Tensor) -> torch.Tensor:
        seen.append((z.dtype, torch.is_autocast_enabled("cpu")))
        return model(z)

    x = torch.rand(2, 1, 8, 8)
    GaussianCertifier(sigma=0.5, n0=5, n=50, batch=32).certify(BaseClassifier(f, 10, precision="bf16"), x)
    assert seen and all(s == (torch.float32, True) for s in seen)


def test_channels_last_and_precision_module(model):
    x = torch.rand(16, 1, 8, 8)
    with torch.inference_mode():
        ref = hand_bf16(model).logits(x)
        m = PrecisionModule(copy.deepcopy(model), "bf16", channels_last=True)
        out = m(x)
        assert out.dtype == torch.float32 and torch.allclose(out, ref, atol=0.02)
        assert m.module[0].weight.is_contiguous(memory_format=torch.channels_last)
        assert torch.equal(PrecisionModule(model, "fp32")(x), model(x))


def test_bad_precision_is_one_line():
    with pytest.raises(ValueError, match="precision must be one of"):
        check_precision("fp16")
    with pytest.raises(ValueError, match="precision"):
        BaseClassifier(torch.nn.Linear(2, 2), 2, precision="half")


def test_policy_function_bf16_equals_hand_cast():
    import gymnasium as gym

    from rlcert.certify.policy import PolicyFunction

    env = gym.make("rlcert/ContinuousSeek-v0", d=2)
    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Linear(2, 64), torch.nn.ReLU(), torch.nn.Linear(64, 2))
    netb = copy.deepcopy(net).to(torch.bfloat16)
    pf = PolicyFunction(lambda o: torch.tanh(net(o["desired_goal"])), env.observation_space, env.action_space,
                        precision="bf16")
    flat = torch.rand(32, pf.layout.dim)
    goal = pf.layout.unflatten(flat)["desired_goal"]
    with torch.no_grad():
        out = pf(flat)
        assert out.dtype == torch.float32
        assert torch.equal(out, torch.tanh(netb(goal.to(torch.bfloat16))).float())


def _cli(tmp_path, *extra):
    from rlcert.certify.cli.certify import main

    w = tmp_path / "w.pt"
    if not w.exists():
        torch.manual_seed(0)
        torch.save(digits_cnn().state_dict(), w)
    return main(["--model", "rlcert.certify.models:digits_cnn", "--weights", str(w), "--sigma", "0.25", "--n0",
                 "10", "--n", "100", "--batch", "100", "--no-progress", "--out", str(tmp_path / "o.tsv"), *extra])


def test_cli_records_precision_and_refuses_a_change_on_resume(tmp_path, capsys):
    assert _cli(tmp_path, "--max", "3", "--precision", "bf16", "--channels-last") == 0
    meta = json.loads((tmp_path / "o.tsv.json").read_text())
    assert meta["precision"] == "bf16" and meta["channels_last"] == "True"
    assert _cli(tmp_path, "--max", "5", "--precision", "fp32", "--channels-last") == 2
    assert "precision" in capsys.readouterr().err
    assert _cli(tmp_path, "--max", "5", "--precision", "bf16", "--channels-last") == 0
    assert len((tmp_path / "o.tsv").read_text().splitlines()) == 6
    # a record written before --precision existed was fp32: it resumes in fp32 only
    meta = {k: v for k, v in meta.items() if k not in ("precision", "channels_last")}
    (tmp_path / "o.tsv.json").write_text(json.dumps(meta))
    assert _cli(tmp_path, "--max", "6", "--precision", "bf16", "--channels-last") == 2
    assert _cli(tmp_path, "--max", "6") == 0


def test_cli_refuses_bf16_for_deterministic_methods(tmp_path, capsys):
    from rlcert.certify.cli.certify import main

    out = tmp_path / "d.tsv"
    assert main(["--method", "dssn", "--model", "rlcert.certify.models:digits_dssn_cnn", "--lambda", "0.5",
                 "--precision", "bf16", "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--precision" in err[0] and not out.exists()


def test_import_rlcert_certify_imports_neither_ray_nor_the_sharding_module():
    import subprocess
    import sys

    code = ("import sys, rlcert.certify, rlcert.certify.cli.certify; "
            "print(sorted(m for m in sys.modules if m == 'ray' or m.endswith('certify.distributed')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_certify_policy_records_precision_and_refuses_a_change(tmp_path, capsys):
    from rlcert.certify.policy.cli import main
    from tests.certify.policy.test_episodes_cli import _saved_model

    model = _saved_model(tmp_path, "seek")
    out = tmp_path / "p.tsv"
    args = ["--model", str(model), "--sigma", "0.2", "--episodes", "4", "--steps", "1", "--n", "100",
            "--num-envs", "2", "--out", str(out), "--no-progress"]
    assert main(args + ["--precision", "bf16"]) == 0
    assert json.loads(out.with_name("p.tsv.json").read_text())["settings"]["precision"] == "bf16"
    assert main(args) == 2
    assert "precision" in capsys.readouterr().err


def test_ars_nets_run_in_bf16_and_hand_fp32_to_the_queries(tmp_path):
    from rlcert.certify.adaptive.ars import ARSModel
    from rlcert.certify.cli.certify import build_parser
    from rlcert.certify.core.registry import get

    torch.manual_seed(0)
    mask_net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 64), torch.nn.Unflatten(1, (1, 8, 8)))
    torch.jit.script(mask_net).save(str(tmp_path / "mask.pt"))
    torch.jit.script(digits_cnn().eval()).save(str(tmp_path / "base.pt"))
    args = build_parser("ars").parse_args(["--method", "ars", "--base-model", str(tmp_path / "base.pt"),
                                           "--mask-model", str(tmp_path / "mask.pt"), "--sigma", "0.25",
                                           "--sigma1", "0.5", "--num-classes", "10", "--out", "o.tsv",
                                           "--precision", "bf16"])
    cert = get("ars").from_arguments(args)
    assert isinstance(cert.base_model, PrecisionModule) and cert.base_model.precision == "bf16"
    model = cert.base_classifier()
    assert isinstance(model, ARSModel)
    m1 = torch.rand(5, 1, 8, 8)
    with torch.no_grad():
        w = model.mask(m1)
        assert w.dtype == torch.float32  # the query's weights and noise scale stay fp32
        hand = torch.sigmoid(copy.deepcopy(mask_net).to(torch.bfloat16)(m1.to(torch.bfloat16)).float())
        assert torch.equal(w, hand)
    certs = cert.certify(model, torch.rand(2, 1, 8, 8), seeds=[0, 1])
    assert len(certs) == 2 and all(c.norm == "linf" for c in certs)

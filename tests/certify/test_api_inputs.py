"""The Python API takes what a user has: tensors of any real dtype and numpy arrays are cast to the model's dtype
(certificates equal the float32 ones), an unavailable device is refused at construction, and shape errors and
argument errors are one line in the API's words (parameter names, no CLI flags)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from rlcert.certify import (
    DPA,
    DSSN,
    BaseClassifier,
    BlockSmoothing,
    ColumnSmoothing,
    DeterministicL0,
    GaussianCertifier,
    LaplaceCertifier,
    LocallyBiasedCertifier,
    RandomizedAblationCertifier,
    SSNCertifier,
    UniformCertifier,
    WassersteinCertifier,
)
from rlcert.certify.poisoning.dpa import PartitionEnsemble

SAMPLING = dict(n0=20, n=200, alpha=0.05, batch=100)


def _x() -> torch.Tensor:
    """(3, 1, 4, 4) images with entries in {0, 1}: exact in float16/32/64 and on every 1/q grid."""
    return (torch.rand(3, 1, 4, 4, generator=torch.Generator().manual_seed(0)) > 0.5).float()


def _model_for(example: torch.Tensor, k: int = 3, dtype: torch.dtype = torch.float32) -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Flatten(), nn.Linear(example[0].numel(), k)).to(dtype)


CERTIFIERS = [
    lambda: GaussianCertifier(0.5, **SAMPLING),
    lambda: LaplaceCertifier(sigma=0.5, **SAMPLING),
    lambda: UniformCertifier(sigma=0.5, **SAMPLING),
    lambda: SSNCertifier(sigma=0.5, **SAMPLING),
    lambda: WassersteinCertifier(0.05, **SAMPLING),
    lambda: RandomizedAblationCertifier(5, **SAMPLING),
    lambda: DSSN(0.5, q=4),
    lambda: DeterministicL0(4, q=4, unit="feature"),
    lambda: ColumnSmoothing(2),
    lambda: BlockSmoothing(2),
]


@pytest.mark.parametrize("make", CERTIFIERS, ids=lambda m: type(m()).__name__)
def test_float_dtypes_and_numpy_give_the_float32_certificates(make):
    """The issue: float64 / float16 tensors and numpy arrays failed inside torch ("mat1 and mat2 must have the same
    dtype"). They are cast to the model's dtype, so the certificates are those of the float32 tensor."""
    cert = make()
    x = _x()
    clf = BaseClassifier(_model_for(cert.base_input(x)), 3)
    want = [(c.prediction, c.radius) for c in cert.certify(clf, x)]
    for other in (x.double(), x.half(), x.numpy().astype(np.float64), x.numpy(), x.to(torch.uint8)):
        got = [(c.prediction, c.radius) for c in make().certify(clf, other)]
        assert got == want, (type(other), getattr(other, "dtype", None))


def test_a_float64_model_gets_float64_inputs():
    cert = GaussianCertifier(0.5, **SAMPLING)
    model = _model_for(_x(), dtype=torch.float64)
    clf = BaseClassifier(model, 3)
    assert clf.dtype == torch.float64
    a = cert.certify(clf, _x())
    b = cert.certify(clf, _x().numpy())
    assert [(c.prediction, c.radius) for c in a] == [(c.prediction, c.radius) for c in b]
    assert clf.predict(_x().half()).dtype == torch.int64


def test_lbrs_and_dpa_take_numpy_and_other_dtypes():
    ref_x, ref_y = np.array([[0.0, 1.0], [1.0, 0.0]]), np.array([1, -1])
    lin = nn.Linear(2, 1).double()  # a float64 score model
    cert = LocallyBiasedCertifier((ref_x, ref_y), bias=0.1, model=lin)
    x = np.array([[0.2, 0.7], [0.9, 0.1]], dtype=np.float32)
    want = [(c.prediction, c.radius) for c in cert.certify(lin, torch.as_tensor(x, dtype=torch.float64))]
    assert [(c.prediction, c.radius) for c in cert.certify(lin, x)] == want
    members = [BaseClassifier(_model_for(_x()), 3) for _ in range(3)]
    ens = PartitionEnsemble(members, 3)
    a = DPA(ens).certify(ens, _x())
    b = DPA(ens).certify(ens, _x().double().numpy())
    assert [(c.prediction, c.radius) for c in a] == [(c.prediction, c.radius) for c in b]


def test_unavailable_device_is_refused_at_construction():
    model = nn.Linear(4, 2)
    bad = "cuda:99" if torch.cuda.is_available() else "cuda"
    with pytest.raises(ValueError, match="device") as e:
        BaseClassifier(model, 2, device=bad)
    assert "\n" not in str(e.value) and "--" not in str(e.value)
    with pytest.raises(ValueError, match="device must be"):
        BaseClassifier(model, 2, device="warp-drive")
    assert BaseClassifier(model, 2, device="cpu").device == torch.device("cpu")


def test_shape_errors_are_one_line_naming_the_expected_shape():
    clf = BaseClassifier(nn.Linear(4, 2), 2)
    with pytest.raises(ValueError, match=r"inputs of shape \(3, 5\); it expects \(B, 4\)") as e:
        clf.predict(torch.zeros(3, 5))
    assert "\n" not in str(e.value)
    conv = BaseClassifier(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.LazyLinear(2)), 2)
    with pytest.raises(ValueError, match=r"it expects \(B, 3, S, S\)"):
        conv.predict(torch.zeros(2, 1, 8, 8))
    shaped = BaseClassifier(nn.Sequential(nn.Flatten(), nn.Linear(16, 2)), 2, input_shape=(1, 4, 4))
    with pytest.raises(ValueError, match=r"x must have shape \(B, 1, 4, 4\)"):
        shaped.predict(torch.zeros(2, 16))
    # through a certifier: the same one line, before any certificate
    with pytest.raises(ValueError, match=r"it expects \(B, 4\)") as e:
        GaussianCertifier(0.5, **SAMPLING).certify(clf, torch.zeros(2, 5))
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("call, match", [
    (lambda: SSNCertifier(sigma=0.5, **SAMPLING).certify(BaseClassifier(nn.Linear(2, 2), 2), torch.full((1, 2), 3.0)),
     "SSNCertifier: this noise needs inputs in"),
    (lambda: GaussianCertifier(0.5, n0=10, n=5), "n must be >= 10"),
    (lambda: DSSN(0.5, q=4).certify(BaseClassifier(nn.Linear(2, 2), 2), torch.full((1, 2), 0.3)), "DSSN: x must be"),
    (lambda: ColumnSmoothing(2).certify(BaseClassifier(nn.Linear(2, 2), 2), torch.zeros(1, 2)), "ColumnSmoothing"),
    (lambda: GaussianCertifier(0.5, **SAMPLING).certify(BaseClassifier(nn.Linear(2, 2), 2), torch.zeros(2)),
     "GaussianCertifier: x must have shape"),
    (lambda: GaussianCertifier(0.5, **SAMPLING).certify(BaseClassifier(nn.Linear(2, 2), 2), [["a", "b"]]),
     "GaussianCertifier: x must hold real numbers"),
    (lambda: DPA().certify(None, torch.zeros(1, 2)), "DPA needs a PartitionEnsemble"),
])
def test_api_errors_use_parameter_names_not_cli_flags(call, match):
    with pytest.raises(ValueError, match=match) as e:
        call()
    msg = str(e.value)
    assert "\n" not in msg and "--method" not in msg and not msg.startswith("--"), msg


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit.script
def test_torchscript_shape_errors_are_one_line_too():
    """TorchScript errors are serialized tracebacks; the one line kept is the RuntimeError itself."""
    clf = BaseClassifier(torch.jit.script(nn.Sequential(nn.Flatten(), nn.Linear(5, 2))), 2)
    with pytest.raises(ValueError, match=r"it expects \(B, \.\.\., 5\): RuntimeError: mat1 and mat2") as e:
        clf.predict(torch.zeros(2, 4))
    assert "\n" not in str(e.value) and "Traceback" not in str(e.value)


def test_values_beyond_the_model_dtype_are_named_not_called_nan():
    clf = BaseClassifier(nn.Linear(2, 2).half(), 2)
    with pytest.raises(ValueError, match=r"outside the range of the model.s dtype torch.float16 \(\|x\| up to 1e"):
        GaussianCertifier(0.5, **SAMPLING).certify(clf, torch.tensor([[1e6, 0.0]]))

"""The classifier adaptor evaluates the model as a fixed function: eval mode inside, the caller's mode restored."""

import numpy as np
import torch
from torch import nn

from rlcert.certify import DSSN, BaseClassifier, GaussianCertifier


def _bn_dropout_model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.5),
                          nn.Linear(16, 3))
    with torch.no_grad():  # running statistics far from any batch's own: train-mode BN would differ visibly
        model[2].running_mean.fill_(0.7)
        model[2].running_var.fill_(3.0)
    return model


def test_predict_uses_eval_mode_and_restores_train_mode():
    model = _bn_dropout_model()
    x = torch.rand(64, 4)
    with torch.no_grad():
        expected = model.eval()(x).argmax(1)
    model.train()
    model[4].eval()  # a mixed state must come back exactly as it was
    labels = BaseClassifier(model, 3).predict(x)
    assert torch.equal(labels, expected)
    assert [m.training for m in model.modules()] == [True, True, True, True, True, False, True]


def test_certificates_do_not_depend_on_the_callers_mode():
    """Counts from a model left in train mode equal those from the same model in eval mode (fails without eval():
    dropout and batch statistics change the votes)."""
    model = _bn_dropout_model()
    x = torch.rand(3, 4)
    cert = GaussianCertifier(0.3, n0=20, n=400, batch=100, seed=1)
    eval_counts = [c.counts for c in cert.certify(BaseClassifier(model.eval(), 3), x)]
    train_counts = [c.counts for c in cert.certify(BaseClassifier(model.train(), 3), x)]
    for a, b in zip(eval_counts, train_counts):
        np.testing.assert_array_equal(a, b)
    assert model.training


def test_deterministic_certifier_sees_eval_mode_too():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Dropout(0.5), nn.Linear(8, 2))
    x = torch.randint(0, 5, (2, 1, 2, 2)).float() / 4
    dssn = DSSN(lam=0.5, q=4)
    a = [c.counts for c in dssn.certify(BaseClassifier(model.eval(), 2), x)]
    b = [c.counts for c in dssn.certify(BaseClassifier(model.train(), 2), x)]
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert model.training


def test_thresholded_patch_votes_use_eval_mode_too():
    """Column smoothing with theta reads softmax scores through the adaptor (BN + dropout model left in train)."""
    from rlcert.certify import ColumnSmoothing

    torch.manual_seed(2)
    model = nn.Sequential(nn.Flatten(), nn.Linear(32, 16), nn.BatchNorm1d(16), nn.Dropout(0.5), nn.Linear(16, 3))
    x = torch.rand(3, 1, 4, 4)
    cert = ColumnSmoothing(2, theta=0.3)
    a = [c.counts for c in cert.certify(BaseClassifier(model.eval(), 3), x)]
    b = [c.counts for c in cert.certify(BaseClassifier(model.train(), 3), x)]
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert model.training

"""Model zoo for the certification demos and tests (no downloads).

``digits``: small CNNs for scikit-learn's 8x8 digits and their noise-augmented training; the CLI factories
``digits_cnn`` (randomized methods), ``digits_dssn_cnn``, ``digits_null_cnn``, ``digits_bounds_cnn`` (deterministic
methods) are re-exported here, so ``--model rlcert.certify.models:digits_cnn`` works.
``partition``: DPA/SS-DPA partition models saved one file per partition.
``vgg``: ``vgg_cifar`` (a VGG-style 3x32x32 CNN, 64-128-256 channels) and ``mlp`` (policy-size MLPs) for the
precision and throughput studies.
"""

from rlcert.certify.models.digits import (
    digits_bounds_cnn,
    digits_cnn,
    digits_dssn_cnn,
    digits_null_cnn,
    train_digits_cnn,
)
from rlcert.certify.models.vgg import mlp, vgg_cifar

__all__ = ["digits_bounds_cnn", "digits_cnn", "digits_dssn_cnn", "digits_null_cnn", "mlp", "train_digits_cnn",
           "vgg_cifar"]

import torch

from rlcert.certify import BaseClassifier


def threshold_classifier(t: float, coord: int = 0) -> BaseClassifier:
    """f(z) = 0 if z[coord] < t else 1 (a half-space; any input shape, flattened)."""
    return BaseClassifier(lambda z: (z.reshape(len(z), -1)[:, coord] >= t).long(), 2, returns="labels")


def linear_classifier(w: torch.Tensor, b: float) -> BaseClassifier:
    """f(z) = 1 if w.z + b > 0 else 0."""
    return BaseClassifier(lambda z: (z.reshape(len(z), -1) @ w + b > 0).long(), 2, returns="labels")

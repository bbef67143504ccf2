"""The certifier interface: "how to perturb the input" + "how counts become a certificate"."""

from __future__ import annotations

import abc
import argparse
from typing import Any, ClassVar

import torch

from rlcert.certify.result import Certificate


class Certifier(abc.ABC):
    """A smoothing certifier. Subclasses set ``name`` (the CLI ``--method``) and ``norm`` (threat model)."""

    name: ClassVar[str]
    norm: ClassVar[str]

    @abc.abstractmethod
    def certify(self, classifier: Any, x: torch.Tensor) -> list[Certificate]:
        """Certify a batch ``x`` of shape (N, *input_shape); returns one Certificate per input.

        ``classifier`` is a base classifier: see ``rlcert.certify.classifier`` for the adaptor that turns an
        ``nn.Module`` returning logits (or a callable returning labels) into one. Randomized certifiers
        (``rlcert.certify.smoothing.SmoothingCertifier``) also take ``seeds=`` (one int per input, e.g. data-set
        indices) so that an input's certificate does not depend on the batch it was certified in.
        """

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Add this method's own CLI flags (none by default). Shared flags live in the CLI."""

    @classmethod
    def from_arguments(cls, args: argparse.Namespace) -> Certifier:
        """Build the certifier from parsed CLI arguments."""
        return cls()

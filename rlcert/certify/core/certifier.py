"""The certifier interface: "how to perturb the input" + "how counts become a certificate"."""

from __future__ import annotations

import abc
import argparse
from typing import Any, ClassVar

import torch

from rlcert.certify.core.certificate import Certificate


class Certifier(abc.ABC):
    """A smoothing certifier. Subclasses set ``name`` (the CLI ``--method``) and ``norm`` (threat model)."""

    name: ClassVar[str]
    norm: ClassVar[str]

    @abc.abstractmethod
    def certify(self, classifier: Any, x: torch.Tensor) -> list[Certificate]:
        """Certify a batch ``x`` of shape (N, *input_shape); returns one Certificate per input.

        ``classifier`` is a base classifier: see ``rlcert.certify.core.classifier`` for the adaptor that turns an
        ``nn.Module`` returning logits (or a callable returning labels) into one. Randomized certifiers
        (``rlcert.certify.core.smoothing.SmoothingCertifier``) also take ``seeds=`` (one int per input, e.g. data-set
        indices) so that an input's certificate does not depend on the batch it was certified in.
        """

    def base_input(self, x: torch.Tensor) -> torch.Tensor:
        """An example of what the base classifier is fed for inputs ``x`` (default: ``x`` itself). Certifiers that
        re-encode inputs (NULL channels, [upper, lower] bounds) override this so callers can probe a model's
        input shape before certifying."""
        return x

    def validate_inputs(self, x: torch.Tensor) -> None:
        """Raise ValueError naming the method and its requirement when the batch x (N, ...) does not suit it (e.g.
        [0, 1] or the 1/q grid); the CLI calls it on every selected input before writing anything. Default: any
        shape and range."""

    def base_classifier(self) -> Any | None:
        """A base classifier the certifier brings itself (e.g. DPA's partition ensemble loaded from its own
        flags), or None (default) when the caller supplies one (e.g. the CLI's ``--model``)."""
        return None

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Add this method's own CLI flags (none by default). Shared flags live in the CLI."""

    @classmethod
    def from_arguments(cls, args: argparse.Namespace) -> Certifier:
        """Build the certifier from parsed CLI arguments."""
        return cls()

"""Monte Carlo sampling engine: noisy copies of many inputs per forward pass, counted on the device.

Each input owns a ``torch.Generator`` on the model's device, and its noise is drawn in chunks of at most
``batch`` samples whose sizes depend only on (num, batch). Chunks of consecutive inputs are packed into one
forward pass of at most ``batch`` samples, so an input's noise (hence its certificate) does not depend on
which other inputs it was certified with: certifying input 7 alone or among 100 others gives the same result.
Votes are counted with one ``bincount`` per forward pass on the device; only the final (N, K) counts reach the host.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np
import torch

# perturb_(out, x, generator): fill ``out`` (m, *input_shape) in place with m noisy versions of x (*input_shape).
Perturb = Callable[[torch.Tensor, torch.Tensor, torch.Generator], None]


class LabelClassifier(Protocol):
    """What the engine needs from a base classifier (see ``rlcert.certify.core.classifier.BaseClassifier``)."""

    num_classes: int
    device: torch.device

    def predict(self, x: torch.Tensor) -> torch.Tensor: ...


def derive_seed(seed: int, index: int, stream: int = 0) -> int:
    """A 63-bit seed for input ``index`` of a run seeded with ``seed`` (``stream`` separates e.g. CERTIFY/PREDICT)."""
    state = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(stream), int(index)]).generate_state(2, np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1])) & ((1 << 63) - 1)


def make_generators(seeds: Sequence[int], device: torch.device | str) -> list[torch.Generator]:
    """One seeded ``torch.Generator`` per input, on ``device``."""
    gens = []
    for s in seeds:
        g = torch.Generator(device=torch.device(device))
        g.manual_seed(int(s))
        gens.append(g)
    return gens


def _chunks(num: int, batch: int) -> list[int]:
    sizes = [batch] * (num // batch)
    if num % batch:
        sizes.append(num % batch)
    return sizes


@torch.no_grad()
def sample_counts(classifier: LabelClassifier, x: torch.Tensor, num: int, perturb_: Perturb,
                  generators: Sequence[torch.Generator], batch: int = 1000,
                  progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Vote counts of the base classifier on ``num`` noisy copies of each input.

    x: (N, *input_shape) on ``classifier.device``. Returns int64 counts of shape (N, K) on the host.
    ``progress(m)`` is called after each forward pass with the number of samples just evaluated.
    """
    n_inputs, k = x.shape[0], classifier.num_classes
    if len(generators) != n_inputs:
        raise ValueError(f"need one generator per input: got {len(generators)} for {n_inputs} inputs")
    device = x.device
    counts = torch.zeros(n_inputs * (k + 1), dtype=torch.int64, device=device)  # column k: invalid labels
    buf = torch.empty((min(batch, num * n_inputs), *x.shape[1:]), dtype=x.dtype, device=device)
    owners: list[int] = []
    sizes: list[int] = []
    used = 0

    def flush() -> None:
        nonlocal used, owners, sizes
        labels = classifier.predict(buf[:used]).to(device=device, dtype=torch.int64).reshape(-1)
        labels = torch.where((labels >= 0) & (labels < k), labels, torch.full_like(labels, k))
        owner = torch.repeat_interleave(torch.tensor(owners, device=device), torch.tensor(sizes, device=device))
        counts.add_(torch.bincount(owner * (k + 1) + labels, minlength=n_inputs * (k + 1)))
        if progress is not None:
            progress(used)
        used, owners, sizes = 0, [], []

    for i in range(n_inputs):
        for m in _chunks(num, batch):
            if used + m > buf.shape[0]:
                flush()
            perturb_(buf[used:used + m], x[i], generators[i])
            owners.append(i)
            sizes.append(m)
            used += m
    if used:
        flush()
    counts = counts.view(n_inputs, k + 1).cpu().numpy()
    if counts[:, k].any():
        raise ValueError(f"the base classifier returned labels outside [0, {k}); check num_classes")
    return counts[:, :k]

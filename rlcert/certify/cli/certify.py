"""``rlcert certify`` / ``python -m rlcert.certify``: certify a classifier on a data set, one TSV row per input.

Example (train the tiny digits CNN, certify 20 test digits with Gaussian noise, plot):

    python scripts/train_digits.py --epochs 5 --out runs/certify/digits_s0.25.pt
    python -m rlcert.certify --model rlcert.certify.models:digits_cnn --weights runs/certify/digits_s0.25.pt \\
        --data digits --method gaussian --sigma 0.25 --n 1000 --max 20 --out runs/certify/gaussian.tsv \\
        --plot runs/certify/gaussian.png

Model: a TorchScript file (``model.pt``), a ``torch.export`` archive (``model.pt2``), or
``package.module:factory`` (called with no arguments) plus ``--weights state_dict.pt``; it must map what the
method feeds it (the raw x for the noise methods and DSSN, (x, 1 - x) NULL channels for column/block, [upper,
lower] bounds for variable-lambda/deterministic-l0) to logits (B, K). ``--normalize`` puts a per-channel
normalisation in front of it, so the noise (and the radius) stay in input units. Methods that bring their own base
classifier (dpa/ssdpa: ``--partitions-dir``) take no ``--model``.
Data: ``digits`` (scikit-learn digits, held-out test split), an ``.npz`` with ``x`` (N, ...) of any shape and
``y`` (N,), ``imagefolder:DIR`` (DIR/<class>/<image>) or ``cifar10:DIR`` (CIFAR-10 python batches). Range and grid
requirements are checked by the methods that have them (ssn, dssn, variable-lambda, deterministic-l0, column,
block: inputs in [0, 1], on the 1/q grid for the deterministic l1/lp/l0 methods).
Rerunning with the same ``--out`` resumes: indices already in the file are skipped (the run settings, kept next to
it in ``<out>.json``, must match); Ctrl-C stops cleanly and keeps every finished row. ``--method NAME --help``
lists that method's own flags (noise parameters, sampling budget). ``--precision bf16`` (Monte-Carlo methods)
certifies the smoothed classifier of the bf16-autocast model, which must then also be the deployed predictor;
``--ray`` shards the inputs over Ray workers with the same rows as one process (docs/certify.md).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

import rlcert.certify  # noqa: F401  (registers every method)
from rlcert import runs
from rlcert.certify.cli.tsv import COLUMNS, format_row
from rlcert.certify.core.certifier import Certifier
from rlcert.certify.core.checks import check_count
from rlcert.certify.core.classifier import BaseClassifier, error_line, expected_input
from rlcert.certify.core.precision import PRECISIONS, check_precision
from rlcert.certify.core.registry import METHODS, get
from rlcert.certify.core.smoothing import SmoothingCertifier
from rlcert.certify.io import check_output_file, load_data, load_model, resolve_device
from rlcert.certify.models.normalize import parse_normalize

RESUME_KEYS = ("method", "model", "weights", "data", "normalize", "precision", "channels_last")
RESUME_DEFAULTS = {"precision": "fp32", "channels_last": "False"}  # what a record written before the flag means
MAX_INPUTS_PER_CALL = 256


def build_parser(method: str | None = None) -> argparse.ArgumentParser:
    """The CLI parser: the flags every method shares, plus ``method``'s own flags (only those) when given."""
    p = argparse.ArgumentParser(prog="rlcert certify", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None,
                   help="TorchScript file, or package.module:factory (with --weights); not needed by methods that "
                        "bring their own base classifier (dpa, ssdpa: --partitions-dir)")
    p.add_argument("--weights", default=None, help="state dict (.pt) for a module:factory model")
    p.add_argument("--normalize", default=None,
                   help="per-channel normalisation inside the model: cifar10, imagenet or M1,M2,../S1,S2,.. "
                        "(noise and radii stay in input units)")
    p.add_argument("--num-classes", type=int, default=None, help="number of classes (default: from the logits)")
    p.add_argument("--data", default="digits",
                   help="digits (default), a .npz with x (N, ...) and y (N,), imagefolder:DIR or cifar10:DIR")
    p.add_argument("--method", default="gaussian", help=f"certifier, one of {sorted(METHODS)} (default gaussian)")
    p.add_argument("--batch", type=int, default=1000, help="base-classifier inputs per forward pass (default 1000)")
    p.add_argument("--inputs-per-call", type=int, default=None,
                   help="inputs certified together (default: ceil(batch / n0) so that one forward pass holds the "
                        "selection samples of several inputs, at most 10 * batch / (n0 + n) inputs (samples of "
                        f"about 10 forward passes), at least 1 and at most {MAX_INPUTS_PER_CALL}; methods without "
                        f"n0/n: min(batch, {MAX_INPUTS_PER_CALL}))")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                   help="where the model and the noise live (default auto: cuda when available)")
    p.add_argument("--skip", type=int, default=1, help="certify every skip-th input (default 1)")
    p.add_argument("--max", type=int, default=-1, help="certify at most this many inputs (-1: all)")
    p.add_argument("--out", required=True, type=Path, help="output TSV (resumed if it exists)")
    p.add_argument("--plot", default=None, type=Path, help="also write certified accuracy vs radius to this PNG")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--precision", default="fp32", choices=PRECISIONS,
                   help="base model forward pass: fp32 (default) or bf16 (autocast; the certificate is then for the "
                        "smoothed classifier of the bf16 model, which must also be the deployed predictor; "
                        "Monte-Carlo methods only)")
    p.add_argument("--channels-last", action="store_true",
                   help="channels-last memory format for 4-D inputs and conv weights (faster with bf16 on CPU)")
    p.add_argument("--ray", action="store_true",
                   help="shard the inputs over Ray workers (pip install 'rlcert[sweep]'); same rows as one process")
    p.add_argument("--address", default=None,
                   help="with --ray: join this Ray cluster (e.g. auto or ray://host:10001; default: local Ray)")
    p.add_argument("--workers", type=int, default=None,
                   help="with --ray: Ray workers (default: the local CPU count, or the cluster's CPUs)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    if method is not None:
        group = p.add_argument_group(f"--method {method}")
        get(method).add_arguments(group)
    return p


def inputs_per_call(certifier: Certifier, batch: int) -> int:
    """The default of ``--inputs-per-call`` (see its help)."""
    n0, n = getattr(certifier, "n0", None), getattr(certifier, "n", None)
    if n0 is None or n is None:
        return max(1, min(batch, MAX_INPUTS_PER_CALL))
    return max(1, min(math.ceil(batch / n0), (10 * batch) // (n0 + n), MAX_INPUTS_PER_CALL))


def refused_spelling(method: str, argv: list[str]) -> str | None:
    """A one-line error when argv uses a flag spelling that this method renamed (``renamed_flags``)."""
    for old, new in getattr(get(method), "renamed_flags", {}).items():
        if any(a == old or a.startswith(old + "=") for a in argv):
            return f"--method {method} takes {new}, not {old} ({old} {new_meaning(old)}); see --method {method} --help"
    return None


def new_meaning(flag: str) -> str:
    return {"--lambda": "means a half-width (uniform, ssn, dssn) in every method that has it"}.get(flag, "was renamed")


def build_classifier(certifier: Certifier, args: argparse.Namespace, x_all: Any, y_all: Any,
                     device: torch.device, normalize: torch.nn.Module | None = None) -> Any:
    """The base classifier: the certifier's own (``base_classifier()``, e.g. DPA's ensemble) or ``--model``.

    A ``--model`` is probed on ``certifier.base_input(x)`` -- what the certifier will feed it (e.g. the (x, 1 - x)
    NULL encoding of column smoothing) -- and must return logits (B, K) with K covering the labels."""
    own = certifier.base_classifier()
    if own is not None:
        if args.model is not None:
            raise ValueError(f"--method {args.method} brings its own base classifier; drop --model {args.model}")
        k = int(own.num_classes)
        if args.num_classes is not None and args.num_classes != k:
            raise ValueError(f"--num-classes {args.num_classes} does not match the method's {k} classes")
        if y_all.size and int(y_all.max()) >= k:
            raise ValueError(f"--data has labels up to {int(y_all.max())} but the classifier has {k} classes")
        return own
    if args.model is None:
        raise ValueError(f"--model is required for --method {args.method} (a TorchScript file or module:factory)")
    model = load_model(args.model, args.weights, device, who="--model", weights_who="--weights")
    if normalize is not None:
        model = torch.nn.Sequential(normalize, model).to(device).eval()
    with torch.no_grad():
        try:
            example = certifier.base_input(torch.as_tensor(x_all[:1], device=device))
        except ValueError as e:  # e.g. inputs off the quantisation grid, or too small for the band size
            raise ValueError(f"--data inputs of shape {tuple(x_all.shape[1:])} do not suit --method "
                             f"{args.method}: {e}") from None
        try:
            probe = model(example)
        except Exception as e:  # noqa: BLE001 - wrong input shape for this model
            want = expected_input(model)
            raise ValueError(f"--model failed on --data inputs of shape {tuple(x_all.shape[1:])} (fed as "
                             f"{tuple(example.shape[1:])} by --method {args.method}"
                             f"{f'; it expects {want}' if want else ''}): {error_line(e)}") from None
    if probe.ndim != 2:
        raise ValueError(f"--model must return logits (B, K), got shape {tuple(probe.shape)}")
    k = args.num_classes or int(probe.shape[1])
    if int(probe.shape[1]) != k:
        raise ValueError(f"--num-classes {k} does not match the model's {probe.shape[1]} logits")
    if y_all.size and int(y_all.max()) >= k:
        raise ValueError(f"--data has labels up to {int(y_all.max())} but the model has {k} classes")
    return BaseClassifier(model, k, device=device, precision=getattr(args, "precision", "fp32"),
                          channels_last=getattr(args, "channels_last", False))


def check_precision_args(args: argparse.Namespace, certifier: Certifier) -> None:
    """``--precision bf16`` / ``--channels-last`` only for the Monte-Carlo (smoothing) certifiers."""
    check_precision(getattr(args, "precision", "fp32"), "--precision")
    if (getattr(args, "precision", "fp32") != "fp32" or getattr(args, "channels_last", False)) \
            and not isinstance(certifier, SmoothingCertifier):
        raise ValueError(f"--precision/--channels-last apply to the Monte-Carlo methods "
                         f"{sorted(n for n, c in METHODS.items() if issubclass(c, SmoothingCertifier))}, "
                         f"not --method {args.method}")


def setup(args: argparse.Namespace) -> tuple[Certifier, Any, Any, Any, torch.device]:
    """(certifier, classifier, x_all, y_all, device) from parsed ``args`` (validated; one-line ValueErrors)."""
    cls = get(args.method)
    try:
        certifier = cls.from_arguments(args)  # validates sigma, n0, n, alpha, ...
    except ValueError as e:  # API wording (parameter names): say which method's flags they are
        raise ValueError(str(e) if str(e).startswith("--") else f"--method {args.method}: {e}") from None
    check_precision_args(args, certifier)
    try:
        device = resolve_device(args.device)
    except ValueError as e:  # "device='cuda': CUDA is not available ..." -> the flag
        raise ValueError(f"--device {args.device}: {str(e).split(': ', 1)[-1]}") from None
    normalize = parse_normalize(args.normalize, who="--normalize") if args.normalize is not None else None
    x_all, y_all = load_data(args.data, who="--data")
    classifier = build_classifier(certifier, args, x_all, y_all, device, normalize)
    return certifier, classifier, x_all, y_all, device


def certify_rows(certifier: Certifier, classifier: Any, x_all: Any, y_all: Any, idx: list[int],
                 device: torch.device) -> list[str]:
    """TSV rows (with newlines) of the inputs ``idx``, certified together in one call (input i seeded from i)."""
    xb = torch.as_tensor(x_all[idx], device=device)
    t0 = time.perf_counter()
    if isinstance(certifier, SmoothingCertifier):
        certs = certifier.certify(classifier, xb, seeds=idx)
    else:
        certs = certifier.certify(classifier, xb)
    per_input = (time.perf_counter() - t0) / len(idx)
    return [format_row(i, int(y_all[i]), c.prediction, c.radius, per_input, c.p_lower, c.norm) + "\n"
            for i, c in zip(idx, certs)]


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Certify according to parsed ``args``; returns a summary. Raises ValueError on bad input before writing.

    KeyboardInterrupt propagates after the rows finished so far are flushed (``main`` turns it into one line)."""
    check_count(args.skip, "--skip", 1)
    check_count(args.max, "--max", -1)
    check_count(args.batch, "--batch", 1)
    if args.inputs_per_call is not None:
        check_count(args.inputs_per_call, "--inputs-per-call", 1)
    if args.threads is not None:
        check_count(args.threads, "--threads", 1)
        torch.set_num_threads(args.threads)
    check_output_file(args.out, "--out", also=(args.out.with_name(args.out.name + ".json"),))
    if args.plot is not None:
        check_output_file(args.plot, "--plot")
    if getattr(args, "workers", None) is not None:
        check_count(args.workers, "--workers", 1)
    if not getattr(args, "ray", False) and (getattr(args, "address", None) or getattr(args, "workers", None)):
        raise ValueError("--address/--workers need --ray")
    certifier, classifier, x_all, y_all, device = setup(args)

    indices = list(range(0, len(x_all), args.skip))
    if args.max >= 0:
        indices = indices[: args.max]
    meta = {key: (str(getattr(args, key)) if getattr(args, key) is not None else None) for key in RESUME_KEYS}
    meta["method_args"] = {a: str(v) for a, v in sorted(vars(args).items())  # unset (None) flags are left out,
                           if v is not None and a not in vars(build_parser().parse_args(["--out", "o"]))}
    meta_path = args.out.with_name(args.out.name + ".json")
    table = runs.Rows(args.out, COLUMNS, delimiter="\t", fsync=False)  # flushed per group: survives a killed process
    # compared (one line naming the differing keys) before anything is written; stored before the first row
    runs.compare_settings(meta_path, meta, what=f"--out {args.out}", diff=resume_diff, have_results=len(table) > 0)
    done = {int(i) for i in table.column("idx")}
    todo = [i for i in indices if i not in done]
    group = args.inputs_per_call or inputs_per_call(certifier, args.batch)
    if todo:  # range / grid / shape, before writing anything
        try:
            certifier.validate_inputs(torch.as_tensor(x_all[todo]))
        except ValueError as e:  # "SSNCertifier: x ..." (API wording) -> the flags
            why = str(e).removeprefix(f"{type(certifier).__name__}: ")
            raise ValueError(f"--data {args.data} does not suit --method {args.method}: {why}") from None

    runs.ensure_settings(meta_path, meta, what=f"--out {args.out}", diff=resume_diff, update=True)
    table.create()
    t_start = time.perf_counter()
    groups = [todo[g: g + group] for g in range(0, len(todo), group)]
    with tqdm(total=len(todo), disable=args.no_progress, unit="input", desc=f"certify {args.method}") as bar:
        if getattr(args, "ray", False) and groups:
            certify_groups_ray(args, groups, table, bar)
        for idx in ([] if getattr(args, "ray", False) else groups):
            table.append_lines(certify_rows(certifier, classifier, x_all, y_all, idx, device))
            bar.update(len(idx))
    summary = {"certified": len(todo), "skipped_done": len(indices) - len(todo), "out": str(args.out),
               "seconds": time.perf_counter() - t_start}
    if args.plot is not None:
        from rlcert.certify.cli.plot import plot_certified

        for line in plot_certified([args.out], args.plot, labels=[f"{args.method}"]):
            print(line)
        summary["plot"] = str(args.plot)
    return summary


class CertifyWorker:
    """A Ray actor of ``--ray``: the certifier, base classifier and data of the run, built once per worker."""

    def __init__(self, args: argparse.Namespace) -> None:
        torch.set_num_threads(args.threads or 1)
        self.certifier, self.classifier, self.x_all, self.y_all, self.device = setup(args)

    def run(self, idx: list[int]) -> list[str]:
        return certify_rows(self.certifier, self.classifier, self.x_all, self.y_all, idx, self.device)


def certify_groups_ray(args: argparse.Namespace, groups: list[list[int]], table: runs.Rows, bar: Any) -> int:
    """``--ray``: certify ``groups`` of input indices on Ray workers (``rlcert.certify.distributed``), writing
    rows to ``table`` in group order and advancing the progress ``bar``. Returns the groups redone after a worker
    died."""
    from rlcert.certify.distributed import run_sharded  # --ray only (Ray is an optional extra)

    if args.model is not None and not Path(args.model).is_file() and args.weights is None:
        raise ValueError("--ray needs the same model in every worker: give --weights for a module:factory --model "
                         "(untrained factories are initialised randomly in each process)")

    def write(rows: list[str]) -> None:
        table.append_lines(rows)
        bar.update(len(rows))

    return run_sharded(CertifyWorker, args, [(g,) for g in groups], write, args.workers, args.address)


def settings_diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Settings that differ between two ``<out>.json`` records, compared flat (top-level keys and ``method_args``
    merged; unset values dropped), so a record written before a flag moved between the two (e.g. ``--sigma``
    before layout v2) or before a new optional flag existed still resumes when nothing it recorded changed."""
    def flat(meta: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in meta.items() if k != "method_args" and v not in (None, "None")}
        out.update({k: v for k, v in (meta.get("method_args") or {}).items() if v not in (None, "None")})
        return out

    a, b = flat(old), flat(new)
    return sorted(k for k in a.keys() & b.keys() if a[k] != b[k])


def resume_diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """:func:`settings_diff` of a stored record (flags it predates read as :data:`RESUME_DEFAULTS`) and ``new``."""
    return settings_diff({**RESUME_DEFAULTS, **old}, new)


def rows_kept(out: Path) -> int:
    """Complete rows in a certification TSV (0 if it does not exist or is not one)."""
    try:
        return len(runs.Rows(out, COLUMNS, delimiter="\t", readonly=True))
    except (OSError, ValueError):
        return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--method", default="gaussian")
    pre.add_argument("--out", type=Path, default=None)
    known, _ = pre.parse_known_args(argv)
    if known.method not in METHODS:
        print(f"rlcert certify: error: --method must be one of {sorted(METHODS)}, got {known.method!r}",
              file=sys.stderr)
        return 2
    refused = refused_spelling(known.method, argv)
    if refused:
        print(f"rlcert certify: error: {refused}", file=sys.stderr)
        return 2
    args = build_parser(known.method).parse_args(argv)
    return runs.run_command("rlcert certify", lambda: _main(args),
                            lambda: f"{rows_kept(args.out)} rows kept; rerun to resume")


def _main(args: argparse.Namespace) -> int:
    summary = run(args)
    print(f"certified {summary['certified']} inputs ({summary['skipped_done']} already done) "
          f"in {summary['seconds']:.1f} s -> {summary['out']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

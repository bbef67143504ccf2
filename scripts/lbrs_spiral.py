"""LBRS on a two-arm spiral with a linear-SVM base (Anderson & Sojoudi, Figs. 1-2), an alpha sweep.

Data (the paper gives no generator; our choice, recorded here): arm +1 at angle t, radius t, t ~ U(pi/2, 3 pi),
plus N(0, noise^2) jitter; arm -1 is the point reflection. Three disjoint sets: SVM training (--n-train), the LBRS
reference set (--n-ref, never seen by the SVM) and the test set (--n-test). Base: sklearn's linear SVC (C = 1).

For every bias alpha in [0, --alpha-max]: clean accuracy of f_mu, the average certified radius (Theorem 6) in l2
and l-infinity over all test points, and the "true" average that counts 0 for test points f_mu misclassifies.
Standard Gaussian smoothing leaves a linear classifier unchanged (Prop. 5): its exact certificate is the SVM's own
distance to the boundary, |g| / ||a||_* -- the alpha = 0 values, drawn as flat reference lines.

Writes runs/lbrs_spiral/ (sweep.tsv, spiral_sweep.png, spiral_regions.png). Seconds on one core.

    python scripts/lbrs_spiral.py --out runs/lbrs_spiral
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rlcert.certify.locally_biased import LinearScore, LocallyBiasedSmoothing  # noqa: E402


def spiral(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n points of the two-arm spiral, labels in {-1, +1} (balanced)."""
    y = np.where(np.arange(n) % 2 == 0, 1, -1)
    t = rng.uniform(np.pi / 2, 3 * np.pi, n)
    x = np.stack([t * np.cos(t), t * np.sin(t)], 1) * y[:, None] + rng.normal(0, noise, (n, 2))
    return x, y


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("runs/lbrs_spiral"), help="output folder (under runs/)")
    p.add_argument("--n-train", type=int, default=400, help="SVM training points (default 400)")
    p.add_argument("--n-ref", type=int, default=100, help="LBRS reference points, unused by the SVM (default 100)")
    p.add_argument("--n-test", type=int, default=1000, help="test points (default 1000)")
    p.add_argument("--noise", type=float, default=0.5, help="jitter standard deviation (default 0.5)")
    p.add_argument("--alpha-max", type=float, default=10.0, help="largest bias level (default 10)")
    p.add_argument("--n-alpha", type=int, default=41, help="number of bias levels (default 41)")
    p.add_argument("--seed", type=int, default=0, help="data seed (default 0)")
    args = p.parse_args(argv)
    for name in ("n_train", "n_ref", "n_test", "n_alpha"):
        if getattr(args, name) < 2:
            raise SystemExit(f"--{name.replace('_', '-')} must be an integer >= 2, got {getattr(args, name)}")
    if not args.alpha_max > 0 or not args.noise >= 0:
        raise SystemExit("--alpha-max must be > 0 and --noise >= 0")
    from sklearn.svm import SVC

    rng = np.random.default_rng(args.seed)
    x_tr, y_tr = spiral(args.n_train, args.noise, rng)
    x_ref, y_ref = spiral(args.n_ref, args.noise, rng)
    x_te, y_te = spiral(args.n_test, args.noise, rng)
    svm = SVC(kernel="linear", C=1.0).fit(x_tr, y_tr)
    score = LinearScore(svm.coef_[0], float(svm.intercept_[0]))
    alphas = np.linspace(0.0, args.alpha_max, args.n_alpha)
    rows = []
    for a in alphas:
        row = {"alpha": a}
        for norm in ("l2", "linf"):
            r = LocallyBiasedSmoothing(score, x_ref, y_ref, bias=a, norm=norm).certify(x_te)
            correct = r.label == y_te
            row[f"{norm}_avg"] = float(r.radius.mean())
            row[f"{norm}_avg_true"] = float((r.radius * correct).mean())
            row["acc"] = float(correct.mean())
        rows.append(row)
    nn = ((x_te[:, None] - x_ref[None]) ** 2).sum(-1).argmin(1)
    acc_1nn = float((y_ref[nn] == y_te).mean())
    args.out.mkdir(parents=True, exist_ok=True)
    keys = list(rows[0])
    with open(args.out / "sweep.tsv", "w") as f:
        print("\t".join(keys), file=f)
        for row in rows:
            print("\t".join(f"{row[k]:.6g}" for k in keys), file=f)
    print(f"1-NN accuracy on the reference set: {acc_1nn:.3f}; SVM accuracy: {rows[0]['acc']:.3f}")
    for row in rows[:: max(1, len(rows) // 10)] + [rows[-1]]:
        print("  ".join(f"{k}={row[k]:.4f}" for k in keys))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    col = {k: np.array([r[k] for r in rows]) for k in keys}
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for norm, c in (("l2", "C0"), ("linf", "C1")):
        ax1.plot(alphas, col[f"{norm}_avg"], c, label=f"{norm}-avg r (alpha-LBRS)")
        ax1.plot(alphas, col[f"{norm}_avg_true"], c + "--", label=f"{norm}-avg_true r (alpha-LBRS)")
        ax1.axhline(col[f"{norm}_avg_true"][0], color=c, ls=":", lw=1,
                    label=f"{norm}-avg_true r, standard smoothing (= SVM)")
    ax1.set_xlabel("bias level alpha")
    ax1.set_ylabel("average certified radius")
    ax1.set_title("Spiral, linear-SVM base: certified radius vs alpha")
    ax1.legend(fontsize=7)
    ax2.plot(alphas, col["acc"], "k", label="alpha-LBRS")
    ax2.axhline(col["acc"][0], color="gray", ls=":", label="standard smoothing (= SVM)")
    ax2.axhline(acc_1nn, color="C2", ls="--", label=f"1-NN on the {args.n_ref} reference points")
    ax2.set_xlabel("bias level alpha")
    ax2.set_ylabel("clean accuracy")
    ax2.set_ylim(0.4, 1.0)
    ax2.set_title("Spiral: clean accuracy vs alpha")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out / "spiral_sweep.png", dpi=110)
    plt.close(fig)

    g = np.linspace(-11, 11, 300)
    gx, gy = np.meshgrid(g, g)
    grid = np.stack([gx.ravel(), gy.ravel()], 1)
    shown = (0.0, 2.0, 10.0)
    fig, axes = plt.subplots(1, len(shown), figsize=(4.2 * len(shown), 4.2))
    for ax, a in zip(axes, shown):
        lab = LocallyBiasedSmoothing(score, x_ref, y_ref, bias=a, norm="l2").predict(grid).reshape(gx.shape)
        ax.contourf(gx, gy, lab, levels=[-2, 0, 2], colors=["#f4c7c3", "#c6dbef"])
        ax.contour(gx, gy, (grid @ score.weight + score.bias).reshape(gx.shape), levels=[0], colors="k",
                   linewidths=2)
        ax.scatter(*x_te[y_te == 1][:300].T, s=4, c="C0", label="test, +1")
        ax.scatter(*x_te[y_te == -1][:300].T, s=4, c="C3", label="test, -1")
        ax.scatter(*x_ref.T, s=18, c=np.where(y_ref > 0, "navy", "darkred"), marker="x", label="reference set")
        ax.set_title(f"alpha = {a:g}: f_mu regions (shaded), SVM (bold)", fontsize=9)
        ax.set_xlabel("x1")
        ax.set_ylabel("x2")
        ax.legend(fontsize=6, loc="lower right")
    fig.tight_layout()
    fig.savefig(args.out / "spiral_regions.png", dpi=100)
    plt.close(fig)
    print(f"wrote {args.out / 'sweep.tsv'}, {args.out / 'spiral_sweep.png'}, {args.out / 'spiral_regions.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

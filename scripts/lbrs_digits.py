"""LBRS vs normal smoothing on binary digits ("8" vs the rest), clean and PGD-attacked accuracy (LBRS paper, Figs 3-4).

Data: scikit-learn digits (8x8, [0, 1]); label +1 for "8", -1 otherwise; both classes subsampled to equal counts.
N = 10 balanced training points are held out of CNN training and form the LBRS reference set. Base: a CNN with
three 3x3 conv layers (ReLU) and one linear layer giving the score g (f = sign g), trained with the logistic loss.

Classifiers: the CNN; sigma-NS (hard Gaussian smoothing of the same CNN, majority of --mc samples); alpha-LBRS
(g + alpha y_NN ||grad g||_*, dual of l2 or l-infinity); the 1-NN on the reference set.
Attacks: 10-step PGD (l2 or l-infinity) (a) on the base CNN, transferred to every classifier (the paper's protocol),
and (b) on the classifier itself: sigma-NS through the noise-averaged sigmoid score (EOT, fresh noise each step),
alpha-LBRS through g_mu (double backprop; the 1-NN index is piecewise constant, so it is held per step).
The 1-NN's robust accuracy under attack (b) is its exact certified accuracy (r_data > eps, a lower bound).

Writes runs/lbrs_digits/: results.tsv, digits_sweep.png (accuracy vs sigma / alpha at eps_2 in {0.5, 1}) and
digits_eps.png (accuracy vs eps at sigma = 0.05 / alpha = 10, l2 and l-infinity). About 1-2 CPU minutes.

    python scripts/lbrs_digits.py --out runs/lbrs_digits
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rlcert.certify.locally_biased import LocallyBiasedSmoothing, TorchScore, data_radius  # noqa: E402


def make_cnn() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(32, 32, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(32 * 16, 1))


def load(seed: int, n_ref: int):
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    y = np.where(d.target == 8, 1, -1)
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == -1)
    neg = rng.choice(neg, len(pos), replace=False)
    rng.shuffle(pos)
    n_test = len(pos) // 4
    test = np.r_[pos[:n_test], neg[:n_test]]
    ref = np.r_[pos[n_test:n_test + n_ref // 2], neg[n_test:n_test + n_ref // 2]]
    train = np.r_[pos[n_test + n_ref // 2:], neg[n_test + n_ref // 2:]]
    return (x[train], y[train]), (x[ref], y[ref]), (x[test], y[test])


def train_cnn(x: np.ndarray, y: np.ndarray, seed: int, epochs: int) -> nn.Module:
    torch.manual_seed(seed)
    net = make_cnn()
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    xt, yt = torch.as_tensor(x), torch.as_tensor((y > 0).astype(np.float32))
    for _ in range(epochs):
        perm = torch.randperm(len(xt))
        for i in range(0, len(xt), 32):
            b = perm[i:i + 32]
            loss = nn.functional.binary_cross_entropy_with_logits(net(xt[b])[:, 0], yt[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval()


def score(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return net(x)[:, 0]


def lbrs_score(net, x, ref_x, ref_y, alpha, norm):
    """Differentiable g_mu(x) = g + alpha y_NN ||grad g||_* (torch), x (B, 1, 8, 8)."""
    x = x.requires_grad_(True) if not x.requires_grad else x
    g = score(net, x)
    (grad,) = torch.autograd.grad(g.sum(), x, create_graph=True)
    flat = grad.reshape(len(x), -1)
    s = flat.norm(dim=1) if norm == "l2" else flat.abs().sum(1)
    nn_idx = ((x.detach().reshape(len(x), 1, -1) - ref_x.reshape(1, len(ref_x), -1)) ** 2).sum(-1).argmin(1)
    return g + alpha * ref_y[nn_idx] * s


def ns_predict(net, x, sigma, mc, gen):
    if sigma == 0:
        return torch.sign(score(net, x)).detach()
    with torch.no_grad():
        votes = torch.zeros(len(x))
        for _ in range(mc // 50):
            noisy = x[:, None] + sigma * torch.randn((len(x), 50, *x.shape[1:]), generator=gen)
            votes += torch.sign(score(net, noisy.reshape(-1, *x.shape[1:])).reshape(len(x), 50)).sum(1)
    return torch.where(votes >= 0, 1.0, -1.0)


def pgd(loss_fn, x, y, eps, norm, steps=10):
    """Maximise loss_fn(x_adv, y) over the eps-ball (l2 / linf) intersected with [0, 1]."""
    if eps == 0:
        return x.clone()
    step = 2.5 * eps / steps
    adv = x.clone()
    for _ in range(steps):
        adv = adv.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(loss_fn(adv, y).sum(), adv)
        with torch.no_grad():
            if norm == "l2":
                gn = g.reshape(len(g), -1).norm(dim=1).clamp_min(1e-12).reshape(-1, 1, 1, 1)
                adv = adv + step * g / gn
                d = adv - x
                dn = d.reshape(len(d), -1).norm(dim=1).reshape(-1, 1, 1, 1)
                adv = x + d * torch.clamp(eps / dn.clamp_min(1e-12), max=1.0)
            else:
                adv = torch.min(torch.max(adv + step * g.sign(), x - eps), x + eps)
            adv = adv.clamp(0, 1)
    return adv.detach()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("runs/lbrs_digits"), help="output folder (under runs/)")
    p.add_argument("--seed", type=int, default=0, help="data split and training seed (default 0)")
    p.add_argument("--n-ref", type=int, default=10, help="reference points held out of training (default 10)")
    p.add_argument("--epochs", type=int, default=40, help="CNN training epochs (default 40)")
    p.add_argument("--mc", type=int, default=200, help="noise samples per sigma-NS prediction (default 200)")
    p.add_argument("--eot", type=int, default=16, help="noise samples per PGD step against sigma-NS (default 16)")
    p.add_argument("--max-test", type=int, default=-1, help="evaluate at most this many test images (-1: all)")
    args = p.parse_args(argv)
    if args.n_ref < 2 or args.n_ref % 2 or args.epochs < 1 or args.mc < 50 or args.eot < 1:
        raise SystemExit("--n-ref must be even >= 2, --epochs >= 1, --mc >= 50, --eot >= 1")
    torch.set_num_threads(1)
    (x_tr, y_tr), (x_ref, y_ref), (x_te, y_te) = load(args.seed, args.n_ref)
    if args.max_test >= 1:
        x_te, y_te = x_te[: args.max_test], y_te[: args.max_test]
    net = train_cnn(x_tr, y_tr, args.seed, args.epochs)
    for p_ in net.parameters():
        p_.requires_grad_(False)
    xt, yt = torch.as_tensor(x_te), torch.as_tensor(y_te, dtype=torch.float32)
    rx, ry = torch.as_tensor(x_ref), torch.as_tensor(y_ref, dtype=torch.float32)
    gen = torch.Generator().manual_seed(args.seed)
    print(f"train {len(x_tr)}, reference {len(x_ref)}, test {len(x_te)} (balanced)")

    def base_loss(a, y):
        return -y * score(net, a)

    def acc(pred):
        return float((pred == yt).float().mean())

    def lbrs_pred(a, alpha, norm):
        m = LocallyBiasedSmoothing(TorchScore(net, input_shape=(1, 8, 8)), x_ref, y_ref, alpha, norm)
        return torch.as_tensor(m.predict(a.detach().numpy()), dtype=torch.float32)

    def nn_pred(a):
        d2 = ((a.reshape(len(a), 1, -1) - rx.reshape(1, len(rx), -1)) ** 2).sum(-1)
        return ry[d2.argmin(1)]

    rows = []

    def record(method, param, norm, eps, attack, a):
        rows.append((method, param, norm, eps, attack, a))

    def ns_eval(sigma, norm, eps):
        adv_b = pgd(base_loss, xt, yt, eps, norm)
        record("sigma-NS", sigma, norm, eps, "base", acc(ns_predict(net, adv_b, sigma, args.mc, gen)))
        if sigma > 0:
            def ns_loss(a, y):
                z = a[:, None] + sigma * torch.randn((len(a), args.eot, *a.shape[1:]), generator=gen)
                s = torch.sigmoid(score(net, z.reshape(-1, *a.shape[1:])).reshape(len(a), args.eot)).mean(1)
                return -y * (s - 0.5)
            adv_s = pgd(ns_loss, xt, yt, eps, norm)
        else:
            adv_s = adv_b
        record("sigma-NS", sigma, norm, eps, "self", acc(ns_predict(net, adv_s, sigma, args.mc, gen)))

    def toward_references(eps, norm):
        """Candidates x + eps * direction to each reference point (l2: unit vector; linf: sign), clipped."""
        out = []
        for j in range(len(rx)):
            d = rx[j][None] - xt
            if norm == "l2":
                step = d / d.reshape(len(d), -1).norm(dim=1).clamp_min(1e-12).reshape(-1, 1, 1, 1)
            else:
                step = d.sign()
            out.append((xt + eps * step).clamp(0, 1))
        return out

    def lbrs_eval(alpha, norm, eps):
        adv_b = pgd(base_loss, xt, yt, eps, norm)
        record("alpha-LBRS", alpha, norm, eps, "base", acc(lbrs_pred(adv_b, alpha, norm)))
        # adaptive attack on f_mu: PGD through g_mu (NN index held per step), PGD through a soft-NN surrogate of
        # the oracle, and straight moves toward every reference point; a point counts as robust only if f_mu is
        # correct on every candidate
        d2 = ((xt.reshape(len(xt), 1, -1) - rx.reshape(1, len(rx), -1)) ** 2).sum(-1)
        tau = float(d2.median())

        def soft_loss(a, y):
            a = a.requires_grad_(True) if not a.requires_grad else a
            g = score(net, a)
            (grad,) = torch.autograd.grad(g.sum(), a, create_graph=True)
            flat = grad.reshape(len(a), -1)
            s = flat.norm(dim=1) if norm == "l2" else flat.abs().sum(1)
            w = torch.softmax(-((a.reshape(len(a), 1, -1) - rx.reshape(1, len(rx), -1)) ** 2).sum(-1) / tau * 20, 1)
            return -y * (g + alpha * (w @ ry) * s)

        cands = [xt, pgd(lambda a, y: -y * lbrs_score(net, a, rx, ry, alpha, norm), xt, yt, eps, norm),
                 pgd(soft_loss, xt, yt, eps, norm)] + (toward_references(eps, norm) if eps > 0 else [])
        ok = torch.ones(len(xt), dtype=torch.bool)
        for c in cands:
            ok &= lbrs_pred(c, alpha, norm) == yt
        record("alpha-LBRS", alpha, norm, eps, "self", float(ok.float().mean()))

    def nn_eval(norm, eps):
        adv_b = pgd(base_loss, xt, yt, eps, norm)
        record("1-NN", 0, norm, eps, "base", acc(nn_pred(adv_b)))
        r = data_radius(x_te.reshape(len(x_te), -1).astype(np.float64), x_ref.reshape(len(x_ref), -1)
                        .astype(np.float64), y_ref, norm)
        ok = (nn_pred(xt).numpy() == y_te) & (r > eps)
        record("1-NN", 0, norm, eps, "self (certified)", float(ok.mean()))

    sigmas = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5)
    alphas = (0.0, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 1000.0)
    for eps in (0.0, 0.5, 1.0):
        for s in sigmas:
            ns_eval(s, "l2", eps)
        for a in alphas:
            lbrs_eval(a, "l2", eps)
        nn_eval("l2", eps)
    eps_grid = {"l2": (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0), "linf": (0.02, 0.05, 0.1, 0.15, 0.2, 0.3)}
    for norm, grid in eps_grid.items():
        for eps in (0.0,) + grid:
            if norm == "l2" and eps in (0.0, 0.5, 1.0):
                continue  # done in the sweep above
            ns_eval(0.05, norm, eps)
            lbrs_eval(10.0, norm, eps)
            nn_eval(norm, eps)
    cnn_rows = {}
    for norm, grid in eps_grid.items():
        for eps in (0.0, 0.5, 1.0) + grid:
            cnn_rows[(norm, eps)] = acc(torch.sign(score(net, pgd(base_loss, xt, yt, eps, norm))).detach())

    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "results.tsv", "w") as f:
        print("method\tparam\tnorm\teps\tattack\taccuracy", file=f)
        for (norm, eps), a in sorted(cnn_rows.items()):
            print(f"CNN\t0\t{norm}\t{eps:g}\tbase\t{a:.4f}", file=f)
        for r in rows:
            print(f"{r[0]}\t{r[1]:g}\t{r[2]}\t{r[3]:g}\t{r[4]}\t{r[5]:.4f}", file=f)
    print((args.out / "results.tsv").read_text())
    plot(rows, cnn_rows, sigmas, alphas, eps_grid, args.out)
    return 0


def plot(rows, cnn_rows, sigmas, alphas, eps_grid, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def get(method, param, norm, eps, attack):
        for r in rows:
            if r[0] == method and r[1] == param and r[2] == norm and r[3] == eps and r[4] == attack:
                return r[5]
        return np.nan

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.3))
    ax = axes[0]
    xs = np.arange(len(sigmas))
    for eps, ls in ((0.0, "-"), (0.5, "--"), (1.0, ":")):
        for attack, c in (("base", "C0"), ("self", "C1")):
            if eps == 0 and attack == "self":
                continue
            ax.plot(xs, [get("sigma-NS", s, "l2", eps, attack) for s in sigmas], ls, color=c, marker="o", ms=3,
                    label=f"eps={eps:g}" + ("" if eps == 0 else f", PGD on {attack}"))
    ax.set_xticks(xs, [f"{s:g}" for s in sigmas])
    ax.set_xlabel("sigma (normal smoothing, same CNN)")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.02)
    ax.set_title("sigma-NS: clean and l2-PGD accuracy vs sigma")
    ax.legend(fontsize=7)
    ax = axes[1]
    xs = np.arange(len(alphas))
    for eps, ls in ((0.0, "-"), (0.5, "--"), (1.0, ":")):
        for attack, c in (("base", "C0"), ("self", "C1")):
            if eps == 0 and attack == "self":
                continue
            ax.plot(xs, [get("alpha-LBRS", a, "l2", eps, attack) for a in alphas], ls, color=c, marker="o", ms=3,
                    label=f"eps={eps:g}" + ("" if eps == 0 else f", PGD on {attack}"))
        ax.axhline(get("1-NN", 0, "l2", eps, "base"), color="C2", ls=ls, lw=1,
                   label=f"1-NN, eps={eps:g} (PGD on CNN)")
    ax.set_xticks(xs, [f"{a:g}" for a in alphas])
    ax.set_xlabel("alpha (LBRS bias, l2)")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.02)
    ax.set_title("alpha-LBRS: clean and l2-PGD accuracy vs alpha")
    ax.legend(fontsize=6)
    fig.suptitle("Binary digits (8 vs rest, 8x8), N = 10 reference points")
    fig.tight_layout()
    fig.savefig(out / "digits_sweep.png", dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.3))
    for ax, norm in zip(axes, ("l2", "linf")):
        grid = (0.0,) + tuple(sorted(set(eps_grid[norm]) | ({0.5, 1.0} if norm == "l2" else set())))
        ax.plot(grid, [cnn_rows.get((norm, e), np.nan) for e in grid], "k-", marker=".", label="CNN (PGD on CNN)")
        for method, param, c in (("sigma-NS", 0.05, "C0"), ("alpha-LBRS", 10.0, "C1"), ("1-NN", 0, "C2")):
            for attack, ls in (("base", "-"), ("self", "--"), ("self (certified)", "--")):
                ys = [get(method, param, norm, e, attack) for e in grid]
                if np.all(np.isnan(ys)):
                    continue
                name = {"sigma-NS": "sigma-NS (0.05)", "alpha-LBRS": "alpha-LBRS (10)", "1-NN": "1-NN"}[method]
                ax.plot(grid, ys, ls, color=c, marker=".", label=f"{name}, {attack}")
        ax.set_xlabel(f"attack radius eps ({norm})")
        ax.set_ylabel("accuracy")
        ax.set_ylim(0, 1.02)
        ax.set_title(f"{norm}-PGD (10 steps): attacked on base CNN (-) or on itself (--)")
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(out / "digits_eps.png", dpi=110)
    plt.close(fig)
    print(f"wrote {out / 'digits_sweep.png'}, {out / 'digits_eps.png'}")


if __name__ == "__main__":
    raise SystemExit(main())

"""Forward vs reverse KL, and Gaussian mixtures by maximum likelihood: the lecture's appendix.

Maximum likelihood minimises the *forward* KL(p || q) from the data
distribution p to the model q: q must put mass wherever p has some, so a
single Gaussian fitted to a two-mode mixture sits between the modes and
covers both (mode-covering; for a Gaussian q the optimum is moment matching).
The *reverse* KL(q || p) punishes q for mass where p has none, so a single
Gaussian locks onto one mode (mode-seeking) -- the behaviour of GANs that drop
modes, where maximum-likelihood models (VAEs) blur instead.

numpy, scipy and scikit-learn only (no Keras):

    python -m zoo.density                       # the numbers, as a table
    python -m zoo.density --plot docs/kl.png    # and the figure (PIL)

1-D: p = 0.6 N(2, 0.6^2) + 0.4 N(-2, 0.6^2); KL values by numerical
integration on a fine grid; the reverse-KL fit by minimising KL(q || p) over
(mean, log std) with the expectation under q by Gauss-Hermite quadrature,
from several starts (each mode is a local optimum). 2-D: 3,000 samples of a
three-component mixture, GMMs with 1..4 components fitted by EM
(`sklearn.mixture.GaussianMixture`), chosen by BIC; the single Gaussians of
both KLs for comparison.
"""

import argparse
import dataclasses
import json
import math
import sys

import numpy as np
from scipy import optimize, special


@dataclasses.dataclass(frozen=True)
class Mixture:
    """A Gaussian mixture: weights (k,), means (k, d), covariances (k, d, d)."""

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray

    @classmethod
    def of(cls, weights, means, covariances):
        means = np.asarray(means, np.float64)
        means = means[:, None] if means.ndim == 1 else means
        covariances = np.asarray(covariances, np.float64)
        if covariances.ndim == 1:  # 1-D variances
            covariances = covariances[:, None, None]
        return cls(np.asarray(weights, np.float64), means, covariances)

    def logpdf(self, x):
        """log p(x) for x of shape (n, d) (or (n,) in 1-D)."""
        x = np.asarray(x, np.float64)
        x = x[:, None] if x.ndim == 1 else x
        parts = [np.log(w) + gaussian_logpdf(x, m, c) for w, m, c in zip(self.weights, self.means, self.covariances)]
        return special.logsumexp(np.stack(parts), axis=0)

    def sample(self, n, rng):
        counts = rng.multinomial(n, self.weights)
        xs = [rng.multivariate_normal(m, c, size=k) for m, c, k in zip(self.means, self.covariances, counts)]
        return rng.permutation(np.concatenate(xs))

    def moments(self):
        """The mixture's mean and covariance: the forward-KL (moment-matching) Gaussian, in closed form."""
        mean = self.weights @ self.means
        second = sum(w * (c + np.outer(m, m)) for w, m, c in zip(self.weights, self.means, self.covariances))
        return mean, second - np.outer(mean, mean)


def gaussian_logpdf(x, mean, cov):
    """log N(x; mean, cov) for rows x (n, d)."""
    x, mean, cov = np.asarray(x, np.float64), np.asarray(mean, np.float64), np.atleast_2d(cov)
    d = mean.shape[-1]
    chol = np.linalg.cholesky(cov)
    solved = np.linalg.solve(chol, (x - mean).T)
    return -0.5 * (d * math.log(2 * math.pi) + np.sum(solved**2, axis=0)) - np.sum(np.log(np.diag(chol)))


def kl_gaussians(mean_p, cov_p, mean_q, cov_q):
    """KL(N(mean_p, cov_p) || N(mean_q, cov_q)), closed form."""
    mean_p, mean_q = np.atleast_1d(np.asarray(mean_p, np.float64)), np.atleast_1d(np.asarray(mean_q, np.float64))
    cov_p, cov_q = np.atleast_2d(cov_p).astype(np.float64), np.atleast_2d(cov_q).astype(np.float64)
    d = mean_p.shape[0]
    inv_q = np.linalg.inv(cov_q)
    diff = mean_q - mean_p
    _, logdet_p = np.linalg.slogdet(cov_p)
    _, logdet_q = np.linalg.slogdet(cov_q)
    return 0.5 * float(np.trace(inv_q @ cov_p) + diff @ inv_q @ diff - d + logdet_q - logdet_p)


def grid_kl(logp, logq, grid, cell):
    """KL(p || q) = sum p log(p / q) * cell over a grid of points (n, d): numerical integration."""
    lp, lq = logp(grid), logq(grid)
    p = np.exp(lp)
    return float(np.sum(p * (lp - lq)) * cell)


def grid_1d(low=-10.0, high=10.0, n=20001):
    x = np.linspace(low, high, n)
    return x[:, None], x[1] - x[0]


def grid_2d(low=-10.0, high=10.0, n=601):
    x = np.linspace(low, high, n)
    xx, yy = np.meshgrid(x, x, indexing="ij")
    return np.stack([xx.ravel(), yy.ravel()], axis=1), (x[1] - x[0]) ** 2


# -- the two fits of a single Gaussian --------------------------------------------------
def fit_forward(samples):
    """Maximum likelihood (= minimum forward KL from the data): one Gaussian by EM
    (`GaussianMixture(1)`, which for one component is the sample mean and covariance)."""
    from sklearn.mixture import GaussianMixture

    samples = np.asarray(samples, np.float64)
    samples = samples[:, None] if samples.ndim == 1 else samples
    gm = GaussianMixture(1, covariance_type="full", reg_covar=1e-9, random_state=0).fit(samples)
    return gm.means_[0], gm.covariances_[0]


def reverse_kl(mixture, mean, log_std, nodes=60):
    """KL(q || p) for q = N(mean, diag(exp(log_std))^2) and the mixture p, by Gauss-Hermite quadrature.

    KL(q || p) = -H(q) - E_q log p, H(q) = sum(log std) + d/2 log(2 pi e)."""
    mean, log_std = np.atleast_1d(mean), np.atleast_1d(log_std)
    d = mean.shape[0]
    t, w = np.polynomial.hermite_e.hermegauss(nodes)  # E f(Z), Z ~ N(0, 1) = sum w f(t) / sqrt(2 pi)
    w = w / math.sqrt(2 * math.pi)
    grids = np.meshgrid(*([t] * d), indexing="ij")
    weights = np.prod(np.meshgrid(*([w] * d), indexing="ij"), axis=0).ravel()
    z = np.stack([g.ravel() for g in grids], axis=1)
    x = mean + np.exp(log_std) * z
    entropy = np.sum(log_std) + 0.5 * d * math.log(2 * math.pi * math.e)
    return float(-entropy - weights @ mixture.logpdf(x))


def fit_reverse(mixture, starts):
    """Minimise KL(q || p) over diagonal Gaussians q from each start mean (std 1 at the start).

    Returns one (mean, std, KL) per start, best first: the local optima."""
    d = mixture.means.shape[1]
    found = []
    for start in starts:
        x0 = np.concatenate([np.atleast_1d(np.asarray(start, np.float64)), np.zeros(d)])
        result = optimize.minimize(lambda v: reverse_kl(mixture, v[:d], v[d:]), x0, method="Nelder-Mead",
                                   options={"xatol": 1e-7, "fatol": 1e-10, "maxiter": 20000, "maxfev": 40000})
        found.append((result.x[:d], np.exp(result.x[d:]), float(result.fun)))
    return sorted(found, key=lambda f: f[2])


def fit_gmms(samples, max_components=4, seed=0):
    """GMMs with 1..max_components by EM; [(k, model, BIC, mean log-likelihood)]."""
    from sklearn.mixture import GaussianMixture

    fits = []
    for k in range(1, max_components + 1):
        gm = GaussianMixture(k, covariance_type="full", n_init=3, random_state=seed).fit(samples)
        fits.append((k, gm, float(gm.bic(samples)), float(gm.score(samples))))
    return fits


# -- the demo ------------------------------------------------------------------------------
MIXTURE_1D = Mixture.of([0.6, 0.4], [2.0, -2.0], [0.36, 0.36])
MIXTURE_2D = Mixture.of([0.5, 0.3, 0.2], [[-3.0, 0.0], [3.0, 1.0], [0.0, 4.0]],
                        [[[1.0, 0.3], [0.3, 0.5]], [[0.6, -0.2], [-0.2, 1.0]], [[0.4, 0.0], [0.0, 0.4]]])


def demo(n_samples=3000, seed=0):
    """Every figure of the demo, as a JSON-able dict (and the fitted objects for the plot)."""
    rng = np.random.default_rng(seed)
    out, fits = {}, {}
    for name, mixture, (grid, cell), starts in (
        ("1d", MIXTURE_1D, grid_1d(), [[-2.5], [0.3], [2.5]]),
        ("2d", MIXTURE_2D, grid_2d(), [[-3.0, 0.0], [3.0, 1.0], [0.0, 4.0], [0.0, 1.0]]),
    ):
        samples = mixture.sample(n_samples, rng)
        f_mean, f_cov = fit_forward(samples)
        m_mean, m_cov = mixture.moments()
        reverse = fit_reverse(mixture, starts)
        r_mean, r_std, _ = reverse[0]
        r_cov = np.diag(r_std**2)
        logq_f = lambda x, m=f_mean, c=f_cov: gaussian_logpdf(x, m, c)  # noqa: E731
        logq_r = lambda x, m=r_mean, c=r_cov: gaussian_logpdf(x, m, c)  # noqa: E731
        entry = {
            "samples": n_samples,
            "forward_fit": {"mean": f_mean.tolist(), "cov": f_cov.tolist()},
            "moment_matching_closed_form": {"mean": m_mean.tolist(), "cov": m_cov.tolist()},
            "reverse_fit_local_optima": [{"mean": m.tolist(), "std": s.tolist(), "reverse_kl": kl} for m, s, kl in reverse],
            "kl": {
                "forward KL(p||q), q = forward fit": grid_kl(mixture.logpdf, logq_f, grid, cell),
                "forward KL(p||q), q = reverse fit": grid_kl(mixture.logpdf, logq_r, grid, cell),
                "reverse KL(q||p), q = forward fit": grid_kl(logq_f, mixture.logpdf, grid, cell),
                "reverse KL(q||p), q = reverse fit": grid_kl(logq_r, mixture.logpdf, grid, cell),
            },
        }
        if name == "2d":
            gmms = fit_gmms(samples, seed=seed)
            best = min(gmms, key=lambda f: f[2])
            entry["gmm_by_em"] = [{"components": k, "bic": bic, "mean_log_likelihood": ll} for k, _, bic, ll in gmms]
            entry["gmm_chosen_by_bic"] = {"components": best[0], "means": best[1].means_.tolist(),
                                          "weights": best[1].weights_.tolist()}
            entry["true_mixture_mean_log_likelihood"] = float(np.mean(mixture.logpdf(samples)))
            fits["gmm"] = best[1]
        out[name] = entry
        fits[name] = {"mixture": mixture, "samples": samples, "forward": (f_mean, f_cov), "reverse": (r_mean, r_cov)}
    return out, fits


# -- the figure (PIL only; the project does not depend on matplotlib) ---------------------
def plot(fits, path, width=1100, height=460):
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    colours = {"p": (0, 0, 0), "forward": (31, 119, 180), "reverse": (214, 39, 40), "gmm": (44, 160, 44)}
    pad, panel = 40, (width - 3 * 40) // 2

    # Left: the 1-D densities.
    x = np.linspace(-5, 5, 600)
    mixture = fits["1d"]["mixture"]
    curves = {
        "p": np.exp(mixture.logpdf(x)),
        "forward": np.exp(gaussian_logpdf(x[:, None], *fits["1d"]["forward"])),
        "reverse": np.exp(gaussian_logpdf(x[:, None], *fits["1d"]["reverse"])),
    }
    top = max(c.max() for c in curves.values()) * 1.05
    x0, y0, w, h = pad, pad, panel, height - 2 * pad
    draw.rectangle([x0, y0, x0 + w, y0 + h], outline=(180, 180, 180))
    for name, c in curves.items():
        pts = [(x0 + (xi + 5) / 10 * w, y0 + h - ci / top * h) for xi, ci in zip(x, c)]
        draw.line(pts, fill=colours[name], width=3)
    draw.text((x0, 10), "1-D: p = 0.6 N(2, .6^2) + 0.4 N(-2, .6^2)", fill=(0, 0, 0))
    labels = [("p (data)", "p"), ("forward KL / max likelihood: mode-covering", "forward"),
              ("reverse KL: mode-seeking", "reverse")]
    for i, (label, key) in enumerate(labels):
        draw.line([(x0 + 10, y0 + 14 + 16 * i), (x0 + 34, y0 + 14 + 16 * i)], fill=colours[key], width=3)
        draw.text((x0 + 40, y0 + 8 + 16 * i), label, fill=(0, 0, 0))

    # Right: 2-D samples, the GMM chosen by BIC and the two single Gaussians (2-sigma ellipses).
    x0 = 2 * pad + panel
    draw.rectangle([x0, y0, x0 + w, y0 + h], outline=(180, 180, 180))
    lo, hi = -7.0, 7.0

    def to_px(p):
        return (x0 + (p[0] - lo) / (hi - lo) * w, y0 + h - (p[1] - lo) / (hi - lo) * h)

    for p in fits["2d"]["samples"][:1500]:
        px, py = to_px(p)
        draw.point((px, py), fill=(150, 150, 150))

    def ellipse(mean, cov, colour):
        vals, vecs = np.linalg.eigh(cov)
        angles = np.linspace(0, 2 * np.pi, 120)
        circle = np.stack([np.cos(angles), np.sin(angles)], axis=1) * 2 * np.sqrt(vals)
        draw.line([to_px(mean + vecs @ c) for c in circle] + [to_px(mean + vecs @ circle[0])], fill=colour, width=3)

    gmm = fits["gmm"]
    for m, c in zip(gmm.means_, gmm.covariances_):
        ellipse(m, c, colours["gmm"])
    ellipse(*fits["2d"]["forward"], colours["forward"])
    ellipse(*fits["2d"]["reverse"], colours["reverse"])
    draw.text((x0, 10), f"2-D: GMM by EM ({len(gmm.means_)} components, BIC; green), single Gaussians (2 sigma)",
              fill=(0, 0, 0))
    img.save(path)
    return path


def _table(result):
    rows = []
    for dim in ("1d", "2d"):
        for key, value in result[dim]["kl"].items():
            rows.append((dim, key, f"{value:.4f}"))
    width = max(len(r[1]) for r in rows)
    lines = [f"| data | {'quantity'.ljust(width)} | nats   |", f"| ---- | {'-' * width} | ------ |"]
    lines += [f"| {d}   | {k.ljust(width)} | {v} |" for d, k, v in rows]
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m zoo.density", description=__doc__.split("\n\n")[0])
    p.add_argument("--plot", metavar="PNG", help="write the figure here")
    p.add_argument("--json", metavar="PATH", help="write every figure as JSON here")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    result, fits = demo(seed=args.seed)
    for dim in ("1d", "2d"):
        f, r = result[dim]["forward_fit"], result[dim]["reverse_fit_local_optima"]
        print(f"{dim}: forward (max likelihood) mean {np.round(f['mean'], 3).tolist()}, "
              f"cov {np.round(f['cov'], 3).tolist()}; reverse-KL local optima: "
              + "; ".join(f"mean {np.round(o['mean'], 3).tolist()} std {np.round(o['std'], 3).tolist()} "
                          f"KL {o['reverse_kl']:.4f}" for o in r))
    if "gmm_by_em" in result["2d"]:
        print("2d GMM by EM: " + ", ".join(f"k={g['components']} BIC {g['bic']:.0f}" for g in result["2d"]["gmm_by_em"])
              + f" -> {result['2d']['gmm_chosen_by_bic']['components']} components")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    if args.plot:
        print(f"wrote {plot(fits, args.plot)}")
    print(_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

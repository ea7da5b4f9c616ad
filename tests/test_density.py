"""zoo.density: the KL demo's pieces against closed forms (numpy/scipy/scikit-learn; no Keras)."""

import math
import subprocess
import sys

import numpy as np
import pytest
from scipy import optimize

from zoo import density


def test_kl_between_gaussians_closed_form_and_numerical_integration_agree():
    assert density.kl_gaussians([0.0], [[1.0]], [0.0], [[1.0]]) == pytest.approx(0.0, abs=1e-12)
    # 1-D: log(s2/s1) + (s1^2 + (m1 - m2)^2) / (2 s2^2) - 1/2
    want = math.log(2.0 / 0.5) + (0.25 + 1.0) / (2 * 4.0) - 0.5
    assert density.kl_gaussians([1.0], [[0.25]], [0.0], [[4.0]]) == pytest.approx(want, rel=1e-12)
    grid, cell = density.grid_1d()
    numeric = density.grid_kl(lambda x: density.gaussian_logpdf(x, [1.0], [[0.25]]),
                              lambda x: density.gaussian_logpdf(x, [0.0], [[4.0]]), grid, cell)
    assert numeric == pytest.approx(want, rel=1e-6)
    # 2-D with correlation, on the 2-D grid.
    cov_p, cov_q = np.array([[1.0, 0.4], [0.4, 0.8]]), np.array([[2.0, -0.3], [-0.3, 1.5]])
    grid, cell = density.grid_2d()
    numeric = density.grid_kl(lambda x: density.gaussian_logpdf(x, [0.5, -0.5], cov_p),
                              lambda x: density.gaussian_logpdf(x, [0.0, 0.0], cov_q), grid, cell)
    assert numeric == pytest.approx(density.kl_gaussians([0.5, -0.5], cov_p, [0.0, 0.0], cov_q), rel=1e-4)


def test_the_mixture_density_integrates_to_one():
    grid, cell = density.grid_1d()
    assert float(np.exp(density.MIXTURE_1D.logpdf(grid)).sum() * cell) == pytest.approx(1.0, abs=1e-9)
    grid, cell = density.grid_2d()
    assert float(np.exp(density.MIXTURE_2D.logpdf(grid)).sum() * cell) == pytest.approx(1.0, abs=1e-4)


def test_max_likelihood_is_moment_matching():
    """EM's single Gaussian is the sample mean and (ML) covariance, and over many samples the
    mixture's moments, which are the exact minimiser of the forward KL(p || q)."""
    rng = np.random.default_rng(0)
    x = density.MIXTURE_1D.sample(200_000, rng)
    mean, cov = density.fit_forward(x)
    np.testing.assert_allclose(mean, x.mean(axis=0), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(cov, np.cov(x.T, ddof=0).reshape(1, 1), rtol=1e-6)
    m, c = density.MIXTURE_1D.moments()
    assert m[0] == pytest.approx(0.6 * 2 - 0.4 * 2) and c[0, 0] == pytest.approx(0.36 + 4 - 0.4**2)
    np.testing.assert_allclose(mean, m, atol=0.02)
    np.testing.assert_allclose(cov, c, rtol=0.01)
    # Minimising the forward KL numerically lands on the closed form.
    grid, cell = density.grid_1d()

    def forward_kl(v):
        return density.grid_kl(density.MIXTURE_1D.logpdf,
                               lambda g: density.gaussian_logpdf(g, [v[0]], [[math.exp(2 * v[1])]]), grid, cell)

    best = optimize.minimize(forward_kl, [1.0, 0.0], method="BFGS", options={"gtol": 1e-9})
    assert best.x[0] == pytest.approx(m[0], abs=1e-4)
    assert math.exp(2 * best.x[1]) == pytest.approx(c[0, 0], rel=1e-4)


def test_reverse_kl_locks_onto_one_mode():
    """Separated modes: the reverse-KL optimum is a component itself, and KL(N_k || p) -> -log w_k."""
    fits = density.fit_reverse(density.MIXTURE_1D, [[-2.5], [2.5]])
    (m1, s1, kl1), (m2, s2, kl2) = fits
    assert m1[0] == pytest.approx(2.0, abs=0.01) and s1[0] == pytest.approx(0.6, rel=0.02)
    assert kl1 == pytest.approx(-math.log(0.6), abs=0.005)
    assert m2[0] == pytest.approx(-2.0, abs=0.01) and kl2 == pytest.approx(-math.log(0.4), abs=0.005)
    # The quadrature agrees with the grid integral.
    grid, cell = density.grid_1d()
    numeric = density.grid_kl(lambda x: density.gaussian_logpdf(x, m1, [[s1[0] ** 2]]), density.MIXTURE_1D.logpdf,
                              grid, cell)
    assert numeric == pytest.approx(kl1, abs=1e-5)


def test_reverse_kl_of_a_single_gaussian_target_finds_it():
    target = density.Mixture.of([1.0], [[1.0, -1.0]], [[[0.5, 0.0], [0.0, 2.0]]])
    mean, std, kl = density.fit_reverse(target, [[0.0, 0.0]])[0]
    np.testing.assert_allclose(mean, [1.0, -1.0], atol=1e-3)
    np.testing.assert_allclose(std**2, [0.5, 2.0], rtol=1e-3)
    assert kl == pytest.approx(0.0, abs=1e-6)


def test_em_recovers_the_2d_mixture_and_bic_picks_three():
    rng = np.random.default_rng(1)
    x = density.MIXTURE_2D.sample(3000, rng)
    fits = density.fit_gmms(x)
    best = min(fits, key=lambda f: f[2])
    assert best[0] == 3
    order = np.argsort(-best[1].weights_)
    np.testing.assert_allclose(best[1].weights_[order], [0.5, 0.3, 0.2], atol=0.03)
    np.testing.assert_allclose(best[1].means_[order], density.MIXTURE_2D.means, atol=0.15)
    # The likelihood grows with the components (nested models, EM near its optimum).
    lls = [f[3] for f in fits]
    assert lls[2] > lls[1] > lls[0]


def test_the_command_writes_the_figure_and_the_numbers(tmp_path):
    png, js = tmp_path / "kl.png", tmp_path / "kl.json"
    done = subprocess.run([sys.executable, "-m", "zoo.density", "--plot", str(png), "--json", str(js)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import json

    result = json.loads(js.read_text())
    for dim in ("1d", "2d"):
        kl = result[dim]["kl"]
        # Each fit wins its own objective: max likelihood the forward KL, the reverse fit the reverse KL.
        assert kl["forward KL(p||q), q = forward fit"] < kl["forward KL(p||q), q = reverse fit"]
        assert kl["reverse KL(q||p), q = reverse fit"] < kl["reverse KL(q||p), q = forward fit"]
    assert "reverse KL(q||p), q = reverse fit" in done.stdout

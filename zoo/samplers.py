"""Samplers of codes for the decoders of autoencoders and VAEs.

A plain autoencoder has no prior: decoding N(0, I) codes shows only what its
decoder does far from the data. A VAE has one, but its aggregate posterior
(the codes of the training set) never matches N(0, I) exactly, so some prior
samples land where no training code lies. Fitting a density to the training
codes and sampling from it fixes both (the "ex-post density estimation" of
Ghosh et al. 2020).
"""

import numpy as np


class GaussianMixtureSampler:
    """A Gaussian mixture fitted by maximum likelihood (EM) to training codes.

    Args:
        n_components: int. Mixture components. Defaults to 10.
        covariance_type: str. "full", "diag", "tied" or "spherical" (as in
            scikit-learn). Defaults to "full".
        max_iter: int. EM iterations. Defaults to 200.
        seed: int or None. Seeds the EM initialisation. Defaults to 0.

    Example:
    >>> sampler = GaussianMixtureSampler(10).fit_model(ae, train_images)
    >>> images = ae.decode(sampler.sample(64, seed=0))
    """

    def __init__(self, n_components=10, covariance_type="full", max_iter=200, seed=0):
        if isinstance(n_components, bool) or not isinstance(n_components, int) or n_components < 1:
            raise ValueError(f"n_components={n_components!r} must be an integer >= 1.")
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.max_iter = max_iter
        self.seed = seed
        self.mixture = None

    def fit(self, codes):
        """Fit the mixture to codes (n, latent_dim). Returns self."""
        from sklearn.mixture import GaussianMixture

        codes = np.asarray(codes, np.float64)
        if codes.ndim != 2:
            raise ValueError(f"codes must be a 2-D array (n, latent_dim); got shape {codes.shape}.")
        if len(codes) < self.n_components:
            raise ValueError(f"{len(codes)} codes cannot fit {self.n_components} mixture components.")
        self.mixture = GaussianMixture(
            self.n_components, covariance_type=self.covariance_type, max_iter=self.max_iter,
            reg_covar=1e-5, random_state=self.seed,
        ).fit(codes)
        return self

    def fit_model(self, model, images, batch_size=1000):
        """Fit to the codes of `images` under `model` (a VAE's posterior means). Returns self."""
        from zoo.latent import encode_codes

        return self.fit(encode_codes(model, images, batch_size))

    def _fitted(self):
        if self.mixture is None:
            raise ValueError("this GaussianMixtureSampler is not fitted yet: call fit(codes) or fit_model(model, images).")
        return self.mixture

    @property
    def latent_dim(self):
        return int(self._fitted().means_.shape[1])

    def sample(self, n, seed=None):
        """n codes (n, latent_dim) float32, in random order. `seed` makes them reproducible."""
        mixture = self._fitted()
        rng = np.random.default_rng(seed)
        components = rng.choice(self.n_components, size=int(n), p=mixture.weights_)
        cholesky = _covariance_cholesky(mixture)
        eps = rng.standard_normal((int(n), mixture.means_.shape[1]))
        codes = mixture.means_[components] + np.einsum("nij,nj->ni", cholesky[components], eps)
        return codes.astype(np.float32)

    def log_likelihood(self, codes):
        """Mean log-density of codes under the mixture (nats per code)."""
        return float(self._fitted().score(np.asarray(codes, np.float64)))

    def generate(self, model, n, seed=None, batch_size=1000):
        """n images in [0, 1]: sampled codes through `model.decode`."""
        from zoo.latent import decode_codes

        return decode_codes(model, self.sample(n, seed), batch_size)


def _covariance_cholesky(mixture):
    """Per-component lower Cholesky factors (k, d, d) of the covariances, for any covariance type."""
    k, d = mixture.means_.shape
    cov = mixture.covariances_
    if mixture.covariance_type == "full":
        full = cov
    elif mixture.covariance_type == "tied":
        full = np.broadcast_to(cov, (k, d, d))
    elif mixture.covariance_type == "diag":
        full = np.stack([np.diag(c) for c in cov])
    else:  # spherical
        full = np.stack([c * np.eye(d) for c in cov])
    return np.linalg.cholesky(full)

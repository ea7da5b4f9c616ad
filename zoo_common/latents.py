"""Paths through latent space, with numpy alone (shared by the Keras side and
the TensorFlow-free runtime)."""

import numpy as np

METHODS = ("linear", "spherical", "slerp")


def interpolate_latents(z0, z1, steps, method="linear"):
    """`steps` latents from `z0` to `z1` (both ends included, exactly), shape (steps, d), float32.

    `"linear"`: (1 - t) z0 + t z1, right between the codes of an autoencoder.
    `"spherical"` (alias `"slerp"`; Shoemake 1985): along the great circle,
    the norm interpolated linearly, so for Gaussian latents the path stays at
    the typical radius ~sqrt(d) instead of crossing the unlikely region near 0
    (White 2016). (Anti-)parallel or zero ends have no unique great circle and
    get the straight line.
    """
    a, b = np.asarray(z0, np.float64).ravel(), np.asarray(z1, np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"interpolate: the two latents differ in shape: {a.shape} and {b.shape}.")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 2:
        raise ValueError(f"steps={steps!r} must be an integer >= 2 (both ends are included).")
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not supported; allowed values are 'linear', 'spherical' and 'slerp'.")
    t = np.linspace(0.0, 1.0, int(steps))[:, None]
    path = (1.0 - t) * a + t * b
    norm_a, norm_b = np.linalg.norm(a), np.linalg.norm(b)
    if method != "linear" and norm_a > 0.0 and norm_b > 0.0:
        unit_a, unit_b = a / norm_a, b / norm_b
        omega = np.arccos(np.clip(unit_a @ unit_b, -1.0, 1.0))
        if np.sin(omega) >= 1e-6:
            direction = (np.sin((1.0 - t) * omega) * unit_a + np.sin(t * omega) * unit_b) / np.sin(omega)
            path = direction * ((1.0 - t) * norm_a + t * norm_b)
    path = path.astype(np.float32)
    path[0], path[-1] = a, b  # exact ends, no rounding
    return path

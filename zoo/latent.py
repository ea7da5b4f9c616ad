"""Latent-space tools: interpolation, arithmetic on class means, the 2-D data
manifold and a scatter of codes.

Each tool returns its images as a NumPy array (float32 in [0, 1], NHWC, or a
uint8 picture for the scatter) and, when asked, writes them as a PNG grid
(`path=`) and/or logs them to TensorBoard (`log_dir=`, `step=`). The models
are duck-typed: anything with `encode` (an AE's codes, or a VAE's (mean,
log_var) of which the mean is used) and `decode` (or a GAN's `generate`).
"""

import numpy as np

from zoo_common.latents import interpolate_latents

# Ten well-separated colours (RGB) for the classes in `code_scatter`.
PALETTE = (
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
)


def encode_codes(model, images, batch_size=1000):
    """Codes of `images` as float32 (n, latent_dim): an AE's codes, a VAE's posterior means."""
    import keras

    images = np.asarray(images, np.float32)
    parts = []
    for start in range(0, len(images), batch_size):
        parts.append(keras.ops.convert_to_numpy(model.embed(images[start : start + batch_size])))
    return np.concatenate(parts).astype(np.float32)


def decode_codes(model, codes, batch_size=1000):
    """Images in [0, 1] (n, H, W, C) for codes (n, latent_dim)."""
    import keras

    codes = np.asarray(codes, np.float32)
    parts = [keras.ops.convert_to_numpy(model.generate(codes[i : i + batch_size])) for i in range(0, len(codes), batch_size)]
    return np.concatenate(parts).astype(np.float32)


def log_image(log_dir, tag, image, step=0):
    """Write one picture (H, W, C) uint8, or float in [0, 1], to a TensorBoard event file in `log_dir`."""
    import tensorflow as tf

    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
    if image.ndim == 2:
        image = image[..., None]
    writer = tf.summary.create_file_writer(str(log_dir))
    with writer.as_default():
        tf.summary.image(tag, image[None], step=step)
    writer.flush()
    writer.close()


def _emit(images, ncols, path, log_dir, tag, step):
    if path is None and log_dir is None:
        return
    from zoo_common.grid import make_grid, save_png

    grid = make_grid(images, ncols=ncols)
    if path is not None:
        save_png(grid, path)
    if log_dir is not None:
        log_image(log_dir, tag, grid, step)


def interpolate_codes(z_a, z_b, steps=8, method="linear"):
    """`steps` codes from z_a to z_b (both ends included), shape (steps, d).

    `"linear"`: (1 - t) z_a + t z_b. `"spherical"` (slerp, Shoemake 1985):
    along the great circle, with the norm interpolated linearly: for Gaussian
    latents this keeps intermediate codes at the typical radius ~sqrt(d),
    where a straight line would pass through the unlikely region near 0
    (White 2016). See `zoo_common.latents.interpolate_latents`.
    """
    return interpolate_latents(z_a, z_b, steps, method)


def _batch(images):
    images = np.asarray(images, np.float32)
    return images[None] if images.ndim == 3 else images


def interpolate(model, images_a, images_b, steps=8, method="linear", path=None, log_dir=None, step=0):
    """Decode the path between the codes of `images_a` and `images_b` (one row per pair).

    Args:
        images_a, images_b: one image (H, W, C) each, or batches (n, H, W, C).
        steps: int. Images per row, both end points included.
        method: str. "linear" or "spherical" (for the Gaussian latents of a VAE).
    Returns float32 (n * steps, H, W, C), row by row.
    """
    images_a, images_b = _batch(images_a), _batch(images_b)
    if images_a.shape != images_b.shape:
        raise ValueError(f"interpolate: images_a {images_a.shape} and images_b {images_b.shape} differ in shape.")
    codes_a, codes_b = encode_codes(model, images_a), encode_codes(model, images_b)
    path_codes = np.concatenate([interpolate_codes(a, b, steps, method) for a, b in zip(codes_a, codes_b)])
    images = decode_codes(model, path_codes)
    _emit(images, steps, path, log_dir, f"latent/interpolation_{method}", step)
    return images


def class_means(model, images, labels):
    """(classes, mean code of each class): classes sorted, means (n_classes, latent_dim)."""
    codes, labels = encode_codes(model, images), np.asarray(labels).ravel()
    classes = np.unique(labels)
    return classes, np.stack([codes[labels == c].mean(axis=0) for c in classes])


def latent_arithmetic(model, images, labels, source, target, n=4, strengths=(0.0, 0.25, 0.5, 0.75, 1.0),
                      path=None, log_dir=None, step=0):
    """Move codes of class `source` towards class `target` by the difference of class means.

    Row 0 decodes `mean[source] + s * (mean[target] - mean[source])`; rows
    1..n decode `code + s * (mean[target] - mean[source])` for the first `n`
    images of class `source`, for each strength `s` (0 is the unchanged code).
    Returns float32 ((n + 1) * len(strengths), H, W, C), row by row.
    """
    labels = np.asarray(labels).ravel()
    classes, means = class_means(model, images, labels)
    index = {c: i for i, c in enumerate(classes.tolist())}
    for name, value in (("source", source), ("target", target)):
        if value not in index:
            raise ValueError(f"{name}={value!r} is not a class of the labels; classes are {classes.tolist()}.")
    offset = means[index[target]] - means[index[source]]
    chosen = np.asarray(images, np.float32)[labels == source][:n]
    starts = np.concatenate([means[index[source]][None], encode_codes(model, chosen)])
    strengths = np.asarray(strengths, np.float32)
    codes = (starts[:, None, :] + strengths[None, :, None] * offset[None, None, :]).reshape(-1, starts.shape[1])
    result = decode_codes(model, codes)
    _emit(result, len(strengths), path, log_dir, f"latent/arithmetic_{source}_to_{target}", step)
    return result


def manifold_grid(model, n=15, quantile_range=(0.05, 0.95), path=None, log_dir=None, step=0):
    """The learned data manifold of a 2-D latent model (Kingma & Welling 2014, fig. 4).

    Decodes an n x n grid of codes evenly spaced in probability: z_i =
    Phi^-1(q_i) for q evenly spaced in `quantile_range`, so each cell covers
    the same prior mass of N(0, I). z1 grows left to right, z2 bottom to top.
    Returns float32 (n * n, H, W, C), row by row from the top.
    """
    from scipy.stats import norm

    if model.latent_dim != 2:
        raise ValueError(f"manifold_grid needs a 2-D latent space; this model has latent_dim={model.latent_dim}.")
    low, high = quantile_range
    if not 0.0 < low < high < 1.0:
        raise ValueError(f"quantile_range={quantile_range!r} must satisfy 0 < low < high < 1.")
    values = norm.ppf(np.linspace(low, high, int(n)))
    z1, z2 = np.meshgrid(values, values[::-1])
    images = decode_codes(model, np.stack([z1.ravel(), z2.ravel()], axis=1))
    _emit(images, int(n), path, log_dir, "latent/manifold", step)
    return images


def scatter_positions(codes, size, margin):
    """Pixel (x, y) of each 2-D code in a size x size picture, with the same
    scale on both axes; codes of higher dimension are first projected on their
    two principal components."""
    codes = np.asarray(codes, np.float64)
    if codes.ndim != 2 or codes.shape[1] < 2:
        raise ValueError(f"codes must have shape (n, d) with d >= 2; got {codes.shape}.")
    if codes.shape[1] > 2:
        centred = codes - codes.mean(axis=0)
        codes = centred @ np.linalg.svd(centred, full_matrices=False)[2][:2].T
    # One scale for both axes, so distances in the picture are distances between codes.
    low, high = codes.min(axis=0), codes.max(axis=0)
    extent = float((high - low).max()) or 1.0
    scaled = (codes - (low + high) / 2.0) / extent + 0.5
    x = margin + scaled[:, 0] * (size - 1 - 2 * margin)
    y = size - 1 - margin - scaled[:, 1] * (size - 1 - 2 * margin)  # z2 grows upwards
    return np.rint(np.stack([x, y], axis=1)).astype(np.int64)


def code_scatter(codes, labels, size=480, point=2, path=None, log_dir=None, step=0):
    """A scatter of codes coloured by label (`PALETTE`, cycling) on white, with a legend.

    Returns the picture as uint8 (size, size, 3).
    """
    from PIL import Image, ImageDraw

    labels = np.asarray(labels).ravel()
    if len(labels) != len(codes):
        raise ValueError(f"{len(codes)} codes but {len(labels)} labels.")
    margin = 4 + point
    positions = scatter_positions(codes, size, margin)
    picture = Image.new("RGB", (size, size), (255, 255, 255))
    draw = ImageDraw.Draw(picture)
    classes = np.unique(labels)
    for (x, y), label in zip(positions, labels):
        colour = PALETTE[int(np.searchsorted(classes, label)) % len(PALETTE)]
        draw.rectangle([x - point + 1, y - point + 1, x + point - 1, y + point - 1], fill=colour)
    for i, label in enumerate(classes):
        draw.rectangle([4, 4 + 12 * i, 12, 12 + 12 * i], fill=PALETTE[i % len(PALETTE)])
        draw.text((16, 2 + 12 * i), str(label), fill=(0, 0, 0))
    image = np.asarray(picture, np.uint8)
    if path is not None:
        from zoo_common.grid import save_png

        save_png(image, path)
    if log_dir is not None:
        log_image(log_dir, "latent/codes", image, step)
    return image

"""zoo.latent: interpolation (linear and spherical), latent arithmetic, the 2-D
manifold grid and the code scatter, with PNGs and a TensorBoard event file read back."""

import glob

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from scipy.stats import norm

import zoo
from zoo_common.grid import make_grid
from zoo import latent


def _decode(model, codes):
    return keras.ops.convert_to_numpy(model.decode(np.asarray(codes, np.float32)))


def _tensorboard_images(log_dir):
    """{tag: [decoded uint8 image, ...]} from the event files in log_dir."""
    from tensorboard.compat.proto import event_pb2

    found = {}
    for path in glob.glob(f"{log_dir}/events.out.tfevents.*"):
        for record in tf.data.TFRecordDataset(path):
            event = event_pb2.Event.FromString(record.numpy())
            for value in event.summary.value:
                png = value.tensor.string_val[2]  # [width, height, encoded image]
                found.setdefault(value.tag, []).append(tf.io.decode_png(png).numpy())
    return found


@pytest.fixture(scope="module")
def vae():
    return zoo.VAE((8, 8, 1), 2, filters=(4,), hidden_dim=16, seed=0)


def test_linear_interpolation_has_the_ends_and_even_steps():
    path = latent.interpolate_codes([0.0, 2.0], [4.0, -2.0], steps=5)
    np.testing.assert_allclose(path, [[0, 2], [1, 1], [2, 0], [3, -1], [4, -2]], atol=1e-6)


def test_spherical_interpolation_follows_the_great_circle():
    a, b = np.array([3.0, 0.0, 0.0]), np.array([0.0, 0.0, 1.0])
    path = latent.interpolate_codes(a, b, steps=7, method="spherical").astype(np.float64)
    np.testing.assert_allclose(path[0], a, atol=1e-6)
    np.testing.assert_allclose(path[-1], b, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), np.linspace(3.0, 1.0, 7), atol=1e-5)
    angles = np.arctan2(path[:, 2], path[:, 0])  # in the plane of a and b, evenly spaced
    np.testing.assert_allclose(angles, np.linspace(0.0, np.pi / 2, 7), atol=1e-5)
    assert np.all(path[:, 1] == 0.0)
    # The straight line dips towards 0, which is improbable for high-dimensional Gaussian codes.
    linear = latent.interpolate_codes(a, b, steps=7)
    assert np.linalg.norm(linear[3]) < np.linalg.norm(path[3])


def test_spherical_interpolation_of_parallel_codes_goes_straight():
    path = latent.interpolate_codes([1.0, 1.0], [2.0, 2.0], steps=3, method="spherical")
    np.testing.assert_allclose(path, [[1, 1], [1.5, 1.5], [2, 2]], atol=1e-6)


def test_interpolation_rejects_bad_arguments():
    with pytest.raises(ValueError, match="'linear', 'spherical'"):
        latent.interpolate_codes([0.0], [1.0], method="cubic")
    with pytest.raises(ValueError, match="steps=1"):
        latent.interpolate_codes([0.0], [1.0], steps=1)
    with pytest.raises(ValueError, match="differ in shape"):
        latent.interpolate_codes([0.0], [1.0, 2.0])


def test_interpolate_decodes_the_path_writes_a_png_and_logs_to_tensorboard(vae, digits, tmp_path):
    a, b = digits[0][:2], digits[0][2:4]
    images = latent.interpolate(vae, a, b, steps=6, method="spherical", path=tmp_path / "interp.png",
                                log_dir=tmp_path / "logs", step=3)
    assert images.shape == (12, 8, 8, 1)
    mean_a, mean_b = (keras.ops.convert_to_numpy(vae.encode(x)[0]) for x in (a, b))
    np.testing.assert_allclose(images[0], _decode(vae, mean_a[:1])[0], atol=1e-5)
    np.testing.assert_allclose(images[11], _decode(vae, mean_b[1:])[0], atol=1e-5)
    expected = make_grid(images, ncols=6)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "interp.png")), expected[..., 0])
    logged = _tensorboard_images(tmp_path / "logs")
    np.testing.assert_array_equal(logged["latent/interpolation_spherical"][0], expected)


def test_latent_arithmetic_moves_codes_by_the_difference_of_class_means(vae, digits, tmp_path):
    images, labels = digits[0][:400], digits[1][:400]
    classes, means = latent.class_means(vae, images, labels)
    codes = latent.encode_codes(vae, images)
    np.testing.assert_allclose(means[3], codes[labels == 3].mean(axis=0), rtol=1e-5)
    grid = latent.latent_arithmetic(vae, images, labels, source=1, target=7, n=3, strengths=(0.0, 0.5, 1.0),
                                    path=tmp_path / "arith.png")
    assert grid.shape == (12, 8, 8, 1) and (tmp_path / "arith.png").exists()
    offset = means[7] - means[1]
    np.testing.assert_allclose(grid[0], _decode(vae, means[1:2])[0], atol=1e-5)   # the class mean itself
    np.testing.assert_allclose(grid[2], _decode(vae, means[7:8])[0], atol=1e-5)   # mean + full offset = target mean
    first_one = codes[labels == 1][0]
    np.testing.assert_allclose(grid[3], _decode(vae, first_one[None])[0], atol=1e-5)
    np.testing.assert_allclose(grid[4], _decode(vae, (first_one + 0.5 * offset)[None])[0], atol=1e-5)
    with pytest.raises(ValueError, match="target=11"):
        latent.latent_arithmetic(vae, images, labels, source=1, target=11)


def test_manifold_grid_decodes_evenly_spaced_gaussian_quantiles(vae, tmp_path):
    grid = latent.manifold_grid(vae, n=4, quantile_range=(0.1, 0.9), path=tmp_path / "manifold.png")
    assert grid.shape == (16, 8, 8, 1)
    values = norm.ppf(np.linspace(0.1, 0.9, 4))
    # Row 0 is the top (largest z2); column 0 the left (smallest z1).
    np.testing.assert_allclose(grid[0], _decode(vae, [[values[0], values[3]]])[0], atol=1e-5)
    np.testing.assert_allclose(grid[6], _decode(vae, [[values[2], values[2]]])[0], atol=1e-5)
    np.testing.assert_allclose(grid[15], _decode(vae, [[values[3], values[0]]])[0], atol=1e-5)
    assert Image.open(tmp_path / "manifold.png").size == make_grid(grid, ncols=4).shape[1::-1]
    with pytest.raises(ValueError, match="latent_dim=3"):
        latent.manifold_grid(zoo.VAE((8, 8, 1), 3, filters=(4,), hidden_dim=8))


def test_code_scatter_puts_each_code_at_its_place_in_its_colour(tmp_path):
    codes = np.array([[0.0, 0.0], [1.0, 1.0], [1.0, 0.0]])
    picture = latent.code_scatter(codes, [0, 1, 2], size=100, path=tmp_path / "codes.png", log_dir=tmp_path / "tb")
    assert picture.shape == (100, 100, 3) and picture.dtype == np.uint8
    low, high = 6, 93  # margin = 4 + point, z2 grows upwards
    assert tuple(picture[high, low]) == latent.PALETTE[0]
    assert tuple(picture[low, high]) == latent.PALETTE[1]
    assert tuple(picture[high, high]) == latent.PALETTE[2]
    assert tuple(picture[50, 50]) == (255, 255, 255)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "codes.png").convert("RGB")), picture)
    np.testing.assert_array_equal(_tensorboard_images(tmp_path / "tb")["latent/codes"][0], picture)


def test_code_scatter_projects_wider_codes_on_their_principal_plane():
    rng = np.random.default_rng(0)
    # 3-D codes spread along x and z only: the projection keeps both classes apart.
    codes = np.concatenate([rng.normal([-5, 0, 0], 0.1, (20, 3)), rng.normal([5, 0, 3], 0.1, (20, 3))])
    positions = latent.scatter_positions(codes, 100, 6)
    assert np.ptp(positions[:20], axis=0).max() < 10 and np.ptp(positions[20:], axis=0).max() < 10
    assert np.abs(positions[:20].mean(axis=0) - positions[20:].mean(axis=0)).max() > 80
    # Equal scales: codes spread 10 along x and 1 along y stay flat, centred vertically.
    flat = latent.scatter_positions(np.array([[0.0, 0.0], [10.0, 1.0]]), 101, 0)
    np.testing.assert_array_equal(flat, [[0, 55], [100, 45]])
    with pytest.raises(ValueError, match="3 codes but 2 labels"):
        latent.code_scatter(codes[:3], [0, 1])

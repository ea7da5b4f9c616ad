"""zoo.data: every source kind gives float32 NHWC images in [0, 1] with int64
labels; the options (seed, binarize, image_size, cache, take, holdout) do what
they promise; bad input gives one clear message."""

import gzip
import struct
import tarfile
import warnings
from pathlib import Path

import numpy as np
import pytest

import zoo
from zoo import data

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


def check_batch(ds, shape, labelled=True):
    images, labels = next(iter(ds))
    images, labels = images.numpy(), labels.numpy()
    assert images.dtype == np.float32 and images.shape[1:] == shape
    assert labels.dtype == np.int64 and labels.shape == images.shape[:1]
    assert 0.0 <= images.min() and images.max() <= 1.0
    assert ds.image_shape == shape
    if labelled:
        assert labels.min() >= 0
    return images, labels


def epoch(ds):
    images, labels = zip(*ds.as_numpy_iterator())
    return np.concatenate(images), np.concatenate(labels)


# -- digits and the pipeline options -------------------------------------------------


def test_digits_shapes_labels_and_take():
    ds = data.load("digits", batch_size=16, seed=0, take=40)
    images, labels = check_batch(ds, (8, 8, 1))
    assert images.shape[0] == 16 and ds.num_examples == 40 and ds.class_names == [str(d) for d in range(10)]
    all_images, _ = epoch(ds)
    assert len(all_images) == 40
    # The grey levels of the digits (k / 16) survive the pipeline exactly.
    reference, _ = data.digits_arrays("train")
    np.testing.assert_array_equal(epoch(data.load("digits", shuffle=False, take=40))[0], reference[:40])
    test_images, _ = data.arrays("digits", "test")
    assert test_images.shape == (359, 8, 8, 1)


def test_seed_gives_the_same_order_and_each_epoch_reshuffles():
    a = data.load("digits", batch_size=64, seed=1)
    b = data.load("digits", batch_size=64, seed=1)
    first_a, second_a, first_b = epoch(a)[0], epoch(a)[0], epoch(b)[0]
    np.testing.assert_array_equal(first_a, first_b)
    assert not np.array_equal(first_a, second_a)
    assert not np.array_equal(first_a, epoch(data.load("digits", batch_size=64, seed=2))[0])
    # A reshuffle is a permutation: the same images, in another order.
    np.testing.assert_allclose(np.sort(first_a.reshape(-1)), np.sort(second_a.reshape(-1)))


def test_dynamic_binarisation_draws_pixels_with_their_grey_level_each_epoch():
    grey, _ = data.digits_arrays("train")
    ds = data.load("digits", shuffle=False, binarize=True, seed=0, batch_size=256)
    first, second = epoch(ds)[0], epoch(ds)[0]
    assert set(np.unique(first)) <= {0.0, 1.0}
    assert not np.array_equal(first, second)  # a fresh draw every epoch
    assert np.all(first[grey == 0.0] == 0.0) and np.all(first[grey == 1.0] == 1.0)
    # E[x_bin] = p: the mean over ~92,000 pixels is within a few standard errors.
    assert abs(first.mean() - grey.mean()) < 0.01
    middle = (grey > 0.4) & (grey < 0.6)
    assert 0.4 < first[middle].mean() < 0.6
    again = epoch(data.load("digits", shuffle=False, binarize=True, seed=0, batch_size=256))[0]
    np.testing.assert_array_equal(first, again)  # seeded: reproducible


def test_for_model_sets_binarisation_size_and_channels():
    assert set(np.unique(check_batch(data.load("digits", for_model="vae", seed=0), (8, 8, 1))[0])) <= {0.0, 1.0}
    assert len(np.unique(check_batch(data.load("digits", for_model="ae", seed=0), (8, 8, 1))[0])) > 2
    vae = zoo.VAE((16, 16, 3), latent_dim=2, likelihood="gaussian")
    images, _ = check_batch(data.load("digits", for_model=vae, seed=0), (16, 16, 3))
    assert len(np.unique(images)) > 2  # a Gaussian VAE gets grey levels
    np.testing.assert_array_equal(images[..., 0], images[..., 2])  # grey -> RGB
    bernoulli = zoo.VAE((8, 8, 1), latent_dim=2)
    assert set(np.unique(check_batch(data.load("digits", for_model=bernoulli), (8, 8, 1))[0])) <= {0.0, 1.0}
    with pytest.raises(ValueError, match=r"does not match the model's image_shape \(16, 16, 3\)"):
        data.load("digits", for_model=vae, image_size=32)


def test_image_size_must_suit_the_models_and_the_error_suggests_sizes():
    check_batch(data.load("digits", image_size=12, for_model="ae"), (12, 12, 1))
    with pytest.raises(ValueError, match=r"gives 10x10 images.*divisible by 4.*--image-size 64.*\(8, 8\)"):
        data.load("digits", image_size=10, for_model="vae")
    check_batch(data.load("digits", image_size=(10, 6)), (10, 6, 1))  # no model: any size
    with pytest.raises(ValueError, match="image_size="):
        data.load("digits", image_size=(0, 8))


def test_cache_in_memory_and_in_files(tmp_path):
    plain = epoch(data.load("digits", shuffle=False, take=100))[0]
    np.testing.assert_array_equal(epoch(data.load("digits", shuffle=False, take=100, cache=True))[0], plain)
    prefix = tmp_path / "cache" / "digits"
    prefix.parent.mkdir()
    ds = data.load("digits", shuffle=False, take=100, cache=str(prefix))
    np.testing.assert_array_equal(epoch(ds)[0], plain)
    assert any(p.name.startswith("digits-train") for p in prefix.parent.iterdir())


def test_bad_arguments_and_unknown_sources():
    with pytest.raises(ValueError, match="split='valid' is not available for 'digits'"):
        data.load("digits", split="valid")
    with pytest.raises(ValueError, match="batch_size=0 must be an integer >= 1"):
        data.load("digits", batch_size=0)
    with pytest.raises(ValueError, match="for_model='gan' is not supported"):
        data.load("digits", for_model="gan")


# -- idx:DIR ------------------------------------------------------------------------


def write_idx(path, array):
    array = np.asarray(array, np.uint8)
    raw = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape) + array.tobytes()
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(raw)


@pytest.fixture
def idx_dir(tmp_path):
    rng = np.random.default_rng(0)
    train, test = rng.integers(0, 256, (50, 12, 12)), rng.integers(0, 256, (20, 12, 12))
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", train)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.arange(50) % 10)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", test)  # uncompressed works too
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.arange(20) % 3)
    return tmp_path, train, test


def test_idx_reads_images_and_labels_exactly(idx_dir):
    directory, train, test = idx_dir
    ds = data.load(f"idx:{directory}", batch_size=8, seed=0)
    check_batch(ds, (12, 12, 1))
    images, labels = data.arrays(f"idx:{directory}", "train")
    np.testing.assert_allclose(images[..., 0], train / 255.0, atol=1e-7)
    np.testing.assert_array_equal(labels, np.arange(50) % 10)
    images, labels = data.arrays(f"idx:{directory}", "test", limit=5)
    np.testing.assert_allclose(images[..., 0], test[:5] / 255.0, atol=1e-7)
    np.testing.assert_array_equal(labels, [0, 1, 2, 0, 1])


def test_idx_without_labels_gives_minus_one(tmp_path):
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((4, 8, 8)))
    _, labels = data.arrays(f"idx:{tmp_path}")
    np.testing.assert_array_equal(labels, [-1] * 4)


def test_idx_bad_input_messages(tmp_path, idx_dir):
    with pytest.raises(FileNotFoundError, match=r"idx:.*nowhere: no such directory"):
        data.load(f"idx:{tmp_path / 'nowhere'}")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="has no train images file: expected train-images-idx3-ubyte.gz"):
        data.load(f"idx:{empty}")
    directory, _, _ = idx_dir
    path = directory / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte is truncated or corrupt.*\(20, 12, 12\)"):
        data.load(f"idx:{directory}", "test")
    path.write_bytes(b"\x89PNG not idx at all")
    with pytest.raises(ValueError, match="is not an IDX file of unsigned bytes"):
        data.load(f"idx:{directory}", "test")
    write_idx(directory / "train-labels-idx1-ubyte.gz", np.zeros(7))
    with pytest.raises(ValueError, match="holds \\(7,\\) labels for 50 images"):
        data.load(f"idx:{directory}")


@pytest.mark.skipif(not (SHARED / "mnist").is_dir(), reason="../shared/datasets/mnist is not on this machine")
def test_idx_on_the_shared_mnist():
    ds = data.load(f"idx:{SHARED / 'mnist'}", batch_size=128, seed=0, for_model="vae")
    images, _ = check_batch(ds, (28, 28, 1))
    assert set(np.unique(images)) <= {0.0, 1.0} and ds.num_examples == 60000
    test_images, test_labels = data.arrays(f"idx:{SHARED / 'mnist'}", "test")
    assert test_images.shape == (10000, 28, 28, 1)
    np.testing.assert_array_equal(test_labels[:8], [7, 2, 1, 0, 4, 1, 4, 9])  # the first t10k digits
    assert 0.12 < test_images.mean() < 0.14


# -- folder:DIR ---------------------------------------------------------------------


def save(path, array, fmt=None):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, np.uint8)).save(path, format=fmt)
    return path


def test_folder_classes_mixed_sizes_and_resize(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(6):
        save(tmp_path / "cats" / f"{i}.png", rng.integers(0, 256, (10 + i, 12, 3)))
        save(tmp_path / "dogs" / "nested" / f"{i}.jpg", rng.integers(0, 256, (20, 30, 3)))
    save(tmp_path / "loose.png", rng.integers(0, 256, (16, 16)))  # grey, no class
    ds = data.load(f"folder:{tmp_path}", batch_size=64, shuffle=False, holdout=0.01)
    assert ds.class_names == ["cats", "dogs"]
    images, labels = epoch(ds)
    assert images.shape == (13, 64, 64, 3)  # mixed sizes -> 64x64, colour wins
    assert sorted(labels.tolist()) == [-1] + [0] * 6 + [1] * 6
    check_batch(data.load(f"folder:{tmp_path}", image_size=(8, 12), holdout=0.01), (8, 12, 3), labelled=False)
    check_batch(data.load(f"folder:{tmp_path}", channels=1, image_size=8, holdout=0.01), (8, 8, 1), labelled=False)


def test_folder_centre_crop_keeps_the_middle(tmp_path):
    wide = np.zeros((20, 40), np.uint8)
    wide[:, 10:30] = 255  # white square in the middle, black sides
    save(tmp_path / "train" / "wide.png", wide)
    save(tmp_path / "test" / "tall.png", wide.T)
    for split in ("train", "test"):
        images, _ = data.arrays(f"folder:{tmp_path}", split, image_size=8)
        assert images.shape == (1, 8, 8, 1) and images.min() > 0.99  # the crop dropped the black sides
    images, _ = data.arrays(f"folder:{tmp_path}", "train", image_size=(8, 16))  # same aspect: nothing cropped
    assert images[0, :, 0].max() < 0.01 and images[0, :, 8].min() > 0.99


def test_folder_labels_mean_the_same_class_in_every_split(tmp_path):
    for split, classes in (("train", "abc"), ("test", "ac")):  # no "b" in the test split
        for name in classes:
            save(tmp_path / split / name / "x.png", np.full((4, 4), 10 * "abc".index(name)))
    ds = data.load(f"folder:{tmp_path}", "test", shuffle=False)
    assert ds.class_names == ["a", "b", "c"]
    images, labels = epoch(ds)
    np.testing.assert_array_equal(labels, [0, 2])
    np.testing.assert_allclose(images[:, 0, 0, 0] * 255, [0, 20], atol=1e-4)


def test_folder_skips_unreadable_files_with_a_count(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(4):
        save(tmp_path / f"ok{i}.png", rng.integers(0, 256, (8, 8)))
    (tmp_path / "a_broken.png").write_bytes(b"this is no image")
    truncated = save(tmp_path / "b_truncated.jpg", rng.integers(0, 256, (64, 64)))
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    save(tmp_path / "c_tiff.png", rng.integers(0, 256, (8, 8)), fmt="TIFF")  # PNG by name only
    with pytest.warns(UserWarning, match=r"skipped 3 unreadable image file\(s\) of 7 checked; first: .*a_broken.png"):
        ds = data.load(f"folder:{tmp_path}", holdout=0.01, shuffle=False)
    assert ds.skipped_files == 3
    images, labels = epoch(ds)
    assert images.shape == (4, 8, 8, 1) and ds.class_names is None and set(labels) == {-1}


def test_folder_bad_input_messages(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"folder:.*missing: no such directory"):
        data.load(f"folder:{tmp_path / 'missing'}")
    (tmp_path / "notes.txt").write_text("no images here")
    with pytest.raises(ValueError, match=r"holds no image files \(.png, .jpg"):
        data.load(f"folder:{tmp_path}")
    (tmp_path / "bad.png").write_bytes(b"garbage")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="none of its 1 image files could be read"):
            data.load(f"folder:{tmp_path}", holdout=0.01)
    with pytest.raises(ValueError, match="is a directory: write 'folder:"):
        data.load(str(tmp_path))


def test_folder_holdout_is_a_fixed_disjoint_split(tmp_path):
    for i in range(60):
        save(tmp_path / f"{i:02d}.png", np.full((4, 4), 4 * i))
    train, _ = data.arrays(f"folder:{tmp_path}", "train", holdout=0.25)
    test, _ = data.arrays(f"folder:{tmp_path}", "test", holdout=0.25)
    ids = lambda images: set(np.rint(images[:, 0, 0, 0] * 255 / 4).astype(int).tolist())  # noqa: E731
    assert ids(train).isdisjoint(ids(test)) and ids(train) | ids(test) == set(range(60))
    assert 5 <= len(test) <= 25
    assert ids(data.arrays(f"folder:{tmp_path}", "test", holdout=0.25)[0]) == ids(test)


@pytest.mark.skipif(not (SHARED / "cifar10-jpeg").is_dir(), reason="../shared/datasets/cifar10-jpeg is not on this machine")
def test_folder_on_the_shared_cifar10_jpegs(tmp_path):
    with tarfile.open(SHARED / "cifar10-jpeg" / "test.tar.gz") as tar:
        tar.extractall(tmp_path, filter="data")
    ds = data.load(f"folder:{tmp_path}/test", batch_size=64, seed=0, take=300)
    images, labels = check_batch(ds, (32, 32, 3))
    assert ds.class_names[:3] == ["airplane", "automobile", "bird"] and len(ds.class_names) == 10
    assert ds.num_examples == 300 and images.std() > 0.1


# -- TFDS -----------------------------------------------------------------------------


@pytest.fixture
def mock_tfds(monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")
    # mock_data replaces the download; the reachability probe before it is outside the machine too.
    monkeypatch.setattr(data, "_can_download", lambda: True)
    with tfds.testing.mock_data(num_examples=24):
        yield


def test_tfds_datasets_through_mock_data(mock_tfds):
    ds = data.load("mnist", batch_size=8, seed=0)
    _, labels = check_batch(ds, (28, 28, 1))
    assert labels.max() <= 9 and len(ds.class_names) == 10
    check_batch(data.load("cifar10", "test", batch_size=8), (32, 32, 3))
    check_batch(data.load("tfds:fashion_mnist", batch_size=8, for_model="vae"), (28, 28, 1))
    ds = data.load("celeb_a", batch_size=8, image_size=64, for_model="dcgan")
    _, labels = check_batch(ds, (64, 64, 3), labelled=False)
    assert set(labels) == {-1} and ds.class_names is None


def test_tfds_size_unknown_and_non_image_messages(mock_tfds):
    with pytest.raises(ValueError, match=r"TFDS dataset 'celeb_a' gives 218x178 images.*--image-size 64.*\(216, 176\)"):
        data.load("celeb_a", for_model="vae")
    with pytest.raises(ValueError, match=r"unknown dataset 'mnistt'.*Did you mean 'mnist'.*'idx:DIR', 'folder:DIR'"):
        data.load("mnistt")
    with pytest.raises(ValueError, match="the TFDS dataset 'imdb_reviews' has no image feature"):
        data.load("imdb_reviews")


def test_tfds_not_downloaded_offline_names_the_dataset_and_the_alternatives(tmp_path, monkeypatch):
    pytest.importorskip("tensorflow_datasets")
    monkeypatch.setattr(data, "_can_download", lambda: False)
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    with pytest.raises(ValueError) as err:
        data.load("fashion_mnist")
    message = str(err.value)
    assert f"the TFDS dataset 'fashion_mnist' is not in {tmp_path}" in message
    assert "cannot reach storage.googleapis.com" in message
    for alternative in ("--data-dir DIR", "TFDS_DATA_DIR", "'idx:DIR'", "'folder:DIR'"):
        assert alternative in message
    with pytest.raises(ValueError, match=r"not in /nonexistent/tfds and download=False \(--no-download\)"):
        data.load("mnist", data_dir="/nonexistent/tfds", download=False)

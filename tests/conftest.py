import os
import pathlib

import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SHARED_DATASETS = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "datasets"

# The longest files run first: pytest-xdist hands out files (and classes) in collection order,
# and a long one handed out last would run alone at the end while the other worker idles.
LONGEST_FIRST = ("test_backend_matrix.py", "test_backends.py", "test_distribute.py", "test_guarantees.py")


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order


@pytest.fixture(scope="session")
def digits():
    """The bundled scikit-learn digits, train split: (images (N, 8, 8, 1) in [0, 1], labels)."""
    from zoo.data import digits_arrays

    return digits_arrays("train")


@pytest.fixture(scope="session")
def shared_datasets():
    if not SHARED_DATASETS.is_dir():
        pytest.skip(f"reference datasets not found at {SHARED_DATASETS}")
    return SHARED_DATASETS

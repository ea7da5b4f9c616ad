import os
import pathlib

import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SHARED_DATASETS = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


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

import os
import pathlib

import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# A process the tests start that crashes (SIGSEGV in native code) prints its Python stack on stderr,
# which the failing assertion shows: a CI log then says where it crashed.
os.environ.setdefault("PYTHONFAULTHANDLER", "1")


def _set_test_process_env():
    """Give each pytest-xdist worker its share of the cores, for itself and the processes it starts,
    and compile XLA (JAX) programs without LLVM's optimisation passes.

    TensorFlow, PyTorch and XLA each size their thread pools to every core of the machine; two
    workers doing so on two cores oversubscribe them. Measured on the 2-core CI machine, the JAX and
    PyTorch backend-matrix runs side by side took 893 s and 496 s with the default pools and 646 s
    and 219 s with one thread each.

    Most of a JAX test's time is XLA compiling the many small programs of a Keras model (75 compiles,
    41 of the 57 s of one denoising test); the tests' models are tiny, so running unoptimised code
    costs less than optimising it: the JAX matrix run alone took 678 s at XLA's default level and
    387 s at --xla_backend_optimization_level=0. Users' runs keep XLA's defaults. A variable the
    caller already set is left as it is.
    """
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    threads = max(1, (os.cpu_count() or 1) // workers)
    if "XLA_FLAGS" not in os.environ:
        single = " --xla_cpu_multi_thread_eigen=false" if workers > 1 and threads == 1 else ""
        os.environ["XLA_FLAGS"] = "--xla_backend_optimization_level=0" + single
    if workers > 1:
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS"):
            os.environ.setdefault(name, str(threads))


_set_test_process_env()

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

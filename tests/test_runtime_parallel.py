"""export.runtime.OnnxGenerator's batch parallelism: a large batch split across
cores gives the images of one onnxruntime call bit for bit, on as many threads
as asked, while small batches stay one call on one thread."""

import os
import threading
import time

import numpy as np
import pytest

import zoo
from export import to_onnx
from export import runtime
from export.runtime import OnnxGenerator


@pytest.fixture(scope="module")
def onnx_path(tmp_path_factory):
    model = zoo.DCGAN((16, 16, 3), 8, generator_filters=(8, 4), discriminator_filters=(4, 8), kernel_size=3, seed=0)
    return to_onnx(model, tmp_path_factory.mktemp("onnx") / "dcgan.onnx", dataset="noise", allow_untrained=True).path


class CallLog:
    """Wraps a generator's onnxruntime call: records each call's batch and thread, and the most calls in flight at once.

    `delay` makes each call last long enough that calls which can overlap do.
    """

    def __init__(self, gen, delay=0.0):
        self.run, self.delay = gen._run, delay
        self.sizes, self.threads, self.in_flight, self.most = [], set(), 0, 0
        self.lock = threading.Lock()
        gen._run = self

    def __call__(self, z, labels=None):
        with self.lock:
            self.sizes.append(len(z))
            self.threads.add(threading.get_ident())
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
        try:
            time.sleep(self.delay)
            return self.run(z, labels)
        finally:
            with self.lock:
                self.in_flight -= 1


def one_call(path, z):
    """The images of one raw onnxruntime session call on the whole batch."""
    import onnxruntime as ort

    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return session.run(["images"], {"z": z})[0]


@pytest.mark.parametrize("threads", [2, 3])
@pytest.mark.parametrize("n", [16, 17, 64, 301])
def test_a_split_batch_equals_one_call_exactly(onnx_path, threads, n):
    gen = OnnxGenerator(onnx_path, threads=threads)
    z = gen.sample_latents(n, seed=n)
    log = CallLog(gen)
    images = gen.generate(z)
    assert len(log.sizes) > 1 and max(log.sizes) < n  # it really was split
    np.testing.assert_array_equal(images, one_call(onnx_path, z))
    np.testing.assert_array_equal(gen.generate(z, batch_size=7), images)
    np.testing.assert_array_equal(gen.sample(n, seed=5), OnnxGenerator(onnx_path, threads=1).sample(n, seed=5))


def test_the_thread_count_is_honoured(onnx_path):
    gen = OnnxGenerator(onnx_path, threads=3)
    assert gen.threads == 3
    assert gen._session.get_session_options().intra_op_num_threads == 1  # one thread per call
    log = CallLog(gen, delay=0.05)
    z = gen.sample_latents(96, seed=0)
    images = gen.generate(z)
    assert log.most == 3 and len(log.threads) == 3  # three calls at once, never more
    assert sum(log.sizes) == 96 and max(log.sizes) == gen.piece_size(96) == 16
    np.testing.assert_array_equal(images, one_call(onnx_path, z))


def test_the_default_is_the_usable_cores(onnx_path):
    expected = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert OnnxGenerator(onnx_path).threads == expected


@pytest.mark.parametrize("n", [1, 2, 15])
def test_small_batches_are_one_call_on_the_callers_thread(onnx_path, n):
    gen = OnnxGenerator(onnx_path, threads=4)
    assert gen.piece_size(n) == n
    log = CallLog(gen)
    gen.generate(gen.sample_latents(n, seed=0))
    assert log.sizes == [n] and log.threads == {threading.get_ident()}
    assert gen._pool is None  # no thread was even started


def test_one_thread_never_splits(onnx_path):
    gen = OnnxGenerator(onnx_path, threads=1)
    log = CallLog(gen)
    gen.generate(gen.sample_latents(300, seed=0))
    assert log.sizes == [300] and log.threads == {threading.get_ident()}


def test_chunking_and_memory_stay_bounded(onnx_path, monkeypatch):
    gen = OnnxGenerator(onnx_path, threads=2)
    monkeypatch.setattr(runtime, "CHUNK_BYTES", 40 * 4 * 16 * 16 * 3)  # chunk_size() = 40 images
    assert gen.chunk_size() == 40
    log = CallLog(gen, delay=0.01)
    chunks = [len(c) for c in gen.iter_samples(100, seed=3)]
    assert chunks == [40, 40, 20]  # iter_samples still yields whole chunks ...
    assert max(log.sizes) <= 20 and log.most <= 2  # ... each computed as pieces, at most 2 at once
    log.sizes.clear()
    z = gen.sample_latents(100, seed=3)
    images = gen.generate(z, batch_size=10)  # an explicit batch_size caps every call
    assert max(log.sizes) <= 10 and sum(log.sizes) == 100
    np.testing.assert_array_equal(images, one_call(onnx_path, z))
    np.testing.assert_array_equal(np.concatenate(list(gen.iter_samples(100, seed=3))), gen.sample(100, seed=3))


def test_an_error_in_a_worker_reaches_the_caller(onnx_path):
    gen = OnnxGenerator(onnx_path, threads=2)
    run, main = gen._run, threading.get_ident()

    def failing(z, labels=None):
        if threading.get_ident() != main:
            raise RuntimeError("worker failed")
        time.sleep(0.02)  # leaves the worker time to take a piece
        return run(z, labels)

    gen._run = failing
    with pytest.raises(RuntimeError, match="worker failed"):
        gen.generate(gen.sample_latents(64, seed=0))


@pytest.mark.parametrize("threads", [0, -1, 1.5, True, "2"])
def test_a_bad_thread_count_is_refused(onnx_path, threads):
    with pytest.raises(ValueError, match="threads="):
        OnnxGenerator(onnx_path, threads=threads)

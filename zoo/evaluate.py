"""Offline evaluation of the zoo's models: likelihood, reconstruction against
PCA, sample quality (domain FID/KID, Inception FID when its weights load),
mode coverage and clustering of codes.

The metric maths lives in `zoo.metrics`; the feature space of FID/KID and the
coverage check is `zoo.classifier.DomainClassifier`. `evaluate_run` is what
`zoo evaluate RUN_DIR` runs.

Conventions:
- Bernoulli VAE likelihoods are in nats per image, on test images binarised
  once with a fixed seed (pixel ~ Bernoulli(grey level): "dynamically
  binarised MNIST", the protocol of Burda et al. 2016).
- Gaussian VAE likelihoods are in bits per dimension of the 8-bit data: test
  images are dequantised, x = (round(255 g) + u) / 256 with u ~ U[0, 1), and
  bits/dim = (NLL + D ln 256) / (D ln 2), where NLL is the negative
  log-density of x on [0, 1]^D; the D ln 256 converts it to a density on the
  [0, 256)^D scale, which upper-bounds the discrete NLL of the 8-bit image.
"""

import errno
import math
import os
import sys
import time

import numpy as np

from zoo import metrics

DEFAULT_K = 5000


class Progress:
    """Progress of one evaluation stage, for a person at a terminal and for a log.

    On a terminal (stdout is a tty) a `keras.utils.Progbar`; otherwise one
    line on stderr as the stage starts and one per `every` percent done, e.g.
    `evaluate: IWAE k=5000: 30% (3000/10000 images, 41 s)`. Disabled, it
    does nothing, so library calls stay silent by default.

    Args:
        stage: str. What runs (the line's prefix).
        total: int or None. Units of work (None: a stage without a count).
        unit: str. What the units are. Defaults to "images".
        enabled: bool. Report at all. Defaults to True.
        every: int. Percent between two log lines. Defaults to 10.
    """

    def __init__(self, stage, total=None, unit="images", enabled=True, every=10, stream=None):
        self.stage, self.total, self.unit, self.enabled, self.every = stage, total, unit, enabled, every
        self.done, self._start, self._next_percent = 0, time.monotonic(), every
        self._stream = stream or sys.stderr
        self._bar = None
        if not enabled:
            return
        what = f" ({total:,} {unit})" if total else ""
        print(f"evaluate: {stage}{what}", file=self._stream, flush=True)
        if total and sys.stdout.isatty():
            import keras

            self._bar = keras.utils.Progbar(total, unit_name=unit.rstrip("s") or "step")

    def advance(self, count):
        """Record `count` more units done."""
        if not self.enabled or not self.total:
            return
        self.done = min(self.total, self.done + int(count))
        if self._bar is not None:
            self._bar.update(self.done)
            return
        percent = 100 * self.done // self.total
        if percent >= self._next_percent:
            seconds = time.monotonic() - self._start
            print(f"evaluate: {self.stage}: {percent}% ({self.done:,}/{self.total:,} {self.unit}, {seconds:.0f} s)",
                  file=self._stream, flush=True)
            self._next_percent = (percent // self.every + 1) * self.every


def _progress(progress, stage, total=None, unit="images"):
    return Progress(stage, total, unit, enabled=bool(progress))


def binarize(images, seed=0):
    """Stochastic binarisation: each pixel ~ Bernoulli(its grey level in [0, 1])."""
    images = np.asarray(images, np.float32)
    return (np.random.default_rng(seed).random(images.shape, dtype=np.float32) < images).astype(np.float32)


def dequantize(images, seed=0):
    """[0, 1] images from 8-bit data -> (round(255 x) + u) / 256, u ~ U[0, 1)."""
    images = np.asarray(images, np.float32)
    levels = np.rint(np.clip(images, 0.0, 1.0) * 255.0)
    return ((levels + np.random.default_rng(seed).random(images.shape, dtype=np.float32)) / 256.0).astype(np.float32)


def bits_per_dim(nll_nats, n_dims, n_levels=256):
    """(NLL + D ln n_levels) / (D ln 2): nats of a [0, 1]-scale density -> bits/dim of the 8-bit data."""
    return (nll_nats + n_dims * math.log(n_levels)) / (n_dims * math.log(2.0))


def _compiled(fn):
    """`fn` compiled for inference the way the running Keras backend does it
    (tf.function, jax.jit; torch without autograd)."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, reduce_retracing=True)
    if backend == "jax":
        import jax

        return jax.jit(fn)
    if backend == "torch":
        import torch

        return torch.no_grad()(fn)
    return fn


def _require_likelihood(model):
    if not getattr(model, "has_likelihood", False):
        raise ValueError(
            f"{type(model).__name__} defines no likelihood (has_likelihood is False); log p(x) estimates need a VAE."
        )


def iwae_nll(model, images, k=DEFAULT_K, max_batch=4096, seed=0, progress=False):
    """-log p(x) per image by the importance-weighted bound of Burda et al. (2016):

        log p(x) >= log (1/k) sum_i p(x, z_i) / q(z_i|x),  z_i ~ q(z|x),

    tight as k grows (k=1 is the ELBO). `model` is any genzoo model with
    `has_likelihood` (its `log_importance_weights` gives log p(x, z) - log
    q(z|x)); it runs on any Keras backend. The k samples run through the
    decoder in batches of about `max_batch`; the log-sum-exp is done in
    float64. `progress`: report it (see `Progress`), in image-samples.

    Returns float64 array (n,) of -log p(x) estimates in nats.
    """
    from scipy.special import logsumexp

    import keras

    _require_likelihood(model)
    images = np.asarray(images, np.float32)
    k = int(k)
    if k < 1:
        raise ValueError(f"k={k!r} must be >= 1.")
    k_chunk = min(k, max_batch)
    images_per_call = max(1, max_batch // k_chunk)
    log_weights = _compiled(model.log_importance_weights)
    rng = np.random.default_rng(seed)
    report = _progress(progress, f"-log p(x) by IWAE, k={k:,} on {len(images):,} images", len(images) * k, "samples")
    results = []
    for start in range(0, len(images), images_per_call):
        batch = images[start : start + images_per_call]
        chunk_lse = []
        for chunk_start in range(0, k, k_chunk):
            size = min(k_chunk, k - chunk_start)
            eps = rng.standard_normal((size, len(batch), model.latent_dim), dtype=np.float32)
            log_w = np.asarray(keras.ops.convert_to_numpy(log_weights(batch, eps)), np.float64)
            chunk_lse.append(logsumexp(log_w, axis=0))
            report.advance(size * len(batch))
        results.append(logsumexp(np.stack(chunk_lse), axis=0) - math.log(k))
    return -np.concatenate(results)


def negative_elbo(model, images, batch_size=500, seed=0):
    """-ELBO per image (nats): -log p(x|z) for one z ~ q(z|x) plus the analytic KL to N(0, I)."""
    import keras
    from keras import ops

    from zoo import losses

    _require_likelihood(model)

    def per_image(batch, eps):
        mean, log_var = model.encode(batch)
        z = mean + ops.exp(0.5 * log_var) * eps
        return losses.gaussian_kl(mean, log_var) - model.log_likelihood(batch, model.decoder(z, training=False))

    per_image = _compiled(per_image)
    images = np.asarray(images, np.float32)
    rng = np.random.default_rng(seed)
    values = []
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size]
        eps = rng.standard_normal((len(batch), model.latent_dim), dtype=np.float32)
        values.append(np.asarray(keras.ops.convert_to_numpy(per_image(batch, eps)), np.float64))
    return np.concatenate(values)


def likelihood(model, test_images, k=DEFAULT_K, n_images=None, seed=0, progress=False):
    """The VAE's test likelihood figures, in the convention of its `likelihood`.

    Bernoulli: `negative_elbo` and `iwae_nll` in nats on binarised images.
    Gaussian: the same quantities in bits/dim on dequantised images.
    """
    images = np.asarray(test_images, np.float32)[:n_images]
    gaussian = getattr(model, "likelihood", "bernoulli") == "gaussian"
    data = dequantize(images, seed) if gaussian else binarize(images, seed)
    _progress(progress, f"-ELBO on {len(data):,} images")
    elbo = negative_elbo(model, data, seed=seed)
    nll = iwae_nll(model, data, k=k, seed=seed, progress=progress)
    result = {"k": int(k), "n_images": int(len(data)), "seed": seed,
              "data": "dequantized 8-bit" if gaussian else "binarized (fixed seed)",
              "negative_elbo_nats": float(elbo.mean()), "iwae_nll_nats": float(nll.mean()),
              "iwae_nll_stderr": float(nll.std(ddof=1) / math.sqrt(len(nll))) if len(nll) > 1 else None}
    if gaussian:
        n_dims = int(np.prod(images.shape[1:]))
        result["negative_elbo_bits_per_dim"] = bits_per_dim(result["negative_elbo_nats"], n_dims)
        result["iwae_nll_bits_per_dim"] = bits_per_dim(result["iwae_nll_nats"], n_dims)
        if result["iwae_nll_stderr"] is not None:  # a spread scales by 1 / (D ln 2); the offset drops out
            result["iwae_nll_stderr_bits_per_dim"] = result["iwae_nll_stderr"] / (n_dims * math.log(2.0))
    return result


def reconstruction_vs_pca(model, train_images, test_images, batch_size=1000):
    """Mean squared error per pixel on held-out images: the model (codes are
    the posterior means for a VAE) next to PCA with as many components as the
    code has dimensions, fitted on `train_images` (its reconstructions clipped
    to [0, 1], as the model's are by the sigmoid)."""
    from sklearn.decomposition import PCA

    from zoo.latent import decode_codes, encode_codes

    test = np.asarray(test_images, np.float32)
    recon = decode_codes(model, encode_codes(model, test, batch_size), batch_size)
    model_mse = float(np.mean((recon - test) ** 2))
    flat_train = np.asarray(train_images, np.float32).reshape(len(train_images), -1)
    pca = PCA(n_components=model.latent_dim, random_state=0).fit(flat_train)
    pca_recon = np.clip(pca.inverse_transform(pca.transform(test.reshape(len(test), -1))), 0.0, 1.0)
    pca_mse = float(np.mean((pca_recon - test.reshape(len(test), -1)) ** 2))
    return {"code_size": int(model.latent_dim), "model_mse": model_mse, "pca_mse": pca_mse,
            "model_over_pca": model_mse / pca_mse, "n_images": int(len(test))}


def generate(model, n, sampler=None, seed=0, batch_size=1000, progress=False):
    """n images in [0, 1] as a NumPy array: `sampler` codes through `generate`
    when given, else the model's own `sample` (a plain AE, which has no prior,
    decodes N(0, I) codes)."""
    import keras

    from zoo.latent import decode_codes

    report = _progress(progress, "generating images for FID/KID and coverage", n)
    if sampler is not None:
        codes = sampler.sample(n, seed=seed)
        parts = []
        for i in range(0, n, batch_size):
            parts.append(decode_codes(model, codes[i : i + batch_size], batch_size))
            report.advance(len(parts[-1]))
        return np.concatenate(parts).astype(np.float32)
    seeds = keras.random.SeedGenerator(seed)
    parts = []
    for i in range(0, n, batch_size):
        parts.append(keras.ops.convert_to_numpy(model.sample(min(batch_size, n - i), seed=seeds)))
        report.advance(len(parts[-1]))
    return np.concatenate(parts).astype(np.float32)


def sample_quality(classifier, generated, real, kid_subset_size=1000, kid_subsets=100, seed=0):
    """Domain FID and KID between `generated` and `real` images in the classifier's feature space."""
    fake_features, real_features = classifier.features(generated), classifier.features(real)
    kid, kid_std = metrics.kernel_distance(fake_features, real_features, kid_subset_size, kid_subsets, seed)
    return {"domain_fid": metrics.frechet_distance_of_features(fake_features, real_features),
            "domain_kid": kid, "domain_kid_std": kid_std,
            "n_generated": int(len(generated)), "n_real": int(len(real))}


def conditional_accuracy(model, classifier, n, seed=0, batch_size=1000):
    """How often a conditional model's samples are of the class asked for, by the domain classifier:
    `n` samples asking for every class in turn; overall and per class."""
    import keras

    if classifier.n_classes != model.num_classes:
        return {"skipped": f"the model has {model.num_classes} classes and the domain classifier "
                           f"{classifier.n_classes}: they were not trained on the same labels"}
    from zoo_common.labels import every_class

    asked = every_class(n, model.num_classes)
    seeds = keras.random.SeedGenerator(seed)
    images = np.concatenate([keras.ops.convert_to_numpy(model.sample(len(asked[i : i + batch_size]), seed=seeds,
                                                                      labels=asked[i : i + batch_size]))
                             for i in range(0, n, batch_size)])
    hit = classifier.predict(images) == asked
    return {"accuracy": float(hit.mean()), "n_samples": int(n),
            "per_class": [float(hit[asked == c].mean()) for c in range(model.num_classes)]}


def mode_coverage(classifier, generated, data_labels):
    """`metrics.class_coverage` of the classifier's labels for `generated`, against the data's class frequencies."""
    frequencies = np.bincount(np.asarray(data_labels).astype(np.int64), minlength=classifier.n_classes)
    return metrics.class_coverage(classifier.predict(generated), frequencies)


def code_clustering(model, images, labels, seed=0):
    """k-means (one cluster per class) on the codes of held-out images: NMI and accuracy."""
    from zoo.latent import encode_codes

    return metrics.clustering_scores(encode_codes(model, images), labels, seed=seed)


def load_inception():
    """(InceptionV3 pool-feature model, None), or (None, reason) when the
    ImageNet weights neither are cached nor can be downloaded."""
    import keras

    try:
        return keras.applications.InceptionV3(include_top=False, pooling="avg", weights="imagenet"), None
    except Exception as err:  # offline, no cached weights: report, do not fail the evaluation
        return None, f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"


def inception_fid(generated, real, batch_size=100, inception=None):
    """The standard FID (Heusel et al. 2017) on InceptionV3 pool features
    (images resized to 299x299, grey repeated to RGB), when
    `keras.applications.InceptionV3(weights="imagenet")` can load (locally
    cached or downloadable). Returns {"available": False, "reason": ...} otherwise.

    `inception`: a model from `load_inception()`, to load it once for many calls.
    """
    import keras

    if inception is None:
        inception, reason = load_inception()
        if inception is None:
            return {"available": False, "reason": reason}

    def features(images):
        out = []
        for start in range(0, len(images), batch_size):
            x = keras.ops.convert_to_tensor(np.asarray(images[start : start + batch_size], np.float32))
            if x.shape[-1] == 1:
                x = keras.ops.repeat(x, 3, axis=-1)
            x = keras.ops.image.resize(x, (299, 299), interpolation="bilinear")
            out.append(keras.ops.convert_to_numpy(inception(2.0 * x - 1.0, training=False)))
        return np.concatenate(out)

    return {"available": True, "fid": metrics.frechet_distance_of_features(features(generated), features(real)),
            "n_generated": int(len(generated)), "n_real": int(len(real))}


def real_floor(classifier, train_images, test_images, n, seed=0, **kid_options):
    """Sample-quality figures of `n` training images against the held-out ones: the best a model can hope for."""
    chosen = np.random.default_rng(seed).choice(len(train_images), min(n, len(train_images)), replace=False)
    return sample_quality(classifier, np.asarray(train_images)[chosen], test_images, seed=seed, **kid_options)


def evaluate_model(model, train, test, classifier, k=DEFAULT_K, n_likelihood=None, n_samples=10000,
                   sampler=None, inception=None, seed=0, progress=False):
    """Every figure that applies to `model` (a zoo AE, VAE or DCGAN), as a dict of sections.

    Args:
        train, test: (images, labels) arrays; images float32 NHWC in [0, 1].
        classifier: DomainClassifier of the dataset.
        k, n_likelihood: IWAE samples per image and number of test images (None: all).
        n_samples: generated images for FID/KID and coverage.
        sampler: e.g. a fitted `zoo.samplers.GaussianMixtureSampler`; None
            samples the model's prior.
        inception: None, or an InceptionV3 feature model from `load_inception()`
            for the standard FID too.
        progress: bool. Report each stage, and the progress of the long ones
            (IWAE, sampling), as `Progress` does. Defaults to False.
    """
    test_images, test_labels = test
    results = {"model": type(model).__name__, "latent_dim": int(model.latent_dim),
               "sampler": type(sampler).__name__ if sampler is not None else "prior"}
    if model.num_classes is not None:
        # log p(x|y), codes of q(z|x, y): other quantities than an unconditional model's; not reported as those.
        results["not_evaluated"] = {"likelihood, reconstruction, clustering": "the model is conditional: its "
                                    "likelihood is log p(x|y) and its codes depend on the label"}
        _progress(progress, "class-conditional accuracy")
        results["conditional"] = conditional_accuracy(model, classifier, n_samples, seed=seed)
    elif model.has_likelihood:
        results["likelihood"] = likelihood(model, test_images, k=k, n_images=n_likelihood, seed=seed,
                                           progress=progress)
    if model.has_encoder and model.num_classes is None:
        _progress(progress, "reconstruction against PCA, clustering of codes")
        results["reconstruction"] = reconstruction_vs_pca(model, train[0], test_images)
        results["clustering"] = code_clustering(model, test_images, test_labels, seed=seed)
    generated = generate(model, n_samples, sampler=sampler, seed=seed, progress=progress)
    _progress(progress, "domain FID/KID and mode coverage")
    results["sample_quality"] = sample_quality(classifier, generated, test_images, seed=seed)
    results["coverage"] = mode_coverage(classifier, generated, train[1])
    if inception is not None:
        _progress(progress, "Inception FID")
        results["inception"] = inception_fid(generated, test_images, inception=inception)
    return results


def dataset_arrays(name, split):
    """(images, labels) of a `zoo.data` source (the run's config["dataset"])."""
    from zoo import data

    return data.arrays(name, split)


class NotWritten(OSError):
    """The evaluation finished but its file could not be written; `results` holds the figures."""

    def __init__(self, message, results):
        super().__init__(message)
        self.results = results


def check_writable(path, what="nothing was evaluated"):
    """Raise OSError (one line, saying `what`) unless a file can be written at `path`: its folder
    exists and takes a new file (permissions, read-only or full disk: a real 64 KiB write, synced,
    then removed), and no directory stands at `path`."""
    from zoo_common import files

    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path} is a directory, where the figures are written; {what}. "
                                "Move that directory away and run again.")
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{directory} does not exist, so {path} cannot be written; {what}.")
    if os.path.isfile(path):
        # An eval.json that cannot be replaced (immutable or append-only: EPERM even for root) fails only at the
        # final rename; opening it to append, writing nothing, finds that out now and changes nothing.
        try:
            with open(path, "ab"):
                pass
        except PermissionError as err:
            if err.errno == errno.EPERM:
                raise OSError(f"cannot replace {path} ({err.strerror}); {what}. Make it writable (chattr -i) or move "
                              "it away, and run again.") from None
    tmp = None
    try:
        tmp = files.temp_file_beside(path, ".json")
        with open(tmp, "wb") as f:
            f.write(b"\0" * 65536)
            f.flush()
            os.fsync(f.fileno())
    except OSError as err:
        raise OSError(f"cannot write {path} ({err.strerror or err}); {what}. Make {directory} writable "
                      "(or free disk space) and run again.") from None
    finally:
        if tmp is not None:
            files.remove(tmp)


def evaluate_run(run_dir, k=DEFAULT_K, n_likelihood=None, n_samples=10000, sampler="prior", n_components=10,
                 cache_dir=None, inception=False, seed=0, progress=False):
    """Evaluate the model of a `zoo train` run directory; write `RUN_DIR/eval.json`.

    Before any figure is computed, the run is checked: a readable, finite
    model, and an `eval.json` that can be written (see `check_writable`).
    Should the write still fail at the end, `NotWritten` carries the results.

    Args:
        sampler: "prior" (the model's N(0, I)) or "gmm" (a
            `GaussianMixtureSampler` with `n_components` fitted to the
            training codes; AE/VAE only).
        progress: bool. Report each stage and the progress of the long ones
            (see `Progress`). Defaults to False.
    Returns the results dict (also with the classifier's test accuracy and the real-vs-real floor).
    """
    import zoo
    from zoo import _io, callbacks
    from zoo import classifier as classifier_module
    from zoo_common import files, layout
    from zoo.samplers import GaussianMixtureSampler

    model_path, config_path = layout.path(run_dir, layout.MODEL), layout.path(run_dir, layout.CONFIG)
    for path in (model_path, config_path):
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path} not found: is {run_dir} a run directory written by `zoo train`?")
    config = files.read_json(config_path)
    if sampler not in ("prior", "gmm"):
        raise ValueError(f"sampler={sampler!r} is not supported; allowed values are 'prior' and 'gmm'.")
    for name, value, least in (("k", k, 1), ("n_likelihood", n_likelihood, 1), ("n_samples", n_samples, 2),
                               ("n_components", n_components, 1)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < least):
            flag = "--" + {"n_components": "components"}.get(name, name).replace("_", "-")
            raise ValueError(f"{name}={value!r} ({flag}) must be a whole number >= {least}; nothing was evaluated.")
    eval_path = layout.path(run_dir, layout.EVAL)
    check_writable(eval_path)
    model = _io.load_model(model_path, compile=False)
    if not callbacks.weights_are_finite(model):
        raise ValueError(f"{model_path} has NaN/inf weights (training diverged?); nothing evaluated. Retrain with "
                         "a lower --lr (and inputs in [0, 1]), or use a copy of the run saved before it diverged.")
    if sampler == "gmm" and model.num_classes is not None:
        raise ValueError("sampler='gmm' fits a mixture to unconditional codes; a conditional model samples each "
                         "class from N(0, I): use sampler='prior'.")
    if sampler == "gmm" and not model.has_encoder:
        raise ValueError(
            f"sampler='gmm' fits the codes of an encoder; a {type(model).__name__} has none: use sampler='prior'."
        )
    dataset = config.get("dataset", "digits")
    _progress(progress, f"loading {dataset}; the domain classifier (trained once, then cached)")
    train, test = dataset_arrays(dataset, "train"), dataset_arrays(dataset, "test")
    clf = classifier_module.load_or_train(dataset, train, test, cache_dir=cache_dir)
    if sampler == "gmm":
        _progress(progress, f"fitting a {n_components}-component mixture to the training codes")
    fitted = GaussianMixtureSampler(n_components, seed=seed).fit_model(model, train[0]) if sampler == "gmm" else None
    inception_model, reason = load_inception() if inception else (None, None)
    results = evaluate_model(model, train, test, clf, k=k, n_likelihood=n_likelihood, n_samples=n_samples,
                             sampler=fitted, inception=inception_model, seed=seed, progress=progress)
    results.update(run_dir=str(run_dir), dataset=dataset, classifier={
        "test_accuracy": clf.test_accuracy, "cached": clf.info.get("cached"), "path": clf.info.get("path")})
    _progress(progress, "real-vs-real floor")
    results["real_floor"] = real_floor(clf, train[0], test[0], n_samples, seed=seed)
    if inception and inception_model is None:
        results["inception"] = {"available": False, "reason": reason}
    elif inception:
        results["inception_real_floor"] = inception_fid(train[0][:n_samples], test[0], inception=inception_model)
    try:
        files.write_json(results, eval_path)
    except OSError as err:
        raise NotWritten(f"the evaluation finished but {eval_path} could not be written ({err.strerror or err})",
                         results) from err
    return results

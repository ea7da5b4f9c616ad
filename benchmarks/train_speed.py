"""Steady-state training speed of genzoo's AE, VAE and DCGAN on MNIST-shaped data,
side by side (same run, same networks, same batch size) with what users would
otherwise copy: the keras.io VAE example, the TensorFlow DCGAN tutorial's
`tf.function` loop, and the same DCGAN in PyTorch (when torch is installed).

    python benchmarks/train_speed.py                    # about 10 minutes on 2 cores
    python benchmarks/train_speed.py --quick            # a smoke run
    python benchmarks/train_speed.py --device gpu
    python benchmarks/train_speed.py --backend jax      # or torch: Keras on that backend

`--backend` picks the Keras backend (it sets KERAS_BACKEND before Keras is
imported; default tensorflow). How genzoo is fed and timed:

- tensorflow: Keras' compiled train function (the one `fit` runs), pulling
  from a shuffled, repeated, batched, prefetched tf.data pipeline; the
  keras.io VAE and the TF-tutorial DCGAN run beside it (TensorFlow-only peers).
- jax, torch: `model.fit` itself on numpy arrays, so Keras' own data adapter
  feeds it (numpy slicing of a shuffled permutation; a jax iterator, or a
  torch DataLoader), one timed window per epoch; the device is waited for at
  each window's end (see `_common.fit_windows`). No TensorFlow is involved.

The PyTorch DCGAN of the same networks (benchmarks/peers/torch_dcgan.py) runs
beside genzoo on every backend.

Each system first trains `--warmup-steps` steps (tracing, allocation), then
`--repeats` timed windows of `--steps` steps; the figure is the median window
in images/second. Prints a table last and writes
benchmarks/results/train_speed.json (tensorflow) or train_speed-<backend>.json.

Targets (issue 5): genzoo >= 1.3x the TF-tutorial DCGAN and >= 1.2x the
keras.io VAE on the same nets, and >= 1.5x the PyTorch CPU DCGAN.
"""

import argparse
import importlib.util
import os
import sys
import time

import numpy as np

from _common import RESULTS, fit_windows, machine, mnist_images, print_table, versions, windows, write_json

# The peers are plain modules beside this script.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "peers"))

VAE_BATCH = 128  # the keras.io example's batch size
GAN_BATCH = 256  # the TensorFlow tutorial's batch size


BACKENDS = {  # Keras backend -> (module that must import, what to install)
    "tensorflow": ("tensorflow", "pip install tensorflow"),
    "jax": ("jax", "pip install jax  (on a CUDA machine: pip install 'jax[cuda12]')"),
    "torch": ("torch", "pip install torch"),
}


def select_backend(backend, device):
    """Set KERAS_BACKEND (before Keras is imported) or exit with one line on what to install."""
    if "keras" in sys.modules and sys.modules["keras"].backend.backend() != backend:
        raise SystemExit(f"--backend {backend}: Keras is already loaded with {sys.modules['keras'].backend.backend()!r}.")
    module, install = BACKENDS[backend]
    if importlib.util.find_spec(module) is None:
        raise SystemExit(f"--backend {backend}: {module} is not installed here; {install}")
    os.environ["KERAS_BACKEND"] = backend
    if device == "cpu":
        # --device cpu means the CPU even where an accelerator is present.
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
        if backend == "jax":
            os.environ.setdefault("JAX_PLATFORMS", "cpu")


def device_check(backend, device):
    if device != "gpu":
        return
    if backend == "tensorflow":
        import tensorflow as tf

        found = bool(tf.config.list_physical_devices("GPU"))
    elif backend == "jax":
        import jax

        found = jax.default_backend() == "gpu"
    else:
        import torch

        found = torch.cuda.is_available()
    if not found:
        raise SystemExit(f"--device gpu: Keras' {backend} backend sees no GPU here.")


def training_images(n):
    images = mnist_images("train")
    if images is not None:
        return images[:n], "mnist (../shared/datasets/mnist)"
    return np.random.default_rng(0).uniform(size=(n, 28, 28, 1)).astype("float32"), "uniform noise (MNIST not found)"


def keras_fit_steps(model, images, batch):
    """A `step()` that runs one training step exactly as `fit` does: Keras' compiled
    train function pulling from a shuffled, batched, prefetched tf.data pipeline."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices(images).shuffle(len(images), seed=0).repeat().batch(batch, drop_remainder=True)
    iterator = iter(ds.prefetch(tf.data.AUTOTUNE))
    model.make_train_function()
    return lambda: model.train_function(iterator)


def keras_io_vae_step(images, batch):
    """The keras.io VAE's `fit` (its own train_step, numpy arrays in, as published)
    on genzoo's default VAE networks: the encoder gains the example's third
    output z, the decoder the example's sigmoid."""
    import keras
    import keras_io_vae

    import zoo

    ours = zoo.VAE((28, 28, 1), latent_dim=16, seed=0)

    def encoder(latent_dim, seed=None):
        x = keras.Input((28, 28, 1))
        mean, log_var = ours.encoder(x)
        return keras.Model(x, [mean, log_var, zoo.Sampling(seed=seed)([mean, log_var])], name="encoder")

    def decoder(latent_dim):
        code = keras.Input((latent_dim,))
        return keras.Model(code, keras.layers.Activation("sigmoid")(ours.decoder(code)), name="decoder")

    # The example builds its networks in its constructor; hand it ours instead.
    keras_io_vae.build_encoder, keras_io_vae.build_decoder = encoder, decoder
    peer = keras_io_vae.KerasIOVAE(latent_dim=16, seed=0)
    peer.compile(optimizer=keras.optimizers.Adam(1e-3))
    # Timed like genzoo's models: the compiled train function `fit` runs, fed
    # by the same tf.data pipeline, so the ratio compares the training steps.
    return keras_fit_steps(peer, images, batch)


def tf_tutorial_dcgan_step(images, batch):
    """The TensorFlow tutorial's tf.function step and tf.data pipeline on genzoo's
    default DCGAN networks (and genzoo's Adam settings)."""
    import keras
    from tf_tutorial_dcgan import TFTutorialDCGAN

    import zoo

    ours = zoo.DCGAN((28, 28, 1), latent_dim=100, seed=0)
    peer = TFTutorialDCGAN(seed=0)
    peer.generator, peer.discriminator = ours.generator, ours.discriminator
    peer.generator_optimizer = keras.optimizers.Adam(2e-4, beta_1=0.5)
    peer.discriminator_optimizer = keras.optimizers.Adam(2e-4, beta_1=0.5)
    iterator = iter(peer.dataset(images, batch, seed=0).repeat())
    return lambda: peer.train_step(next(iterator))


def genzoo_systems(policy):
    import keras

    import zoo

    if policy != "float32":
        keras.mixed_precision.set_global_policy(policy)
    ae = zoo.Autoencoder((28, 28, 1), latent_dim=16, seed=0)
    ae.compile(optimizer=keras.optimizers.Adam(1e-3))
    vae = zoo.VAE((28, 28, 1), latent_dim=16, seed=0)
    vae.compile(optimizer=keras.optimizers.Adam(1e-3))
    gan = zoo.DCGAN((28, 28, 1), latent_dim=100, seed=0)
    gan.compile()
    keras.mixed_precision.set_global_policy("float32")
    return {"ae": (ae, VAE_BATCH), "vae": (vae, VAE_BATCH), "dcgan": (gan, GAN_BATCH)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--backend", choices=sorted(BACKENDS), default="tensorflow", help="Keras backend (default tensorflow)")
    parser.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    parser.add_argument("--steps", type=int, default=None, help="steps per timed window")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup-steps", type=int, default=5)
    parser.add_argument("--out", default=None, help="default benchmarks/results/train_speed[-<backend>].json")
    args = parser.parse_args()
    steps = args.steps or (5 if args.quick else 30)
    out = args.out or str(RESULTS / ("train_speed.json" if args.backend == "tensorflow" else f"train_speed-{args.backend}.json"))

    select_backend(args.backend, args.device)
    device_check(args.backend, args.device)
    images, source = training_images(4096 if args.quick else 60000)
    if args.backend == "tensorflow":
        feed = "Keras' compiled train function fed by a tf.data pipeline (shuffle, repeat, batch, prefetch)"
    else:
        feed = "model.fit on numpy arrays: Keras' own data adapter (numpy slicing), one timed window per epoch"
    print(f"Keras backend: {args.backend}; genzoo timed as: {feed}", flush=True)
    results = {}

    def record(name, step, batch, sync=None):
        rate, rates = windows(step, batch, args.warmup_steps, steps, args.repeats, sync)
        results[name] = {"images_per_s": rate, "windows": rates, "batch": batch}
        print(f"{name:28s} {rate:10,.0f} images/s  (batch {batch})", flush=True)

    for policy in ("float32", "mixed_bfloat16"):
        for name, (model, batch) in genzoo_systems(policy).items():
            label = f"genzoo {name} ({policy})"
            if args.backend == "tensorflow":
                record(label, keras_fit_steps(model, images, batch), batch)
            else:
                rate, rates = fit_windows(model, images, batch, args.warmup_steps, steps, args.repeats)
                results[label] = {"images_per_s": rate, "windows": rates, "batch": batch}
                print(f"{label:28s} {rate:10,.0f} images/s  (batch {batch})", flush=True)

    if args.backend == "tensorflow":  # the peers written against TensorFlow
        record("keras.io VAE", keras_io_vae_step(images, VAE_BATCH), VAE_BATCH)
        record("TF tutorial DCGAN", tf_tutorial_dcgan_step(images, GAN_BATCH), GAN_BATCH)
    try:
        import torch
    except ImportError:
        torch = None
        print("PyTorch DCGAN: skipped (torch is not installed)")
    if torch is not None:
        from torch_dcgan import TorchDCGAN

        torch.set_num_threads(os.cpu_count())
        peer = TorchDCGAN(device="cuda" if args.device == "gpu" and torch.cuda.is_available() else "cpu")
        nchw = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2) * 2.0 - 1.0))
        order = torch.randperm(len(nchw))
        position = {"i": 0}

        def torch_step():
            i = position["i"]
            if i + GAN_BATCH > len(nchw):
                i = 0
            position["i"] = i + GAN_BATCH
            peer.train_step(nchw[order[i : i + GAN_BATCH]].to(peer.device))

        record("PyTorch DCGAN", torch_step, GAN_BATCH, sync=peer.synchronize)

    ratios = {}

    def ratio(ours, peer, target):
        if ours in results and peer in results:
            value = results[ours]["images_per_s"] / results[peer]["images_per_s"]
            ratios[f"{ours} / {peer}"] = {"ratio": value, "target": target, "met": value >= target}

    for policy in ("float32", "mixed_bfloat16"):
        ratio(f"genzoo dcgan ({policy})", "TF tutorial DCGAN", 1.3)
        ratio(f"genzoo vae ({policy})", "keras.io VAE", 1.2)
        ratio(f"genzoo dcgan ({policy})", "PyTorch DCGAN", 1.5)

    report = {
        "benchmark": "train_speed", "quick": args.quick, "backend": args.backend, "genzoo_feed": feed,
        "machine": machine(args.device),
        "versions": versions("tensorflow", "keras", "jax", "jaxlib", "torch", "numpy"), "data": source,
        "steps_per_window": steps, "repeats": args.repeats, "warmup_steps": args.warmup_steps,
        "results": results, "ratios": ratios, "date": time.strftime("%Y-%m-%d"),
    }
    path = write_json(report, out)
    print(f"wrote {path}")
    print_table(["system", "batch", "images/s"], [[k, v["batch"], f"{v['images_per_s']:,.0f}"] for k, v in results.items()],
                title=f"Training speed, Keras on {args.backend} ({machine(args.device)['cpu']}, {os.cpu_count()} cores, "
                      f"{args.device}, data: {source})")
    print_table(["genzoo / peer", "ratio", "target", "met"],
                [[k, f"{v['ratio']:.2f}x", f"{v['target']}x", "yes" if v["met"] else "no"] for k, v in ratios.items()])


if __name__ == "__main__":
    main()

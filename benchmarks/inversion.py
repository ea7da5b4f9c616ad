"""The lecture's VAE-vs-GAN point, measured: "given an x, it is difficult to find z".

A VAE maps a test image to its code in one encoder pass and decodes it back;
a GAN has no encoder, so its z is searched for by gradient descent
(`zoo.inversion.invert`, Adam on z, the generator frozen). On MNIST test
images this prints, per method, the reconstruction error (MSE per pixel,
pixels in [0, 1]; the median and mean over the images) and the wall time per
image, and writes every figure to benchmarks/results/inversion.json.

    python benchmarks/inversion.py            # ~6-8 minutes on 2 shared CPU cores
    python benchmarks/inversion.py --quick    # smoke run, ~1 minute

Both models are genzoo's defaults for 28x28 MNIST as `zoo train` builds them
(VAE latent 16, DCGAN latent 100), trained here, briefly, on the same first
`--train-images` training images (grey levels, not binarised) for
`--vae-epochs` / `--dcgan-epochs` epochs at batch 64: the budget is stated in
the table's title and the JSON. Inversion uses `--images` test images
searched together in one batch (each has its own z), Adam(lr 0.05) from
z ~ N(0, I), for each k in `--steps`; time per image is the batch's wall
time / the number of images, measured after a warm-up call (the search step
is traced/compiled once per model). Rows for context: the mean training
image (no model), and the VAE's own decoder inverted from its encoder's code.
The last column, the median of |z| / sqrt(latent_dim), is about 1 for codes
the prior N(0, I) would draw: how far the search wanders from the prior.

Data: ../shared/datasets/mnist (IDX) through `zoo.data`; the benchmark exits
with a reason when it is absent.
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import RESULTS, SHARED_MNIST, machine, print_table, versions, write_json  # noqa: E402


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny budget: a smoke run")
    p.add_argument("--train-images", type=int, default=20000)
    p.add_argument("--vae-epochs", type=int, default=2)
    p.add_argument("--dcgan-epochs", type=int, default=2)
    p.add_argument("--images", type=int, default=256, help="test images inverted")
    p.add_argument("--steps", type=int, nargs="+", default=[10, 100, 500])
    p.add_argument("--out", default=str(RESULTS / "inversion.json"))
    args = p.parse_args(argv)
    if args.quick:
        args.train_images, args.vae_epochs, args.dcgan_epochs, args.images, args.steps = 2000, 1, 1, 64, [10, 50]
    return args


def per_image_mse(a, b):
    return np.mean(np.square(np.asarray(a, np.float64) - np.asarray(b, np.float64)), axis=(1, 2, 3))


def row(name, errors, seconds, n, note="", z=None):
    return {
        "method": name,
        # |z| / sqrt(latent_dim): about 1 for codes the prior N(0, I) would draw.
        "z_rms": None if z is None else float(np.median(np.linalg.norm(z, axis=1) / np.sqrt(z.shape[1]))),
        "mse_median": float(np.median(errors)),
        "mse_mean": float(np.mean(errors)),
        "ms_per_image": 1000.0 * seconds / n,
        "note": note,
    }


def main(argv=None):
    args = parse(argv)
    if not SHARED_MNIST.is_dir():
        print(f"skipped: MNIST IDX files not found at {SHARED_MNIST} (this benchmark needs them)")
        return 0
    start_all = time.time()
    import keras

    import zoo
    from zoo import data, registry
    from zoo.inversion import invert

    source = f"idx:{SHARED_MNIST}"
    train, _ = data.arrays(source, "train", limit=args.train_images)
    test, _ = data.arrays(source, "test", limit=args.images)
    keras.utils.set_random_seed(0)

    timings = {}
    vae = registry.build("vae", (28, 28, 1), seed=0)
    vae.compile_default()
    t0 = time.time()
    vae.fit(train, epochs=args.vae_epochs, batch_size=64, shuffle=True, verbose=0)
    timings["vae_train_s"] = time.time() - t0

    gan = registry.build("dcgan", (28, 28, 1), seed=0)
    gan.compile_default()
    t0 = time.time()
    gan.fit(train, epochs=args.dcgan_epochs, batch_size=64, shuffle=True, verbose=0)
    timings["dcgan_train_s"] = time.time() - t0

    rows = []
    mean_image = train.mean(axis=0, keepdims=True)
    rows.append(row("mean training image (no model)", per_image_mse(np.broadcast_to(mean_image, test.shape), test), 0.0,
                    len(test)))

    def vae_pass():
        return keras.ops.convert_to_numpy(vae.generate(vae.embed(test)))

    vae_pass()  # warm-up
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        reconstruction = vae_pass()
        times.append(time.perf_counter() - t0)
    rows.append(row("VAE encode -> decode (1 pass)", per_image_mse(reconstruction, test), float(np.median(times)), len(test),
                    "median of 5 timed calls", z=keras.ops.convert_to_numpy(vae.embed(test))))

    def timed_invert(model, k, **kwargs):
        invert(model, test[:8], steps=2, **kwargs)  # warm-up: traces the search step once
        t0 = time.perf_counter()
        result = invert(model, test, steps=k, batch_size=len(test), **kwargs)
        return result, time.perf_counter() - t0

    for k in args.steps:
        result, seconds = timed_invert(gan, k, seed=1)
        rows.append(row(f"DCGAN inversion, k={k} Adam steps", result.error, seconds, len(test), "from z ~ N(0, I)",
                        z=result.z))
    k = args.steps[min(1, len(args.steps) - 1)]
    result, seconds = timed_invert(vae, k, init="encoder")
    rows.append(row(f"VAE decoder inversion, k={k}, from the encoder's code", result.error, seconds, len(test),
                    "time excludes the encoder pass", z=result.z))

    load = os.getloadavg()
    title = (f"Reconstruction of {len(test)} MNIST test images (MSE per pixel, [0, 1]); models trained here on "
             f"{len(train)} training images: VAE {args.vae_epochs} epochs ({timings['vae_train_s']:.0f} s), "
             f"DCGAN {args.dcgan_epochs} epochs ({timings['dcgan_train_s']:.0f} s), batch 64; "
             f"backend {keras.backend.backend()}, load average {load[0]:.2f}")
    record = {
        "benchmark": "inversion",
        "date": time.strftime("%Y-%m-%d"),
        "quick": args.quick,
        "budget": {"train_images": len(train), "vae_epochs": args.vae_epochs, "dcgan_epochs": args.dcgan_epochs,
                   "batch_size": 64, **timings},
        "test_images": len(test),
        "inversion": {"optimizer": "Adam", "learning_rate": 0.05, "init": "z ~ N(0, I), seed 1", "steps": args.steps,
                      "batch": len(test)},
        "machine": {**machine("cpu"), "load_average_at_end": list(load)},
        "versions": versions("genzoo", "keras", "tensorflow", "jax", "torch", "numpy"),
        "keras_backend": keras.backend.backend(),
        "results": rows,
        "total_s": time.time() - start_all,
    }
    write_json(record, args.out)
    print_table(["method", "MSE median", "MSE mean", "ms / image", "median |z|/sqrt(d)"],
                [[r["method"], f"{r['mse_median']:.4f}", f"{r['mse_mean']:.4f}", f"{r['ms_per_image']:.2f}",
                  "-" if r["z_rms"] is None else f"{r['z_rms']:.2f}"] for r in rows],
                title=title)
    print(f"\nwrote {args.out} ({record['total_s']:.0f} s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Mode collapse, shown and remedied: the DCGAN with the minimax loss, the DCGAN with
the non-saturating loss and the WGAN-GP, with the same generator, data (MNIST) and
budget. After every epoch each model draws `--samples` images (fixed z), and the
script records the classes covered, the KL of the class histogram to the data's
(under genzoo's cached MNIST domain classifier, `zoo.classifier`), and the
domain FID against as many test images.

    python benchmarks/mode_collapse.py                 # ~11 minutes on 2 shared CPU cores
    python benchmarks/mode_collapse.py --quick         # smoke run, ~2 minutes

Budget: the first `--train-images` MNIST training images, `--epochs` epochs at
batch 64 for every model (the same number of generator steps; the WGAN-GP makes
n_critic = 5 critic updates per generator step, so it costs several times
more). Generator: genzoo's 28x28 default (widths 128, 64, kernel 5, latent 100), seed 0
for all three. Writes benchmarks/results/mode_collapse.json and a PNG of
coverage and FID over the epochs (`--plot`), and prints the table last.
Data: ../shared/datasets/mnist (IDX) through `zoo.data`; exits with a reason
when absent.
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import RESULTS, SHARED_MNIST, machine, print_table, versions, write_json  # noqa: E402

MODELS = {
    "DCGAN minimax": ("dcgan", {"loss": "minimax"}),
    "DCGAN non-saturating": ("dcgan", {"loss": "non_saturating"}),
    "WGAN-GP": ("wgan-gp", {}),
}


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--train-images", type=int, default=8000)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--samples", type=int, default=2000)
    p.add_argument("--out", default=str(RESULTS / "mode_collapse.json"))
    p.add_argument("--plot", default=str(RESULTS.parents[1] / "docs" / "mode_collapse.png"))
    args = p.parse_args(argv)
    if args.quick:
        args.train_images, args.epochs, args.samples = 1024, 2, 500
    return args


def plot(history, path, width=900, height=380):
    """Classes covered (left) and domain FID (right) per epoch, one line per model (PIL)."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    colours = [(214, 39, 40), (31, 119, 180), (44, 160, 44)]
    pad, panel = 50, (width - 3 * 50) // 2
    epochs = max(len(h) for h in history.values())
    for j, (key, title, top) in enumerate((
        ("classes_covered", "classes covered (of 10)", 10.0),
        ("domain_fid", "domain FID (lower is better)", max(r["domain_fid"] for h in history.values() for r in h) * 1.05),
    )):
        x0, y0, w, h = pad + j * (panel + pad), pad, panel, height - 2 * pad
        draw.rectangle([x0, y0, x0 + w, y0 + h], outline=(180, 180, 180))
        draw.text((x0, 15), f"{title}; max {top:.1f}", fill=(0, 0, 0))
        draw.text((x0, y0 + h + 8), f"epoch 1 .. {epochs}", fill=(0, 0, 0))
        for colour, (name, rows) in zip(colours, history.items()):
            pts = [(x0 + (r["epoch"] - 1) / max(epochs - 1, 1) * w, y0 + h - r[key] / top * h) for r in rows]
            if len(pts) > 1:
                draw.line(pts, fill=colour, width=3)
            for px, py in pts:
                draw.ellipse([px - 3, py - 3, px + 3, py + 3], fill=colour)
    for i, (colour, name) in enumerate(zip(colours, history)):
        draw.line([(pad + 10, pad + 14 + 16 * i), (pad + 34, pad + 14 + 16 * i)], fill=colour, width=3)
        draw.text((pad + 40, pad + 8 + 16 * i), name, fill=(0, 0, 0))
    img.save(path)
    return path


def main(argv=None):
    args = parse(argv)
    if not SHARED_MNIST.is_dir():
        print(f"skipped: MNIST IDX files not found at {SHARED_MNIST} (this benchmark needs them)")
        return 0
    start_all = time.time()
    import keras

    from zoo import classifier as domain, data, evaluate, registry

    source = f"idx:{SHARED_MNIST}"
    train, train_labels = data.arrays(source, "train")
    test, test_labels = data.arrays(source, "test")
    judge = domain.load_or_train("mnist", (train, train_labels), (test, test_labels))
    real = test[: args.samples]
    images = train[: args.train_images]
    z = np.random.default_rng(123).standard_normal((args.samples, 100)).astype("float32")

    history, seconds = {}, {}
    for name, (cli_name, options) in MODELS.items():
        keras.utils.set_random_seed(0)
        model = registry.build(cli_name, (28, 28, 1), seed=0, **options)
        model.compile_default()
        rows, trained = [], 0.0

        for epoch in range(1, args.epochs + 1):
            t0 = time.time()
            model.fit(images, epochs=1, batch_size=64, shuffle=True, verbose=0)
            trained += time.time() - t0
            samples = np.concatenate([keras.ops.convert_to_numpy(model.generate(z[i:i + 500]))
                                      for i in range(0, len(z), 500)])
            coverage = evaluate.mode_coverage(judge, samples, train_labels)
            quality = evaluate.sample_quality(judge, samples, real, kid_subset_size=min(1000, len(real)), kid_subsets=10)
            rows.append({"epoch": epoch, "classes_covered": coverage["classes_covered"], "class_kl": coverage["kl"],
                         "max_class_fraction": coverage["max_fraction"], "domain_fid": quality["domain_fid"],
                         "histogram": coverage["histogram"], "train_seconds": trained})
            print(f"{name} epoch {epoch}: {coverage['classes_covered']} classes, KL {coverage['kl']:.3f}, "
                  f"FID {quality['domain_fid']:.2f} ({trained:.0f} s)", flush=True)
        history[name], seconds[name] = rows, trained

    load = os.getloadavg()
    record = {
        "benchmark": "mode_collapse",
        "date": time.strftime("%Y-%m-%d"),
        "quick": args.quick,
        "budget": {"train_images": len(images), "epochs": args.epochs, "batch_size": 64, "samples": args.samples},
        "classifier": {"test_accuracy": judge.test_accuracy, "path": judge.info.get("path")},
        "machine": {**machine("cpu"), "load_average_at_end": list(load)},
        "versions": versions("genzoo", "keras", "tensorflow", "numpy"),
        "keras_backend": keras.backend.backend(),
        "history": history,
        "total_s": time.time() - start_all,
    }
    write_json(record, args.out)
    plot(history, args.plot)
    rows = []
    for name, h in history.items():
        for r in h:
            rows.append([name, r["epoch"], r["classes_covered"], f"{r['class_kl']:.3f}", f"{r['max_class_fraction']:.3f}",
                         f"{r['domain_fid']:.2f}", f"{r['train_seconds']:.0f}"])
    print_table(["model", "epoch", "classes covered", "KL(hist || data)", "max class share", "domain FID", "train s"], rows,
                title=f"Mode collapse on MNIST: {len(images)} training images, batch 64, {args.samples} samples per "
                      f"epoch; backend {keras.backend.backend()}, load average {load[0]:.2f}")
    print(f"\nwrote {args.out} and {args.plot} ({record['total_s']:.0f} s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

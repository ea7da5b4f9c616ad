"""The VAE likelihood recipe on dynamically binarised MNIST, one training run
per call, and its evaluation by the importance-weighted estimate.

    python benchmarks/vae_recipe.py --epochs 200 --out benchmarks/results/vae-recipe/recipe
    python benchmarks/vae_recipe.py --epochs 30 --lr-schedule constant --warmup-epochs 0 --out .../ablation-a

The model is `zoo.VAE` with `filters=()`: an MLP encoder and decoder
(`--hidden`, default 512,512; `--latent-dim`, default 50), whose decoder costs
about 0.7 MMAC per sample, so k=5000 on all 10,000 test images (5e7 decoder
passes) fits in well under 45 minutes on 2 CPU cores. Training is the standard
ELBO (one z per image), with Adam, a per-epoch learning-rate schedule
(`--lr-schedule cosine|constant`) and a KL warm-up over `--warmup-epochs`
(`VAE(kl_warmup_steps=...)`), on images binarised afresh every epoch
(`zoo.data.load(..., binarize=True)`, the pipeline `zoo train` uses).

Evaluation (`--eval-images`, `--k`): `zoo.evaluate.iwae_nll` on the test set
binarised once (seed 0) and the test -ELBO on all 10,000 images, in nats.
`--eval-images 10000 --k 5000` is the full protocol of Burda et al. (2016);
fewer images take the head of a seeded permutation (the test set runs from
cleaner to harder writers, so its own head is not representative). The
decoder's passes/s are measured and reported.

Writes OUT/model.keras (saved to a temporary name, then renamed),
OUT/history.json (one line per epoch on stdout too), OUT/result.json and
OUT/samples.png (100 samples).
`--eval-only` evaluates OUT/model.keras again (another --k or --eval-images).
`--init MODEL` is a warm restart: training starts from that saved recipe model
(its architecture and KL warm-up step carry over) with a fresh Adam and a
fresh --lr-schedule over --epochs; result.json names the run it started from.

`STAGES` is the ablation: each stage adds one change to the one before and is
judged on the same 1,000 test images at k=5000; the last is also judged
on the full protocol. `benchmarks/quality.py --full` runs them in order and
prints the table (`format_ablation`).
"""

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import SHARED_MNIST, EpochLog, cosine_lr, log, machine, versions  # noqa: E402


def learning_rate(schedule, base, epochs):
    """Per-epoch learning rate: constant, or the cosine decay from base towards 0."""
    if schedule == "constant":
        return lambda epoch, lr: base
    return cosine_lr(base, epochs)


def build(args, steps_per_epoch):
    import keras

    import zoo

    keras.utils.set_random_seed(args.seed)
    vae = zoo.VAE((28, 28, 1), args.latent_dim, filters=(), hidden_dim=tuple(args.hidden),
                  kl_warmup_steps=args.warmup_epochs * steps_per_epoch, seed=args.seed)
    vae.compile(optimizer=keras.optimizers.Adam(args.lr))
    return vae


def decoder_passes_per_second(model, seconds=5.0, batch=4096):
    from zoo import evaluate

    fn = evaluate._compiled(lambda z: model.decoder(z, training=False))
    z = np.random.default_rng(0).standard_normal((batch, model.latent_dim)).astype(np.float32)
    fn(z)
    started, calls = time.time(), 0
    while time.time() - started < seconds:
        fn(z)
        calls += 1
    return calls * batch / (time.time() - started)


def evaluate_model(vae, args, test_x):
    from zoo import evaluate

    test_binary = evaluate.binarize(test_x, seed=0)
    order = np.random.default_rng(0).permutation(len(test_binary))[: args.eval_images]
    speed = decoder_passes_per_second(vae)
    log(f"decoder: {speed:,.0f} passes/s at batch 4096; IWAE k={args.k} on {len(order):,} images "
        f"({args.k * len(order):,} passes, about {args.k * len(order) / speed / 60:.1f} min)")
    started = time.time()
    nll = evaluate.iwae_nll(vae, test_binary[order], k=args.k, seed=0, progress=True)
    iwae_seconds = time.time() - started
    elbo = evaluate.negative_elbo(vae, test_binary, seed=0)
    return {"k": args.k, "n_images": int(len(order)), "iwae_nll": float(nll.mean()),
            "iwae_stderr": float(nll.std(ddof=1) / math.sqrt(len(nll))) if len(nll) > 1 else None,
            "iwae_seconds": iwae_seconds, "iwae_passes_per_second": args.k * len(order) / iwae_seconds,
            "decoder_passes_per_second": speed, "negative_elbo": float(elbo.mean()), "elbo_images": int(len(elbo)),
            "protocol": "test set binarised once (seed 0); images: head of a seeded permutation (seed 0); nats"}


def run(args):
    import keras

    from zoo import data

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    source = f"idx:{args.data}" if Path(args.data).is_dir() else "mnist"
    test_x, _ = data.arrays(source, "test")
    command = " ".join([Path(sys.executable).name, *sys.argv])
    result = {"command": command, "settings": vars(args).copy(),
              "machine": {**machine("cpu"), "keras_backend": keras.backend.backend(),
                          "load_average_at_start": list(os.getloadavg())},
              "versions": versions("genzoo", "keras", "tensorflow", "numpy")}
    model_path = out / "model.keras"
    if args.eval_only:  # the training run's record stays; this evaluation is added to it
        vae = keras.saving.load_model(model_path)
        if (out / "result.json").exists():
            result = json.loads((out / "result.json").read_text())
        result.setdefault("evaluations", [])
    else:
        train = data.load(source, "train", batch_size=args.batch_size, seed=args.seed, binarize=True)
        steps = int(train.cardinality())
        if args.init:  # a warm restart: the saved model's architecture and warm-up step, a fresh Adam
            vae = keras.saving.load_model(args.init)
            vae.compile(optimizer=keras.optimizers.Adam(args.lr))
            before = Path(args.init).with_name("result.json")
            result["init"] = {"model": str(Path(args.init).resolve()),
                              "training": json.loads(before.read_text()).get("training") if before.exists() else None}
            log(f"warm restart from {args.init}")
        else:
            vae = build(args, steps)
        log(f"training: {args.epochs} epochs of {steps} steps; MLP {vae.hidden_dim}, z {vae.latent_dim}, "
            f"lr {args.lr} {args.lr_schedule}, KL warm-up {vae.kl_warmup_steps} steps; load {os.getloadavg()[0]:.2f}")
        started = time.time()
        epochs = EpochLog(out / "history.json", started)
        vae.fit(train, epochs=args.epochs, verbose=0, shuffle=False,
                callbacks=[keras.callbacks.LearningRateScheduler(learning_rate(args.lr_schedule, args.lr, args.epochs)),
                           epochs.callback])
        result["training"] = {"epochs": args.epochs, "seconds": time.time() - started, "steps_per_epoch": steps,
                              "final": epochs.history[-1], "load_average_at_end": list(os.getloadavg())}
        vae.save(out / "model.tmp.keras")
        os.replace(out / "model.tmp.keras", model_path)
        result["evaluations"] = []
    result_load = list(os.getloadavg())
    log(f"evaluating; load {result_load[0]:.2f}")
    figures = evaluate_model(vae, args, test_x)
    figures.update(command=command, keras_backend=keras.backend.backend(),
                   load_average_at_start=result_load, load_average_at_end=list(os.getloadavg()))
    result["evaluations"].append(figures)
    from zoo_common.grid import save_grid

    # 100 samples, z ~ N(0, I), shown as the decoder's Bernoulli means.
    save_grid(keras.ops.convert_to_numpy(vae.sample(100, seed=0)), out / "samples.png", ncols=10)
    log(f"-ELBO {figures['negative_elbo']:.2f}; IWAE k={args.k} on {figures['n_images']}: "
        f"{figures['iwae_nll']:.2f} nats ({figures['iwae_seconds']:.0f} s, {figures['iwae_passes_per_second']:,.0f} passes/s)")
    tmp = out / "result.tmp"
    tmp.write_text(json.dumps(result, indent=1, default=float))
    os.replace(tmp, out / "result.json")
    return result


# The ablation, in order: (name, what this stage changes, vae_recipe arguments).
STAGES = [
    ("A", "MLP VAE 512-512, z=50, Adam 1e-3 constant, 20 epochs",
     ["--epochs", "20", "--lr-schedule", "constant", "--warmup-epochs", "0", "--eval-images", "1000"]),
    ("B", "+ cosine learning-rate decay", ["--epochs", "20", "--warmup-epochs", "0", "--eval-images", "1000"]),
    ("C", "+ KL warm-up over the first 10% of steps", ["--epochs", "20", "--warmup-epochs", "2", "--eval-images", "1000"]),
    ("recipe", "+ 100 epochs (warm-up 10)", ["--epochs", "100", "--warmup-epochs", "10", "--eval-images", "1000"]),
    ("restart", "+ a warm restart from it: 200 more epochs, Adam 5e-4 cosine",
     ["--init", "{out_root}/recipe/model.keras", "--epochs", "200", "--lr", "5e-4", "--warmup-epochs", "0",
      "--eval-images", "1000"]),
]


def run_ablation(out_root, data=str(SHARED_MNIST), full_protocol=True):
    """Every stage of STAGES into out_root/NAME; the last stage again on the full protocol (k=5000, 10,000 images)."""
    results = {}
    for name, change, extra in STAGES:
        log(f"ablation stage {name}: {change}")
        extra = [a.format(out_root=out_root) for a in extra]
        results[name] = run(parse_args(["--out", str(Path(out_root) / name), "--data", data, *extra]))
        results[name]["change"] = change
    if full_protocol:
        name, change, _ = STAGES[-1]
        log(f"stage {name} on the full protocol")
        results[name] = run(parse_args(["--out", str(Path(out_root) / name), "--data", data, "--eval-only",
                                        "--eval-images", "10000", "--k", "5000"]))
        results[name]["change"] = change
    return results


def _budget(result):
    """(epochs, seconds) of a run's training, its warm-restart ancestors' included."""
    epochs, seconds = result["training"]["epochs"], result["training"]["seconds"]
    before = (result.get("init") or {}).get("training")
    if before:
        epochs, seconds = epochs + before["epochs"], seconds + before["seconds"]
    return epochs, seconds


def format_ablation(results):
    """The markdown table: one row per stage, its gain on the stage before, and the full protocol."""
    first = results[STAGES[0][0]]["evaluations"][0]
    n, k = first["n_images"], first["k"]  # every stage is judged on these images at this k
    lines = [f"| stage | change | epochs in all | train min in all | test -ELBO | IWAE k={k}, {n:,} images | gain |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    previous = None
    for name, _, _ in STAGES:
        r = results[name]
        subset = next(e for e in r["evaluations"] if e["n_images"] == n and e["k"] == k)
        gain = "" if previous is None else f"{previous - subset['iwae_nll']:+.2f}"
        epochs, seconds = _budget(r)
        lines.append(f"| {name} | {r['change']} | {epochs} | {seconds / 60:.1f} | "
                     f"{subset['negative_elbo']:.2f} | {subset['iwae_nll']:.2f} ± {subset['iwae_stderr']:.2f} | {gain} |")
        previous = subset["iwae_nll"]
    full = [e for e in results[STAGES[-1][0]]["evaluations"] if e["n_images"] == 10000]
    if full:
        e = full[-1]
        lines.append(f"\nStage {STAGES[-1][0]} on the full protocol (k={e['k']}, all 10,000 test images): "
                     f"{e['iwae_nll']:.2f} ± {e['iwae_stderr']:.2f} nats (-ELBO {e['negative_elbo']:.2f}); "
                     f"{e['iwae_seconds'] / 60:.1f} min at {e['iwae_passes_per_second']:,.0f} decoder passes/s.")
    return "\n".join(lines)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--data", default=str(SHARED_MNIST), help="MNIST IDX directory (absent: TFDS mnist)")
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--latent-dim", type=int, default=50)
    p.add_argument("--hidden", type=lambda s: [int(w) for w in s.split(",")], default=[512, 512],
                   help="Dense widths of the encoder, comma-separated; the decoder runs them backwards")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--lr-schedule", choices=["cosine", "constant"], default="cosine")
    p.add_argument("--warmup-epochs", type=int, default=10, help="KL warm-up length (0: none)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--k", type=int, default=5000, help="importance samples per test image")
    p.add_argument("--eval-images", type=int, default=10000, help="test images for the IWAE estimate")
    p.add_argument("--eval-only", action="store_true", help="evaluate OUT/model.keras again")
    p.add_argument("--init", default=None, help="warm restart: train on from this saved recipe model.keras")
    args = p.parse_args(argv)
    if args.init and args.eval_only:
        p.error("--init starts a training run; --eval-only evaluates one. Give one of them.")
    if args.init and not Path(args.init).is_file():
        p.error(f"--init {args.init}: no such file. Give the model.keras of an earlier vae_recipe.py run.")
    return args


if __name__ == "__main__":
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    run(parse_args())

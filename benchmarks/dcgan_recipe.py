"""The DCGAN recipe on MNIST: genzoo's default DCGAN, trained longer with both
players' learning rates decayed and the generator's weights averaged, judged as
issue 16 asks (domain FID of 10,000 samples against the 10,000 test images
<= 5, every class between 8% and 12% of the samples).

    python benchmarks/dcgan_recipe.py --epochs 30 --out runs/dcgan-recipe

The model is what `zoo train dcgan` builds for 28x28x1 (latent 100, batch
norm in the generator), with Adam(2e-4, beta_1=0.5) per player as
`zoo train` compiles it, on grey-level images through `zoo.data`. The
recipe's changes:
- `--lr-schedule cosine` (default): both players' rates decay per epoch from
  their starting rate towards 0. The rates are --lr for both, or per player
  with --d-lr / --g-lr (the two time-scale update rule of Heusel et al. 2017:
  a faster discriminator, e.g. --d-lr 4e-4 --g-lr 2e-4).
- `--ema 0.999` (default; 0 for none): the generator's Adam keeps an
  exponential moving average of the generator's weights (Keras' own
  `use_ema`; Yazici et al. 2019). After training the raw generator is
  judged first, then the average is written into it
  (`finalize_variable_values`) and its batch-norm statistics are measured
  again for the averaged weights (`--bn-batches` batches of 256 codes in
  training mode, the weights untouched), and it is judged again. Both rows
  come from the same run.
- `--judge-every K`: the generator as it trains is judged every K epochs
  (domain FID/KID and class shares of --n-samples samples), so the table shows
  where the curve was going when the budget ran out.
- `--conditional`: the class-conditional DCGAN (`DCGAN(num_classes=10)`,
  Mirza & Osindero 2014) trained on the images and their labels. Its samples
  ask for every class in turn (1,000 of each), so its class shares say
  whether the classifier sees the class asked for, not whether the game kept
  every mode; the table marks its rows "conditional" and adds how often a
  sample is of the class asked for. It is a row of its own: it answers what
  labels buy, not the unconditional target.

Figures (zoo.evaluate): domain FID/KID in the feature space of genzoo's
cached MNIST classifier, the class histogram of the samples (mode coverage),
and the real-vs-real floor (10,000 training images against the test images).

Writes OUT/model.keras (the averaged generator when --ema; saved to a
temporary name, then renamed), OUT/history.json (one line per epoch on stdout
too), OUT/result.json and OUT/samples.png (100 samples of the model saved).
"""

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import SHARED_MNIST, EpochLog, cosine_lr, log, machine, versions, write_json  # noqa: E402

FID_TARGET, SHARE_RANGE = 5.0, (0.08, 0.12)


def judge(gan, clf, test_x, train_y, args):
    """Domain FID/KID and class shares of args.n_samples samples; whether issue 16's target is met."""
    from zoo import evaluate

    started = time.time()
    generated = evaluate.generate(gan, args.n_samples, seed=args.seed, progress=True)
    figures = evaluate.sample_quality(clf, generated, test_x, seed=args.seed)
    coverage = evaluate.mode_coverage(clf, generated, train_y)
    if gan.num_classes is None:
        target_met = bool(figures["domain_fid"] <= FID_TARGET and coverage["min_fraction"] >= SHARE_RANGE[0]
                          and coverage["max_fraction"] <= SHARE_RANGE[1])
    else:  # the class shares are set by the labels asked for: not the unconditional target
        figures["conditional"] = evaluate.conditional_accuracy(gan, clf, args.n_samples, seed=args.seed)
        target_met = None
    figures.update(coverage=coverage, seconds=time.time() - started, target_met=target_met)
    log(f"domain FID {figures['domain_fid']:.2f}, KID {figures['domain_kid']:.3f}, class shares "
        f"{coverage['min_fraction']:.1%}-{coverage['max_fraction']:.1%}{_asked(figures)}: target {_target(figures)}")
    return figures, generated


def _asked(figures):
    """A conditional generator's share of samples of the class asked for, as text ("" for an unconditional one)."""
    accuracy = figures.get("conditional", {}).get("accuracy")
    return "" if accuracy is None else f", {accuracy:.1%} of the class asked for"


def _target(figures):
    met = figures["target_met"]
    return "n/a (conditional)" if met is None else "met" if met else "not met"


def player_rates(args):
    """The starting Adam rate of each player: --d-lr / --g-lr, else --lr."""
    return {"d": args.d_lr or args.lr, "g": args.g_lr or args.lr}


def rate_callback(gan, rates, args):
    """Each player's rate per epoch: its starting rate in `rates`, decayed by the cosine of --lr-schedule
    cosine. Keras' LearningRateScheduler would give both players one rate; this keeps each player's own."""
    import keras

    decay = (lambda epoch, lr: 1.0) if args.lr_schedule == "constant" else cosine_lr(1.0, args.epochs)

    class PlayerRates(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            factor = decay(epoch, None)
            gan.d_optimizer.learning_rate = rates["d"] * factor
            gan.g_optimizer.learning_rate = rates["g"] * factor

    return PlayerRates()


def curve_callback(gan, clf, test_x, train_y, args, curve):
    """Judges the generator as it trains every --judge-every epochs (not after the last: `run` does)."""
    import keras

    class Curve(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if args.judge_every and (epoch + 1) % args.judge_every == 0 and epoch + 1 < args.epochs:
                log(f"judging the generator after epoch {epoch + 1}")
                figures = judge(gan, clf, test_x, train_y, args)[0]
                curve.append({"epoch": epoch + 1, **figures})

    return Curve()


def recalibrate_batch_norm(gan, batches, seed, batch_size=256):
    """The batch-norm moving statistics measured afresh for the generator's current weights:
    `batches` forward passes in training mode (only the statistics change; no gradient is taken);
    a conditional generator sees every class in turn."""
    import keras

    from zoo_common.labels import every_class

    seeds = keras.random.SeedGenerator(seed)
    labels = None if gan.num_classes is None else every_class(batch_size, gan.num_classes)
    for _ in range(batches):
        gan(keras.random.normal((batch_size, gan.latent_dim), seed=seeds), training=True, labels=labels)


def run(args):
    import keras
    import numpy as np

    from zoo import classifier, data, training

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    source = f"idx:{args.data}" if Path(args.data).is_dir() else "mnist"
    result = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "settings": vars(args).copy(),
              "machine": {**machine("cpu"), "keras_backend": keras.backend.backend(),
                          "load_average_at_start": list(os.getloadavg())},
              "versions": versions("genzoo", "keras", "tensorflow", "numpy")}
    train_x, train_y = data.arrays(source, "train")
    test_x, test_y = data.arrays(source, "test")
    started = time.time()
    clf = classifier.load_or_train("mnist", (train_x, train_y), (test_x, test_y), cache_dir=args.cache_dir)
    result["classifier"] = {"test_accuracy": clf.test_accuracy, "cached": clf.info.get("cached"),
                            "seconds": time.time() - started}
    log(f"domain classifier: test accuracy {clf.test_accuracy:.4f} (cached: {clf.info.get('cached')})")
    from zoo import evaluate

    result["real_floor"] = evaluate.real_floor(clf, train_x, test_x, args.n_samples, seed=args.seed)
    log(f"real floor: domain FID {result['real_floor']['domain_fid']:.2f}")

    keras.utils.set_random_seed(args.seed)
    gan = training.build_model("dcgan", (28, 28, 1), seed=args.seed, **({"num_classes": 10} if args.conditional else {}))
    rates, adam = player_rates(args), type(gan).adam_options
    gan.compile(d_optimizer=keras.optimizers.Adam(rates["d"], **adam),
                g_optimizer=keras.optimizers.Adam(rates["g"], **adam, use_ema=args.ema > 0,
                                                  ema_momentum=args.ema or 0.99))
    train = data.load(source, "train", batch_size=args.batch_size, seed=args.seed, take=args.take)
    steps = int(train.cardinality())
    log(f"training{' the conditional DCGAN' if args.conditional else ''}: {args.epochs} epochs of {steps} steps, "
        f"batch {args.batch_size}; Adam D {rates['d']} "
        f"G {rates['g']} {args.lr_schedule}; generator EMA {args.ema or 'off'}; load {os.getloadavg()[0]:.2f}")
    started, curve = time.time(), []
    epochs = EpochLog(out / "history.json", started)
    gan.fit(train, epochs=args.epochs, verbose=0, shuffle=False,
            callbacks=[rate_callback(gan, rates, args), epochs.callback, curve_callback(gan, clf, test_x, train_y, args, curve)])
    judging = sum(point["seconds"] for point in curve)
    result["training"] = {"epochs": args.epochs, "seconds": time.time() - started - judging, "steps_per_epoch": steps,
                          "judging_seconds": judging, "final": epochs.history[-1],
                          "load_average_at_end": list(os.getloadavg())}
    result["curve"] = curve

    log(f"judging the generator as trained; load {os.getloadavg()[0]:.2f}")
    result["evaluations"] = {"raw": judge(gan, clf, test_x, train_y, args)[0]}
    if args.ema:
        gan.g_optimizer.finalize_variable_values(gan.generator.trainable_variables)
        recalibrate_batch_norm(gan, args.bn_batches, args.seed)
        log(f"judging the averaged generator (EMA {args.ema}, batch-norm statistics from {args.bn_batches} batches)")
        result["evaluations"]["ema"] = judge(gan, clf, test_x, train_y, args)[0]
    gan.save(out / "model.tmp.keras")
    os.replace(out / "model.tmp.keras", out / "model.keras")
    from zoo_common.grid import save_grid

    labels = None if gan.num_classes is None else np.repeat(np.arange(gan.num_classes), 10)  # a row per class
    save_grid(keras.ops.convert_to_numpy(gan.sample(100, seed=args.seed, labels=labels)), out / "samples.png", ncols=10)
    result["load_average_at_end"] = list(os.getloadavg())
    write_json(result, out / "result.json")
    return result


def _judged_row(lead, figures):
    """One table row of a judged generator: `lead` (its first three cells, "name | epochs | minutes |"),
    then its FID/KID, class coverage and whether the target is met."""
    c = figures["coverage"]
    return (f"| {lead} {figures['domain_fid']:.2f} | {figures['domain_kid']:.3f} | "
            f"{c['classes_covered']}/{c['n_classes']} | {c['min_fraction']:.1%}-{c['max_fraction']:.1%}{_asked(figures)} | "
            f"{_target(figures)} |")


def format_result(result):
    """The markdown table: the generator mid-run (--judge-every), as trained, its average, and the real floor."""
    t = result["training"]
    lines = ["| generator | epochs | train min | domain FID | KID | classes covered | class share min-max | target |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    kind = "conditional, " if result["settings"].get("conditional") else ""
    lines += [_judged_row(f"{kind}as trained, mid-run | {point['epoch']} | |", point) for point in result.get("curve", [])]
    labels = {"raw": "as trained", "ema": "weight average (EMA)"}
    lines += [_judged_row(f"{kind}{label} | {t['epochs']} | {t['seconds'] / 60:.1f} |", result["evaluations"][name])
              for name, label in labels.items() if name in result["evaluations"]]
    floor = result["real_floor"]
    lines.append(f"| real floor (train vs test) | | | {floor['domain_fid']:.2f} | {floor['domain_kid']:.3f} | | | |")
    return "\n".join(lines)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--data", default=str(SHARED_MNIST), help="MNIST IDX directory (absent: TFDS mnist)")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-4, help="both players' Adam learning rate at the start")
    p.add_argument("--d-lr", type=float, default=None, help="the discriminator's starting rate (default --lr)")
    p.add_argument("--g-lr", type=float, default=None, help="the generator's starting rate (default --lr)")
    p.add_argument("--judge-every", type=int, default=0,
                   help="judge the generator every K epochs as it trains (0: at the end only)")
    p.add_argument("--lr-schedule", choices=["cosine", "constant"], default="cosine")
    p.add_argument("--ema", type=float, default=0.999, help="generator weight averaging momentum (0: none)")
    p.add_argument("--bn-batches", type=int, default=200, help="batches that re-measure batch norm for the average")
    p.add_argument("--n-samples", type=int, default=10000, help="samples for FID/KID and the class shares")
    p.add_argument("--conditional", action="store_true",
                   help="train the class-conditional DCGAN on the labels (its own row; samples ask for every class)")
    p.add_argument("--take", type=int, default=None, help="train on the first N images only (a smoke check)")
    p.add_argument("--cache-dir", default=None, help="domain classifier cache (default ~/.cache/genzoo)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if not 0 <= args.ema < 1:
        p.error(f"--ema {args.ema}: give a momentum in [0, 1), e.g. 0.999, or 0 for no averaging.")
    for name in ("lr", "d_lr", "g_lr"):
        if getattr(args, name) is not None and getattr(args, name) <= 0:
            p.error(f"--{name.replace('_', '-')} {getattr(args, name)}: give a positive learning rate, e.g. 2e-4.")
    if args.judge_every < 0:
        p.error(f"--judge-every {args.judge_every}: give a number of epochs, or 0 to judge only at the end.")
    if args.epochs < 1:
        p.error(f"--epochs {args.epochs}: give at least 1.")
    return args


if __name__ == "__main__":
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    run(parse_args())

"""Model quality on full MNIST: genzoo's default VAE, AE (+ Gaussian-mixture
sampler) and DCGAN next to two published peers trained in the same run for the
same number of epochs (the keras.io VAE, the TensorFlow-tutorial DCGAN).

    python benchmarks/quality.py            # ~40 minutes on 2 CPU cores
    python benchmarks/quality.py --quick    # smoke check, ~6 minutes
    python benchmarks/quality.py --full     # the VAE likelihood recipe's ablation, the DCGAN recipe, CIFAR-10; hours

Data: `../shared/datasets/mnist` (IDX) through `zoo.data` (TFDS mnist when the
directory is absent), the pipelines `zoo train` uses; the VAEs train on
dynamically binarised images, the DCGANs and the AE on grey levels. Recipes:
genzoo's default models (as `zoo train` builds them) with Adam as `zoo train`
compiles them; batch 64 for the VAE (with the learning rate cosine-decayed
over the run) and the DCGAN, 128 for the AE. The peers keep their published
recipes (keras.io VAE: batch 128, Adam(1e-3); TF DCGAN: batch 256, Adam(1e-4)).

Figures (conventions in zoo.evaluate):
- VAE: test -ELBO (all 10,000 test images) and the IWAE estimate of -log p(x)
  (Burda et al. 2016) in nats, on the test set binarised once with a fixed
  seed: k=100 on 2,000 random test images, and k=5,000 on 100 of them with the
  paired k=100 -> 5,000 gap (the full protocol, k=5,000 on all 10,000 images,
  is 5e7 decoder passes: hours on this CPU).
- AE/VAE: reconstruction MSE per pixel next to PCA with as many components;
  k-means on the codes of the test set (NMI, accuracy).
- Every model: domain FID/KID of 10,000 samples against the 10,000 test
  images in the feature space of a classifier genzoo trains on the MNIST
  labels (cached); mode coverage under the same classifier; the real-vs-real
  floor (10,000 training images against the test images). The Inception FID
  where the InceptionV3 ImageNet weights load.

The time budget (`--budget-minutes`) is shared by the phases: after the first
epoch of each model of a pair, the pair gets as many further epochs as its
share of what is left allows (both members the same number). The evaluation's
cost is reserved up front from a measured decoder throughput.

Writes `OUT/quality.json` (every figure, timings, epochs, machine, versions),
PNG sample grids and latent-space pictures (also in `OUT/tensorboard`), and
prints the tables last.
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
from _common import RESULTS, SHARED_MNIST, cosine_lr, log, machine as common_machine, versions  # noqa: E402
import cifar10  # noqa: E402
import dcgan_recipe  # noqa: E402
import vae_recipe  # noqa: E402
from zoo_common.files import write_text  # noqa: E402

# Shares of the training budget (DCGAN pair, VAE pair, AE) and epoch caps.
SHARES = {"dcgan": 0.55, "vae": 0.38, "ae": 0.07}
MAX_EPOCHS = {"vae": 30, "dcgan": 10, "ae": 10}
# Seconds reserved for everything in the evaluation except the IWAE passes.
OTHER_EVAL_SECONDS = {"full": 240, "quick": 60}


def source_name(data_dir):
    """The `zoo.data` source: the IDX directory when present, else TFDS mnist (offline: a clear error)."""
    return f"idx:{data_dir}" if Path(data_dir).is_dir() else "mnist"


def machine():
    info = common_machine("cpu")
    info["load_average_at_start"] = list(os.getloadavg())
    info["versions"] = versions("genzoo", "keras", "tensorflow", "numpy", "scikit-learn", "scipy")
    info["versions"]["python"] = info.pop("python")
    return info


class Clock:
    def __init__(self, budget_s):
        self.start, self.budget_s = time.time(), budget_s

    def elapsed(self):
        return time.time() - self.start

    def left(self):
        return self.budget_s - self.elapsed()


def train_pair(clock, phase, members, reserve_s, remaining_phases):
    """Train each (name, fit) of `members` for the same number of epochs within the phase's share.

    `fit(start, end)` trains epochs start..end-1 (0-based) of a run of `end`
    epochs. One epoch of each first (timed), then as many more as the share
    allows. Returns {name: {"epochs", "train_seconds", "epoch_seconds"}}.
    """
    total_share = sum(SHARES[p] for p in remaining_phases)
    share = max(0.0, clock.left() - reserve_s) * SHARES[phase] / total_share
    timings = {}
    for name, fit in members:
        started = time.time()
        fit(0, 1)
        timings[name] = {"first_epoch_seconds": time.time() - started}
        log(f"{name}: first epoch {timings[name]['first_epoch_seconds']:.0f}s")
    per_epoch = sum(t["first_epoch_seconds"] for t in timings.values())
    epochs = int(min(MAX_EPOCHS[phase], max(1, math.floor(share / per_epoch))))
    log(f"{phase}: share {share:.0f}s of {clock.left():.0f}s left -> {epochs} epochs each")
    for name, fit in members:
        started = time.time()
        if epochs > 1:
            fit(1, epochs)
        rest = time.time() - started
        timings[name].update(epochs=epochs, train_seconds=timings[name]["first_epoch_seconds"] + rest)
        timings[name]["epoch_seconds"] = timings[name]["train_seconds"] / epochs
    return timings


# -- evaluation helpers ---------------------------------------------------------------


def cosine_decay(base, epochs):
    """Per-epoch learning rate base * (1 + cos(pi * epoch / epochs)) / 2: from base down towards 0."""
    import keras

    return keras.callbacks.LearningRateScheduler(cosine_lr(base, epochs))


def iwae_protocol(model, test_binary, order, args, seed):
    """IWAE with k=args.iwae_k on a random subset of args.iwae_images test images
    (`order`, a seeded permutation: the MNIST test set runs from cleaner to
    harder writers, so its head is not representative), and k=args.iwae_k_large
    on the first args.iwae_images_large of them; the k-gap on that subset is
    paired (same images at both k)."""
    from zoo import evaluate

    out = {}
    started = time.time()
    nll = evaluate.iwae_nll(model, test_binary[order[: args.iwae_images]], k=args.iwae_k, seed=seed)
    out["headline"] = {"k": args.iwae_k, "n_images": int(len(nll)), "nll": float(nll.mean()),
                       "stderr": float(nll.std(ddof=1) / math.sqrt(len(nll))), "seconds": time.time() - started}
    out["per_image_headline"] = nll
    if args.iwae_images_large:
        subset = test_binary[order[: args.iwae_images_large]]
        started = time.time()
        large = evaluate.iwae_nll(model, subset, k=args.iwae_k_large, seed=seed + 1)
        seconds = time.time() - started
        small = nll[: len(subset)]
        gap = small - large
        out["large_k"] = {"k": args.iwae_k_large, "n_images": int(len(subset)), "nll": float(large.mean()),
                          f"nll_same_images_k{args.iwae_k}": float(small.mean()),
                          "paired_gap": float(gap.mean()), "paired_gap_stderr": float(gap.std(ddof=1) / math.sqrt(len(gap))),
                          "seconds": seconds}
        out["headline_minus_gap"] = out["headline"]["nll"] - float(gap.mean())
    return out


def quality_figures(clf, generated, test, train_labels, seed, kid_subsets, inception=None, n_inception=0):
    from zoo import evaluate

    sq = evaluate.sample_quality(clf, generated, test[0], kid_subsets=kid_subsets, seed=seed)
    if inception is not None:
        sq["inception"] = evaluate.inception_fid(generated[:n_inception], test[0][:n_inception], inception=inception)
    return {**sq, "coverage": evaluate.mode_coverage(clf, generated, train_labels)}


def save_samples(out_dir, name, images):
    from zoo_common.grid import save_grid

    save_grid(images[:100], out_dir / f"samples_{name}.png", ncols=10)


# -- the run -------------------------------------------------------------------------


def run(args):
    import keras

    from benchmarks.peers.keras_io_vae import KerasIOVAE
    from benchmarks.peers.tf_tutorial_dcgan import TFTutorialDCGAN
    from zoo import classifier, data, evaluate, latent, training
    from zoo.samplers import GaussianMixtureSampler

    mode = "quick" if args.quick else "full"
    clock = Clock(args.budget_minutes * 60.0)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    tb_dir = out_dir / "tensorboard"
    results = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "mode": mode,
               "budget_minutes": args.budget_minutes, "machine": machine(), "settings": vars(args).copy()}
    log(f"machine: {results['machine']['cpu']}, {results['machine']['cores']} cores; mode {mode}")

    source = source_name(args.data)
    full_train, full_test = data.arrays(source, "train"), data.arrays(source, "test")
    n_train = 6000 if args.quick else len(full_train[0])
    train_x = full_train[0][:n_train]
    test_x, test_y = full_test[0][: 1000 if args.quick else None], full_test[1][: 1000 if args.quick else None]
    test = (test_x, test_y)
    results["data"] = {"source": source, "n_train": int(len(train_x)), "n_test": int(len(test_x))}
    log(f"data: {len(train_x)} train, {len(test_x)} test images")

    started = time.time()
    # The classifier always learns the full training set: its feature space is the yardstick.
    clf = classifier.load_or_train("mnist", full_train, full_test, cache_dir=args.cache_dir)
    results["classifier"] = {"test_accuracy": clf.test_accuracy, "cached": clf.info.get("cached"),
                             "epochs": clf.info.get("epochs"), "seconds": time.time() - started,
                             "path": clf.info.get("path")}
    log(f"domain classifier: test accuracy {clf.test_accuracy:.4f} (cached: {clf.info.get('cached')})")
    n_samples = args.n_samples
    results["real_floor"] = evaluate.real_floor(clf, full_train[0], test_x, min(n_samples, len(test_x)),
                                                seed=args.seed, kid_subsets=args.kid_subsets)
    # The standard Inception FID only where the ImageNet weights load (not offline).
    inception, reason = evaluate.load_inception() if args.inception_samples else (None, "--inception-samples 0")
    results["inception"] = {"available": inception is not None, "reason": reason, "n_samples": args.inception_samples}
    if inception is None:
        log(f"Inception FID unavailable: {reason}")
    else:
        n = args.inception_samples
        results["inception"]["real_floor"] = evaluate.inception_fid(full_train[0][:n], test_x[:n], inception=inception)

    test_binary = evaluate.binarize(test_x, seed=args.seed)
    keras.utils.set_random_seed(args.seed)
    vae = training.compile_model(training.build_model("vae", (28, 28, 1), seed=args.seed))
    peer_vae = KerasIOVAE(seed=args.seed)
    peer_vae.compile(optimizer=keras.optimizers.Adam())
    # Reserve the evaluation's time: IWAE passes at the measured decoder speed, plus the rest.
    speed = vae_recipe.decoder_passes_per_second(vae, seconds=3.0, batch=2048)
    passes = args.iwae_k * min(args.iwae_images, len(test_x)) + args.iwae_k_large * args.iwae_images_large
    passes += args.iwae_k * min(args.peer_iwae_images, len(test_x))
    reserve = passes / speed + OTHER_EVAL_SECONDS[mode]
    results["eval_reserve"] = {"decoder_passes_per_second": speed, "iwae_passes": passes, "seconds": reserve}
    log(f"decoder: {speed:.0f} passes/s; reserving {reserve:.0f}s for the evaluation")

    # zoo.data's pipelines, as `zoo train` uses them. The DCGANs first: their epochs are the coarsest, the VAEs' the finest use of what is left.
    phases = ["dcgan", "vae", "ae"]
    keras.utils.set_random_seed(args.seed)
    gan = training.compile_model(training.build_model("dcgan", (28, 28, 1), seed=args.seed))
    peer_gan = TFTutorialDCGAN(seed=args.seed)
    gan_data = data.load(source, "train", batch_size=args.gan_batch_size, seed=args.seed, take=n_train)
    timings = dict(train_pair(clock, "dcgan", [
        ("genzoo_dcgan", lambda start, end: gan.fit(gan_data, initial_epoch=start, epochs=end, verbose=0, shuffle=False)),
        ("tf_tutorial_dcgan", lambda start, end: peer_gan.fit(train_x, epochs=end - start)),
    ], reserve, phases))
    phases.remove("dcgan")

    # The VAEs see dynamically binarised images. genzoo's recipe: batch 64 and a
    # cosine-decayed learning rate; the peer's, as published: batch 128, constant Adam(1e-3).
    vae_data = data.load(source, "train", batch_size=args.vae_batch_size, seed=args.seed, take=n_train, binarize=True)
    peer_vae_data = data.load(source, "train", batch_size=128, seed=args.seed, take=n_train, binarize=True)
    timings.update(train_pair(clock, "vae", [
        ("genzoo_vae", lambda start, end: vae.fit(vae_data, initial_epoch=start, epochs=end, verbose=0, shuffle=False,
                                                  callbacks=[cosine_decay(1e-3, end)])),
        ("keras_io_vae", lambda start, end: peer_vae.fit(peer_vae_data, initial_epoch=start, epochs=end, verbose=0,
                                                         shuffle=False)),
    ], reserve, phases))
    phases.remove("vae")

    keras.utils.set_random_seed(args.seed)
    ae = training.compile_model(training.build_model("ae", (28, 28, 1), seed=args.seed))
    ae_data = data.load(source, "train", batch_size=128, seed=args.seed, take=n_train)
    timings.update(train_pair(clock, "ae", [
        ("genzoo_ae", lambda start, end: ae.fit(ae_data, initial_epoch=start, epochs=end, verbose=0, shuffle=False)),
    ], reserve, phases))
    batches = {"genzoo_vae": args.vae_batch_size, "keras_io_vae": 128, "genzoo_dcgan": args.gan_batch_size,
               "tf_tutorial_dcgan": 256, "genzoo_ae": 128}
    for name, batch in batches.items():
        timings[name]["batch_size"] = batch
    results["training"] = timings
    results["training_seconds_total"] = sum(t["train_seconds"] for t in timings.values())
    eval_started = time.time()

    # -- VAEs ---------------------------------------------------------------------
    log("evaluating the VAEs")
    models = {}
    started = time.time()
    order = np.random.default_rng(args.seed).permutation(len(test_binary))
    iwae = iwae_protocol(vae, test_binary, order, args, args.seed)
    elbo = evaluate.negative_elbo(vae, test_binary, seed=args.seed)
    peer_iwae = evaluate.iwae_nll(peer_vae, test_binary[order[: args.peer_iwae_images]], k=args.iwae_k, seed=args.seed)
    peer_elbo = evaluate.negative_elbo(peer_vae, test_binary, seed=args.seed)
    n_peer = len(peer_iwae)
    likelihood = {
        "genzoo_vae": {"negative_elbo": float(elbo.mean()), **{k: v for k, v in iwae.items() if k != "per_image_headline"},
                       f"iwae_first_{n_peer}": float(iwae["per_image_headline"][:n_peer].mean())},
        "keras_io_vae": {"negative_elbo": float(peer_elbo.mean()),
                         "headline": {"k": args.iwae_k, "n_images": n_peer, "nll": float(peer_iwae.mean())}},
        "seconds": time.time() - started,
        "data": "MNIST test images binarised once (seed %d); nats per image; subsets are a seeded random "
                "permutation's head" % args.seed,
    }
    results["likelihood"] = likelihood
    log(f"VAE -log p(x) IWAE k={args.iwae_k}: {iwae['headline']['nll']:.2f} nats; -ELBO {elbo.mean():.2f}")

    vae_gmm = GaussianMixtureSampler(args.gmm_components, seed=args.seed).fit_model(vae, train_x)
    for name, model, sampler in (("genzoo_vae", vae, None), ("genzoo_vae+gmm", vae, vae_gmm),
                                 ("keras_io_vae", peer_vae, None)):
        generated = evaluate.generate(model, n_samples, sampler=sampler, seed=args.seed)
        models[name] = quality_figures(clf, generated, test, full_train[1], args.seed, args.kid_subsets, inception,
                                       args.inception_samples)
        save_samples(out_dir, name, generated)
    results["reconstruction"] = {"genzoo_vae": evaluate.reconstruction_vs_pca(vae, train_x, test_x),
                                 "keras_io_vae": evaluate.reconstruction_vs_pca(peer_vae, train_x, test_x)}
    results["clustering"] = {"genzoo_vae": evaluate.code_clustering(vae, test_x, test_y, seed=args.seed),
                             "keras_io_vae": evaluate.code_clustering(peer_vae, test_x, test_y, seed=args.seed)}

    # -- latent-space pictures (PNG + TensorBoard) -------------------------------------
    latent.interpolate(vae, test_x[:6], test_x[6:12], steps=10, method="linear",
                       path=out_dir / "vae_interpolation_linear.png", log_dir=tb_dir)
    latent.interpolate(vae, test_x[:6], test_x[6:12], steps=10, method="spherical",
                       path=out_dir / "vae_interpolation_spherical.png", log_dir=tb_dir)
    latent.latent_arithmetic(vae, test_x, test_y, source=1, target=7, n=5,
                             path=out_dir / "vae_arithmetic_1_to_7.png", log_dir=tb_dir)
    latent.code_scatter(latent.encode_codes(vae, test_x[:5000]), test_y[:5000],
                        path=out_dir / "vae_codes_pca.png", log_dir=tb_dir)
    latent.code_scatter(latent.encode_codes(peer_vae, test_x[:5000]), test_y[:5000],
                        path=out_dir / "keras_io_vae_codes.png")
    latent.manifold_grid(peer_vae, n=20, path=out_dir / "keras_io_vae_manifold.png")

    # -- DCGANs ----------------------------------------------------------------------
    log("evaluating the DCGANs")
    for name, model in (("genzoo_dcgan", gan), ("tf_tutorial_dcgan", peer_gan)):
        generated = evaluate.generate(model, n_samples, seed=args.seed)
        models[name] = quality_figures(clf, generated, test, full_train[1], args.seed, args.kid_subsets, inception,
                                       args.inception_samples)
        save_samples(out_dir, name, generated)

    # -- AE ----------------------------------------------------------------------------
    log("evaluating the AE")
    ae_gmm = GaussianMixtureSampler(args.gmm_components, seed=args.seed).fit_model(ae, train_x)
    for name, sampler in (("genzoo_ae+normal", None), ("genzoo_ae+gmm", ae_gmm)):
        generated = evaluate.generate(ae, n_samples, sampler=sampler, seed=args.seed)
        models[name] = quality_figures(clf, generated, test, full_train[1], args.seed, args.kid_subsets, inception,
                                       args.inception_samples)
        save_samples(out_dir, name, generated)
    results["reconstruction"]["genzoo_ae"] = evaluate.reconstruction_vs_pca(ae, train_x, test_x)
    results["clustering"]["genzoo_ae"] = evaluate.code_clustering(ae, test_x, test_y, seed=args.seed)
    results["sample_quality"] = models
    results["evaluation_seconds"] = time.time() - eval_started
    results["total_seconds"] = clock.elapsed()
    results["load_average_at_end"] = list(os.getloadavg())
    results["targets"] = targets(results)

    write_text(json.dumps(results, indent=2, default=_json_default) + "\n", out_dir / "quality.json")
    print()
    print(format_tables(results))
    print(f"\nwrote {out_dir / 'quality.json'} and PNGs in {out_dir}")


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def targets(results):
    """The issue's targets, each with its measured figure and met / not met."""
    lik = results["likelihood"]["genzoo_vae"]
    nll = lik["headline"]["nll"]
    gan = results["sample_quality"]["genzoo_dcgan"]["coverage"]
    sq = results["sample_quality"]
    rec = results["reconstruction"]["genzoo_ae"]
    accuracy = results["classifier"]["test_accuracy"]
    large = lik.get("large_k")
    large_note = f"; k={large['k']} on {large['n_images']} of them: {large['nll']:.2f}" if large else ""
    return [
        {"target": "VAE IWAE -log p(x) <= 88 nats (aim <= 86)", "met": nll <= 88.0,
         "figure": f"{nll:.2f} (k={lik['headline']['k']}, {lik['headline']['n_images']} test images{large_note})"},
        {"target": "DCGAN covers 10 classes, each 6%-14% of samples", "met":
         gan["classes_covered"] == 10 and gan["min_fraction"] >= 0.06 and gan["max_fraction"] <= 0.14,
         "figure": f"{gan['classes_covered']} classes, {100 * gan['min_fraction']:.2f}%-{100 * gan['max_fraction']:.2f}%"},
        {"target": "genzoo domain FID below the peer's at equal epochs (VAE)",
         "figure": f"{sq['genzoo_vae']['domain_fid']:.2f} vs {sq['keras_io_vae']['domain_fid']:.2f}",
         "met": sq["genzoo_vae"]["domain_fid"] < sq["keras_io_vae"]["domain_fid"]},
        {"target": "genzoo domain FID below the peer's at equal epochs (DCGAN)",
         "figure": f"{sq['genzoo_dcgan']['domain_fid']:.2f} vs {sq['tf_tutorial_dcgan']['domain_fid']:.2f}",
         "met": sq["genzoo_dcgan"]["domain_fid"] < sq["tf_tutorial_dcgan"]["domain_fid"]},
        {"target": "AE reconstruction MSE below PCA at equal code size",
         "figure": f"{rec['model_mse']:.5f} vs {rec['pca_mse']:.5f} ({rec['code_size']} dims)",
         "met": rec["model_mse"] < rec["pca_mse"]},
        {"target": "domain classifier test accuracy >= 99%", "figure": f"{100 * accuracy:.2f}%", "met": accuracy >= 0.99},
    ]


def format_tables(results):
    lines = []
    training = results["training"]
    floor = results["real_floor"]
    lines.append("| model | epochs | batch | train s | domain FID | KID | classes covered | class share min-max | KL to data |")
    lines.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, figures in results["sample_quality"].items():
        base = name.split("+")[0]
        t = training.get(base, {})
        cov = figures["coverage"]
        lines.append(
            f"| {name} | {t.get('epochs', '')} | {t.get('batch_size', '')} | {t.get('train_seconds', 0):.0f} | {figures['domain_fid']:.2f} | "
            f"{figures['domain_kid']:.3f} | {cov['classes_covered']}/10 | "
            f"{100 * cov['min_fraction']:.1f}%-{100 * cov['max_fraction']:.1f}% | {cov['kl']:.3f} |"
        )
    lines.append(f"| real floor (train vs test) | | | | {floor['domain_fid']:.2f} | {floor['domain_kid']:.3f} | | | |")
    inception = results["inception"]
    if inception["available"]:
        scores = ", ".join(f"{name} {figures['inception']['fid']:.2f}" for name, figures in results["sample_quality"].items())
        lines.append(f"\nInception FID ({inception['n_samples']} images each): {scores}; "
                     f"real floor {inception['real_floor']['fid']:.2f}")
    else:
        lines.append(f"\nInception FID: unavailable ({inception['reason'][:110]})")
    lik = results["likelihood"]
    g, p = lik["genzoo_vae"], lik["keras_io_vae"]
    lines.append("\n| VAE (nats, binarised test set) | -ELBO | IWAE -log p(x) | protocol |")
    lines.append("| --- | ---: | ---: | --- |")
    lines.append(f"| genzoo_vae | {g['negative_elbo']:.2f} | {g['headline']['nll']:.2f} ± {g['headline']['stderr']:.2f} | "
                 f"k={g['headline']['k']}, {g['headline']['n_images']} random test images (-ELBO: all "
                 f"{results['data']['n_test']}) |")
    if "large_k" in g:
        lk = g["large_k"]
        lines.append(f"| genzoo_vae | | {lk['nll']:.2f} | k={lk['k']}, {lk['n_images']} of those images "
                     f"(k={g['headline']['k']} on them: {lk['nll_same_images_k%d' % g['headline']['k']]:.2f}; "
                     f"k-gap {lk['paired_gap']:.2f} ± {lk['paired_gap_stderr']:.2f}) |")
    n_peer = p["headline"]["n_images"]
    lines.append(f"| genzoo_vae | | {g['iwae_first_%d' % n_peer]:.2f} | k={g['headline']['k']}, {n_peer} of those images |")
    lines.append(f"| keras_io_vae | {p['negative_elbo']:.2f} | {p['headline']['nll']:.2f} | k={p['headline']['k']}, the same {n_peer} images |")
    lines.append("\n| codes | size | recon MSE/pixel | PCA MSE/pixel | k-means NMI | k-means acc |")
    lines.append("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, rec in results["reconstruction"].items():
        clu = results["clustering"][name]
        lines.append(f"| {name} | {rec['code_size']} | {rec['model_mse']:.5f} | {rec['pca_mse']:.5f} | "
                     f"{clu['nmi']:.3f} | {clu['accuracy']:.3f} |")
    lines.append(f"\ndomain classifier test accuracy: {results['classifier']['test_accuracy']:.4f}; "
                 f"total {results['total_seconds'] / 60:.1f} min (budget {results['budget_minutes']} min), "
                 f"training {results['training_seconds_total'] / 60:.1f} min, evaluation {results['evaluation_seconds'] / 60:.1f} min")
    lines.append("\n| target | figure | met |")
    lines.append("| --- | --- | --- |")
    for t in results["targets"]:
        lines.append(f"| {t['target']} | {t['figure']} | {'met' if t['met'] else 'NOT met'} |")
    return "\n".join(lines)


def run_full(args):
    """--full: the VAE likelihood recipe (benchmarks/vae_recipe.py), each change of its ablation
    trained and judged at k=5000 on the same 1,000 test images, then its last stage on the full
    protocol (k=5000 on all 10,000 test images); then the DCGAN recipe (benchmarks/dcgan_recipe.py),
    its generator as trained and averaged; then CIFAR-10 (benchmarks/cifar10.py). Writes
    OUT/quality-full.json and prints the tables."""
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    results = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "mode": "full", "machine": machine(),
               "ablation": vae_recipe.run_ablation(out_dir / "vae-recipe", data=args.data)}
    log("the DCGAN recipe")
    cache = ["--cache-dir", args.cache_dir] if args.cache_dir else []
    results["dcgan_recipe"] = dcgan_recipe.run(dcgan_recipe.parse_args(
        ["--out", str(out_dir / "dcgan-recipe"), "--data", args.data, *cache]))
    log("CIFAR-10: the DCGAN and the Gaussian VAE by `zoo train` and `zoo evaluate`")
    results["cifar10"] = cifar10.run(cifar10.parse_args(["--out", str(out_dir / "cifar10"), *cache]))
    results["total_seconds"] = time.time() - started
    results["load_average_at_end"] = list(os.getloadavg())
    write_text(json.dumps(results, indent=2, default=_json_default) + "\n", out_dir / "quality-full.json")
    print()
    print(vae_recipe.format_ablation(results["ablation"]))
    print()
    print(dcgan_recipe.format_result(results["dcgan_recipe"]))
    print()
    print(cifar10.format_result(results["cifar10"]))
    print(f"\nwrote {out_dir / 'quality-full.json'}; {results['total_seconds'] / 60:.0f} min in all")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="smoke check: 6,000 train / 1,000 test images, small k")
    mode.add_argument("--full", action="store_true",
                      help="the VAE likelihood recipe (its ablation, the full k=5000 protocol), the DCGAN recipe, and "
                           "CIFAR-10 (hours on 2 cores)")
    p.add_argument("--budget-minutes", type=float, default=None, help="whole-run budget (default 40; quick 6)")
    p.add_argument("--data", default=str(SHARED_MNIST), help="directory of the MNIST IDX files (absent: TFDS mnist)")
    p.add_argument("--out", default=None, help="output directory (default benchmarks/results/quality[-quick])")
    p.add_argument("--cache-dir", default=None, help="domain classifier cache (default ~/.cache/genzoo)")
    p.add_argument("--iwae-k", type=int, default=None, help="IWAE samples per image, headline figure (default 100)")
    p.add_argument("--iwae-images", type=int, default=None, help="random test images for the headline (default 2000)")
    p.add_argument("--iwae-k-large", type=int, default=5000, help="IWAE samples on the small subset (default 5000)")
    p.add_argument("--iwae-images-large", type=int, default=None, help="test images at --iwae-k-large (default 100)")
    p.add_argument("--peer-iwae-images", type=int, default=None, help="test images for the peer VAE's IWAE (default 1000)")
    p.add_argument("--n-samples", type=int, default=None, help="generated images per model (default 10000)")
    p.add_argument("--vae-batch-size", type=int, default=64, help="genzoo VAE batch (the keras.io VAE keeps 128)")
    p.add_argument("--gan-batch-size", type=int, default=64, help="genzoo DCGAN batch (the TF tutorial keeps 256)")
    p.add_argument("--kid-subsets", type=int, default=100)
    p.add_argument("--gmm-components", type=int, default=10)
    p.add_argument("--inception-samples", type=int, default=2000,
                   help="images per model for the Inception FID, where its ImageNet weights load (0: skip)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    quick = args.quick
    defaults = {"budget_minutes": 6 if quick else 40, "iwae_k": 20 if quick else 100,
                "iwae_images": 200 if quick else 2000, "iwae_images_large": 4 if quick else 100,
                "peer_iwae_images": 100 if quick else 1000, "n_samples": 1000 if quick else 10000,
                "out": str(RESULTS / ("quality-quick" if quick else "quality-full" if args.full else "quality"))}
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if quick:
        args.kid_subsets = min(args.kid_subsets, 20)
        args.iwae_k_large = min(args.iwae_k_large, 500)
    return args


if __name__ == "__main__":
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    arguments = parse_args()
    if arguments.full:
        run_full(arguments)
    else:
        run(arguments)

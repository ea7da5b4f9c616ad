"""`zoo evaluate RUN_DIR`: parsing and printing only; the work is
`zoo.evaluate.evaluate_run`, imported when the command runs."""

from zoo_cli import backends


def add_parser(subparsers):
    """Add `zoo evaluate RUN_DIR` to the `zoo` parser."""
    p = subparsers.add_parser(
        "evaluate",
        help="evaluate a trained run directory; writes RUN_DIR/eval.json",
        description="Likelihood (VAE), reconstruction vs PCA and clustering of codes (AE/VAE), domain FID/KID "
        "and mode coverage under a cached classifier trained on the dataset's labels (all models). "
        "RUN_DIR/eval.json is checked to be writable before anything is computed; the table is printed even "
        "if the final write fails (then exit 2). Progress: one line on stderr per stage, and for the long ones "
        "(IWAE, sampling) a bar on a terminal, else a line per 10%%.",
    )
    p.add_argument("run_dir", help="a directory written by `zoo train` (model.keras, config.json)")
    p.add_argument("--k", type=int, default=5000, help="VAE: importance samples per image for -log p(x) (default 5000)")
    p.add_argument("--n-likelihood", type=int, default=None,
                   help="VAE: test images for the likelihood figures (default: all)")
    p.add_argument("--n-samples", type=int, default=10000, help="generated images for FID/KID and coverage")
    p.add_argument("--sampler", choices=["prior", "gmm"], default="prior",
                   help="codes to decode: the prior N(0, I), or a Gaussian mixture fitted to the training codes (AE/VAE)")
    p.add_argument("--components", type=int, default=10, help="mixture components of --sampler gmm (default 10)")
    p.add_argument("--cache-dir", default=None, help="where the domain classifier is cached (default ~/.cache/genzoo)")
    p.add_argument("--inception", action="store_true",
                   help="also compute the Inception FID (needs the InceptionV3 ImageNet weights, cached or "
                   "downloadable; slow on a CPU)")
    p.add_argument("--seed", type=int, default=0)
    backends.add_argument(p)
    p.set_defaults(run=run)


def format_table(results):
    """The evaluation results as a two-column text table."""
    rows = [("model", f"{results.get('model')} (latent {results.get('latent_dim')}, sampler {results.get('sampler')})")]
    clf = results.get("classifier") or {}
    if clf.get("test_accuracy") is not None:
        rows.append(("domain classifier test accuracy", f"{clf['test_accuracy']:.4f}"))
    lik = results.get("likelihood")
    if lik:
        where = f"k={lik['k']}, {lik['n_images']} test images, {lik['data']}"
        if "iwae_nll_bits_per_dim" in lik:
            rows.append(("-ELBO (bits/dim)", f"{lik['negative_elbo_bits_per_dim']:.4f}"))
            rows.append((f"-log p(x) IWAE (bits/dim; {where})", f"{lik['iwae_nll_bits_per_dim']:.4f}"))
        else:
            rows.append(("-ELBO (nats)", f"{lik['negative_elbo_nats']:.2f}"))
            rows.append((f"-log p(x) IWAE (nats; {where})", f"{lik['iwae_nll_nats']:.2f} ± {lik['iwae_nll_stderr'] or 0:.2f}"))
    rec = results.get("reconstruction")
    if rec:
        rows.append((f"reconstruction MSE/pixel (code {rec['code_size']})", f"{rec['model_mse']:.5f}"))
        rows.append((f"PCA MSE/pixel ({rec['code_size']} components)", f"{rec['pca_mse']:.5f}"))
    clu = results.get("clustering")
    if clu:
        rows.append(("k-means on codes: NMI / accuracy", f"{clu['nmi']:.3f} / {clu['accuracy']:.3f}"))
    sq = results.get("sample_quality")
    if sq:
        rows.append(("domain FID / KID", f"{sq['domain_fid']:.3f} / {sq['domain_kid']:.4f}"))
    floor = results.get("real_floor")
    if floor:
        rows.append(("real-vs-real floor: FID / KID", f"{floor['domain_fid']:.3f} / {floor['domain_kid']:.4f}"))
    cov = results.get("coverage")
    if cov:
        rows.append(("classes covered / KL to data", f"{cov['classes_covered']}/{cov['n_classes']} / {cov['kl']:.4f}"))
        rows.append(("class share min / max", f"{cov['min_fraction']:.3f} / {cov['max_fraction']:.3f}"))
    cond = results.get("conditional")
    if cond and "accuracy" in cond:
        worst = min(range(len(cond["per_class"])), key=lambda c: cond["per_class"][c])
        rows.append(("samples of the class asked for (conditional)",
                     f"{cond['accuracy']:.3f} (worst: class {worst}, {cond['per_class'][worst]:.3f})"))
    elif cond:
        rows.append(("class-conditional accuracy", f"not measured ({cond['skipped']})"))
    for what, why in results.get("not_evaluated", {}).items():
        rows.append((what, f"not evaluated ({why})"))
    inc = results.get("inception")
    if inc:
        if inc.get("available"):
            floor = results["inception_real_floor"]["fid"]
            rows.append(("Inception FID / real floor", f"{inc['fid']:.2f} / {floor:.2f}"))
        else:
            rows.append(("Inception FID", f"unavailable ({inc['reason']})"))
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def run(args):
    from zoo.evaluate import NotWritten, evaluate_run
    from zoo_common import layout

    try:
        results = evaluate_run(
            args.run_dir, k=args.k, n_likelihood=args.n_likelihood, n_samples=args.n_samples, sampler=args.sampler,
            n_components=args.components, cache_dir=args.cache_dir, inception=args.inception, seed=args.seed,
            progress=True,
        )
    except NotWritten as err:
        # The work is done: the figures go to stdout before the one-line error.
        print(format_table(err.results), flush=True)
        raise OSError(f"{err}; the figures are in the table above.") from None
    print(format_table(results))
    print(f"wrote {layout.path(args.run_dir, layout.EVAL)}")

"""`zoo train MODEL ...`: argument parsing only; the work is zoo.training.train."""

import argparse
import os
import sys

from zoo_cli import backends


# The names of zoo.registry.MODELS, spelled out so that `zoo --help` need not import Keras
# (tests/test_cli.py checks that the two agree).
MODEL_NAMES = ("ae", "dae", "vae", "dcgan", "wgan-gp")


def _image_size(text):
    """"64" -> 64, "64x48" -> (64, 48) (height x width)."""
    try:
        parts = [int(p) for p in text.lower().split("x")]
    except ValueError:
        parts = []
    if len(parts) not in (1, 2) or min(parts) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size: give SIDE (64) or HEIGHTxWIDTH (64x48)")
    return parts[0] if len(parts) == 1 else tuple(parts)


def add_parser(subparsers):
    p = subparsers.add_parser(
        "train",
        help="train a model and write a run directory",
        description="Train MODEL on a dataset and write RUN_DIR: model.keras, config.json, history.json, "
        "samples.png, checkpoint/ (for --resume) and TensorBoard logs (tensorboard --logdir RUN_DIR).",
    )
    p.add_argument("model", choices=MODEL_NAMES, help="which model to train")
    p.add_argument("--dataset", default=None,
                   help="digits (default; bundled with scikit-learn), idx:DIR (MNIST-format IDX files), "
                   "folder:DIR (a folder of images, class sub-folders allowed) or a TFDS name (mnist, "
                   "fashion_mnist, cifar10, celeb_a, ...)")
    p.add_argument("--epochs", type=int, default=10, help="train until this many epochs in total (default 10)")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory to write")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in RUN_DIR from its last completed epoch, with its saved settings and on the "
                        "backend it last trained on (unless --backend or KERAS_BACKEND says otherwise); the result is "
                        "the run that was never interrupted, bit for bit on one backend")
    p.add_argument("--overwrite", action="store_true", help="delete a run already in RUN_DIR and start again")
    p.add_argument("--batch-size", type=int, default=None, help="default 128")
    p.add_argument("--latent-dim", type=int, default=None, help="latent/code width (default per model)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default 1e-3; 2e-4 for dcgan; 1e-4 for wgan-gp)")
    p.add_argument("--d-lr", type=float, default=None, help="dcgan: discriminator learning rate; wgan-gp: the critic's (default --lr)")
    p.add_argument("--g-lr", type=float, default=None, help="dcgan, wgan-gp: generator learning rate (default --lr)")
    p.add_argument("--seed", type=int, default=None, help="seed of weights, shuffling and noise (default 0)")
    p.add_argument("--image-size", type=_image_size, default=None, metavar="SIZE",
                   help="centre-crop and resize to SIZE (64) or HxW (64x48); sides must be divisible by 4")
    p.add_argument("--binarize", action=argparse.BooleanOptionalAction, default=None,
                   help="dynamic binarisation of the pixels (default: on for the Bernoulli vae)")
    p.add_argument("--cache", action="store_true", default=None, help="cache the decoded images in memory")
    p.add_argument("--take", type=int, default=None, metavar="N", help="use only the first N examples (smoke runs)")
    p.add_argument("--data-dir", default=None, help="TFDS data directory (default $TFDS_DATA_DIR or ~/tensorflow_datasets)")
    p.add_argument("--no-download", action="store_true", help="never download a missing TFDS dataset")
    p.add_argument("--log-every", type=int, default=None, metavar="STEPS",
                   help="per-step TensorBoard scalars every STEPS steps (default 1; 0 for per-epoch only)")
    p.add_argument("--no-validation", dest="validation", action="store_false", default=None,
                   help="skip the held-out evaluation after every epoch")
    p.add_argument("--noise-stddev", type=float, default=None, help="ae/dae: input noise stddev")
    p.add_argument("--likelihood", default=None, help="vae: bernoulli or gaussian")
    p.add_argument("--beta", type=float, default=None, help="vae: weight of the KL term")
    p.add_argument("--loss", default=None, help="ae: bce or mse; dcgan: non_saturating or minimax")
    p.add_argument("--conditional", action="store_true", default=None,
                   help="vae, dcgan: a class-conditional model, trained on the dataset's labels (TensorBoard shows "
                        "one row of samples per class)")
    p.add_argument("--precision", default=None, choices=["float32", "mixed_bfloat16"],
                   help="Keras dtype policy (default float32; mixed_bfloat16 is faster on CPUs with AMX/AVX512-BF16)")
    p.add_argument("--distribute", default=None, choices=["mirrored", "multi-worker", "data-parallel"],
                   help="data-parallel training: mirrored = tf.distribute.MirroredStrategy over this machine's devices "
                        "(TensorFlow backend: every GPU, else the CPU devices); multi-worker = "
                        "tf.distribute.MultiWorkerMirroredStrategy over the machines in TF_CONFIG (run the same "
                        "command on each; the chief writes RUN_DIR, which the others must see); data-parallel = "
                        "keras.distribution.DataParallel (JAX backend: every device); --batch-size is the global batch")
    p.add_argument("--cpu-replicas", type=int, default=None, metavar="N",
                   help="with --distribute on a machine without GPUs: split the CPU into N logical devices (to try "
                        "distribution; not faster)")
    backends.add_argument(p)
    p.set_defaults(run=run)


def run(args):
    if args.cpu_replicas is not None:
        if args.cpu_replicas < 1 or not args.distribute:
            raise ValueError(f"--cpu-replicas {args.cpu_replicas}: give a number >= 1, with --distribute.")
        # JAX reads its host device count when it starts: before Keras loads it.
        os.environ["XLA_FLAGS"] = backends.xla_flags_with_host_devices(os.environ.get("XLA_FLAGS"), args.cpu_replicas)
    from zoo import training

    options = {"noise_stddev": args.noise_stddev, "likelihood": args.likelihood, "beta": args.beta, "loss": args.loss}
    # A finished run resumed to the epochs it has is left as it is (train says so); nothing is written then.
    finished = args.resume and training.completed_epochs(args.out) == args.epochs
    training.train(
        args.model, dataset=args.dataset, epochs=args.epochs, out=args.out, batch_size=args.batch_size,
        latent_dim=args.latent_dim, learning_rate=args.lr, d_learning_rate=args.d_lr, g_learning_rate=args.g_lr,
        image_size=args.image_size, binarize=args.binarize, cache=args.cache, take=args.take,
        data_dir=args.data_dir, download=not args.no_download, seed=args.seed, log_every=args.log_every,
        validation=args.validation, resume=args.resume, overwrite=args.overwrite, precision=args.precision,
        distribute=args.distribute, cpu_replicas=args.cpu_replicas, conditional=args.conditional,
        # A terminal gets progress bars; a log file or CI one line per epoch.
        verbose=1 if sys.stdout.isatty() else 2, **options,
    )
    if args.distribute == "multi-worker":
        from zoo import replicas

        role = replicas.cluster_role()
        if not role.is_chief:
            print(f"{role.task_type} {role.index} of the cluster: done (the chief wrote {args.out})")
            return
    if finished:
        return
    print(f"wrote {args.out}: model.keras, samples.png, TensorBoard logs (tensorboard --logdir {args.out})")

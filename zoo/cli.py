"""`zoo ...` commands: argument parsing only; the work is in zoo.training and export."""

import argparse
import sys


def _add_train(subparsers):
    p = subparsers.add_parser("train", help="train a model and write a run directory")
    p.add_argument("model", choices=["ae", "dae", "vae", "dcgan"], help="which model to train")
    p.add_argument("--dataset", default="digits", help="dataset source (default: digits, bundled with scikit-learn)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--out", required=True, help="run directory to write")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--latent-dim", type=int, default=None, help="latent/code width (default per model)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default 1e-3; 2e-4 for dcgan)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace a trained model already in --out")
    p.add_argument("--noise-stddev", type=float, default=None, help="ae/dae: input noise stddev")
    p.add_argument("--likelihood", default=None, help="vae: bernoulli or gaussian")
    p.add_argument("--beta", type=float, default=None, help="vae: weight of the KL term")
    p.add_argument("--loss", default=None, help="ae: bce or mse; dcgan: non_saturating or minimax")
    p.set_defaults(run=_run_train)


def _run_train(args):
    from zoo import training

    options = {"noise_stddev": args.noise_stddev, "likelihood": args.likelihood, "beta": args.beta, "loss": args.loss}
    training.train(
        args.model, dataset=args.dataset, epochs=args.epochs, out=args.out, batch_size=args.batch_size,
        latent_dim=args.latent_dim, learning_rate=args.lr, seed=args.seed, overwrite=args.overwrite, **options,
    )
    print(f"wrote {args.out}/model.keras and {args.out}/samples.png")


def build_parser():
    parser = argparse.ArgumentParser(prog="zoo", description="genzoo: train, export and sample generative models.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    _add_train(subparsers)
    from export.cli import add_commands as add_export_commands
    from zoo.evaluate_cli import add_commands as add_evaluate_commands

    add_export_commands(subparsers)
    add_evaluate_commands(subparsers)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        print(f"zoo {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"zoo {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

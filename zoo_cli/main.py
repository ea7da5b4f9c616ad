"""`zoo`: the parser of every subcommand, the backend choice, and one way of
reporting errors (one line, exit code 2; Ctrl-C: 130)."""

import argparse
import sys

from zoo_cli import backends, evaluate, export, generate, train

COMMANDS = (train, evaluate, export, generate)


def build_parser():
    parser = argparse.ArgumentParser(prog="zoo", description="genzoo: train, evaluate, export and sample generative models.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(subparsers)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        if hasattr(args, "backend"):
            backends.select(args.backend)
        args.run(args)
    except (ValueError, OSError) as err:
        print(f"zoo {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        print(f"zoo {args.command}: {err or 'interrupted'}", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

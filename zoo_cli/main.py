"""`zoo`: the parser of every subcommand, the backend choice, and one way of
reporting errors (one line, exit code 2; Ctrl-C: 130)."""

import argparse
import os
import signal
import sys
import warnings

from zoo_cli import backends, evaluate, export, generate, train

COMMANDS = (train, evaluate, export, generate)


def build_parser():
    parser = argparse.ArgumentParser(prog="zoo", description="genzoo: train, evaluate, export and sample generative models.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(subparsers)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM (what schedulers and `kill` send), handled like Ctrl-C: the run saves and says how to resume."""


def _terminate(signum, frame):
    raise Terminated("terminated")


def main(argv=None):
    args = build_parser().parse_args(argv)
    # A warning is one line in the command's voice, not Python's two with a source line.
    formatwarning = warnings.formatwarning
    warnings.formatwarning = lambda message, category, *rest: f"zoo {args.command}: warning: {message}\n"
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        if hasattr(args, "backend"):
            name = args.backend
            if name is None and not os.environ.get("KERAS_BACKEND") and getattr(args, "resume", False):
                # A resumed run goes on where it trained, unless told otherwise (bit-equal only on one backend).
                name = backends.of_run(args.out)
            backends.select(name)
        args.run(args)
    except (ValueError, OSError) as err:
        print(f"zoo {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        print(f"zoo {args.command}: {str(err) or 'interrupted'}", file=sys.stderr)
        # The conventional codes: 128 + the signal's number.
        return 128 + (signal.SIGTERM if isinstance(err, Terminated) or _terminated(err) else signal.SIGINT)
    finally:
        signal.signal(signal.SIGTERM, previous)
        warnings.formatwarning = formatwarning  # main() called in a process that goes on (tests, notebooks)
    return 0


def _terminated(err):
    """Whether an interruption (re-raised by the training with its own message) began as SIGTERM."""
    while err is not None:
        if isinstance(err, Terminated):
            return True
        err = err.__context__
    return False


if __name__ == "__main__":
    sys.exit(main())

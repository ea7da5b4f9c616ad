"""The `zoo evaluate` subcommand (registered by zoo.cli)."""


def add_commands(subparsers):
    """Add the evaluation subcommands to the `zoo` parser (none yet)."""
    return subparsers

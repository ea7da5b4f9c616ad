"""The export layer's `zoo` subcommands (registered by zoo.cli)."""


def add_commands(subparsers):
    """Add the export layer's subcommands to the `zoo` parser (none yet)."""
    return subparsers

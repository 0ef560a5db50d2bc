"""What every `propensity` command group shares: exit codes, the user-error exception and
the ``--plugin`` option.

Each command group is a module of this package with an ``add_X_parser(subparsers)`` that builds
its arguments and a ``run_X(args, out, err)`` that returns the exit code and prints every
problem as one line, never a traceback.
"""

from __future__ import annotations

import argparse

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class CliError(Exception):
    pass


def add_plugin_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE first (registers its toolkits and kinds of episode); also "
        "PROPENSITY_PLUGINS. A run "
        "records its plugins: --resume, replay verify --against sandbox, replay branch and "
        "merge load them again (never from inside a run directory)",
    )

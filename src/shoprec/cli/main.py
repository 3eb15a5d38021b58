"""The ``shoprec`` command: one entry point, one sub-command per job.

Every failure a user can cause ends as one ``error: ...`` line saying what is wrong, where and
what to do (exit code 2); a traceback is shown only with ``--debug``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from shoprec import __version__
from shoprec.cli import (
    bundle_cmd,
    data_cmds,
    demo_cmd,
    eval_cmds,
    loop_cmds,
    model_cmds,
    search_cmd,
    search_train_cmd,
    service_cmds,
    text_cmds,
)
from shoprec.errors import ShoprecError

EXIT_USER_ERROR = 2
EXIT_INTERNAL = 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shoprec",
        description="shoprec: e-commerce recommendations from catalogs, events, reviews and search logs.",
    )
    parser.add_argument("--version", action="version", version=f"shoprec {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks for unexpected errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    modules = (demo_cmd, data_cmds, eval_cmds, model_cmds, text_cmds, bundle_cmd, search_cmd, search_train_cmd)
    for module in (*modules, service_cmds, loop_cmds):
        module.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except ShoprecError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - the last line of defence for CLI users
        if args.debug:
            raise
        print(
            f"internal error: {type(err).__name__}: {err}\n"
            "This is a bug in shoprec; rerun with --debug for the traceback and report it.",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())

"""`grader`: the command line. It parses arguments and calls library functions, nothing more.
Errors a user can fix are printed as one line (exit status 2); see CONTRACT.md for the others."""

from __future__ import annotations

import argparse
import sys

from grader import __version__
from grader.cli import batch, grading
from grader.cli.common import default_assignment, host_has_gpu
from grader.errors import UserError

__all__ = ["main", "UserError", "host_has_gpu"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="grader", description="Autograder: grades submissions of an assignment "
                                     "(assignments/NAME) in a sandbox; reports, gradebook, student releases.")
    parser.add_argument("--version", action="version", version=f"grader {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    grading.add_commands(sub)
    batch.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command. A `UserError` (grader/errors.py) is printed as its one-line message with
    exit status 2; any other exception is a bug in the grader and shows its traceback."""
    args = _parser().parse_args(argv)
    try:
        if getattr(args, "default_assignment", False) and args.assignment is None:
            args.assignment = default_assignment()
        return args.run(args)
    except UserError as err:
        print(f"grader: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("grader: interrupted; results written so far are kept, and running the same command again "
              "continues where this one stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

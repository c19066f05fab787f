"""`grader`: the command line. It parses arguments and calls library functions, nothing more.
Errors a user can fix are printed as one line (exit status 2); see CONTRACT.md for the others."""

from __future__ import annotations

import argparse
import sys

from grader import __version__
from grader.cli import batch, grading
from grader.cli.common import UserError, host_has_gpu

__all__ = ["main", "UserError", "host_has_gpu"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="grader", description="Autograder for the U-Net urothelial assignment.")
    parser.add_argument("--version", action="version", version=f"grader {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    grading.add_commands(sub)
    batch.add_commands(sub)
    return parser


def _user_errors() -> tuple[type[BaseException], ...]:
    from grader.assignments import AssignmentError
    from grader.batch import BatchInputError, ExecutorError
    from grader.batch.git import GitSourceError
    from grader.gradebook import ManualGradesError
    from grader.sandbox import SandboxUnavailable
    from grader.suites.base import SuiteError

    return (UserError, AssignmentError, SandboxUnavailable, SuiteError, FileNotFoundError, BatchInputError,
            ExecutorError, ManualGradesError, GitSourceError)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.run(args)
    except _user_errors() as err:
        print(f"grader: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("grader: interrupted; results written so far are kept, and running the same command again "
              "continues where this one stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

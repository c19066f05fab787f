"""`grader`: the command line. It parses arguments and calls library functions, nothing more."""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

from grader import __version__

DEFAULT_ASSIGNMENT = Path("assignments/unet_urothelial")


def _environment() -> dict[str, str]:
    """Versions of what grading depends on, so a bug report can name them."""
    import numpy
    import segmentation_models_pytorch
    import torch

    from grader.sandbox import probe

    return {"grader": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "segmentation_models_pytorch": segmentation_models_pytorch.__version__,
            "numpy": numpy.__version__, "cuda": str(torch.cuda.is_available()),
            "sandbox": "bubblewrap" if probe() is None else f"unavailable ({probe()})"}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="grader", description="Autograder for the U-Net urothelial assignment.")
    parser.add_argument("--version", action="version", version=f"grader {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("env", help="print the versions grading depends on and whether the sandbox works")
    grade = sub.add_parser("grade", help="grade one submission in the sandbox; writes OUT/results.json")
    grade.add_argument("submission", type=Path, help="a .ipynb, a .py, or a folder (optionally with model.pt)")
    grade.add_argument("--assignment", type=Path, default=DEFAULT_ASSIGNMENT,
                       help=f"assignment folder with assignment.toml (default {DEFAULT_ASSIGNMENT})")
    grade.add_argument("--out", type=Path, default=Path("graded"), help="output folder (default: graded)")
    grade.add_argument("--tag", action="append", default=[], help="grade only tests with this tag (repeatable)")
    grade.add_argument("--allow-unsandboxed", action="store_true",
                       help="where bubblewrap is unavailable, run student code as a plain subprocess")
    assign = sub.add_parser("assign", help="write the student release: notebook without solutions, public tests, data")
    assign.add_argument("--assignment", type=Path, default=DEFAULT_ASSIGNMENT)
    assign.add_argument("--out", type=Path, required=True, help="release folder (must not exist or be empty)")
    return parser


def _assign(args: argparse.Namespace) -> int:
    from grader.assignments import load_assignment, write_release

    out = write_release(load_assignment(args.assignment), args.out)
    print(f"wrote the student release to {out}")
    return 0


def _grade(args: argparse.Namespace) -> int:
    from grader.assignments import check_suite, load_assignment
    from grader.execution import Budget
    from grader.sandbox import make_sandbox
    from grader.scoring import grade_submission, write_results
    from grader.suites import load_suite

    if not args.submission.exists():
        raise UserError(f"{args.submission}: no such file or folder")
    assignment = load_assignment(args.assignment)
    suite = load_suite(assignment.suite_dir, assignment)
    check_suite(assignment, suite)
    tests = [t for t in suite if not args.tag or t.tag in args.tag]
    if not tests:
        raise UserError(f"{assignment.suite_dir}: no tests (tags {args.tag or 'any'})")
    sandbox = make_sandbox(allow_unsandboxed=args.allow_unsandboxed)
    budget = Budget(load_seconds=assignment.time.load_seconds, cell_seconds=assignment.time.cell_seconds,
                    call_seconds_cap=assignment.time.call_seconds, gpu=assignment.gpu and host_has_gpu())
    result = grade_submission(args.submission, tests, sandbox, budget)
    path = write_results(args.out / "results.json", result)
    print(f"{args.submission}: {result.score:g} / {result.max_score:g} points; wrote {path}")
    return 0


def host_has_gpu() -> bool:
    """Whether NVIDIA devices exist here to pass into the sandbox."""
    import glob

    return bool(glob.glob("/dev/nvidia[0-9]*"))


class UserError(Exception):
    """A mistake in how the grader was called; printed as one line, exit status 2."""


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from grader.assignments import AssignmentError
    from grader.sandbox import SandboxUnavailable
    from grader.suites.base import SuiteError

    try:
        if args.command == "env":
            for key, value in _environment().items():
                print(f"{key:<28}{value}")
            return 0
        return _assign(args) if args.command == "assign" else _grade(args)
    except (UserError, AssignmentError, SandboxUnavailable, SuiteError, FileNotFoundError) as err:
        print(f"grader: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""`grader`: the command line. It parses arguments and calls library functions, nothing more.

The grading verbs of CONTRACT.md (grade, batch, check, assign, ci) are added by the packages
that implement them (sandbox, execution, suites, scoring, reports); until then `grader` reports
its version and the environment it would grade in.
"""

from __future__ import annotations

import argparse
import platform
import sys

from grader import __version__


def _environment() -> dict[str, str]:
    """Versions of what grading depends on, so a bug report can name them."""
    import numpy
    import segmentation_models_pytorch
    import torch

    return {"grader": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "segmentation_models_pytorch": segmentation_models_pytorch.__version__,
            "numpy": numpy.__version__, "cuda": str(torch.cuda.is_available())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="grader", description="Autograder for the U-Net urothelial assignment.")
    parser.add_argument("--version", action="version", version=f"grader {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("env", help="print the versions grading depends on")
    args = parser.parse_args(argv)
    if args.command == "env":
        for key, value in _environment().items():
            print(f"{key:<28}{value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

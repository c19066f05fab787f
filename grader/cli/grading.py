"""`grader env`, `grade`, `check`, `ci` and `assign`: one submission at a time."""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
from pathlib import Path

from grader import __version__
from grader.cli.common import (UserError, add_assignment_option, announce_sandbox, default_assignment, find_assignment,
                               host_has_gpu, named_assignment, require_exists)


def add_commands(sub: argparse._SubParsersAction) -> None:
    env = sub.add_parser("env", help="print the versions grading depends on and whether the sandbox works")
    env.set_defaults(run=_env)

    grade = sub.add_parser("grade", help="grade one submission in the sandbox; writes OUT/results.json and report.html")
    grade.add_argument("submission", type=Path, help="a .ipynb, a .py, or a folder (optionally with model.pt)")
    add_assignment_option(grade)
    grade.add_argument("--out", type=Path, default=Path("graded"), help="output folder (default: graded)")
    grade.add_argument("--tag", action="append", default=[], help="grade only tests with this tag (repeatable)")
    grade.add_argument("--allow-unsandboxed", action="store_true",
                       help="where bubblewrap is unavailable, run student code as a plain subprocess")
    grade.set_defaults(run=_grade)

    check = sub.add_parser("check", help="a student's self-check: the public tests only, a table in the terminal")
    check.add_argument("submission", type=Path, help="your notebook, module, or submission folder")
    check.add_argument("--part", action="append", default=[],
                       help="check only this part (a [[parts]] tag of assignment.toml)")
    check.add_argument("--assignment", type=Path, default=None,
                       help="assignment folder (default: the one holding assignment.toml around the submission)")
    check.add_argument("--out", type=Path, default=None, help="where report.html goes (default: check)")
    check.set_defaults(run=_check)

    ci = sub.add_parser("ci", help="grade a repository with the public tests in CI (GitHub Actions)")
    ci.add_argument("path", type=Path, nargs="?", default=Path("."), help="the repository (default: .)")
    ci.add_argument("--assignment", type=Path, default=None, help="assignment folder (default: PATH)")
    ci.add_argument("--out", type=Path, default=None, help="report folder (default: PATH/grader-report)")
    ci.set_defaults(run=_ci)

    assign = sub.add_parser("assign", help="write the student release: notebook without solutions, public tests, data")
    assign.add_argument("name", nargs="?", default=None,
                        help="the assignment: the name of a folder under assignments/, or an assignment folder "
                             "(default: --assignment, else the default assignment)")
    assign.add_argument("--assignment", type=Path, default=None,
                        help="assignment folder with assignment.toml, instead of NAME")
    assign.add_argument("--out", type=Path, required=True, help="release folder (must not exist or be empty)")
    assign.add_argument("--gradescope", nargs="?", const="", default=None, metavar="ZIP",
                        help="also write a Gradescope autograder bundle, hidden tests and held-out set included: "
                             "for Gradescope only, never for students (default ZIP: OUT-gradescope.zip, beside OUT)")
    assign.set_defaults(run=_assign)


def _env(args: argparse.Namespace) -> int:
    import numpy
    import segmentation_models_pytorch
    import torch

    from grader.sandbox.isolation import isolation_report

    for key, value in {"grader": __version__, "python": platform.python_version(), "torch": torch.__version__,
                       "segmentation_models_pytorch": segmentation_models_pytorch.__version__,
                       "numpy": numpy.__version__, "cuda": str(torch.cuda.is_available()),
                       **isolation_report()}.items():
        print(f"{key:<28}{value}")
    return 0


def _grade(args: argparse.Namespace) -> int:
    from grader.reports import write_graded
    from grader.scoring import RESULTS_JSON, GradingPlan, grade, load_plan

    require_exists(args.submission)
    plan = GradingPlan(args.assignment, tags=tuple(args.tag), allow_unsandboxed=args.allow_unsandboxed,
                       gpu=host_has_gpu())
    assignment, _ = load_plan(plan)
    announce_sandbox(args.allow_unsandboxed)
    result = grade(plan, args.submission)
    report = write_graded(args.out, result, assignment)
    print(f"{args.submission}: {result.score:g} / {result.max_score:g} points; wrote {args.out / RESULTS_JSON} and "
          f"{report.name}")
    return 0


def _public_plan(assignment_dir: Path, parts: list[str]):
    from grader.scoring import GradingPlan

    return GradingPlan(assignment_dir, hidden=False, tags=tuple(parts), allow_unsandboxed=True, gpu=host_has_gpu())


def _check(args: argparse.Namespace) -> int:
    from grader.assignments.release import CHECK_FOLDER
    from grader.reports import format_table, write_graded
    from grader.scoring import grade, load_plan

    require_exists(args.submission)
    plan = _public_plan(find_assignment(args.assignment, args.submission, Path.cwd()), args.part)
    assignment, tests = load_plan(plan)
    announce_sandbox(True, "; that is fine for checking your own work")
    print(f"checking {args.submission} against {len(tests)} public tests of {assignment.title or assignment.name}...",
          file=sys.stderr)
    result = grade(plan, args.submission)
    print(format_table(result, color=sys.stdout.isatty()))
    report = write_graded(args.out or Path(CHECK_FOLDER), result, assignment)
    print(f"report: {report}" + ("" if result.score == result.max_score else
                                 "; fix the failing tests and run grader check again"))
    return _all_passed_status(result)


def _all_passed_status(result) -> int:
    """`grader check` and `grader ci` exit 0 when every public test passed, 1 otherwise (CONTRACT.md)."""
    return 0 if all(t.status == "passed" for t in result.tests) else 1


def _ci(args: argparse.Namespace) -> int:
    from grader.assignments.release import REPORT_FOLDER
    from grader.fileio import write_text_atomic
    from grader.reports import REPORT_HTML, REPORT_MD, github_annotations, render_report, write_graded
    from grader.scoring import grade, load_plan

    path = require_exists(args.path)
    if not path.is_dir():
        raise UserError(f"{path}: grader ci grades a repository folder; use grader check for a single file")
    plan = _public_plan(find_assignment(args.assignment, path), [])
    assignment, _ = load_plan(plan)
    announce_sandbox(True, "; the CI runner is disposable and runs only this repository's code")
    out = args.out or path / REPORT_FOLDER
    result = grade(plan, path)
    report = write_graded(out, result, assignment)
    summary = render_report(result, assignment, markdown=True)
    write_text_atomic(out / REPORT_MD, summary)
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        with open(step_summary, "a", encoding="utf-8") as handle:  # GitHub appends step summaries itself
            handle.write(summary + "\n")
        beside = Path(step_summary).parent / REPORT_HTML
        if beside.resolve() != report.resolve():
            shutil.copyfile(report, beside)
    entry = assignment.notebook if (path / assignment.notebook).exists() else ""
    for line in github_annotations(result, entry):
        print(line)
    print(f"{result.score:g} / {result.max_score:g} public points; report: {report}")
    return _all_passed_status(result)


def _assign(args: argparse.Namespace) -> int:
    from grader.assignments import load_assignment, write_release

    if args.name is not None and args.assignment is not None:
        raise UserError("give the assignment either as NAME or with --assignment, not both")
    folder = named_assignment(args.name) if args.name is not None else args.assignment or default_assignment()
    if args.gradescope is not None:
        from grader.assignments.gradescope import default_bundle_path, write_bundle

        bundle = Path(args.gradescope) if args.gradescope else default_bundle_path(args.out)
        if bundle.exists():
            raise UserError(f"{bundle} exists; remove it or give --gradescope another path")
    out = write_release(load_assignment(folder), args.out)
    print(f"wrote the student release to {out}")
    if args.gradescope is not None:
        write_bundle(load_assignment(folder), bundle)
        print(f"wrote the Gradescope autograder bundle to {bundle} (hidden tests and held-out set inside: upload it "
              "to Gradescope, never give it to students)")
    return 0

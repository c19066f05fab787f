"""`grader batch` and `grader gradebook`: a whole class, resumably, and what the gradebook holds."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from grader.cli.common import UserError, add_assignment_option, announce_sandbox, host_has_gpu


def add_commands(sub: argparse._SubParsersAction) -> None:
    batch = sub.add_parser("batch", help="grade every submission in FOLDER, resumably; gradebook, exports, summary")
    batch.add_argument("folder", type=Path, nargs="?",
                       help="a folder per student, loose .ipynb/.py files, or a Canvas/Moodle download (zip or folder)")
    batch.add_argument("--from-git", type=Path, metavar="LIST",
                       help="instead of FOLDER: a file of `[STUDENT] URL` lines; each repository is graded at its "
                            "last commit before --deadline")
    batch.add_argument("--deadline", help="ISO date-time for --from-git, such as 2026-12-18T17:00+01:00")
    add_assignment_option(batch)
    batch.add_argument("--out", type=Path, default=Path("graded"), help="output folder (default: graded)")
    batch.add_argument("--workers", type=int, default=1, help="submissions graded at once (default 1)")
    batch.add_argument("--executor", choices=("local", "dask", "slurm", "pbs"), default="local",
                       help="local process pool (default); a Dask scheduler; or a Dask cluster started on SLURM/PBS")
    batch.add_argument("--scheduler", help="the Dask scheduler's address, for --executor dask (tcp://host:8786)")
    batch.add_argument("--regrade", action="append", default=[], metavar="STUDENT",
                       help="grade this student again even if unchanged (repeatable; only these are graded)")
    batch.add_argument("--only", action="append", default=[], metavar="TEST_ID",
                       help="re-grade only this test (repeatable); the other tests keep their scores")
    batch.add_argument("--tag", action="append", default=[], help="grade only tests with this tag (repeatable)")
    batch.add_argument("--allow-unsandboxed", action="store_true",
                       help="where bubblewrap is unavailable, run student code as a plain subprocess")
    batch.add_argument("--no-progress", action="store_true", help="no progress bar (logs, CI)")
    batch.set_defaults(run=_batch)

    book = sub.add_parser("gradebook", help="what the gradebook of a batch folder holds: diffs, history, hand grades")
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument("--out", type=Path, default=Path("graded"), help="the batch's output folder (default: graded)")
    add_assignment_option(where)
    actions = book.add_subparsers(dest="action", required=True)
    diff = actions.add_parser("diff", parents=[where], help="what changed in each re-graded student's last run")
    diff.add_argument("students", nargs="*", help="only these students")
    diff.set_defaults(run=_diff)
    history = actions.add_parser("history", parents=[where], help="every run of one student")
    history.add_argument("student")
    history.set_defaults(run=_history)
    rubric = actions.add_parser("rubric", parents=[where], help="write rubric.csv for hand-grading the failure analysis")
    rubric.set_defaults(run=_rubric)
    manual = actions.add_parser("manual", parents=[where], help="merge a filled-in rubric CSV into the gradebook and the exports")
    manual.add_argument("csv", type=Path)
    manual.set_defaults(run=_manual)
    export = actions.add_parser("export", parents=[where], help="write the exports and the summary again from the gradebook")
    export.set_defaults(run=_export)


def _batch(args: argparse.Namespace) -> int:
    from grader.batch import BatchOptions, run_batch
    from grader.batch.git import fetch_repositories, parse_deadline
    from grader.scoring import GradingPlan, load_plan

    if (args.folder is None) == (args.from_git is None):
        raise UserError("give either FOLDER or --from-git LIST")
    if args.from_git is not None and not args.deadline:
        raise UserError("--from-git needs --deadline, such as --deadline 2026-12-18T17:00+01:00")
    if args.workers < 1:
        raise UserError("--workers must be at least 1")
    plan = GradingPlan(args.assignment, tags=tuple(args.tag), allow_unsandboxed=args.allow_unsandboxed,
                       gpu=host_has_gpu())
    load_plan(plan)
    announce_sandbox(args.allow_unsandboxed)
    source = fetch_repositories(args.from_git, parse_deadline(args.deadline), args.out) if args.from_git else args.folder
    options = BatchOptions(workers=args.workers, executor=args.executor, scheduler=args.scheduler,
                           regrade=tuple(args.regrade), only=tuple(args.only), progress=not args.no_progress)
    report = run_batch(source, args.out, plan, options)
    print(f"graded {len(report.graded)}, already graded and unchanged {len(report.skipped)}; "
          f"gradebook, exports and summary in {args.out}")
    for student, error in sorted(report.errors.items()):
        print(f"grader: not graded: {student}: {error}", file=sys.stderr)
    if report.errors:
        print(f"grader: {len(report.errors)} submission(s) could not be graded; run the same command again to retry "
              "them", file=sys.stderr)
        return 2
    return 0


def _open(args: argparse.Namespace):
    from grader.gradebook import GRADEBOOK_FILE, Gradebook

    path = args.out / GRADEBOOK_FILE
    if not path.is_file():
        raise UserError(f"{path}: no gradebook here; run grader batch with --out {args.out} first")
    return Gradebook(path)


def _diff(args: argparse.Namespace) -> int:
    from grader.gradebook import diff_gradebook, format_diff

    with _open(args) as book:
        diffs = diff_gradebook(book, args.students or None)
    print("\n\n".join(format_diff(d) for d in diffs) if diffs else "no student has been graded more than once")
    return 0


def _history(args: argparse.Namespace) -> int:
    with _open(args) as book:
        runs = book.history(args.student)
    if not runs:
        raise UserError(f"no runs for student {args.student!r} in {args.out}")
    for run in runs:
        print(f"run {run.id}  {run.graded_at}  {run.result.score:g} / {run.result.max_score:g}  assignment "
              f"{run.assignment_version}  grader {run.grader_version}  submission {run.submission_hash[:12]}"
              + (f"  only {', '.join(run.selection)}" if run.selection else ""))
    return 0


def _rubric(args: argparse.Namespace) -> int:
    from grader.assignments import load_assignment
    from grader.gradebook import RUBRIC_CSV, write_rubric_template

    with _open(args) as book:
        path = write_rubric_template(args.out / RUBRIC_CSV, load_assignment(args.assignment), book.current_runs(),
                                     book.manual_scores())
    print(f"wrote {path}: fill in the scores, then run grader gradebook manual {path}")
    return 0


def _manual(args: argparse.Namespace) -> int:
    from grader.assignments import load_assignment
    from grader.gradebook import read_manual_scores

    assignment = load_assignment(args.assignment)
    with _open(args) as book:
        scores = read_manual_scores(args.csv, assignment, {r.student for r in book.current_runs()})
        book.record_manual(scores)
    print(f"merged {len(scores)} rubric scores")
    return _export(args)


def _export(args: argparse.Namespace) -> int:
    from grader.assignments import load_assignment
    from grader.gradebook import write_exports
    from grader.reports import write_summary

    assignment = load_assignment(args.assignment)
    with _open(args) as book:
        runs = book.current_runs()
        write_exports(args.out, runs, book.manual_scores(), assignment)
        write_summary(args.out, runs, assignment)
    print(f"wrote gradebook.csv, canvas.csv, junit.xml, summary.html and summary.md in {args.out}")
    return 0

"""Grading with an assignment: which tests, which sandbox, which time limits, which seed. A
`GradingPlan` is a small picklable value, so `grade`, `check`, `ci`, a process pool and a Dask
worker all grade the same way."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from grader.assignments import Assignment, check_suite, derive_seed, ensure_secret, load_assignment, read_secret
from grader.execution import Budget
from grader.sandbox import make_sandbox
from grader.scoring.grade import grade_submission
from grader.scoring.results import GradeResult
from grader.suites import Test, load_suite
from grader.suites.base import SuiteError


@dataclass(frozen=True)
class GradingPlan:
    """What a submission is graded with."""

    assignment_dir: Path
    hidden: bool = True  # the instructor's hidden tests too; False for self-checks and CI
    tags: tuple[str, ...] = ()  # only tests with these tags (all when empty)
    only: tuple[str, ...] = ()  # only these test ids (all when empty)
    allow_unsandboxed: bool = False
    gpu: bool = False  # pass NVIDIA devices in, where the assignment allows it
    call_seconds_cap: float | None = None
    threads: int | None = None  # CPU threads per sandbox; a batch sets cores / workers, so workers do not fight


def _selected(tests: list[Test], plan: GradingPlan) -> list[Test]:
    unknown = set(plan.only) - {t.id for t in tests}
    if unknown:
        raise SuiteError(f"no test has the id {sorted(unknown)[0]}; the suite's ids: {', '.join(t.id for t in tests)}")
    chosen = [t for t in tests if (not plan.tags or t.tag in plan.tags) and (not plan.only or t.id in plan.only)
              and (plan.hidden or t.visibility == "visible")]
    if not chosen:
        tags = dict.fromkeys(t.tag for t in tests if plan.hidden or t.visibility == "visible")
        raise SuiteError(f"no tests with tags {', '.join(plan.tags)}; the tags with tests here: "
                         f"{', '.join(tags) or 'none'}")
    return chosen


@functools.lru_cache(maxsize=8)
def _suite(assignment_dir: Path, hidden: bool) -> tuple[Assignment, tuple[Test, ...]]:
    assignment = load_assignment(assignment_dir)
    tests = load_suite(assignment.suite_dir, assignment, hidden=hidden)
    check_suite(assignment, tests, complete=hidden)
    if hidden and any(t.draw is not None for t in tests):
        ensure_secret(assignment)  # the instructor's grading: drawn cases need the secret
    return assignment, tuple(tests)


def load_plan(plan: GradingPlan) -> tuple[Assignment, list[Test]]:
    """The assignment and the plan's tests; errors (`AssignmentError`, `SuiteError`) name what to fix."""
    assignment, tests = _suite(Path(plan.assignment_dir).resolve(), plan.hidden)
    return assignment, _selected(list(tests), plan)


def grading_seed(assignment: Assignment, submission: Path) -> int | None:
    """The seed of a submission's drawn cases: from the assignment's secret and the submission's
    content, so a regrade draws the same cases and nobody without the secret can predict them. A
    student's release has no secret: its self-checks draw from the content alone. None for a
    submission too large to hash (staging refuses it; the grading draws a fresh seed)."""
    from grader.batch.hashing import SubmissionHashError, submission_hash  # grader.batch imports this module

    try:
        digest = submission_hash(Path(submission))
    except SubmissionHashError:
        return None
    return derive_seed(read_secret(assignment), digest)


def grade(plan: GradingPlan, submission: Path, work_dir: Path | None = None) -> GradeResult:
    """Grade one submission by the plan; runs wherever the plan is carried (pool worker, Dask worker)."""
    assignment, tests = load_plan(plan)
    sandbox = make_sandbox(allow_unsandboxed=plan.allow_unsandboxed, announce=False)
    time = assignment.time
    budget = Budget(load_seconds=time.load_seconds, cell_seconds=time.cell_seconds,
                    call_seconds_cap=plan.call_seconds_cap or time.call_seconds, gpu=assignment.gpu and plan.gpu,
                    submission_seconds=time.submission_seconds, max_restarts=time.restarts, threads=plan.threads)
    return grade_submission(Path(submission), tests, sandbox, budget, work_dir,
                            seed=grading_seed(assignment, submission), files=assignment.submission,
                            bonus_tags=assignment.bonus_tags)

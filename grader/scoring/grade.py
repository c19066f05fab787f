"""Grading one submission: stage it, run every test's calls in the sandbox, check the answers here."""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from grader.execution import Budget, SessionReport, SubmissionError, run_calls, stage
from grader.execution.calls import Call
from grader.sandbox import Sandbox
from grader.scoring.extras import read_extras
from grader.scoring.results import GradeResult, TestResult
from grader.suites.base import Answers, Failure, Partial, Test


def _calls_of(tests: list[Test]) -> list[Call]:
    seen, calls = set(), []
    for test in tests:
        for c in test.calls:
            if c.id not in seen:
                seen.add(c.id)
                calls.append(c)
    return calls


def _first_load_problem(report: SessionReport) -> str:
    for event in report.load_events:
        if event.get("kind") in ("error", "timeout", "dead_kernel"):
            where = event.get("where") or f"cell {event.get('cell')}"
            what = f"{event.get('ename')}: {str(event.get('evalue'))[:150]}" if event.get("ename") else event["kind"]
            return f"{where} raised {what}" if event["kind"] == "error" else f"{where}: {what}"
    return ""


def _verdict(test: Test, report: SessionReport) -> TestResult:
    answers = Answers({c.id: report.outcomes[c.id] for c in test.calls}, _first_load_problem(report))
    hint = f" Hint: {test.hint}" if test.hint else ""
    try:
        verdict = test.check(answers)
    except Failure as failure:
        return _result(test, 0.0, f"{failure}{hint}", answers.kept)
    except Exception as err:  # the answer had a shape or type the check could not handle
        return _result(test, 0.0, f"your code returned something this test could not check "
                                  f"({type(err).__name__}: {str(err)[:200]}); compare it with the specification",
                       answers.kept)
    if isinstance(verdict, Partial) and verdict.fraction < 1:
        return _result(test, max(0.0, verdict.fraction), f"{verdict.message}{hint}", answers.kept)
    return _result(test, 1.0, verdict.message if isinstance(verdict, Partial) else "", answers.kept)


def _result(test: Test, fraction: float, message: str, kept: dict | None = None) -> TestResult:
    return TestResult(test.id, test.name, round(test.points * fraction, 4), test.points,
                      "passed" if fraction >= 1 else "failed", message, test.visibility, (test.tag,),
                      dict(kept or {}))


def _load_summary(report: SessionReport) -> str:
    lines = [f"Graded in: {report.sandbox}."]
    for event in report.load_events:
        kind, cell = event.get("kind"), event.get("cell", event.get("where", ""))
        if kind == "error":
            lines.append(f"Cell {cell} raised {event.get('ename')}: {str(event.get('evalue'))[:200]}")
        elif kind == "timeout":
            lines.append(f"Cell {cell} ran past the per-cell time limit and was interrupted.")
        elif kind == "skipped":
            lines.append(f"Cell {cell} skipped: {event.get('reason')}.")
    return "\n".join(lines)


def _problem(report: SessionReport) -> str:
    """How the summary lists a submission that did not run through: a load-time error or timeout."""
    kinds = {event.get("kind") for event in report.load_events}
    if "timeout" in kinds or any(run.killed_reason == "timeout" for run in report.runs):
        return "timed out"
    return "crashed" if kinds & {"error", "dead_kernel"} else ""


def _all_failed(tests: list[Test], reason: str) -> tuple[TestResult, ...]:
    return tuple(_result(t, 0.0, reason) for t in tests)


def ungraded(tests: list[Test], reason: str, sandbox: str = "") -> GradeResult:
    """A complete result for a submission that could not be run at all: every test failed, with why."""
    return GradeResult(_all_failed(tests, f"Not graded: {reason}"), 0.0, reason, sandbox, "not graded")


def grade_submission(submission: Path, tests: list[Test], sandbox: Sandbox, budget: Budget = Budget(),
                     work_dir: Path | None = None) -> GradeResult:
    """Every test gets a result, whatever the submission does; nothing here runs student code."""
    start = time.monotonic()
    scratch_root = Path(tempfile.mkdtemp(prefix="grader-stage-", dir=work_dir))
    try:
        try:
            staged = stage(Path(submission), scratch_root / "submission")
        except SubmissionError as err:
            return replace(ungraded(tests, str(err), sandbox.name), execution_time=time.monotonic() - start)
        extras = read_extras(staged.scratch, staged.entry)  # before student code can change the copy
        report = run_calls(staged, _calls_of(tests), sandbox, budget, work_dir)
        results = tuple(_verdict(t, report) for t in tests)
        return GradeResult(results, time.monotonic() - start, _load_summary(report), sandbox.name,
                           _problem(report), extras)
    finally:
        shutil.rmtree(scratch_root, ignore_errors=True)

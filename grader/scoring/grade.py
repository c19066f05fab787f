"""Grading one submission: stage it, run every test's calls in the sandbox, check the answers here."""

from __future__ import annotations

import secrets
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from grader.execution import Budget, SessionReport, SubmissionError, run_calls, stage
from grader.execution.calls import Call
from grader.fileio import remove_tree
from grader.sandbox import Sandbox
from grader.assignments.config import SubmissionFiles
from grader.scoring.extras import read_extras
from grader.scoring.results import GradeResult, TestResult
from grader.suites.base import Answers, Failure, Partial, Test, instantiate
from grader.verifier import verifier_usage


MAX_MESSAGE = 2000
MAX_SUMMARY_EVENTS = 20


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
        if event.kind in ("error", "timeout", "dead_kernel"):
            what = f"{event.ename}: {event.evalue[:150]}" if event.ename else event.kind
            return f"{event.place} raised {what}" if event.kind == "error" else f"{event.place}: {what}"
    return ""


def _verdict(test: Test, report: SessionReport) -> TestResult:
    answers = Answers({c.id: report.outcomes[c.id] for c in test.calls}, _first_load_problem(report))
    hint = f" Hint: {test.hint}" if test.hint else ""
    try:
        verdict = test.check(answers)
    except Failure as failure:
        return _result(test, 0.0, f"{_bounded(str(failure))}{hint}", answers.kept)
    except Exception as err:  # the answer had a shape or type the check could not handle
        return _result(test, 0.0, f"your code returned something this test could not check "
                                  f"({type(err).__name__}: {str(err)[:200]}); compare it with the specification",
                       answers.kept)
    if isinstance(verdict, Partial) and verdict.fraction < 1:
        return _result(test, max(0.0, verdict.fraction), f"{_bounded(verdict.message)}{hint}", answers.kept)
    return _result(test, 1.0, _bounded(verdict.message) if isinstance(verdict, Partial) else "", answers.kept)


def _result(test: Test, fraction: float, message: str, kept: dict | None = None) -> TestResult:
    return TestResult(test.id, test.name, round(test.points * fraction, 4), test.points,
                      "passed" if fraction >= 1 else "failed", message, test.visibility, (test.tag,),
                      dict(kept or {}))


def _bounded(message: str) -> str:
    """At most MAX_MESSAGE characters: a message quotes what the submission returned, which it controls."""
    return message if len(message) <= MAX_MESSAGE else f"{message[:MAX_MESSAGE - 40]} … [{len(message)} characters in all]"


def _load_summary(report: SessionReport) -> str:
    lines = [f"Graded in: {report.sandbox}."]
    for event in report.load_events[:MAX_SUMMARY_EVENTS]:
        if event.kind == "error":
            lines.append(f"{_upper_first(event.place)} raised {event.ename}: {event.evalue[:200]}")
        elif event.kind == "timeout":
            lines.append(f"{_upper_first(event.place)} ran past the per-cell time limit and was interrupted.")
        elif event.kind == "skipped":
            lines.append(f"{_upper_first(event.place)} skipped: {event.reason}.")
    if report.ceiling_reached:
        lines.append("The submission used up its whole time allowance; the calls left were not run.")
    return "\n".join(lines)


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def _problem(report: SessionReport) -> str:
    """How the summary lists a submission that did not run through: a load-time error or timeout."""
    kinds = {event.kind for event in report.load_events}
    if "timeout" in kinds or report.ceiling_reached or any(run.killed_reason == "timeout" for run in report.runs):
        return "timed out"
    return "crashed" if kinds & {"error", "dead_kernel"} else ""


def _all_failed(tests: list[Test], reason: str) -> tuple[TestResult, ...]:
    return tuple(_result(t, 0.0, reason) for t in tests)


def ungraded(tests: list[Test], reason: str, sandbox: str = "") -> GradeResult:
    """A complete result for a submission that could not be run at all: every test failed, with why."""
    return GradeResult(_all_failed(tests, f"Not graded: {reason}"), 0.0, reason, sandbox, "not graded")


def _timings(staging: float, report: SessionReport, calls: list[Call],
             checks: dict[str, float]) -> tuple[tuple[str, float], ...]:
    """Where a grading's time went: staging, each sandbox's start and load, the calls by function (on
    the host's clock), and the checks by tag. The verifier's runs happen inside the checks: the grading
    adds their stages as rows named "  within checks, ..." (already counted in the checks' rows)."""
    by_function: dict[str, float] = {}
    for c in calls:
        outcome = report.outcomes.get(c.id)
        key = f"call {c.function or c.kind}" if c.kind == "call" else f"call {c.kind}"
        by_function[key] = by_function.get(key, 0.0) + (outcome.seconds if outcome else 0.0)
    rows = [("staging", staging), (f"sandbox start and load ({len(report.runs)} run(s))", sum(report.load_seconds))]
    rows += sorted(by_function.items(), key=lambda kv: -kv[1])
    rows += [(f"checks {tag}", seconds) for tag, seconds in sorted(checks.items(), key=lambda kv: -kv[1])]
    return tuple((name, round(seconds, 3)) for name, seconds in rows)


def _marked(results, bonus_tags: frozenset[str]) -> tuple[TestResult, ...]:
    """The results, those of optional parts marked as bonus."""
    return tuple(replace(r, bonus=True) if r.tags and r.tags[0] in bonus_tags else r for r in results)


def grade_submission(submission: Path, tests: list[Test], sandbox: Sandbox, budget: Budget = Budget(),
                     work_dir: Path | None = None, seed: int | None = None, files: SubmissionFiles = SubmissionFiles(),
                     bonus_tags: frozenset[str] = frozenset()) -> GradeResult:
    """Every test gets a result, whatever the submission does; nothing here runs student code.
    Drawn tests draw their cases from `seed` (a fresh random one when None), recorded in the result.
    `files` names what beside the notebook is read as data; tests tagged with `bonus_tags` count
    within the others' maximum."""
    start = time.monotonic()
    seed = secrets.randbits(53) if seed is None else seed
    tests = instantiate(list(tests), seed)
    scratch_root = Path(tempfile.mkdtemp(prefix="grader-stage-", dir=work_dir))
    try:
        try:
            staged = stage(Path(submission), scratch_root / "submission", files.models)
        except SubmissionError as err:
            failed = ungraded(tests, str(err), sandbox.name)
            return replace(failed, tests=_marked(failed.tests, bonus_tags), execution_time=time.monotonic() - start,
                           seed=seed)
        extras = read_extras(staged.scratch, staged.entry, files)  # before student code can change the copy
        staged_at = time.monotonic()
        calls = _calls_of(tests)
        report = run_calls(staged, calls, sandbox, budget, work_dir)
        checks: dict[str, float] = {}
        results = []
        with verifier_usage(budget.threads) as usage:
            for test in tests:
                began = time.monotonic()
                results.append(_verdict(test, report))
                checks[test.tag] = checks.get(test.tag, 0.0) + time.monotonic() - began
        timings = _timings(staged_at - start, report, calls, checks) + tuple(
            (f"  within checks, {stage}", round(seconds, 3)) for stage, seconds in usage.stages.items())
        return GradeResult(_marked(results, bonus_tags), time.monotonic() - start, _load_summary(report), sandbox.name,
                           _problem(report), extras, seed=seed, timings=timings)
    finally:
        remove_tree(scratch_root)

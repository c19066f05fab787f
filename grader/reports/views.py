"""What the report and summary templates show, as plain dataclasses built from grades. Deciding
what a student may see (hidden tests before the release date) happens here, not in templates."""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from grader.assignments import Assignment, RubricItem, load_heldout
from grader.gradebook import Identity, Run
from grader.reports.charts import Chart, curves, histogram
from grader.reports.images import ERROR_COLORS, error_rgb, hex_color, label_rgb, png_data_uri, to_rgb
from grader.scoring.results import GradeResult, TestResult
from grader.scoring.segmentation import per_class

PROBLEM_HINTS = {
    "crashed": "The log at the end of this page names the cell or line that raised; run your notebook from "
               "a fresh kernel (Restart & Run All) to reproduce it.",
    "timed out": "Something ran longer than the time limit: keep training out of the graded run (tag the "
                 "training cell `train`, or load model.pt), and look for loops that never end.",
    "not graded": "The message below says what was missing; fix it and submit again.",
}


@dataclass(frozen=True)
class TestView:
    __test__ = False

    id: str
    name: str
    status: str
    score: float
    max_score: float
    message: str
    pending: bool  # a hidden test before the release date: name and points only


@dataclass(frozen=True)
class PartView:
    tag: str
    title: str
    score: float
    max_score: float
    tests: tuple[TestView, ...]

    @property
    def pending(self) -> bool:
        return any(t.pending for t in self.tests)


@dataclass(frozen=True)
class ClassRow:
    name: str
    dice: float | None
    iou: float | None
    ref_dice: float | None
    ref_iou: float | None


@dataclass(frozen=True)
class SampleView:
    name: str
    dice: float | None
    image: str
    truth: str
    prediction: str
    errors: str


@dataclass(frozen=True)
class HeldoutView:
    rows: tuple[ClassRow, ...]
    samples: tuple[SampleView, ...]


@dataclass(frozen=True)
class Legend:
    labels: tuple[tuple[str, str], ...] = ()  # (class name, "#rrggbb"), from the assignment's [classes]
    errors: tuple[tuple[str, str], ...] = (("cell predicted on background", hex_color(ERROR_COLORS["false_positive"])),
                                           ("cell missed", hex_color(ERROR_COLORS["false_negative"])),
                                           ("wrong cell class", hex_color(ERROR_COLORS["wrong_class"])))


@dataclass(frozen=True)
class ReportView:
    title: str
    student: str
    score: float
    max_score: float
    generated_at: str
    sandbox: str
    output: str
    problem: str
    problem_hint: str
    pending_note: str
    release_date: str
    parts: tuple[PartView, ...]
    heldout: HeldoutView | None
    overlay: str | None
    curves: tuple[Chart, ...]  # losses, then scores; empty without history.csv
    analysis: str
    rubric: tuple[RubricItem, ...]
    rubric_points: float
    legend: Legend = Legend()
    curves_note: str = ""  # what of history.csv the curves leave out
    answer_hint: str = ""  # where the assignment reads the written answer from, for a report without one

    @property
    def shown_score(self) -> float:
        """The score without pending tests, so that the total does not give a hidden result away."""
        return sum(t.score for p in self.parts for t in p.tests if not t.pending)

    @property
    def shown_max_score(self) -> float:
        return sum(t.max_score for p in self.parts for t in p.tests if not t.pending)

    @property
    def pending_points(self) -> float:
        return self.max_score - self.shown_max_score


def _nan_to_none(value) -> float | None:
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else float(value)


def _test_view(t: TestResult, pending: bool) -> TestView:
    return TestView(t.number, t.name, t.status, t.score, t.max_score, "" if pending else t.output, pending)


def _parts(result: GradeResult, assignment: Assignment, released: bool) -> tuple[PartView, ...]:
    titles = {p.tag: p.title + (" (bonus: its points make up points lost elsewhere, up to the maximum)"
                                if p.bonus else "") for p in assignment.parts}
    order = [p.tag for p in assignment.parts] + sorted({t.tags[0] for t in result.tests} - set(titles))
    views = []
    for tag in order:
        tests = [t for t in result.tests if t.tags and t.tags[0] == tag]
        if tests:
            tv = tuple(_test_view(t, t.visibility != "visible" and not released) for t in tests)
            views.append(PartView(tag, titles.get(tag, tag), sum(t.score for t in tests),
                                  sum(t.max_score for t in tests), tv))
    return tuple(views)


def _samples(assignment: Assignment, predictions: list) -> tuple[SampleView, ...]:
    heldout = load_heldout(assignment)
    colors = assignment.class_colors
    views = []
    for name, image, truth, pred in zip(heldout.names, heldout.images, heldout.masks, predictions):
        pred = np.asarray(pred).astype(np.int64)
        dice = per_class(pred.ravel(), truth.ravel(), len(assignment.class_names))
        mean_fg = _nan_to_none(float(np.nanmean(dice[1:]))) if not np.all(np.isnan(dice[1:])) else None
        views.append(SampleView(name, mean_fg, png_data_uri(to_rgb(image)), png_data_uri(label_rgb(truth, colors)),
                                png_data_uri(label_rgb(pred, colors)), png_data_uri(error_rgb(image, pred, truth))))
    return tuple(sorted(views, key=lambda v: (v.dice is not None, v.dice or 0.0)))


def _featured(result: GradeResult, test_id: str) -> TestResult | None:
    """The result of the test a [report] key names; None when unnamed or not graded."""
    return next((t for t in result.tests if t.number == test_id), None) if test_id else None


def _heldout(result: GradeResult, assignment: Assignment, released: bool) -> HeldoutView | None:
    test = _featured(result, assignment.report.heldout_test)
    if test is None or not released or "dice" not in test.kept:
        return None
    spec = assignment.heldout
    rows = tuple(ClassRow(c, _nan_to_none(test.kept["dice"].get(c)), _nan_to_none(test.kept.get("iou", {}).get(c)),
                          spec.reference_class_dice[k] if k < len(spec.reference_class_dice) else None,
                          spec.reference_class_iou[k] if k < len(spec.reference_class_iou) else None)
                 for k, c in enumerate(assignment.class_names))
    predictions = test.kept.get("predictions")
    return HeldoutView(rows, _samples(assignment, predictions) if predictions is not None else ())


def _release_text(assignment: Assignment) -> str:
    if not assignment.results_release:
        return "the instructor releases them"
    moment = datetime.fromisoformat(assignment.results_release)
    return moment.strftime("%Y-%m-%d %H:%M %Z").strip() if moment.tzinfo else moment.strftime("%Y-%m-%d %H:%M UTC")


def report_view(result: GradeResult, assignment: Assignment, identity: Identity | None = None,
                now: datetime | None = None) -> ReportView:
    """Everything one submission's report shows, with hidden outputs left out before the release date."""
    now = now or datetime.now(timezone.utc)
    released = assignment.hidden_results_released(now)
    hidden_tests = [t for t in result.tests if t.visibility != "visible"]
    pending_note = "" if released or not hidden_tests else (
        f"{len(hidden_tests)} hidden test(s) worth {sum(t.max_score for t in hidden_tests):g} points are graded; "
        f"their results appear after {_release_text(assignment)}.")
    overlay_test = _featured(result, assignment.report.overlay_test)
    overlay = overlay_test.kept.get("overlay") if overlay_test is not None else None
    student = identity.display_name or identity.student if identity else "your submission"
    return ReportView(assignment.title or assignment.name, student, result.score, result.max_score,
                      now.strftime("%Y-%m-%d %H:%M UTC"), result.sandbox, result.output, result.problem,
                      PROBLEM_HINTS.get(result.problem, ""), pending_note, _release_text(assignment),
                      _parts(result, assignment, released), _heldout(result, assignment, released),
                      png_data_uri(np.asarray(overlay, np.uint8)) if overlay is not None else None,
                      curves(result.extras.history), result.extras.analysis, assignment.rubric,
                      sum(item.points for item in assignment.rubric),
                      Legend(tuple(zip(assignment.class_names, assignment.class_colors))),
                      curves_note=result.extras.history_note, answer_hint=_answer_hint(assignment))


def _answer_hint(assignment: Assignment) -> str:
    """Where the written answer goes: `write it in the notebook cell tagged X, or in Y beside a module`."""
    tag, file = assignment.submission.answer_tag, assignment.submission.answer_file
    places = ([f"in the notebook cell tagged {tag}"] if tag else []) + (
        [f"in {file} beside {'a module' if tag else 'your submission'}"] if file else [])
    return f"write it {', or '.join(places)}" if places else ""


@dataclass(frozen=True)
class TestStats:
    __test__ = False

    id: str
    name: str
    passed: int
    total: int
    mean_score: float
    max_score: float

    @property
    def rate(self) -> float:
        return self.passed / self.total if self.total else 0.0


@dataclass(frozen=True)
class FailureCount:
    test_id: str
    message: str
    count: int


@dataclass(frozen=True)
class ProblemRow:
    student: str
    problem: str
    detail: str
    link: str


@dataclass(frozen=True)
class SubmissionRow:
    student: str
    name: str
    score: float
    max_score: float
    graded_at: str
    link: str


@dataclass(frozen=True)
class SummaryView:
    title: str
    count: int
    mean: float
    median: float
    max_score: float
    generated_at: str
    histogram: Chart
    tests: tuple[TestStats, ...]
    failures: tuple[FailureCount, ...]
    problems: tuple[ProblemRow, ...]
    rows: tuple[SubmissionRow, ...]


def _gist(message: str) -> str:
    """A failure message without its hint, so that the same mistake counts once."""
    return message.split(" Hint: ", 1)[0].strip()[:300]


def _problem_detail(result: GradeResult) -> str:
    """The load log's last line when it says more than the sandbox used, else the first failure."""
    lines = result.output.splitlines()
    if len(lines) > 1 or (lines and not lines[0].startswith("Graded in")):
        return lines[-1]
    return next((_gist(t.output) for t in result.tests if t.status != "passed"), "")


def summary_view(runs: list[Run], assignment: Assignment, errors: dict[str, str] | None = None,
                 top_failures: int = 10) -> SummaryView:
    """The batch at a glance: scores, hardest tests, common failures, submissions that did not run."""
    scores = [r.result.score for r in runs]
    max_score = max((r.result.max_score for r in runs), default=0.0)
    by_test: dict[str, list[TestResult]] = {}
    for run in runs:
        for t in run.result.tests:
            by_test.setdefault(t.number, []).append(t)
    stats = sorted((TestStats(tid, ts[0].name, sum(t.status == "passed" for t in ts), len(ts),
                              statistics.fmean(t.score for t in ts), ts[0].max_score) for tid, ts in by_test.items()),
                   key=lambda s: (s.rate, s.id))
    failures = Counter((t.number, _gist(t.output)) for run in runs for t in run.result.tests
                       if t.status != "passed" and t.output)
    problems = [ProblemRow(r.student, r.result.problem, _problem_detail(r.result), f"{r.student}/report.html")
                for r in runs if r.result.problem]
    problems += [ProblemRow(s, "not graded", f"the grader failed: {e}; run the batch again to retry", "")
                 for s, e in sorted((errors or {}).items())]
    rows = tuple(SubmissionRow(r.student, r.identity.display_name, r.result.score, r.result.max_score, r.graded_at,
                               f"{r.student}/report.html") for r in runs)
    return SummaryView(assignment.title or assignment.name, len(runs), statistics.fmean(scores) if scores else 0.0,
                       statistics.median(scores) if scores else 0.0, max_score,
                       datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), histogram(scores, max_score),
                       tuple(stats), tuple(FailureCount(tid, msg, n) for (tid, msg), n in failures.most_common(top_failures)),
                       tuple(problems), rows)

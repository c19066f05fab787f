"""What changed between a student's last two runs: the score, each test, and why it may have."""

from __future__ import annotations

from dataclasses import dataclass

from grader.gradebook.store import Gradebook, Run


@dataclass(frozen=True)
class TestChange:
    __test__ = False

    test_id: str
    old_score: float | None  # None: the test was not in that run
    new_score: float | None
    old_status: str
    new_status: str


@dataclass(frozen=True)
class RunDiff:
    student: str
    old: Run
    new: Run
    changes: tuple[TestChange, ...]

    @property
    def causes(self) -> list[str]:
        """What differs between the runs besides the scores."""
        old, new = self.old, self.new
        causes = []
        if old.submission_hash != new.submission_hash:
            causes.append("the submission changed")
        if old.assignment_fingerprint != new.assignment_fingerprint:
            causes.append(f"the assignment changed (version {old.assignment_version} -> {new.assignment_version})")
        if old.grader_version != new.grader_version:
            causes.append(f"the grader changed ({old.grader_version} -> {new.grader_version})")
        if new.selection:
            causes.append(f"re-graded only {', '.join(new.selection)}")
        return causes


def diff_runs(old: Run, new: Run) -> RunDiff:
    before = {t.number: t for t in old.result.tests}
    after = {t.number: t for t in new.result.tests}
    changes = []
    for test_id in list(before) + [k for k in after if k not in before]:
        a, b = before.get(test_id), after.get(test_id)
        if a is None or b is None or (a.score, a.status) != (b.score, b.status):
            changes.append(TestChange(test_id, a.score if a else None, b.score if b else None,
                                      a.status if a else "", b.status if b else ""))
    return RunDiff(new.student, old, new, tuple(changes))


def diff_gradebook(book: Gradebook, students: list[str] | None = None) -> list[RunDiff]:
    """The last change of each student who has been graded more than once (or of `students`)."""
    diffs = []
    for student in students or sorted(s for s, n in book.run_counts().items() if n > 1):
        runs = book.history(student)
        if len(runs) >= 2:
            diffs.append(diff_runs(runs[-2], runs[-1]))
    return diffs


def format_diff(diff: RunDiff) -> str:
    """Plain text for the terminal."""
    o, n = diff.old.result, diff.new.result
    lines = [f"{diff.student}: {o.score:g} -> {n.score:g} / {n.max_score:g}  (run {diff.old.id} at "
             f"{diff.old.graded_at} -> run {diff.new.id} at {diff.new.graded_at})"]
    lines += [f"  because {cause}" for cause in diff.causes]
    for c in diff.changes:
        old = "absent" if c.old_score is None else f"{c.old_score:g} {c.old_status}"
        new = "absent" if c.new_score is None else f"{c.new_score:g} {c.new_status}"
        lines.append(f"  {c.test_id}: {old} -> {new}")
    if not diff.changes:
        lines.append("  no test changed")
    return "\n".join(lines)

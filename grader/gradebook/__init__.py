"""The gradebook: every grading run in SQLite (history kept), hand-graded rubric scores, and the
exports instructors upload (CSV, Canvas, JUnit XML, Gradescope results.json).

Public surface: `Gradebook`, `Run`, `Identity`, `ManualScore`, `diff_gradebook`, `format_diff`,
`write_exports`, `write_rubric_template`, `read_manual_scores`, `ManualGradesError`,
`GradebookVersionError`.
"""

from grader.gradebook.diff import RunDiff, TestChange, diff_gradebook, diff_runs, format_diff
from grader.gradebook.exports import canvas_csv, gradebook_csv, junit_xml, manual_total, write_exports
from grader.gradebook.manual import RUBRIC_CSV, ManualGradesError, read_manual_scores, write_rubric_template
from grader.gradebook.store import GRADEBOOK_FILE, Gradebook, GradebookVersionError, Identity, ManualScore, Run, now_iso

__all__ = ["Gradebook", "GRADEBOOK_FILE", "Run", "Identity", "ManualScore", "now_iso", "RunDiff", "TestChange",
           "diff_gradebook", "diff_runs", "format_diff", "write_exports", "gradebook_csv", "canvas_csv",
           "junit_xml", "manual_total", "write_rubric_template", "read_manual_scores", "ManualGradesError",
           "RUBRIC_CSV", "GradebookVersionError"]

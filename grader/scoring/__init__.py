"""Turning outcomes into grades, and grades into results.json.

Public surface: `grade_submission`, `GradeResult`, `TestResult`, `to_gradescope`, `write_results`.
"""

from grader.scoring.grade import grade_submission
from grader.scoring.results import GradeResult, TestResult, to_gradescope, write_results

__all__ = ["grade_submission", "GradeResult", "TestResult", "to_gradescope", "write_results"]

"""Turning outcomes into grades, and grades into results.json.

Public surface: `GradingPlan`, `grade`, `load_plan`, `grade_submission`, `GradeResult`, `TestResult`,
`Extras`, `to_gradescope`, `from_gradescope`, `write_results`.
"""

from grader.scoring.extras import Extras, read_extras
from grader.scoring.grade import grade_submission, ungraded
from grader.scoring.plan import GradingPlan, grade, load_plan
from grader.scoring.results import PROBLEMS, RESULTS_JSON, GradeResult, TestResult, from_gradescope, to_gradescope, write_results

__all__ = ["GradingPlan", "grade", "load_plan", "grade_submission", "ungraded", "GradeResult", "TestResult", "Extras",
           "read_extras", "to_gradescope", "from_gradescope", "write_results", "RESULTS_JSON", "PROBLEMS"]

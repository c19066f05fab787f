"""Assignments: `assignment.toml`, the hidden held-out set, and the student release.

Public surface: `load_assignment`, `Assignment`, `AssignmentError`, `load_heldout`, `HeldoutSet`,
`write_release`, `strip_solutions`.
"""

from grader.assignments.config import (Assignment, AssignmentError, Heldout, RubricItem, check_suite, fingerprint,
                                       load_assignment)
from grader.assignments.heldout import HeldoutSet, load_heldout
from grader.assignments.release import release_notebook, strip_solutions, write_release

__all__ = ["load_assignment", "check_suite", "fingerprint", "Assignment", "AssignmentError", "Heldout", "RubricItem", "load_heldout", "HeldoutSet",
           "write_release", "release_notebook", "strip_solutions"]

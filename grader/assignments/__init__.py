"""Assignments: `assignment.toml`, the assignment's secret, the hidden held-out set, and the
student release.

Public surface: `load_assignment`, `Assignment`, `AssignmentError`, `ensure_secret`, `read_secret`,
`derive_seed`, `load_heldout`, `HeldoutSet`, `write_release`, `strip_solutions`.
"""

from grader.assignments.config import (Assignment, AssignmentError, Heldout, RubricItem, check_suite, fingerprint,
                                       load_assignment)
from grader.assignments.heldout import HeldoutSet, load_heldout
from grader.assignments.release import release_notebook, strip_solutions, write_release
from grader.assignments.secret import derive_seed, ensure_secret, read_secret, secret_digest

__all__ = ["load_assignment", "check_suite", "fingerprint", "Assignment", "AssignmentError", "Heldout", "RubricItem",
           "ensure_secret", "read_secret", "secret_digest", "derive_seed", "load_heldout", "HeldoutSet",
           "write_release", "release_notebook", "strip_solutions"]

"""Assignments: `assignment.toml`, the hidden held-out set, and (later) the student release.

Public surface: `load_assignment`, `Assignment`, `AssignmentError`, `load_heldout`, `HeldoutSet`.
"""

from grader.assignments.config import Assignment, AssignmentError, Heldout, load_assignment
from grader.assignments.heldout import HeldoutSet, load_heldout

__all__ = ["load_assignment", "Assignment", "AssignmentError", "Heldout", "load_heldout", "HeldoutSet"]

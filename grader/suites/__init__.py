"""Test suites: each test names the calls it needs from a submission and checks their outcomes in
the grader's process, where the submission cannot reach the assertions or expected values.

Public surface: `Test`, `Failure`, `Partial`, `Answers`, `register`, `load_suite`, `TAGS`.
"""

from grader.suites.base import TAGS, Answers, Failure, Partial, Test, load_suite, register

__all__ = ["Test", "Failure", "Partial", "Answers", "register", "load_suite", "TAGS"]

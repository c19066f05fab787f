"""Test suites: each test names the calls it needs from a submission and checks their outcomes in
the grader's process, where the submission cannot reach the assertions or expected values.

Public surface: `Test`, `Failure`, `Partial`, `Answers`, `register`, `register_drawn`, `Drawn`,
`instantiate`, `load_suite`, `sibling_module`.
"""

from grader.suites.base import (Answers, Drawn, Failure, Partial, Test, instantiate, load_suite, register,
                                register_drawn, sibling_module)

__all__ = ["Test", "Failure", "Partial", "Answers", "register", "register_drawn", "Drawn", "instantiate",
           "load_suite", "sibling_module"]

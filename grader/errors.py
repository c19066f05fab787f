"""The base of every error a user of the grader can fix: an instructor's assignment or suite, a
bad path or option, a hand-filled CSV, files written by another version. The command line prints
such an error as its one-line message (exit status 2); anything else is a bug in the grader."""

from __future__ import annotations


class UserError(Exception):
    """A mistake the user can fix; the message says what is wrong, where, and how to fix it."""

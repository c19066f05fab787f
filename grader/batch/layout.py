"""What a batch writes in its output folder, beside a folder per student, and the student keys that
name those folders: a key never takes a name the batch writes itself (student names come from
folder names and repository URLs, which students choose)."""

from __future__ import annotations

import re

from grader.gradebook import GRADEBOOK_FILE, RUBRIC_CSV
from grader.gradebook.exports import CANVAS_CSV, GRADEBOOK_CSV, JUNIT_XML
from grader.reports.render import SUMMARY_HTML, SUMMARY_MD

SUBMISSIONS_DIR = "_submissions"  # gathered LMS files, unpacked downloads, exported repositories
WORK_DIR = ".work"  # the gradings' scratch folders, emptied when a batch starts
LOCK_FILE = ".batch.lock"
# SQLite keeps its write-ahead log, shared memory and rollback journal beside the gradebook.
SQLITE_SIDE_FILES = tuple(f"{GRADEBOOK_FILE}{suffix}" for suffix in ("-wal", "-shm", "-journal"))
RESERVED = frozenset(name.lower() for name in (GRADEBOOK_FILE, *SQLITE_SIDE_FILES, GRADEBOOK_CSV, CANVAS_CSV,
                                               JUNIT_XML, SUMMARY_HTML, SUMMARY_MD, RUBRIC_CSV, SUBMISSIONS_DIR,
                                               WORK_DIR, LOCK_FILE))
RESERVED_SUFFIX = "_student"


def slug(text: str) -> str:
    """A folder-safe name: letters, digits, `_`, `.` and `-`, never starting or ending with `.` or `_`."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._") or "student"


def readable(text: str) -> str:
    """A name read from the file system as text any file can hold: bytes that are not UTF-8 (which
    Python keeps as lone surrogates) become U+FFFD."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def is_reserved(name: str) -> bool:
    """A name the batch writes in its output folder (compared case-insensitively, as macOS and Windows
    file systems do), or one starting with `.` or `_`, which the batch keeps for itself."""
    return name.lower() in RESERVED or name.startswith((".", "_"))


def student_key(text: str) -> str:
    """The folder-safe key of a student: their name as a slug, with a suffix when the slug is a name the
    batch writes itself (`gradebook.sqlite` becomes `gradebook.sqlite_student`, on every run alike)."""
    key = slug(text)
    return f"{key}{RESERVED_SUFFIX}" if is_reserved(key) else key

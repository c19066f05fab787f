"""Hostile batch inputs that git cannot hold, made at test time (see tests/fixtures/hostile/batch/README.md)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tests.fixtures.mini import RIGHT

MARKUP = Path(__file__).resolve().parents[2] / "fixtures" / "hostile" / "batch" / "markup"
DEEP = 1000  # past Python's recursion limit: a recursive walk fails on it


def nested(root: Path, levels: int = DEEP) -> Path:
    """`levels` folders, each inside the last (`d/d/d/...`), made without recursion (os.makedirs recurses)."""
    path = os.fspath(root)
    for _ in range(levels):
        path = os.path.join(path, "d")
        os.mkdir(path)
    return root


def remove_nested(root: Path, levels: int = DEEP) -> None:
    """Undo `nested` from the bottom up: shutil.rmtree recurses too, and pytest's clean-up uses it."""
    for level in range(levels, 0, -1):
        path = os.path.join(root, *["d"] * level)
        if os.path.isdir(path):
            os.rmdir(path)


def not_utf8(folder: Path, name: bytes) -> Path:
    """A path in `folder` whose last part is the raw bytes `name`."""
    return Path(os.fsdecode(os.fsencode(folder) + b"/" + name))


def hostile_class(folder: Path) -> dict[str, str]:
    """A class of right submissions, each with one hostile extra, beside a plain one; returns each
    student's key and what it carries."""
    def right(student: str) -> Path:
        path = folder / student
        path.mkdir(parents=True)
        (path / "submission.py").write_text(RIGHT)
        return path

    right("alice")
    nested(right("deep"))  # the red team's deep_folder
    os.mkfifo(right("fifo") / "history.csv")  # fifo_in_folder
    not_utf8(right("bytes"), b"notes-\xff.txt").write_text("x")  # non_utf8_name
    right("gradebook.sqlite")  # named like the batch's own files
    right("summary.html")
    shutil.copytree(MARKUP, folder / "markup")  # report_injection and junit_control_chars
    return {"alice": "plain", "deep": "a folder chain", "fifo": "a FIFO", "bytes": "a name that is not UTF-8",
            "gradebook.sqlite_student": "a reserved name", "summary.html_student": "a reserved name",
            "markup": "markup and control characters"}


def remove_hostile_class(folder: Path) -> None:
    remove_nested(folder / "deep")

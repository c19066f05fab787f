"""Small helpers the command modules share."""

from __future__ import annotations

import glob
import sys
from pathlib import Path

DEFAULT_ASSIGNMENT = Path("assignments/unet_urothelial")


def add_assignment_option(parser) -> None:
    """The `--assignment` option, worded alike wherever the default assignment applies."""
    parser.add_argument("--assignment", type=Path, default=DEFAULT_ASSIGNMENT,
                        help=f"assignment folder with assignment.toml (default {DEFAULT_ASSIGNMENT})")


class UserError(Exception):
    """A mistake in how the grader was called; printed as one line, exit status 2."""


def host_has_gpu() -> bool:
    """Whether NVIDIA devices exist here to pass into the sandbox."""
    return bool(glob.glob("/dev/nvidia[0-9]*"))


def find_assignment(explicit: Path | None, *starts: Path) -> Path:
    """`--assignment` if given; else the nearest folder holding `assignment.toml` at or above any of
    `starts` (a student's release); else the default assignment of the instructor's checkout."""
    if explicit is not None:
        return explicit
    for start in starts:
        start = Path(start).resolve()
        for folder in [start if start.is_dir() else start.parent, *start.parents]:
            if (folder / "assignment.toml").is_file():
                return folder
    return DEFAULT_ASSIGNMENT


def require_exists(path: Path) -> Path:
    if not Path(path).exists():
        raise UserError(f"{path}: no such file or folder")
    return Path(path)


def announce_sandbox(allow_unsandboxed: bool, why_ok: str = "") -> None:
    """Fail early (or say plainly, once) when bubblewrap cannot run here."""
    from grader.sandbox import make_sandbox, probe

    reason = probe()
    make_sandbox(allow_unsandboxed=allow_unsandboxed, announce=False)  # raises when not allowed
    if reason is not None:
        print(f"grader: bubblewrap is not available ({reason}); student code runs as a plain subprocess, "
              f"with time and memory limits but no isolation{why_ok}.", file=sys.stderr)

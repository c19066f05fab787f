"""Small helpers the command modules share: which assignment a command grades, and checks on paths."""

from __future__ import annotations

import glob
import sys
import tomllib
from pathlib import Path

from grader.errors import UserError

ASSIGNMENT_FILE = "assignment.toml"
ASSIGNMENTS_DIR = "assignments"
PROJECT_ROOT = Path(__file__).resolve().parents[2]  # the checkout, when the grader runs from one

__all__ = ["UserError", "add_assignment_option", "default_assignment", "find_assignment", "known_assignments",
           "named_assignment", "host_has_gpu", "require_exists", "announce_sandbox"]


def add_assignment_option(parser) -> None:
    """The `--assignment` option, worded alike wherever the default assignment applies; `main`
    fills in `default_assignment()` when it is left out."""
    parser.add_argument("--assignment", type=Path, default=None,
                        help="assignment folder with assignment.toml (default: the current folder if it is one, "
                             "else pyproject.toml's [tool.grader] default_assignment, else the only folder under "
                             "assignments/)")
    parser.set_defaults(default_assignment=True)


def known_assignments(cwd: Path | None = None) -> dict[str, Path]:
    """Assignment folders by name: those under the current folder's assignments/, then those under
    the checkout's (where the grader runs from one), each a folder holding assignment.toml."""
    cwd = Path.cwd() if cwd is None else Path(cwd)
    return {**_assignments_in(PROJECT_ROOT / ASSIGNMENTS_DIR, cwd), **_assignments_in(cwd / ASSIGNMENTS_DIR, cwd)}


def _assignments_in(root: Path, cwd: Path) -> dict[str, Path]:
    if not root.is_dir():
        return {}
    return {f.name: _shown(f, cwd) for f in sorted(root.iterdir()) if (f / ASSIGNMENT_FILE).is_file()}


def _shown(folder: Path, cwd: Path) -> Path:
    """`folder` relative to the current folder where it lies below it, as a user would type it."""
    try:
        return folder.relative_to(cwd) if folder.is_absolute() == cwd.is_absolute() else folder
    except ValueError:
        return folder


def _listing(known: dict[str, Path]) -> str:
    return ", ".join(f"{name} ({path})" for name, path in known.items()) or "none"


def default_assignment(cwd: Path | None = None) -> Path:
    """The assignment a command grades when `--assignment` is left out: the current folder if it
    holds assignment.toml (a student's release); else pyproject.toml's `[tool.grader]
    default_assignment` (the project's choice, a path such as assignments/NAME); else the only
    folder under assignments/ holding an assignment.toml."""
    cwd = Path.cwd() if cwd is None else Path(cwd)
    if (cwd / ASSIGNMENT_FILE).is_file():
        return Path(".")
    configured = _configured_default(cwd / "pyproject.toml")
    if configured is not None:
        return configured
    local = _assignments_in(cwd / ASSIGNMENTS_DIR, cwd)
    if len(local) == 1:
        return next(iter(local.values()))
    if not local and cwd.resolve() != PROJECT_ROOT:  # anywhere else: the checkout's own default, when there is one
        checkout = _configured_default(PROJECT_ROOT / "pyproject.toml")
        if checkout is not None:
            return PROJECT_ROOT / checkout
    if not local:
        raise UserError(f"no assignment here: {cwd} holds neither assignment.toml nor assignments/NAME/"
                        f"{ASSIGNMENT_FILE}; pass --assignment with an assignment folder")
    raise UserError(f"several assignments here: {_listing(local)}; pass --assignment with one of them, or name "
                    "the default in pyproject.toml: [tool.grader] default_assignment = \"assignments/NAME\"")


def _configured_default(pyproject: Path) -> Path | None:
    if not pyproject.is_file():
        return None
    try:
        tool = tomllib.loads(pyproject.read_text()).get("tool", {}).get("grader", {})
    except tomllib.TOMLDecodeError as err:
        raise UserError(f"{pyproject}: not valid TOML ({err}); the grader reads [tool.grader] from it") from err
    value = tool.get("default_assignment")
    if value is None:
        return None
    if not isinstance(value, str) or not (pyproject.parent / value / ASSIGNMENT_FILE).is_file():
        raise UserError(f"{pyproject}: [tool.grader] default_assignment = {value!r} is not a folder holding "
                        f"{ASSIGNMENT_FILE}; the assignments here: {_listing(known_assignments(pyproject.parent))}")
    return Path(value)


def named_assignment(name: str, cwd: Path | None = None) -> Path:
    """The assignment folder `name` means: a folder holding assignment.toml, or the name of one
    under assignments/ (the current folder's, then the checkout's)."""
    if (Path(name) / ASSIGNMENT_FILE).is_file():
        return Path(name)
    known = known_assignments(cwd)
    if name in known:
        return known[name]
    raise UserError(f"{name}: not an assignment folder and no assignment has that name; the assignments known "
                    f"here: {_listing(known)}")


def host_has_gpu() -> bool:
    """Whether NVIDIA devices exist here to pass into the sandbox."""
    return bool(glob.glob("/dev/nvidia[0-9]*"))


def find_assignment(explicit: Path | None, *starts: Path) -> Path:
    """`--assignment` if given; else the nearest folder holding `assignment.toml` at or above any of
    `starts` (a student's release); else the default assignment (`default_assignment`)."""
    if explicit is not None:
        return explicit
    for start in starts:
        start = Path(start).resolve()
        for folder in [start if start.is_dir() else start.parent, *start.parents]:
            if (folder / ASSIGNMENT_FILE).is_file():
                return folder
    return default_assignment()


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

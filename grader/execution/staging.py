"""Copying a submission into a scratch folder the sandbox may change, and checking it can be run."""

from __future__ import annotations

import json
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from grader.execution.exceptions import NoSubmissionFile, NotebookUnreadable, SubmissionError

MAX_SUBMISSION_BYTES = 512 * 2 ** 20
MAX_NOTEBOOK_BYTES = 64 * 2 ** 20
MAX_CELLS = 5_000
MAX_FILES = 10_000
MAX_DEPTH = 32
MODEL_FILE = "model.pt"


@dataclass(frozen=True)
class StagedSubmission:
    """A scratch copy of one submission: what kind it is and which file to run."""

    scratch: Path
    kind: str  # "notebook" or "module"
    entry: str  # file name inside scratch
    has_model: bool


def _pick_entry(folder: Path) -> Path:
    notebooks = sorted(p for p in folder.glob("*.ipynb") if not p.name.startswith("."))
    modules = sorted(p for p in folder.glob("*.py") if not p.name.startswith((".", "test_")))
    if len(notebooks) == 1:
        return notebooks[0]
    if len(notebooks) > 1:
        raise NoSubmissionFile(f"{folder.name} holds several notebooks ({', '.join(p.name for p in notebooks)}); "
                               "keep only the one to grade")
    if len(modules) == 1:
        return modules[0]
    if len(modules) > 1 and (folder / "submission.py").exists():
        return folder / "submission.py"
    if modules:
        raise NoSubmissionFile(f"{folder.name} holds several .py files; name the one to grade submission.py")
    raise NoSubmissionFile(f"{folder.name} holds no .ipynb notebook and no .py module to grade")


def _walk(folder: Path) -> list[Path]:
    """Every entry under `folder`, without recursion or following links, within the depth and count caps."""
    entries, stack = [], [(folder, 0)]
    while stack:
        current, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise SubmissionError(f"the submission's folders nest deeper than {MAX_DEPTH} levels; keep only the "
                                  "files the notebook or module needs")
        with os.scandir(current) as children:
            for child in children:
                entries.append(Path(child.path))
                if len(entries) > MAX_FILES:
                    raise SubmissionError(f"the submission holds more than {MAX_FILES} files; submit your notebook "
                                          "or module, model.pt and what they read, not a whole environment")
                if child.is_dir(follow_symlinks=False):
                    stack.append((Path(child.path), depth + 1))
    return entries


def _size(path: Path) -> int:
    """Bytes in `path`, counted without following links."""
    if not path.is_dir():
        return path.lstat().st_size
    return sum(entry.lstat().st_size for entry in _walk(path))


def validate_notebook(path: Path) -> None:
    """Read the notebook here as JSON only (nothing executes, nothing slow): a broken file is named
    clearly before a sandbox starts. The sandbox reads it with nbformat; any subtler fault shows there."""
    if path.stat().st_size > MAX_NOTEBOOK_BYTES:
        raise NotebookUnreadable(path.name, f"it is larger than {MAX_NOTEBOOK_BYTES // 2 ** 20} MiB; clear the "
                                            "outputs (Kernel > Restart & Clear Output) and save it again")
    try:
        nb = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as err:
        raise NotebookUnreadable(path.name, "it is not UTF-8 text") from err
    except RecursionError as err:
        raise NotebookUnreadable(path.name, "its JSON nests too deeply") from err
    except ValueError as err:
        raise NotebookUnreadable(path.name, "it is not valid JSON") from err
    problem = _notebook_problem(nb)
    if problem:
        raise NotebookUnreadable(path.name, problem)


def _notebook_problem(nb: object) -> str:
    """What makes this JSON not a version-4 notebook, or ""."""
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        return "it has no list of cells"
    if type(nb.get("nbformat")) is not int or nb["nbformat"] != 4:
        return f"it is not in notebook format 4 (it says {str(nb.get('nbformat'))[:20]})"
    if len(nb["cells"]) > MAX_CELLS:
        return f"it has more than {MAX_CELLS} cells"
    for index, cell in enumerate(nb["cells"]):
        if not isinstance(cell, dict) or cell.get("cell_type") not in ("code", "markdown", "raw"):
            return f"cell {index} is not a code, markdown or raw cell"
        source = cell.get("source", "")
        if not isinstance(source, str) and not (isinstance(source, list) and all(isinstance(s, str) for s in source)):
            return f"cell {index} has no text as its source"
    return ""


def _copy_plain(source: str, target: str) -> None:
    """Copy regular files only: a FIFO or a device in a submission would block or flood the copy."""
    if not stat.S_ISREG(os.lstat(source).st_mode):
        return
    shutil.copy2(source, target)


def stage(submission: Path, scratch: Path, models: tuple[str, ...] = (MODEL_FILE,)) -> StagedSubmission:
    """Copy `submission` (a notebook, a module or a folder) into `scratch`; symlinks stay links.
    `has_model` says whether every one of `models` (trained weights) came as a plain file."""
    submission = Path(submission)
    if not submission.exists():
        raise FileNotFoundError(f"{submission}: no such file or folder")
    try:
        if _size(submission) > MAX_SUBMISSION_BYTES:
            raise SubmissionError(f"the submission is larger than {MAX_SUBMISSION_BYTES // 2 ** 20} MiB; "
                                  "leave data sets and extra checkpoints out of it")
        if submission.is_dir():
            entry = _pick_entry(submission)
            shutil.copytree(submission, scratch, symlinks=True, dirs_exist_ok=True, copy_function=_copy_plain)
        elif submission.suffix in (".ipynb", ".py") and stat.S_ISREG(submission.lstat().st_mode):
            entry = submission
            scratch.mkdir(parents=True, exist_ok=True)
            shutil.copy2(submission, scratch / submission.name)
        else:
            raise NoSubmissionFile(f"{submission.name}: expected a .ipynb notebook, a .py module or a folder")
    except (OSError, shutil.Error) as err:
        raise SubmissionError(f"the submission could not be read ({_first_error(err)}); check that every file "
                              "in it can be opened, then submit it again") from err
    if not (scratch / entry.name).is_file() or (scratch / entry.name).is_symlink():
        raise NoSubmissionFile(f"{entry.name} is a link or not a plain file; submit the notebook or module itself")
    kind = "notebook" if entry.suffix == ".ipynb" else "module"
    if kind == "notebook":
        validate_notebook(scratch / entry.name)
    present = [scratch / name for name in models]
    return StagedSubmission(scratch, kind, entry.name,
                            bool(present) and all(p.is_file() and not p.is_symlink() for p in present))


def _first_error(err: BaseException) -> str:
    if isinstance(err, shutil.Error) and err.args and isinstance(err.args[0], list) and err.args[0]:
        source, _, why = err.args[0][0]
        return f"{Path(source).name}: {why}"[:200]
    if isinstance(err, OSError):
        return f"{Path(err.filename).name if err.filename else 'a file'}: {err.strerror or err}"[:200]
    return str(err)[:200]

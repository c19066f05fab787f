"""Copying a submission into a scratch folder the sandbox may change, and checking it can be run."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import nbformat

from grader.execution.exceptions import NoSubmissionFile, NotebookUnreadable, SubmissionError

MAX_SUBMISSION_BYTES = 512 * 2 ** 20
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


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*"))


def validate_notebook(path: Path) -> None:
    """Read the notebook here, as JSON only (nothing executes), to name a broken file clearly."""
    try:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
    except nbformat.reader.NotJSONError as err:
        raise NotebookUnreadable(path.name, "it is not valid JSON") from err
    except (nbformat.ValidationError, ValueError, KeyError, AttributeError, TypeError) as err:
        raise NotebookUnreadable(path.name, f"{type(err).__name__}: {str(err).splitlines()[0][:200]}") from err
    except UnicodeDecodeError as err:
        raise NotebookUnreadable(path.name, "it is not UTF-8 text") from err


def stage(submission: Path, scratch: Path) -> StagedSubmission:
    """Copy `submission` (a notebook, a module or a folder) into `scratch`; symlinks stay links."""
    submission = Path(submission)
    if not submission.exists():
        raise FileNotFoundError(f"{submission}: no such file or folder")
    if _size(submission) > MAX_SUBMISSION_BYTES:
        raise SubmissionError(f"the submission is larger than {MAX_SUBMISSION_BYTES // 2 ** 20} MiB; "
                              "leave data sets and extra checkpoints out of it")
    if submission.is_dir():
        entry = _pick_entry(submission)
        shutil.copytree(submission, scratch, symlinks=True, dirs_exist_ok=True)
    elif submission.suffix in (".ipynb", ".py"):
        entry = submission
        scratch.mkdir(parents=True, exist_ok=True)
        shutil.copy2(submission, scratch / submission.name)
    else:
        raise NoSubmissionFile(f"{submission.name}: expected a .ipynb notebook, a .py module or a folder")
    kind = "notebook" if entry.suffix == ".ipynb" else "module"
    if kind == "notebook":
        validate_notebook(scratch / entry.name)
    model = scratch / MODEL_FILE
    return StagedSubmission(scratch, kind, entry.name, model.is_file() and not model.is_symlink())

"""`grader assign`: the student release. Solutions between `# BEGIN SOLUTION` and `# END SOLUTION`
become stubs that raise `NotImplementedError`; public tests and public data are copied; hidden
tests, the held-out table, the `hidden/` folder (the assignment's secret and held-out set) and
every solution line stay behind."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import jinja2
import nbformat

from grader.assignments.config import Assignment, AssignmentError
from grader.assignments.secret import ensure_secret
from grader.fileio import write_text_atomic

BEGIN, END = "# BEGIN SOLUTION", "# END SOLUTION"
DEFINITION = re.compile(r"^(\s*)(def|class)\s+(\w+)")


class SolutionMarkerError(AssignmentError):
    """Unbalanced or nested solution markers in the master notebook."""


def _stub(indent: str, owner: str | None) -> str:
    what = f"{owner}: write your code here" if owner else "write your code here"
    return f'{indent}raise NotImplementedError("{what}")'


def strip_solutions(source: str, where: str = "") -> str:
    """The cell's source with each marked solution replaced by a stub at the marker's indentation."""
    out, inside, owner, klass = [], False, None, None
    for line in source.splitlines():
        stripped = line.strip()
        if stripped == BEGIN:
            if inside:
                raise SolutionMarkerError(f"{where}: {BEGIN} inside another solution")
            inside = True
            out.append(_stub(line[: len(line) - len(line.lstrip())], owner))
            continue
        if stripped == END:
            if not inside:
                raise SolutionMarkerError(f"{where}: {END} without {BEGIN}")
            inside = False
            continue
        if not inside:
            match = DEFINITION.match(line)
            if match:
                indent, kind, name = match.groups()
                klass = name if kind == "class" else (klass if indent else None)
                owner = f"{klass}.{name}" if kind == "def" and indent and klass else name
            out.append(line)
    if inside:
        raise SolutionMarkerError(f"{where}: {BEGIN} is never closed")
    return "\n".join(out)


def release_notebook(master: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of the master with solutions stubbed and every output cleared."""
    release = nbformat.from_dict(master)
    for index, cell in enumerate(release.cells):
        if cell.cell_type == "code":
            cell.source = strip_solutions(cell.source, f"cell {index}")
            cell.outputs, cell.execution_count = [], None
    return release


def _toml_value(value) -> str:
    """A value read from TOML written back as TOML (JSON's strings, numbers and lists are TOML's)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, (int, float)):
        return repr(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return json.dumps(str(value))


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _public_tables(assignment: Assignment, public_ids: set[str]) -> list[str]:
    """[classes], the [report] tests the public suite has, [submission] and [suite_settings], as TOML lines."""
    lines = []
    if assignment.classes.names or assignment.classes.colors:
        lines += ["", "[classes]"] + [f"{k} = {_toml_value(getattr(assignment.classes, k))}"
                                      for k in ("names", "colors") if getattr(assignment.classes, k)]
    featured = [(k, getattr(assignment.report, k)) for k in ("heldout_test", "overlay_test")]
    if any(test_id in public_ids for _, test_id in featured):
        lines += ["", "[report]"] + [f"{k} = {_toml_value(t)}" for k, t in featured if t in public_ids]
    files = assignment.submission
    lines += ["", "[submission]"] + [f"{k} = {_toml_value(getattr(files, k))}"
                                     for k in ("models", "answer_tag", "answer_file", "history_file")]
    if assignment.suite_settings:
        lines += ["", "[suite_settings]"] + [f"{_toml_key(k)} = {_toml_value(v)}"
                                             for k, v in assignment.suite_settings.items()]
    return lines


def _public_toml(assignment: Assignment, public_ids: set[str] = frozenset()) -> str:
    """What a student's copy needs: no held-out table."""
    lines = [f'name = "{assignment.name}"', f'title = "{assignment.title}"', f'version = "{assignment.version}"',
             f'notebook = "{assignment.notebook}"', 'suite = "tests"',
             f'results_release = "{assignment.results_release}"',
             f'grader_requirement = "{assignment.grader_requirement}"', "", "[time]"]
    lines += [f"{k} = {getattr(assignment.time, k)}" for k in ("load_seconds", "cell_seconds", "call_seconds")]
    for part in assignment.parts:
        lines += ["", "[[parts]]", f'tag = "{part.tag}"', f'title = "{part.title}"', f"points = {part.points:g}",
                  f'visibility = "{part.visibility}"'] + (["bonus = true"] if part.bonus else [])
    for item in assignment.rubric:
        lines += ["", "[[rubric]]", f'id = "{item.id}"', f"points = {item.points:g}",
                  f"description = {json.dumps(item.description)}"]
    lines += _public_tables(assignment, public_ids)
    return "\n".join(lines) + "\n"


def _write_data(assignment: Assignment, folder: Path) -> None:
    """The public data, made by the reference package of the checkout the assignment lives in."""
    root = next((p for p in assignment.folder.parents if (p / "reference" / "__init__.py").is_file()), None)
    if root is None:
        raise AssignmentError(f"no reference package above {assignment.folder}: the public data is made by "
                              "`python -m reference data`; run grader assign from the project checkout")
    done = subprocess.run([sys.executable, "-m", "reference", "data", "--out", str(folder), "--seed", "0"],
                          cwd=root, capture_output=True, text=True)
    if done.returncode != 0:
        raise AssignmentError(f"making the public data failed: {done.stderr.strip()[-500:]}")


CI_COMMAND = "grader ci ."


def _check_command(assignment: Assignment) -> str:
    """The self-check a release's README shows: the notebook, or the whole folder when the public
    tests read files handed in beside it (several weight files, a written answer, a table)."""
    beside = len(assignment.submission.models) > 1 or bool(assignment.submission.answer_file and not
                                                            assignment.submission.answer_tag)
    return "grader check ." if beside else f"grader check {assignment.notebook}"
REPORT_FOLDER = "grader-report"  # where `grader ci` writes its report, which the workflow uploads
CHECK_FOLDER = "check"  # where `grader check` writes its report
WORKFLOW = Path(".github/workflows/grade.yml")
RELEASE_GITIGNORE = "".join(f"{name}/\n" for name in (CHECK_FOLDER, REPORT_FOLDER, ".venv", "__pycache__",
                                                          ".ipynb_checkpoints"))
# CPU wheels: PyPI's default torch for Linux brings CUDA libraries a laptop or CI runner does not need.
TORCH_COMMAND = ("python -m pip install torch==2.14.1 torchvision==0.29.1 "
                 "--index-url https://download.pytorch.org/whl/cpu")


def install_commands(assignment: Assignment) -> list[str]:
    """How a student (and their CI) installs the grader, without the reference solution."""
    return [TORCH_COMMAND, f'python -m pip install "{assignment.grader_requirement}"']


def _templates() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                              keep_trailing_newline=True, autoescape=False)  # Markdown and YAML, not HTML


def _write_student_files(assignment: Assignment, folder: Path) -> None:
    """The workflow that runs `grader ci` on every push, the student README, and a .gitignore."""
    env = _templates()
    values = {"a": assignment, "install_commands": install_commands(assignment), "ci_command": CI_COMMAND,
              "report_folder": REPORT_FOLDER, "check_folder": CHECK_FOLDER, "check_command": _check_command(assignment),
              "models": [f"`{name}`" for name in assignment.submission.models],
              "rubric_points": sum(item.points for item in assignment.rubric)}
    write_text_atomic(folder / WORKFLOW, env.get_template("grade.yml.j2").render(**values))
    write_text_atomic(folder / "README.md", env.get_template("README.md.j2").render(**values))
    write_text_atomic(folder / ".gitignore", RELEASE_GITIGNORE)


def _public_ids(assignment: Assignment) -> set[str]:
    from grader.suites import load_suite  # the suites import the execution layer; only a release needs it

    return {test.id for test in load_suite(assignment.suite_dir, assignment, hidden=False)}


def write_release(assignment: Assignment, out: Path) -> Path:
    """Write the release into `out` (which must not exist or be empty), all at once. Draws the
    assignment's secret first, if it has none yet, so grading never races to draw it."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise AssignmentError(f"{out} is not empty; remove it or choose another --out")
    master_path = assignment.folder / assignment.notebook
    if not master_path.is_file():
        raise AssignmentError(f"{master_path}: the master notebook named in assignment.toml does not exist")
    ensure_secret(assignment)
    staging = Path(tempfile.mkdtemp(prefix=".release-", dir=out.parent if out.parent.exists() else None))
    try:
        nbformat.write(release_notebook(nbformat.read(master_path, as_version=4)), staging / assignment.notebook)
        (staging / "tests").mkdir()
        for path in sorted(assignment.suite_dir.glob("test_*.py")):
            shutil.copy2(path, staging / "tests" / path.name)
        _write_data(assignment, staging / "data")
        write_text_atomic(staging / "assignment.toml", _public_toml(assignment, _public_ids(assignment)))
        _write_student_files(assignment, staging)
        if out.exists():
            out.rmdir()
        out.parent.mkdir(parents=True, exist_ok=True)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out

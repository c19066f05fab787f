"""A Gradescope autograder bundle (`grader assign --gradescope`), and what its `run_autograder` runs.

The bundle is a zip for the instructor to upload to Gradescope, never for students: `setup.sh`
(Gradescope builds its image from it once, with network), `run_autograder` (run as root for each
submission), the grader's source tree, pinned dependencies, and the assignment as grading needs
it: `assignment.toml`, the whole suite (hidden tests included), the held-out images and masks, and a
secret drawn for this bundle alone (it seeds the drawn cases; the instructor's own secret stays
home). Each submission is graded by the same `grade` as `grader grade`; student code runs in
bubblewrap where Gradescope's container allows it, else as the unprivileged `student` user.
"""

from __future__ import annotations

import argparse
import glob
import importlib.metadata
import json
import os
import secrets
import shutil
import stat
import sys
import tempfile
import time
import tomllib
import traceback
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import jinja2

from grader import __version__
from grader.assignments.config import Assignment, AssignmentError
from grader.assignments.secret import SECRET_BYTES, SECRET_FILE

BUNDLE_SUFFIX = "-gradescope.zip"
ASSIGNMENT_DIR = "assignment"  # in /autograder/source
SUITE_DIR = "suite"  # in the bundle's assignment folder
HIDDEN_DIR = "hidden"
HELDOUT_DIR = "hidden/heldout"  # the held-out images and masks, read as `[heldout] folder`
GRADER_DIR = "grader-src"  # the grader's source tree, which setup.sh pip-installs
CONSTRAINTS = "constraints.txt"
MANIFEST = "bundle.json"
SANDBOX_USER = "student"  # setup.sh creates it; student code runs as this user where bubblewrap cannot run
ROOT_ENV = "AUTOGRADER_ROOT"  # /autograder on Gradescope; a temporary folder in tests
GRADESCOPE_VISIBILITY = {"visible": "visible", "hidden": "hidden", "after_due_date": "after_due_date",
                         "after_published": "after_published"}
NOT_PINNED = {"unet-grader", "pip", "setuptools", "wheel"}  # the grader itself, and pip's own tools
TORCH_INDEX = "https://download.pytorch.org/whl/cpu"  # CPU wheels: Gradescope's machines have no GPU
EXECUTABLE, PRIVATE, PUBLIC = 0o755, 0o600, 0o644


# --- building the bundle -------------------------------------------------------------------------

@dataclass(frozen=True)
class BundleFile:
    """One file of the zip: its path inside, bytes and mode."""

    name: str
    data: bytes
    mode: int = PUBLIC


def default_bundle_path(release: Path) -> Path:
    """Beside the release folder, never in it: the release goes to students, the bundle must not."""
    release = Path(release)
    return release.with_name(release.name + BUNDLE_SUFFIX)


def grader_checkout() -> Path:
    """The project checkout the running grader comes from (its pyproject.toml beside the package)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "pyproject.toml").is_file() or not (root / "grader" / "__init__.py").is_file():
        raise AssignmentError("the Gradescope bundle carries the grader's source tree, and this grader is not "
                              f"installed from a project checkout ({root} has no pyproject.toml); run grader "
                              "assign --gradescope from the checkout (pip install -e .)")
    return root


def _grader_source(root: Path) -> list[BundleFile]:
    """What `pip install` needs to build the grader: pyproject.toml, README.md, the `grader` package
    and every folder pyproject.toml maps into it (`[tool.setuptools.package-dir]`); links followed,
    caches left out."""
    files = [BundleFile(f"{GRADER_DIR}/{name}", (root / name).read_bytes()) for name in ("pyproject.toml", "README.md")
             if (root / name).is_file()]
    mapped = tomllib.loads((root / "pyproject.toml").read_text()).get("tool", {}).get("setuptools", {}).get(
        "package-dir", {})
    for top in ["grader", *(str(folder) for folder in mapped.values() if str(folder) not in ("", "."))]:
        for folder, dirs, names in os.walk(root / top, followlinks=True):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in sorted(names):
                if name.endswith((".pyc", ".pyo")):
                    continue
                path = Path(folder) / name
                files.append(BundleFile(f"{GRADER_DIR}/{path.relative_to(root).as_posix()}", path.read_bytes()))
    return files


def _distribution_name(dist: importlib.metadata.Distribution) -> str:
    return (dist.metadata["Name"] or "").lower().replace("_", "-")


def pinned_versions() -> dict[str, str]:
    """Every distribution of this environment at its installed version (local labels such as +cpu
    dropped): the versions the grader is tested with, as pip constraints."""
    pins = {}
    for dist in importlib.metadata.distributions():
        name = _distribution_name(dist)
        if name and name not in NOT_PINNED:
            pins[name] = dist.version.split("+")[0]
    return dict(sorted(pins.items()))


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string is JSON's string syntax for what tomllib reads back
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise AssignmentError(f"assignment.toml holds a value the bundle cannot copy: {value!r}")


def toml_text(raw: dict) -> str:
    """`raw` (as tomllib read it) written back as TOML: plain keys, then tables, then arrays of tables."""
    def is_table_array(value) -> bool:
        return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)

    lines = [f"{json.dumps(k)} = {_toml_value(v)}" for k, v in raw.items()
             if not isinstance(v, dict) and not is_table_array(v)]
    for key, value in raw.items():
        if isinstance(value, dict):
            lines += ["", f"[{json.dumps(key)}]"] + [f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()]
    for key, value in raw.items():
        if is_table_array(value):
            for item in value:
                lines += ["", f"[[{json.dumps(key)}]]"] + [f"{json.dumps(k)} = {_toml_value(v)}"
                                                          for k, v in item.items()]
    return "\n".join(lines) + "\n"


def _heldout_files(assignment: Assignment) -> list[BundleFile]:
    """The held-out images and masks, validated by loading them as grading does."""
    from grader.assignments.heldout import _instructor_folder, load_heldout, synthetic_folder

    heldout = load_heldout(assignment)  # validates pairs, sizes and labels; draws the synthetic set if needed
    folder = _instructor_folder(assignment) if assignment.heldout.folder else synthetic_folder(assignment)
    files = []
    for name in heldout.names:
        for sub in ("images", "masks"):
            files.append(BundleFile(f"{ASSIGNMENT_DIR}/{HELDOUT_DIR}/{sub}/{name}.png",
                                    (folder / sub / f"{name}.png").read_bytes(), PRIVATE))
    return files


def _assignment_files(assignment: Assignment) -> tuple[list[BundleFile], int]:
    """The bundle's assignment folder: its toml (suite and held-out set pointing inside the bundle),
    every suite file, a fresh secret and the held-out set. Also the number of held-out images."""
    raw = tomllib.loads((assignment.folder / "assignment.toml").read_text())
    raw["suite"] = SUITE_DIR
    files = [BundleFile(f"{ASSIGNMENT_DIR}/{SUITE_DIR}/{path.name}", path.read_bytes(), PRIVATE)
             for path in sorted(assignment.suite_dir.glob("*.py"))]
    heldout: list[BundleFile] = []
    if "heldout" in raw:  # the assignment grades on a held-out set
        heldout = _heldout_files(assignment)
        raw["heldout"] = {**raw["heldout"], "folder": HELDOUT_DIR}
    files.append(BundleFile(f"{ASSIGNMENT_DIR}/assignment.toml", toml_text(raw).encode(), PRIVATE))
    files.append(BundleFile(f"{ASSIGNMENT_DIR}/{HIDDEN_DIR}/{SECRET_FILE}",
                            (secrets.token_bytes(SECRET_BYTES).hex() + "\n").encode(), PRIVATE))
    return files + heldout, len(heldout) // 2


def _templates() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates" / "gradescope"),
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)


def _scripts(pins: dict[str, str]) -> list[BundleFile]:
    """setup.sh and run_autograder, with this environment's Python and torch versions pinned."""
    python = f"python{sys.version_info.major}.{sys.version_info.minor}"
    torch = [f"{name}=={pins[name]}" for name in ("torch", "torchvision") if name in pins]
    values = {"python": python, "torch_requirements": " ".join(torch), "torch_index": TORCH_INDEX,
              "constraints": CONSTRAINTS, "grader_dir": GRADER_DIR, "assignment_dir": ASSIGNMENT_DIR,
              "sandbox_user": SANDBOX_USER, "root_env": ROOT_ENV}
    env = _templates()
    return [BundleFile(name, env.get_template(f"{name}.j2").render(**values).encode(), EXECUTABLE)
            for name in ("setup.sh", "run_autograder")]


def bundle_files(assignment: Assignment) -> list[BundleFile]:
    """Everything the zip holds, in the order it is written."""
    from grader.assignments.config import fingerprint

    pins = pinned_versions()
    assignment_files, heldout_images = _assignment_files(assignment)
    manifest = {"assignment": assignment.name, "version": assignment.version, "grader_version": __version__,
                "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "source_fingerprint": fingerprint(assignment), "heldout_images": heldout_images,
                "manual_rubric": [{"id": item.id, "points": item.points, "description": item.description}
                                  for item in assignment.rubric]}
    return [*_scripts(pins), BundleFile(CONSTRAINTS, "".join(f"{n}=={v}\n" for n, v in pins.items()).encode()),
            BundleFile(MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode()),
            *_grader_source(grader_checkout()), *assignment_files]


def write_bundle(assignment: Assignment, path: Path) -> Path:
    """Write the bundle to `path` (a .zip that must not exist yet), all at once."""
    path = Path(path)
    if path.exists():
        raise AssignmentError(f"{path} exists; remove it or choose another path for the Gradescope bundle")
    files = bundle_files(assignment)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # 0600: it holds the answers
    try:
        with os.fdopen(fd, "wb") as handle, zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as archive:
            for item in files:
                info = zipfile.ZipInfo(item.name, date_time=(2020, 1, 1, 0, 0, 0))
                info.external_attr = (stat.S_IFREG | item.mode) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, item.data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def unpack_bundle(bundle: Path, source: Path) -> Path:
    """Unpack a bundle as Gradescope does (into /autograder/source), keeping each file's mode."""
    with zipfile.ZipFile(bundle) as archive:
        for info in archive.infolist():
            target = (source / info.filename).resolve()
            if not target.is_relative_to(source.resolve()):
                raise AssignmentError(f"{bundle}: {info.filename} would land outside {source}")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(info))
            target.chmod(stat.S_IMODE(info.external_attr >> 16) or PUBLIC)
    return source


# --- grading one submission on Gradescope --------------------------------------------------------

GRADER_FAILED = ("The autograder could not grade this submission because of a problem on the grader's side, not "
                 "in your code. Your instructor can see what went wrong; please let them know, and submit again "
                 "once they say it is fixed.")


def gradescope_visibility(visibility: str) -> str:
    """Our visibility as Gradescope's; anything unknown stays out of sight."""
    return GRADESCOPE_VISIBILITY.get(visibility, "hidden")


def _manual_note(assignment: Assignment) -> str:
    if not assignment.rubric:
        return ""
    points = sum(item.points for item in assignment.rubric)
    items = ", ".join(f"{item.id} ({item.points:g})" for item in assignment.rubric)
    return (f"\nNot in this score: {points:g} points graded by hand ({items}); they appear when your instructor "
            "has graded them.")


def gradescope_results(result, assignment: Assignment) -> dict:
    """A `GradeResult` in Gradescope's results.json format: the score is the grade's own (the tests'
    sum, bonus tests counting within the others' maximum), the engine's own fields (sandbox, seed, problem) go to `extra_data`, and the grader's output stays
    hidden from students (`stdout_visibility`)."""
    tests = [{"name": t.name, "number": t.number, "score": t.score, "max_score": t.max_score, "status": t.status,
              "output": t.output, "visibility": gradescope_visibility(t.visibility), "tags": list(t.tags)}
             for t in result.tests]
    extra = {"assignment": assignment.name, "version": assignment.version, "grader_version": __version__,
             "sandbox": result.sandbox, "problem": result.problem, "max_score": result.max_score}
    if result.seed is not None:
        extra["seed"] = result.seed
    return {"score": result.score, "execution_time": round(result.execution_time),
            "output": result.output + _manual_note(assignment), "stdout_visibility": "hidden",
            "tests": tests, "extra_data": extra}


def _failed_results(seconds: float, error: BaseException) -> dict:
    return {"score": 0, "execution_time": round(seconds), "output": GRADER_FAILED, "stdout_visibility": "hidden",
            "tests": [], "extra_data": {"grader_error": type(error).__name__, "grader_version": __version__}}


def _copy_regular(source: str, target: str) -> None:
    """Plain files only: a FIFO or a device in a submission would block or flood the copy."""
    if stat.S_ISREG(os.lstat(source).st_mode):
        shutil.copy2(source, target)


def submission_folder(folder: Path) -> Path:
    """The folder to grade: Gradescope's submission folder, or the one folder in it when a student
    uploaded a zip of a folder (nothing gradable at the top, a single folder beside it)."""
    visible = [p for p in folder.iterdir() if not p.name.startswith((".", "__MACOSX"))]
    gradable = [p for p in visible if p.suffix in (".ipynb", ".py") and not p.is_dir()]
    folders = [p for p in visible if p.is_dir() and not p.is_symlink()]
    return folders[0] if not gradable and len(folders) == 1 else folder


def _lock_down(root: Path) -> None:
    """What the student's code must not read, root's alone (setup.sh did it; cheap to make sure):
    the bundle (hidden suite, held-out set, secret) and Gradescope's metadata of the submitters."""
    for path in (root / "source", root / "submission_metadata.json"):
        if path.exists():
            os.chmod(path, 0o700 if path.is_dir() else 0o600)


def grade_here(root: Path) -> dict:
    """Grade `root/submission` with the bundle in `root/source`: Gradescope's results as a dict."""
    from grader.scoring import GradingPlan, grade, load_plan

    _lock_down(root)
    work = Path(tempfile.mkdtemp(prefix="gradescope-"))
    try:
        submission = work / "submission"
        shutil.copytree(submission_folder(root / "submission"), submission, symlinks=True,
                        copy_function=_copy_regular)
        plan = GradingPlan(root / "source" / ASSIGNMENT_DIR, hidden=True, allow_unsandboxed=True,
                           gpu=bool(glob.glob("/dev/nvidia[0-9]*")))
        assignment, _ = load_plan(plan)
        return gradescope_results(grade(plan, submission), assignment)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_autograder(root: Path) -> Path:
    """Grade and write `root/results/results.json`, whatever happens: a failure of the grader itself
    gives a score of 0 with a message saying so, and its traceback on stdout (hidden from students)."""
    from grader.fileio import write_text_atomic

    start = time.monotonic()
    try:
        data = grade_here(root)
    except Exception as error:  # the grader's own failure: the student's code never raises here
        traceback.print_exc(file=sys.stdout)
        data = _failed_results(time.monotonic() - start, error)
    return write_text_atomic(root / "results" / "results.json", json.dumps(data, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader.assignments.gradescope",
                                     description="Grade the submission of a Gradescope autograder run.")
    parser.add_argument("--root", type=Path, default=Path(os.environ.get(ROOT_ENV, "/autograder")),
                        help=f"Gradescope's folder (default ${ROOT_ENV} or /autograder)")
    parser.add_argument("--check", action="store_true",
                        help="only load the bundle's assignment and suite (setup.sh runs this once)")
    args = parser.parse_args(argv)
    if args.check:
        from grader.scoring import GradingPlan, load_plan

        assignment, tests = load_plan(GradingPlan(args.root / "source" / ASSIGNMENT_DIR, hidden=True))
        print(f"{assignment.name} {assignment.version}: {len(tests)} tests, "
              f"{sum(t.points for t in tests):g} points graded automatically")
        return 0
    path = run_autograder(args.root)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

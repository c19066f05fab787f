"""The Gradescope autograder bundle: what it holds, its scripts, and run_autograder grading a
submission in a folder laid out as Gradescope's /autograder, with results.json in Gradescope's format."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

import pytest

from grader.assignments import load_assignment
from grader.assignments.gradescope import (ASSIGNMENT_DIR, GRADER_FAILED, HELDOUT_DIR, default_bundle_path,
                                           gradescope_visibility, pinned_versions, toml_text, unpack_bundle,
                                           write_bundle)
from grader.sandbox import base as sandbox_base
from grader.sandbox import PlainSandbox, SandboxRequest, probe
from grader.sandbox.exceptions import SandboxError
from grader.sandbox.plain import _processes_of
from tests.fixtures.mini import MINI_ASSIGNMENT, RIGHT, module

PROJECT = Path(__file__).resolve().parents[3]
GRADESCOPE_VISIBILITIES = {"visible", "hidden", "after_due_date", "after_published"}
TEST_UID = 1_799_990_001  # below the sandbox's uid slots, so killing its processes touches no other sandbox
needs_bwrap = pytest.mark.skipif(probe() is not None, reason=f"bubblewrap unavailable: {probe()}")
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="dropping to another user needs root")


@pytest.fixture(scope="module")
def mini_bundle(tmp_path_factory) -> Path:
    return write_bundle(load_assignment(MINI_ASSIGNMENT), tmp_path_factory.mktemp("bundle") / "mini.zip")


def _autograder(tmp_path: Path, bundle: Path, submission: dict[str, str]) -> Path:
    """A folder laid out as Gradescope's /autograder: source (the unpacked bundle), submission, results."""
    root = tmp_path / "autograder"
    unpack_bundle(bundle, root / "source")
    (root / "submission").mkdir(parents=True)
    for name, text in submission.items():
        (root / "submission" / name).write_text(text)
    (root / "results").mkdir()
    (root / "submission_metadata.json").write_text('{"users": [{"email": "alice@example.org"}]}')
    return root


def _run(root: Path, python: str = sys.executable, env: dict[str, str] | None = None,
         timeout: float = 300) -> subprocess.CompletedProcess:
    """run_autograder with the given interpreter instead of the venv setup.sh would have made."""
    variables = {**os.environ, "AUTOGRADER_ROOT": str(root), "AUTOGRADER_PYTHON": python, **(env or {})}
    return subprocess.run(["bash", str(root / "source" / "run_autograder")], env=variables, capture_output=True,
                          text=True, timeout=timeout)


def check_gradescope_schema(data: dict) -> None:
    """What Gradescope needs of results.json, and what this grader promises on top."""
    assert isinstance(data["score"], (int, float))
    assert isinstance(data["execution_time"], (int, float)) and isinstance(data["output"], str)
    assert data["stdout_visibility"] in GRADESCOPE_VISIBILITIES
    assert abs(data["score"] - sum(t["score"] for t in data["tests"])) < 1e-6
    for test in data["tests"]:
        assert {"name", "score", "max_score", "output", "visibility", "tags"} <= set(test)
        assert isinstance(test["max_score"], (int, float)) and 0 <= test["score"] <= test["max_score"]
        assert test["visibility"] in GRADESCOPE_VISIBILITIES
        assert test["status"] in ("passed", "failed") and isinstance(test["tags"], list)
    json.dumps(data, allow_nan=False)


def _results(root: Path) -> dict:
    data = json.loads((root / "results" / "results.json").read_text())
    check_gradescope_schema(data)
    return data


# --- the bundle ------------------------------------------------------------------------------------

def test_bundle_holds_scripts_grader_suite_and_a_secret_of_its_own(mini_bundle):
    with zipfile.ZipFile(mini_bundle) as archive:
        names = set(archive.namelist())
        modes = {i.filename: stat.S_IMODE(i.external_attr >> 16) for i in archive.infolist()}
        secret = archive.read(f"{ASSIGNMENT_DIR}/hidden/secret").decode().strip()
        toml = tomllib.loads(archive.read(f"{ASSIGNMENT_DIR}/assignment.toml").decode())
        manifest = json.loads(archive.read("bundle.json"))
    assert {"setup.sh", "run_autograder", "constraints.txt", "grader-src/pyproject.toml",
            "grader-src/grader/scoring/grade.py", "grader-src/grader/execution/inside/grader_worker.py",
            f"{ASSIGNMENT_DIR}/suite/test_mini.py", f"{ASSIGNMENT_DIR}/suite/hidden_mini.py"} <= names
    assert modes["setup.sh"] == modes["run_autograder"] == 0o755
    assert modes[f"{ASSIGNMENT_DIR}/hidden/secret"] == modes[f"{ASSIGNMENT_DIR}/suite/hidden_mini.py"] == 0o600
    assert not any(n.startswith(("reference/", "tests/")) or "__pycache__" in n or n.endswith(".ipynb")
                   for n in names)
    assert len(secret) == 32 and int(secret, 16) >= 0
    assert toml["suite"] == "suite" and toml["name"] == "mini" and "heldout" not in toml
    assert manifest["manual_rubric"] == [{"id": "explanation", "points": 2, "description": "Explains the arithmetic."}]
    assert stat.S_IMODE(mini_bundle.stat().st_mode) == 0o600  # it holds the hidden tests


def test_each_bundle_draws_its_own_secret(mini_bundle, tmp_path):
    other = write_bundle(load_assignment(MINI_ASSIGNMENT), tmp_path / "again.zip")
    secret = f"{ASSIGNMENT_DIR}/hidden/secret"
    with zipfile.ZipFile(mini_bundle) as first, zipfile.ZipFile(other) as second:
        assert first.read(secret) != second.read(secret)
    with pytest.raises(Exception, match="exists"):
        write_bundle(load_assignment(MINI_ASSIGNMENT), other)


def test_the_bundle_goes_beside_the_release_never_into_it(tmp_path):
    release = tmp_path / "release"
    assert default_bundle_path(release).parent == tmp_path
    assert not default_bundle_path(release).is_relative_to(release)


def test_setup_script_parses_and_pins_what_the_grader_was_tested_with(mini_bundle, tmp_path):
    source = unpack_bundle(mini_bundle, tmp_path / "source")
    for script in ("setup.sh", "run_autograder"):
        subprocess.run(["bash", "-n", str(source / script)], check=True)
    setup = (source / "setup.sh").read_text()
    pins = pinned_versions()
    assert f"torch=={pins['torch']} torchvision=={pins['torchvision']} --index-url" in setup
    assert f'-c "$SOURCE/constraints.txt" "$SOURCE/grader-src"' in setup
    assert f"python{sys.version_info.major}.{sys.version_info.minor} -m venv" in setup
    assert "bubblewrap" in setup and "useradd" in setup and "student" in setup
    assert 'chmod -R go-rwx "$SOURCE"' in setup and "--check" in setup
    constraints = (source / "constraints.txt").read_text().splitlines()
    for name in ("numpy", "onnxruntime", "nbclient", "segmentation-models-pytorch"):
        assert f"{name}=={pins[name]}" in constraints
    assert not any(line.startswith("unet-grader==") for line in constraints)
    assert "GRADER_SANDBOX_USER" in (source / "run_autograder").read_text()


def test_toml_written_back_reads_the_same(tmp_path):
    raw = tomllib.loads((PROJECT / "assignments" / "unet_urothelial" / "assignment.toml").read_text())
    raw["odd"] = 'quote " and \\ backslash'
    raw["nested"] = {"table": {"x": [1.5, 2]}, "flag": True}
    assert tomllib.loads(toml_text(raw)) == raw


def test_visibility_maps_onto_gradescope_and_unknown_stays_hidden():
    for ours in ("visible", "hidden", "after_due_date", "after_published"):
        assert gradescope_visibility(ours) == ours
    assert gradescope_visibility("public") == "hidden"


def test_default_assignment_bundle_carries_its_heldout_set(tmp_path):
    assignment = load_assignment(PROJECT / "assignments" / "unet_urothelial")
    bundle = write_bundle(assignment, tmp_path / "unet.zip")
    source = unpack_bundle(bundle, tmp_path / "source")
    unpacked = load_assignment(source / ASSIGNMENT_DIR)
    assert unpacked.heldout.folder == HELDOUT_DIR and unpacked.heldout.reference_dice == assignment.heldout.reference_dice
    assert unpacked.suite_dir == (source / ASSIGNMENT_DIR / "suite").resolve()
    assert len(list((source / ASSIGNMENT_DIR / HELDOUT_DIR / "images").glob("*.png"))) == assignment.heldout.count
    assert (source / ASSIGNMENT_DIR / "suite" / "hidden_heldout.py").is_file()
    master_secret = (assignment.hidden_dir / "secret").read_text().strip()
    assert master_secret not in bundle.read_bytes().decode("latin-1")  # the instructor's secret stays home
    assert not (source / ASSIGNMENT_DIR / "unet_urothelial.ipynb").exists()  # no solutions in the bundle


# --- run_autograder in a Gradescope-shaped folder --------------------------------------------------

@needs_bwrap
def test_run_autograder_grades_a_right_and_a_wrong_submission(mini_bundle, tmp_path):
    right = _autograder(tmp_path / "right", mini_bundle, {"solution.py": RIGHT})
    done = _run(right)
    assert done.returncode == 0, done.stdout + done.stderr
    data = _results(right)
    assert data["score"] == 5 and data["extra_data"]["max_score"] == 5 and data["stdout_visibility"] == "hidden"
    visibility = {t["number"]: t["visibility"] for t in data["tests"]}
    assert visibility == {"arithmetic.add": "visible", "arithmetic.scale": "visible",
                          "large_numbers.add": "after_due_date"}
    assert "2 points graded by hand (explanation (2))" in data["output"]
    assert data["extra_data"]["sandbox"] == "bubblewrap" and isinstance(data["extra_data"]["seed"], int)
    assert stat.S_IMODE((right / "submission_metadata.json").stat().st_mode) == 0o600

    wrong = _autograder(tmp_path / "wrong", mini_bundle, {"solution.py": module(scale_offset=1)})
    assert _run(wrong).returncode == 0
    data = _results(wrong)
    assert data["score"] == 4
    assert [t["number"] for t in data["tests"] if t["status"] == "failed"] == ["arithmetic.scale"]


HOSTILE = '''
import glob, os, pathlib
ROOT = {root!r}

def _loot():
    found = []
    for pattern in ("/source/assignment/hidden/secret", "/source/assignment/suite/hidden_mini.py",
                    "/submission_metadata.json"):
        try:
            found.append(pathlib.Path(ROOT + pattern).read_text())
        except OSError as err:
            found.append(type(err).__name__)
    return found

for path in (ROOT + "/results/results.json", "/autograder/results/results.json"):
    try:
        pathlib.Path(path).write_text('{{"score": 1000, "tests": []}}')
    except OSError:
        pass

def add(a, b):
    return " | ".join(_loot())

def scale(a, b):
    return os.getuid()
'''


@needs_bwrap
def test_hostile_submission_reads_no_secret_and_cannot_forge_results(mini_bundle, tmp_path):
    root = tmp_path / "autograder"
    bundle_secret = zipfile.ZipFile(mini_bundle).read(f"{ASSIGNMENT_DIR}/hidden/secret").decode().strip()
    root = _autograder(tmp_path, mini_bundle, {"solution.py": HOSTILE.format(root=str(root))})
    assert _run(root).returncode == 0
    text = (root / "results" / "results.json").read_text()
    data = _results(root)
    assert data["score"] == 0 and len(data["tests"]) == 3  # our results.json, not the forged one
    assert bundle_secret not in text and "large_numbers" not in _test(data, "arithmetic.add")["output"]
    assert "alice@example.org" not in text
    assert "returned 0" not in _test(data, "arithmetic.scale")["output"]  # never root


def _test(data: dict, number: str) -> dict:
    return next(t for t in data["tests"] if t["number"] == number)


def test_a_broken_bundle_still_gives_a_complete_results_json(mini_bundle, tmp_path):
    root = _autograder(tmp_path, mini_bundle, {"solution.py": RIGHT})
    (root / "source" / ASSIGNMENT_DIR / "assignment.toml").write_text("name = [broken")
    done = _run(root)
    assert done.returncode == 0
    data = _results(root)
    assert data["score"] == 0 and data["tests"] == [] and data["output"] == GRADER_FAILED
    assert "AssignmentError" in done.stdout  # the traceback, for the instructor (stdout is hidden from students)


# --- the fallback without bubblewrap: student code as another user ------------------------------

def _reachable_python(tmp: Path) -> str:
    """A virtual environment another user can run: the system interpreter with this environment's
    packages (the test interpreter may live in a folder only root can enter)."""
    system = shutil.which("python3.11", path="/usr/bin:/usr/local/bin")
    if system is None or sys.version_info[:2] != (3, 11):
        pytest.skip("needs a system python3.11 matching this environment")
    subprocess.run([system, "-m", "venv", "--without-pip", str(tmp / "venv")], check=True)
    site = next(Path(p) for p in sys.path if p.endswith("site-packages") and Path(p).is_dir())
    target = next((tmp / "venv" / "lib").glob("python3*/site-packages"))
    (target / "this-environment.pth").write_text(f"{site}\n{PROJECT}\n")
    return str(tmp / "venv" / "bin" / "python")


def _path_without_bwrap(tmp: Path) -> str:
    """A PATH holding every system command but bwrap, so the grader falls back to the plain sandbox."""
    folder = tmp / "bin"
    folder.mkdir()
    for directory in ("/usr/local/bin", "/usr/bin", "/bin"):
        for entry in Path(directory).iterdir():
            if entry.name != "bwrap" and not (folder / entry.name).exists():
                (folder / entry.name).symlink_to(entry)
    return str(folder)


@needs_root
def test_without_bubblewrap_student_code_runs_as_another_user(mini_bundle):
    tmp = Path(tempfile.mkdtemp(prefix="gradescope-plain-"))
    try:
        tmp.chmod(0o755)  # the virtual environment must be reachable for the sandbox user
        python = _reachable_python(tmp)
        root = tmp / "autograder"
        bundle_secret = zipfile.ZipFile(mini_bundle).read(f"{ASSIGNMENT_DIR}/hidden/secret").decode().strip()
        root = _autograder(tmp, mini_bundle, {"solution.py": HOSTILE.format(root=str(root))})
        shutil.copytree(root, tmp / "copy")  # run_autograder locks the bundle down; setup.sh would have
        done = _run(root, python, {"PATH": _path_without_bwrap(tmp), "GRADER_SANDBOX_USER": str(TEST_UID)})
        assert done.returncode == 0, done.stdout + done.stderr
        text = (root / "results" / "results.json").read_text()
        data = _results(root)
        assert data["extra_data"]["sandbox"].startswith("plain") and data["score"] == 0 and len(data["tests"]) == 3
        assert f"returned {TEST_UID}" in _test(data, "arithmetic.scale")["output"]
        assert bundle_secret not in text and "alice@example.org" not in text
        assert "PermissionError" in _test(data, "arithmetic.add")["output"]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _plain_request(tmp: Path, script: str) -> SandboxRequest:
    (tmp / "stage" / "scratch").mkdir(parents=True)
    (tmp / "stage").chmod(0o700)
    (tmp / "io").mkdir()
    return SandboxRequest(["/bin/sh", "-c", script], tmp / "stage" / "scratch", tmp / "io", tmp / "io")


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status  # a zombie is dead, waiting for this container's init


@needs_root
@pytest.mark.parametrize("cgroups", [True, False], ids=["cgroups", "no-cgroups"])
def test_plain_sandbox_as_a_named_user_reads_no_root_file_and_leaves_no_process(cgroups, monkeypatch):
    tmp = Path(tempfile.mkdtemp(prefix="gradescope-drop-"))
    try:
        tmp.chmod(0o755)
        secret = tmp / "secret"
        secret.write_text("the held-out masks")
        secret.chmod(0o600)
        request = _plain_request(tmp, f"id -u; cat {secret}; echo mine > made; "
                                      "setsid sh -c 'echo $$ > straggler; exec sleep 300' >/dev/null 2>&1 & "
                                      "sleep 0.5; echo done")
        monkeypatch.setenv("GRADER_SANDBOX_USER", str(TEST_UID))
        if not cgroups:  # as in most containers: nothing but the sandbox's own reaper ends a straggler
            monkeypatch.setattr(sandbox_base, "probe_cgroups", lambda: (None, "cgroups are not writable here"))
        result = PlainSandbox(announce=False).run(request)
        assert result.output.splitlines()[0] == str(TEST_UID) and "Permission denied" in result.output
        assert "the held-out masks" not in result.output
        assert (request.scratch / "made").read_text() == "mine\n"
        assert (request.scratch / "made").stat().st_uid == 0  # handed back to root
        assert stat.S_IMODE((tmp / "stage").stat().st_mode) == 0o700  # the parent's mode restored
        assert not _alive(int((request.scratch / "straggler").read_text()))  # killed when the run ended
        assert _processes_of(TEST_UID) == []
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@needs_root
def test_plain_sandbox_refuses_root_and_unknown_users(tmp_path, monkeypatch):
    request = _plain_request(tmp_path, "true")
    for user, message in (("0", "is root"), ("no-such-user-here", "no such user")):
        monkeypatch.setenv("GRADER_SANDBOX_USER", user)
        with pytest.raises(SandboxError, match=message):
            PlainSandbox(announce=False).run(request)


# --- the default assignment, end to end (slow: the whole suite in the sandbox) --------------------

@pytest.mark.slow
@needs_bwrap
def test_default_bundle_grades_the_untouched_release_to_zero(release, tmp_path):
    assignment = load_assignment(PROJECT / "assignments" / "unet_urothelial")
    bundle = write_bundle(assignment, tmp_path / "unet.zip")
    root = _autograder(tmp_path, bundle, {})
    shutil.copy2(release / assignment.notebook, root / "submission" / assignment.notebook)
    done = _run(root, timeout=1200)
    assert done.returncode == 0, done.stdout + done.stderr
    data = _results(root)
    assert data["score"] == 0 and data["extra_data"]["max_score"] == 56
    assert {t["visibility"] for t in data["tests"] if "heldout" in t["tags"]} == {"after_due_date"}
    assert "10 points graded by hand" in data["output"]


def test_assign_gradescope_writes_the_bundle_beside_the_release(tmp_path, capsys, monkeypatch):
    import grader.assignments
    from grader.cli import main

    def release(assignment, out):  # the release itself is tested in test_release.py; this is the flag
        (out / "data").mkdir(parents=True)
        return out

    monkeypatch.setattr(grader.assignments, "write_release", release)
    out = tmp_path / "release"
    assert main(["assign", "--assignment", str(PROJECT / "assignments" / "unet_urothelial"), "--out", str(out),
                 "--gradescope"]) == 0
    bundle = tmp_path / "release-gradescope.zip"
    assert zipfile.is_zipfile(bundle) and "never give it to students" in capsys.readouterr().out
    released = [p.name for p in out.rglob("*")]
    assert not any(name.endswith(".zip") or name.startswith("hidden") or name == "secret" for name in released)
    assert main(["assign", "--assignment", str(PROJECT / "assignments" / "unet_urothelial"), "--out",
                 str(tmp_path / "again"), "--gradescope", str(bundle)]) == 2
    assert "exists" in capsys.readouterr().err and not (tmp_path / "again").exists()


def test_the_grader_source_in_the_bundle_builds_a_complete_wheel(mini_bundle, tmp_path):
    source = unpack_bundle(mini_bundle, tmp_path / "source")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                           "--wheel-dir", str(tmp_path / "wheel"), str(source / "grader-src")],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    with zipfile.ZipFile(next((tmp_path / "wheel").glob("*.whl"))) as wheel:
        names = set(wheel.namelist())
    assert {"grader/assignments/gradescope.py", "grader/execution/inside/grader_worker.py",
            "grader/verifier/inside/verify_worker.py", "grader/reports/templates/report.html.j2"} <= names
    assert not any(name.startswith(("reference/", "tests/")) for name in names)


def test_a_zip_of_a_folder_is_graded_from_inside_it(tmp_path):
    from grader.assignments.gradescope import submission_folder

    (tmp_path / "zipped" / "my-work").mkdir(parents=True)
    (tmp_path / "zipped" / "__MACOSX").mkdir()
    (tmp_path / "zipped" / "my-work" / "solution.py").write_text(RIGHT)
    assert submission_folder(tmp_path / "zipped") == tmp_path / "zipped" / "my-work"
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "solution.py").write_text(RIGHT)
    (tmp_path / "flat" / "data").mkdir()
    assert submission_folder(tmp_path / "flat") == tmp_path / "flat"


def test_setup_check_loads_the_bundled_assignment(mini_bundle, tmp_path):
    root = _autograder(tmp_path, mini_bundle, {})
    done = subprocess.run([sys.executable, "-m", "grader.assignments.gradescope", "--root", str(root), "--check"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "mini 1: 3 tests, 5 points graded automatically" in done.stdout


@needs_bwrap
def test_a_fifo_in_the_submission_does_not_block_the_copy(mini_bundle, tmp_path):
    root = _autograder(tmp_path, mini_bundle, {"solution.py": RIGHT})
    os.mkfifo(root / "submission" / "pipe")  # reading it would wait for a writer forever
    assert _run(root, timeout=120).returncode == 0
    assert _results(root)["score"] == 5

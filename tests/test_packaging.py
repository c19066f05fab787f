"""The grader's wheel: what a student's `pip install` gets. No reference solution, no hidden test,
and the engine works from it (harness, templates) without the checkout."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "-w", str(out), str(ROOT)], check=True, capture_output=True, timeout=300)
    return next(out.glob("unet_grader-*.whl"))


def test_the_wheel_holds_the_engine_and_no_solution_or_hidden_test(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    packages = {name.split("/")[0] for name in names if not name.startswith("unet_grader-")}
    assert packages == {"grader"}
    assert not [n for n in names if "hidden" in n.rsplit("/", 1)[-1] or "test_suites" in n or "reference" in n.split("/")]
    assert not [n for n in names if n.endswith((".ipynb", ".toml", ".pt"))]
    for needed in ("grader/execution/inside/grader_worker.py", "grader/verifier/inside/verify_worker.py",
                   "grader/reports/templates/report.html.j2",
                   "grader/assignments/templates/grade.yml.j2"):
        assert needed in names


def test_the_installed_wheel_grades_and_reports_without_the_checkout(wheel, mini_assignment, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
                    str(wheel)], check=True, capture_output=True, timeout=300)
    (tmp_path / "mine.py").write_text("def add(a, b):\n    return a + b\n")
    script = f"""
import importlib.util, sys
import grader
assert grader.__file__.startswith({str(target)!r}), grader.__file__
assert importlib.util.find_spec("reference") is None, "the reference solution is importable"
from grader.cli import main
sys.exit(main(["check", {str(tmp_path / "mine.py")!r}, "--assignment", {str(mini_assignment)!r},
               "--out", {str(tmp_path / "check")!r}]))
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env={"PYTHONPATH": str(target),
                                                                            "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr  # scale is missing: one public test fails
    assert "PASS  arithmetic.add" in done.stdout and "FAIL  arithmetic.scale" in done.stdout
    assert (tmp_path / "check" / "report.html").read_text().count("test-arithmetic.") == 2

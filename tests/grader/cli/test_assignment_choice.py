"""Which assignment a command uses when none is given, `grader assign NAME`, and how user errors
and bugs reach the terminal."""

from pathlib import Path

import pytest

from grader.cli import main
from grader.cli.common import PROJECT_ROOT, default_assignment, known_assignments, named_assignment
from grader.errors import UserError


def _assignment(root: Path, name: str) -> Path:
    folder = root / "assignments" / name
    folder.mkdir(parents=True)
    (folder / "assignment.toml").write_text(f'name = "{name}"\n')
    return folder


def test_the_checkout_defaults_to_the_assignment_pyproject_names(monkeypatch):
    monkeypatch.chdir(PROJECT_ROOT)
    assert default_assignment() == Path("assignments/unet_urothelial")


def test_a_folder_with_one_assignment_defaults_to_it(tmp_path):
    _assignment(tmp_path, "only")
    assert default_assignment(tmp_path) == Path("assignments/only")


def test_a_release_folder_is_its_own_default(tmp_path):
    (tmp_path / "assignment.toml").write_text('name = "x"\n')
    assert default_assignment(tmp_path) == Path(".")


def test_several_assignments_without_a_default_are_listed(tmp_path):
    _assignment(tmp_path, "beta")
    _assignment(tmp_path, "alpha")
    with pytest.raises(UserError) as info:
        default_assignment(tmp_path)
    assert "alpha (assignments/alpha), beta (assignments/beta)" in str(info.value)
    assert "[tool.grader] default_assignment" in str(info.value)
    (tmp_path / "pyproject.toml").write_text('[tool.grader]\ndefault_assignment = "assignments/beta"\n')
    assert default_assignment(tmp_path) == Path("assignments/beta")
    (tmp_path / "pyproject.toml").write_text('[tool.grader]\ndefault_assignment = "assignments/gamma"\n')
    with pytest.raises(UserError, match="'assignments/gamma' is not a folder holding assignment.toml"):
        default_assignment(tmp_path)


def test_any_other_folder_defaults_to_the_checkouts_assignment(tmp_path):
    assert default_assignment(tmp_path) == PROJECT_ROOT / "assignments" / "unet_urothelial"


def test_no_assignment_anywhere_says_what_to_pass(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("grader.cli.common.PROJECT_ROOT", tmp_path / "installed")  # a wheel: no checkout around it
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.py").write_text("x = 1\n")
    assert main(["grade", "s.py"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("grader: error: no assignment here") and "--assignment" in err and "Traceback" not in err


def test_assign_by_name_and_an_unknown_name_lists_the_known_ones(tmp_path, monkeypatch, capsys):
    _assignment(tmp_path, "mine")
    monkeypatch.chdir(tmp_path)
    assert named_assignment("mine") == Path("assignments/mine")
    assert named_assignment(str(tmp_path / "assignments" / "mine")) == tmp_path / "assignments" / "mine"
    assert set(known_assignments()) >= {"mine", "unet_urothelial"}  # this folder's, then the checkout's
    assert main(["assign", "nosuch", "--out", str(tmp_path / "release")]) == 2
    err = capsys.readouterr().err
    assert "nosuch: not an assignment folder and no assignment has that name" in err
    assert "mine (assignments/mine)" in err and "unet_urothelial (" in err
    assert main(["assign", "mine", "--assignment", "assignments/mine", "--out", str(tmp_path / "r")]) == 2
    assert "either as NAME or with --assignment" in capsys.readouterr().err
    assert not (tmp_path / "release").exists() and not (tmp_path / "r").exists()


def test_every_user_facing_error_is_a_user_error():
    from grader.assignments import AssignmentError
    from grader.batch import BatchInputError, ExecutorError
    from grader.batch.git import GitSourceError
    from grader.gradebook import GradebookVersionError, ManualGradesError
    from grader.sandbox import SandboxUnavailable
    from grader.scoring.results import ResultsVersionError
    from grader.suites.base import SuiteError

    for error in (AssignmentError, BatchInputError, ExecutorError, GitSourceError, GradebookVersionError,
                  ManualGradesError, SandboxUnavailable, ResultsVersionError, SuiteError):
        assert issubclass(error, UserError), error


def test_a_user_error_is_one_line_and_a_bug_shows_its_traceback(tmp_path, monkeypatch, capsys):
    from grader.cli import grading

    (tmp_path / "s.py").write_text("x = 1\n")

    def mistake(args):
        raise UserError("the fix is to do X")

    monkeypatch.setattr(grading, "_grade", mistake)  # the parser binds the command when main builds it
    argv = ["grade", str(tmp_path / "s.py"), "--assignment", str(PROJECT_ROOT / "assignments" / "unet_urothelial")]
    assert main(argv) == 2 and capsys.readouterr().err == "grader: error: the fix is to do X\n"

    def bug(args):
        raise KeyError("not a user's mistake")

    monkeypatch.setattr(grading, "_grade", bug)
    with pytest.raises(KeyError):
        main(argv)

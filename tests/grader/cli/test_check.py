"""`grader check`: a student's self-check with the public tests only."""

import json

from grader.cli import main
from tests.fixtures.submissions import package_reference


def test_the_untouched_release_fails_every_public_test_cleanly_and_exits_1(assignment, release, tmp_path, capsys):
    code = main(["check", str(release / assignment.notebook), "--out", str(tmp_path / "check")])
    out = capsys.readouterr()
    assert code == 1 and "Traceback" not in out.out + out.err
    results = json.loads((tmp_path / "check" / "results.json").read_text())
    assert results["tests"] and all(t["status"] == "failed" for t in results["tests"])
    assert all(t["visibility"] == "visible" for t in results["tests"])  # public tests only
    assert not any(t["tags"] == ["heldout"] for t in results["tests"])
    assert "FAIL" in out.out and "NotImplementedError" in out.out and "Hint:" in out.out
    assert f"0 of {len(results['tests'])} tests passed" in out.out
    assert (tmp_path / "check" / "report.html").is_file()


def test_the_reference_solution_passes_every_public_test_and_exits_0(release, tmp_path, capsys, monkeypatch):
    from grader.assignments.release import CHECK_FOLDER

    submission = package_reference(tmp_path / "reference")  # no model.pt: the public tests do not need one
    monkeypatch.chdir(tmp_path)
    code = main(["check", str(submission), "--assignment", str(release)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "FAIL" not in out and "tests passed" in out
    assert (tmp_path / CHECK_FOLDER / "report.html").is_file()  # where the student README says it is


def test_one_part_without_bubblewrap_says_so_plainly(release, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("grader.sandbox.probe", lambda: "bwrap is not installed")
    (tmp_path / "mine.py").write_text("def pixel_accuracy(pred, target):\n    return float((pred == target).mean())\n")
    code = main(["check", str(tmp_path / "mine.py"), "--assignment", str(release), "--part", "metrics",
                 "--out", str(tmp_path / "check")])
    out = capsys.readouterr()
    assert code == 1
    assert "bubblewrap is not available (bwrap is not installed)" in out.err and "plain subprocess" in out.err
    results = json.loads((tmp_path / "check" / "results.json").read_text())
    assert {t["tags"][0] for t in results["tests"]} == {"metrics"}
    assert any(t["status"] == "passed" for t in results["tests"])  # pixel_accuracy is right


def test_check_finds_the_assignment_beside_the_submission_and_names_a_bad_path(tmp_path, capsys):
    assert main(["check", str(tmp_path / "nope.ipynb")]) == 2
    assert "no such file or folder" in capsys.readouterr().err

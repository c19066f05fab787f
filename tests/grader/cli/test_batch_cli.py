"""`grader batch` and `grader gradebook` from the command line."""

import csv

from grader.cli import main
from tests.fixtures.mini import module, write_class


def batch(folder, out, assignment, *extra):
    return main(["batch", str(folder), "--assignment", str(assignment), "--out", str(out), "--no-progress",
                 "--allow-unsandboxed", *extra])


def test_batch_then_regrade_then_diff_and_history(mini_assignment, tmp_path, capsys):
    write_class(tmp_path / "class", 3)
    assert batch(tmp_path / "class", tmp_path / "out", mini_assignment, "--workers", "2") == 0
    assert "graded 3, already graded and unchanged 0" in capsys.readouterr().out
    (tmp_path / "class" / "student01.py").write_text(module(0))
    assert batch(tmp_path / "class", tmp_path / "out", mini_assignment) == 0
    assert "graded 1, already graded and unchanged 2" in capsys.readouterr().out
    assert main(["gradebook", "diff", "--out", str(tmp_path / "out"), "--assignment", str(mini_assignment)]) == 0
    out = capsys.readouterr().out
    assert "student01: 4 -> 5 / 5" in out and "the submission changed" in out and "arithmetic.scale: 0 failed -> 1 passed" in out
    assert main(["gradebook", "history", "student01", "--out", str(tmp_path / "out")]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 2


def test_hand_grades_from_the_rubric_csv_reach_the_exports(mini_assignment, tmp_path, capsys):
    write_class(tmp_path / "class", 2)
    batch(tmp_path / "class", tmp_path / "out", mini_assignment)
    args = ["--out", str(tmp_path / "out"), "--assignment", str(mini_assignment)]
    assert main(["gradebook", "rubric", *args]) == 0
    rubric = tmp_path / "out" / "rubric.csv"
    rows = list(csv.reader(rubric.open()))
    rows[1][2], rows[1][3] = "1.5", "Names two failure modes."
    with rubric.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    assert main(["gradebook", "manual", str(rubric), *args]) == 0
    table = list(csv.DictReader((tmp_path / "out" / "gradebook.csv").open()))
    assert table[0]["rubric.explanation"] == "1.5" and table[0]["total"] == "6.5"
    assert list(csv.reader((tmp_path / "out" / "canvas.csv").open()))[2][-1] == "6.5"


def test_batch_errors_are_one_line(mini_assignment, tmp_path, capsys):
    assert batch(tmp_path / "nowhere", tmp_path / "out", mini_assignment) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert main(["batch", "--from-git", str(tmp_path / "list.txt")]) == 2
    assert "--deadline" in capsys.readouterr().err
    assert main(["gradebook", "diff", "--out", str(tmp_path / "none")]) == 2
    assert "no gradebook here" in capsys.readouterr().err
    assert batch(tmp_path, tmp_path / "out", mini_assignment, "--workers", "0") == 2

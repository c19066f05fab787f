import csv

import pytest

from grader.assignments import load_assignment
from grader.gradebook import ManualGradesError, ManualScore, read_manual_scores, write_rubric_template
from tests.grader.gradebook.test_store import run


def test_the_template_round_trips_and_keeps_entered_scores(mini_assignment, tmp_path):
    assignment = load_assignment(mini_assignment)
    entered = {"ada": {"explanation": ManualScore("ada", "explanation", 1, "clear")}}
    path = write_rubric_template(tmp_path / "rubric.csv", assignment, [run("ada", 2), run("alan", 0)], entered)
    lines = path.read_text().splitlines()
    assert lines[0] == "student,name,explanation (max 2),comment"
    assert lines[1] == "ada,Ada,1,clear" and lines[2] == "alan,Alan,,"
    scores = read_manual_scores(path, assignment, {"ada", "alan"})
    assert scores == [ManualScore("ada", "explanation", 1.0, "clear", "rubric.csv")]


@pytest.mark.parametrize("text, message", [
    ("student,explanation\nada,3\n", "outside 0..2"),
    ("student,explanation\nada,good\n", "not a number"),
    ("student,explanation\nnobody,1\n", "line 2: no graded submission"),
    ("student,style\nada,1\n", "'style' is not a rubric item"),
    ("", "no rows"),
])
def test_bad_rubric_csvs_name_the_line_and_column(mini_assignment, tmp_path, text, message):
    (tmp_path / "r.csv").write_text(text)
    with pytest.raises(ManualGradesError, match=message):
        read_manual_scores(tmp_path / "r.csv", load_assignment(mini_assignment), {"ada"})


def test_a_student_named_like_a_formula_stays_text_and_still_reads_back(mini_assignment, tmp_path):
    # A folder (or an LMS profile name) such as =HYPERLINK(...) would run in the instructor's spreadsheet.
    assignment = load_assignment(mini_assignment)
    student = '=HYPERLINK("https:"&CHAR(47)&CHAR(47)&"evil.example","open")'
    path = write_rubric_template(tmp_path / "rubric.csv", assignment, [run(student, 2)], {})
    cells = next(csv.reader(path.read_text().splitlines()[1:]))
    assert cells[0] == "'" + student and cells[1].startswith("'=Hyperlink(")  # the student and name columns
    path.write_text(path.read_text().replace(",,", ",1,", 1))  # the instructor enters a score
    assert read_manual_scores(path, assignment, {student}) == [
        ManualScore(student, "explanation", 1.0, "", "rubric.csv")]

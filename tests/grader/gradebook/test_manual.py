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

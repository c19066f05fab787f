import pytest

from grader.execution import CallOutcome, StudentException, call
from grader.suites import Answers, Failure, Test, load_suite
from grader.suites.base import SuiteError


def test_answers_turn_failed_calls_into_student_messages():
    answers = Answers({"a": CallOutcome("a", "timeout", reason="did not finish within 5 s"),
                       "b": CallOutcome("b", "error", error=StudentException("NameError", "name 'f' is not defined"))},
                      load_problem="cell 3 raised ImportError: no module named cv3")
    with pytest.raises(Failure, match="dice_per_class did not finish within 5 s"):
        answers.value("a", "dice_per_class")
    with pytest.raises(Failure, match="note: cell 3 raised ImportError"):
        answers.value("b", "f")


def test_visibility_is_validated():
    with pytest.raises(SuiteError, match="visibility 'secret'"):
        Test("x.y", "n", 1, "loss", (), lambda a: None, visibility="secret")


def _suite_file(folder, tag):
    (folder / "test_speed.py").write_text(
        "from grader.suites import register\nfrom grader.execution import call\nTESTS = []\n"
        f"@register(TESTS, id='speed.fast', name='n', points=1, tag={tag!r}, calls=[call('c', 'f')])\n"
        "def one(a): pass\n")


def test_a_tag_must_be_one_of_the_assignments_parts(tmp_path):
    from grader.assignments.config import Assignment, Part

    _suite_file(tmp_path, "speed")
    assignment = Assignment(tmp_path, name="x", parts=(Part("data"), Part("loss")))
    with pytest.raises(SuiteError) as info:
        load_suite(tmp_path, assignment)
    message = str(info.value)
    assert "test_speed.py" in message and "test speed.fast has tag 'speed'" in message
    assert "valid tags: data, loss" in message and "assignment.toml" in message
    assert [t.id for t in load_suite(tmp_path, Assignment(tmp_path, name="x", parts=(Part("speed"),)))] == ["speed.fast"]


def test_an_assignment_without_parts_accepts_no_tag(tmp_path):
    from grader.assignments.config import Assignment

    _suite_file(tmp_path, "speed")
    with pytest.raises(SuiteError, match="it declares no \\[\\[parts\\]\\]"):
        load_suite(tmp_path, Assignment(tmp_path, name="x"))


def test_duplicate_ids_in_a_suite_are_refused(tmp_path):
    text = ("from grader.suites import register\nfrom grader.execution import call\nTESTS = []\n"
            "@register(TESTS, id='metrics.same', name='n', points=1, tag='metrics', calls=[call('c', 'f')])\n"
            "def one(a): pass\n")
    (tmp_path / "test_a.py").write_text(text)
    (tmp_path / "test_b.py").write_text(text.replace("call('c'", "call('d'"))
    with pytest.raises(SuiteError, match="test id metrics.same is used twice"):
        load_suite(tmp_path)


def test_call_ids_are_checked():
    with pytest.raises(ValueError, match="call id"):
        call("_load_events", "f")

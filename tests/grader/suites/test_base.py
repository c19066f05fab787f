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


def test_tags_and_visibility_are_validated():
    with pytest.raises(SuiteError, match="tag 'speed' is not one of data, architecture"):
        Test("x.y", "n", 1, "speed", (), lambda a: None)
    with pytest.raises(SuiteError, match="visibility 'secret'"):
        Test("x.y", "n", 1, "loss", (), lambda a: None, visibility="secret")


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

"""Optional parts: their tests' points make up points lost elsewhere, the total staying within the
maximum of the other parts, through results.json and back."""

from grader.scoring import from_gradescope, to_gradescope
from grader.scoring.results import GradeResult, TestResult


def _result(*tests):
    return GradeResult(tuple(tests), 1.0, "", "plain")


def _test(number, score, max_score, bonus=False):
    return TestResult(number, number, score, max_score, "passed" if score == max_score else "failed", "", "visible",
                      (number.split(".")[0],), bonus=bonus)


def test_bonus_points_make_up_lost_points_within_the_maximum():
    result = _result(_test("core.a", 2, 4), _test("core.b", 4, 4), _test("variant.attention", 3, 3, bonus=True))
    assert result.max_score == 8
    assert result.score == 8  # 6 earned + 3 bonus, capped at the maximum
    assert _result(_test("core.a", 1, 4), _test("variant.attention", 3, 3, bonus=True)).score == 4
    assert _result(_test("core.a", 1, 4), _test("variant.attention", 0, 3, bonus=True)).score == 1


def test_the_bonus_mark_survives_results_json():
    result = _result(_test("core.a", 2, 4), _test("variant.attention", 3, 3, bonus=True))
    data = to_gradescope(result)
    assert [t.get("bonus", False) for t in data["tests"]] == [False, True]
    assert (data["score"], data["max_score"]) == (4, 4)
    back = from_gradescope(data)
    assert [t.bonus for t in back.tests] == [False, True] and back.score == result.score

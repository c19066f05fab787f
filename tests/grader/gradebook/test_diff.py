from grader.gradebook import Gradebook, diff_gradebook, format_diff
from tests.grader.gradebook.test_store import run


def test_diff_shows_the_changed_tests_and_why(tmp_path):
    with Gradebook(tmp_path / "g.sqlite") as book:
        book.record(run("ada", 0))
        book.record(run("alan", 2))
        book.record(run("ada", 2, digest="h2"))
        diffs = diff_gradebook(book)
    assert [d.student for d in diffs] == ["ada"]
    diff = diffs[0]
    assert [(c.test_id, c.old_score, c.new_score) for c in diff.changes] == [("arithmetic.add", 0, 2)]
    assert diff.causes == ["the submission changed"]
    text = format_diff(diff)
    assert "ada: 1 -> 3 / 3" in text and "arithmetic.add: 0 failed -> 2 passed" in text

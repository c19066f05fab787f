from tests.grader.reports.test_report import Page


def test_the_summary_lists_every_test_hardest_first_with_failures_and_problems(graded_batch):
    page = Page((graded_batch / "summary.html").read_text())
    text = page.plain
    for test_id in ("metrics.add", "metrics.scale", "heldout.add_large"):
        assert test_id in text
    assert text.index("metrics.scale") < text.index("metrics.add")  # 2 of 6 pass scale, 4 of 6 pass add
    assert "2 metrics.scale scale(2, 3) returned 7; expected 6" in text  # the message, counted once per submission
    problems = text.split("Crashed, timed out, or not graded")[1].split("Every submission")[0]
    assert "crash" in problems and "crashed" in problems and "RuntimeError: boom" in problems
    assert "empty" in problems and "not graded" in problems and "no .ipynb notebook" in problems
    for student in ("ada", "alan", "grace", "linus", "crash", "empty"):
        assert f"{student}/report.html" in page.links
        assert (graded_batch / student / "report.html").is_file()
    assert "<svg" in (graded_batch / "summary.html").read_text() and page.scripts == 0


def test_the_markdown_summary_has_the_same_tables(graded_batch):
    text = (graded_batch / "summary.md").read_text()
    assert "| `metrics.scale` | 2 / 6 (33%) |" in text
    assert "- **crash**: crashed." in text and "- **empty**: not graded." in text
    assert "| 2 | `metrics.scale` | scale(2, 3) returned 7; expected 6 |" in text

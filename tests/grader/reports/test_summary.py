import re

from grader.assignments import load_assignment
from grader.gradebook import GRADEBOOK_FILE, Gradebook
from grader.reports import render_report
from grader.reports.markdown import md_cell
from grader.scoring.extras import MAX_HISTORY_SERIES
from tests.grader.reports.test_report import Page


def test_the_summary_lists_every_test_hardest_first_with_failures_and_problems(graded_batch):
    page = Page((graded_batch / "summary.html").read_text())
    text = page.plain
    for test_id in ("arithmetic.add", "arithmetic.scale", "large_numbers.add"):
        assert test_id in text
    assert text.index("arithmetic.scale") < text.index("arithmetic.add")  # 2 of 6 pass scale, 4 of 6 pass add
    assert "2 arithmetic.scale scale(2, 3) returned 7; expected 6" in text  # the message, counted once per submission
    problems = text.split("Crashed, timed out, or not graded")[1].split("Every submission")[0]
    assert "crash" in problems and "crashed" in problems and "RuntimeError: boom" in problems
    assert "empty" in problems and "not graded" in problems and "no .ipynb notebook" in problems
    for student in ("ada", "alan", "grace", "linus", "crash", "empty"):
        assert f"{student}/report.html" in page.links
        assert (graded_batch / student / "report.html").is_file()
    assert "<svg" in (graded_batch / "summary.html").read_text() and page.scripts == 0


def test_the_markdown_summary_has_the_same_tables(graded_batch):
    text = (graded_batch / "summary.md").read_text()
    assert "| `arithmetic.scale` | 2 / 6 (33%) |" in text
    assert "- **crash**: crashed." in text and "- **empty**: not graded." in text
    assert "| 2 | `arithmetic.scale` | scale(2, 3) returned 7; expected 6 |" in text


UNESCAPED_MARKUP = re.compile(r"<|(?<!\\)[\[\]`*_~]|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def student_text(markdown: str) -> list[str]:
    """The parts of a Markdown summary or report that quote a submission: message cells, problem details."""
    cells = [line.rsplit("|", 2)[-2] for line in markdown.splitlines() if line.startswith("| ") and "`" in line]
    details = [line.split(". ", 1)[1] for line in markdown.splitlines() if line.startswith("- **")]
    return [text for text in cells + details if text.strip()]


def test_the_markdown_summary_shows_markup_in_messages_as_text(hostile_batch):
    # The red team's report_injection: summary.md carried raw <script>, <img onerror> and a remote image.
    text = (hostile_batch / "summary.md").read_text()
    quoted = [cell for cell in student_text(text) if "attacker" in cell]
    assert quoted, text
    for cell in quoted:
        assert not UNESCAPED_MARKUP.search(cell.replace("\\|", "")), cell
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;!\\[t\\](https://attacker" in text
    assert "\\*\\*bold\\*\\* \\`code\\` bad\\[31m value ? end" in text  # controls left out, one cell still
    assert md_cell("a_b *c* [d](e) <f> & | g\x1b\u202e") == "a\\_b \\*c\\* \\[d\\](e) &lt;f&gt; &amp; \\| g"


def test_the_markdown_report_shows_markup_in_messages_as_text(hostile_batch, mini_assignment):
    with Gradebook(hostile_batch / GRADEBOOK_FILE) as book:
        result = book.latest("markup").result
    text = render_report(result, load_assignment(mini_assignment), markdown=True)
    quoted = [cell for cell in student_text(text) if "attacker" in cell]
    assert quoted and not any(UNESCAPED_MARKUP.search(cell.replace("\\|", "")) for cell in quoted)
    assert "<" not in text


def test_the_html_summary_and_reports_keep_markup_as_text(hostile_batch):
    for path in (hostile_batch / "summary.html", hostile_batch / "markup" / "report.html"):
        html = path.read_text()
        page = Page(html)
        assert page.scripts == 0 and not page.images, path
        assert "<svg onload" not in html and "<img src=x" not in html and "&lt;script&gt;alert(" in html
    assert "alert(5)" in Page((hostile_batch / "markup" / "report.html").read_text()).plain  # shown, as text


def test_a_history_of_290000_columns_makes_a_small_report_that_says_what_was_left_out(hostile_batch):
    # The red team's wide_history: every column became a series, and report.html grew to 54 MB.
    report = hostile_batch / "wide" / "report.html"
    page = Page(report.read_text())
    assert report.stat().st_size < 100_000
    assert f"only its first {MAX_HISTORY_SERIES} numeric columns are drawn (it has 290000 columns)" in page.plain
    assert page.plain.count("(last 0)") == MAX_HISTORY_SERIES

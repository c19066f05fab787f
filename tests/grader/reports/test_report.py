from datetime import datetime, timezone
from html.parser import HTMLParser

import pytest

from grader.assignments import load_assignment
from grader.gradebook import Identity
from grader.reports import render_report
from grader.scoring import GradingPlan, grade

AFTER_RELEASE = datetime(2031, 1, 1, tzinfo=timezone.utc)
BEFORE_RELEASE = datetime(2026, 1, 1, tzinfo=timezone.utc)


class Page(HTMLParser):
    """What a rendered page holds: images (src, alt), element ids, and its text."""

    def __init__(self, html: str):
        super().__init__()
        self.images, self.ids, self.text, self.scripts, self.links = [], set(), [], 0, []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append((attrs.get("src", ""), attrs.get("alt", "")))
        if tag == "script":
            self.scripts += 1
        if tag in ("link", "a") and attrs.get("href"):
            self.links.append(attrs["href"])
        if "id" in attrs:
            self.ids.add(attrs["id"])

    def handle_data(self, data):
        self.text.append(data)

    @property
    def plain(self) -> str:
        return " ".join(" ".join(self.text).split())


@pytest.fixture(scope="module")
def default_assignment(assignment):
    return assignment


@pytest.mark.slow
def test_the_report_of_a_real_grading_lists_every_test_and_shows_the_heldout_samples(graded_reference,
                                                                                       default_assignment):
    _, result = graded_reference
    html = render_report(result, default_assignment, Identity("ada", "Ada Lovelace"), now=AFTER_RELEASE)
    page = Page(html)
    for t in result.tests:
        assert f"test-{t.number}" in page.ids and t.name.split(":")[0] in page.plain
    assert "Ada Lovelace" in page.plain and f"{result.score:g} / {result.max_score:g}" in page.plain
    samples = [alt for src, alt in page.images if alt.startswith(("Held-out image", "Error map"))]
    assert len(samples) == 2 * default_assignment.heldout.count
    assert all(src.startswith("data:image/png;base64,") and alt for src, alt in page.images)
    assert any("overlay()" in alt for _, alt in page.images)
    cytoplasm = f"{default_assignment.heldout.reference_class_dice[1]:.3f}"
    assert "Reference Dice" in page.plain and cytoplasm in page.plain  # the reference's cytoplasm Dice
    assert "Your training curves" in page.plain and "val_dice_fg" in page.plain
    assert page.plain.count("per epoch, from history.csv") == 2  # losses and scores, each on its own scale
    assert "merges touching nuclei" in page.plain and "failure_modes" in page.plain
    assert page.scripts == 0 and "&lt;script&gt;" in html  # the student's text is escaped, never run
    assert not [link for link in page.links if not link.startswith("#")]  # nothing fetched from elsewhere


@pytest.mark.slow
def test_before_the_release_date_hidden_tests_show_only_their_name_and_points(graded_reference, default_assignment):
    _, result = graded_reference
    page = Page(render_report(result, default_assignment, now=BEFORE_RELEASE))
    hidden = [t for t in result.tests if t.visibility != "visible"]
    assert hidden
    for t in hidden:
        message = t.output.split(" (")[0]
        assert t.name in page.plain and (not message or message not in page.plain)
    assert not [alt for _, alt in page.images if alt.startswith("Held-out image")]
    assert "Reference Dice" not in page.plain
    visible_points = sum(t.max_score for t in result.tests if t.visibility == "visible")
    assert f"{visible_points:g} / {visible_points:g} points" in page.plain  # the total gives nothing away
    assert f"{result.max_score:g}" not in page.plain.split("Score by part")[0]


def test_a_crashed_submission_gets_a_report_that_says_so(mini_assignment, tmp_path):
    (tmp_path / "crash.py").write_text("raise RuntimeError('boom')\n")
    result = grade(GradingPlan(mini_assignment, allow_unsandboxed=True), tmp_path / "crash.py")
    page = Page(render_report(result, load_assignment(mini_assignment), now=AFTER_RELEASE))
    assert "crashed while it was being graded" in page.plain and "RuntimeError: boom" in page.plain
    assert all(f"test-{t.number}" in page.ids for t in result.tests)


def test_the_markdown_report_has_a_row_per_test(mini_assignment, tmp_path):
    (tmp_path / "s.py").write_text("def add(a, b):\n    return a + b\n")
    result = grade(GradingPlan(mini_assignment, hidden=False, allow_unsandboxed=True), tmp_path / "s.py")
    text = render_report(result, load_assignment(mini_assignment), markdown=True)
    assert "| `arithmetic.add` | ✅ passed | 2 / 2 |" in text
    assert "| `arithmetic.scale` | ❌ failed | 0 / 1 |" in text and "NameError" in text

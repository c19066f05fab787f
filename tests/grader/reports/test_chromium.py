"""The report and the summary in a real browser: every image loads, nothing is logged, nothing is
fetched. Screenshots made here (with GRADER_SCREENSHOTS=folder) are the ones in docs/."""

import os
from dataclasses import replace
from pathlib import Path

import pytest

from grader.reports import write_report
from tests.grader.reports.chromium import find_chromium, open_page
from tests.grader.reports.test_report import AFTER_RELEASE

pytestmark = pytest.mark.skipif(find_chromium() is None, reason="chromium is not installed (apt-get install chromium)")


def check(path: Path, name: str) -> None:
    page = open_page(path)
    assert page.images or name == "summary"
    broken = [image["alt"] for image in page.images if not image["ok"]]
    assert broken == [], f"images that did not load: {broken}"
    assert page.console == [], f"the browser logged: {page.console}"
    assert page.requests == [], f"the page fetched: {page.requests}"
    assert page.screenshot.startswith(b"\x89PNG")
    folder = os.environ.get("GRADER_SCREENSHOTS")
    if folder:
        Path(folder, f"{name}.png").write_bytes(page.screenshot)


@pytest.mark.slow
def test_a_report_opens_in_chromium_with_every_image_and_no_console_message(graded_reference, assignment,
                                                                             tmp_path):
    _, result = graded_reference
    analysis = result.extras.analysis.split(" <script>")[0]  # the escaping probe is test_report's business
    result = replace(result, extras=replace(result.extras, analysis=analysis))
    path = write_report(tmp_path / "report.html", result, assignment, now=AFTER_RELEASE)
    check(path, "report")


def test_a_summary_opens_in_chromium_with_no_console_message(graded_batch):
    check(graded_batch / "summary.html", "summary")


@pytest.mark.parametrize("page", ["summary.html", "markup/report.html", "wide/report.html"])
def test_hostile_text_in_a_report_runs_nothing_and_fetches_nothing_in_chromium(hostile_batch, page):
    opened = open_page(hostile_batch / page)
    assert opened.console == [] and opened.requests == [] and opened.images == []

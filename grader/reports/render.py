"""Rendering the Jinja2 templates of `reports/templates` into self-contained files."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import jinja2

from grader.assignments import Assignment
from grader.fileio import write_text_atomic
from grader.gradebook import Identity, Run
from grader.reports.markdown import md_cell
from grader.reports.views import report_view, summary_view
from grader.scoring.results import RESULTS_JSON, GradeResult, write_results

_PACKAGE = Path(__file__).resolve().parent
# An installed wheel holds the templates as package data (pyproject.toml maps reports/templates
# there); a checkout, or an editable install of it, reads reports/templates in place.
TEMPLATE_FOLDERS = tuple(p for p in (_PACKAGE / "templates", _PACKAGE.parent.parent / "reports" / "templates")
                         if (p / "report.html.j2").is_file())
REPORT_HTML, REPORT_MD = "report.html", "report.md"
SUMMARY_HTML, SUMMARY_MD = "summary.html", "summary.md"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATE_FOLDERS[:1]),
                             undefined=jinja2.StrictUndefined,
                             autoescape=lambda name: bool(name) and ".html" in name or name.endswith(".css.j2"),
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["md_cell"] = md_cell
    return env


ENV = _environment()


def render_report(result: GradeResult, assignment: Assignment, identity: Identity | None = None,
                  now: datetime | None = None, markdown: bool = False) -> str:
    template = ENV.get_template("report.md.j2" if markdown else "report.html.j2")
    return template.render(r=report_view(result, assignment, identity, now))


def write_report(path: Path, result: GradeResult, assignment: Assignment, identity: Identity | None = None,
                 now: datetime | None = None) -> Path:
    return write_text_atomic(path, render_report(result, assignment, identity, now))


def write_graded(folder: Path, result: GradeResult, assignment: Assignment, identity: Identity | None = None) -> Path:
    """What every grading leaves in its folder: Gradescope's results.json and report.html (returned)."""
    write_results(Path(folder) / RESULTS_JSON, result)
    return write_report(Path(folder) / REPORT_HTML, result, assignment, identity)


def render_summary(runs: list[Run], assignment: Assignment, errors: dict[str, str] | None = None,
                   markdown: bool = False) -> str:
    template = ENV.get_template("summary.md.j2" if markdown else "summary.html.j2")
    return template.render(s=summary_view(runs, assignment, errors))


def write_summary(out: Path, runs: list[Run], assignment: Assignment, errors: dict[str, str] | None = None) -> list[Path]:
    """`summary.html` and `summary.md` of a batch folder, each written atomically."""
    return [write_text_atomic(Path(out) / SUMMARY_HTML, render_summary(runs, assignment, errors)),
            write_text_atomic(Path(out) / SUMMARY_MD, render_summary(runs, assignment, errors, markdown=True))]

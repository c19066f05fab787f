"""Feedback reports (one per submission) and batch summaries, rendered from the Jinja2 templates in
`reports/templates`: self-contained HTML (inline PNG and SVG, inline CSS) and Markdown.

Public surface: `render_report`, `write_report`, `write_graded`, `render_summary`, `write_summary`, `report_view`,
`summary_view`, `format_table` (terminal), `github_annotations`.
"""

from grader.reports.render import (REPORT_HTML, REPORT_MD, SUMMARY_HTML, SUMMARY_MD, render_report, render_summary,
                                   write_graded, write_report, write_summary)
from grader.reports.github import github_annotations
from grader.reports.terminal import format_table
from grader.reports.views import ReportView, SummaryView, report_view, summary_view

__all__ = ["render_report", "write_report", "write_graded", "render_summary", "write_summary", "report_view", "summary_view",
           "ReportView", "SummaryView", "format_table", "github_annotations", "REPORT_HTML", "REPORT_MD", "SUMMARY_HTML", "SUMMARY_MD"]

"""Student text inside Markdown (summary.md, report.md, GitHub's step summary): shown as the text it
is, never as markup. Markdown passes raw HTML through and renders links and images (which a viewer
then fetches), so both are escaped, and control characters are left out."""

from __future__ import annotations

import re

# C0 and C1 controls, and the bidirectional overrides and isolates that reorder what a reader sees.
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# Each replaced in one pass, so that no escape is escaped again.
MARKUP = {"\\": "\\\\", "&": "&amp;", "<": "&lt;", ">": "&gt;", "`": "\\`", "*": "\\*", "_": "\\_", "[": "\\[",
          "]": "\\]", "~": "\\~", "|": "\\|"}
MARKUP_RE = re.compile("|".join(re.escape(c) for c in MARKUP))


def strip_controls(text: str) -> str:
    """`text` without control characters; tabs and line breaks become spaces."""
    return CONTROL.sub("", re.sub(r"[\t\r\n]", " ", str(text)))


def md_cell(text: str) -> str:
    """Text shown literally on one Markdown line or table cell: whitespace collapsed, HTML (`<`, `>`, `&`)
    and Markdown emphasis, code, link and image syntax and `|` escaped, control characters left out."""
    return MARKUP_RE.sub(lambda m: MARKUP[m.group()], " ".join(strip_controls(text).split()))

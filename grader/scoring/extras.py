"""What a report shows beside the tests, read from the submission as data: its training curves
(`history.csv`) and its failure-analysis text (notebook cells tagged `failure_analysis_answer`)."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

from grader.execution.exceptions import UntrustedOutputError
from grader.execution.readback import read_untrusted

HISTORY_FILE = "history.csv"
ANALYSIS_TAG = "failure_analysis_answer"
ANALYSIS_FILE = "failure_analysis.md"  # for module submissions
MAX_HISTORY_BYTES = 2 * 2 ** 20
MAX_HISTORY_ROWS = 5000
MAX_ANALYSIS_CHARS = 20_000
MAX_NOTEBOOK_BYTES = 64 * 2 ** 20


@dataclass(frozen=True)
class Extras:
    """Training curves (column name to values, per epoch) and the failure analysis, possibly empty."""

    history: tuple[tuple[str, tuple[float, ...]], ...] = ()
    analysis: str = ""

    def to_json(self) -> dict:
        return {"history": {name: list(values) for name, values in self.history}, "analysis": self.analysis}

    @classmethod
    def from_json(cls, data: dict) -> "Extras":
        history = tuple((name, tuple(values)) for name, values in (data.get("history") or {}).items())
        return cls(history, data.get("analysis", ""))


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def parse_history(text: str) -> tuple[tuple[str, tuple[float, ...]], ...]:
    """Numeric columns of a CSV with a header row; non-numeric columns (and cells) are left out."""
    rows = list(csv.reader(io.StringIO(text)))[: MAX_HISTORY_ROWS + 1]
    if len(rows) < 2:
        return ()
    header, body = rows[0], rows[1:]
    columns = []
    for k, name in enumerate(header):
        values = [_number(row[k]) if k < len(row) else None for row in body]
        if name.strip() and values and all(v is not None for v in values):
            columns.append((name.strip()[:40], tuple(values)))
    return tuple(columns)


def _analysis_from_notebook(raw: bytes) -> str:
    try:
        cells = json.loads(raw.decode("utf-8")).get("cells", [])
    except (UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        return ""
    parts = []
    for cell in cells if isinstance(cells, list) else []:
        tags = (cell.get("metadata") or {}).get("tags") or [] if isinstance(cell, dict) else []
        if ANALYSIS_TAG in tags:
            source = cell.get("source", "")
            parts.append("".join(source) if isinstance(source, list) else str(source))
    return "\n\n".join(parts).strip()


def read_extras(folder: Path, entry: str) -> Extras:
    """The extras of a staged submission; anything missing, linked or oversized is simply absent."""
    def read(name: str, cap: int) -> bytes | None:
        try:
            return read_untrusted(Path(folder), name, cap)
        except UntrustedOutputError:
            return None

    history_raw = read(HISTORY_FILE, MAX_HISTORY_BYTES)
    history = parse_history(history_raw.decode("utf-8", "replace")) if history_raw else ()
    if entry.endswith(".ipynb"):
        raw = read(entry, MAX_NOTEBOOK_BYTES)
        analysis = _analysis_from_notebook(raw) if raw else ""
    else:
        raw = read(ANALYSIS_FILE, MAX_ANALYSIS_CHARS * 4)
        analysis = raw.decode("utf-8", "replace") if raw else ""
    return Extras(history, analysis[:MAX_ANALYSIS_CHARS])

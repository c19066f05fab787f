"""What a report shows beside the tests, read from the submission as data: its training curves
(`history.csv`) and its written answer (notebook cells with the assignment's answer tag, or a file),
as `[submission]` in assignment.toml names them."""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path

from grader.execution.exceptions import UntrustedOutputError
from grader.execution.readback import read_untrusted
from grader.execution.staging import MAX_NOTEBOOK_BYTES

from grader.assignments.config import SubmissionFiles

MAX_HISTORY_BYTES = 2 * 2 ** 20
MAX_HISTORY_ROWS = 5000
MAX_HISTORY_SERIES = 12  # numeric columns kept besides the epoch: a chart line and a legend entry each
MAX_HISTORY_POINTS = 500  # per column; longer histories are thinned evenly, first and last epoch kept
EPOCH_COLUMN = "epoch"  # the x axis of the curves, when history.csv has it
MAX_ANALYSIS_CHARS = 20_000


@dataclass(frozen=True)
class Extras:
    """Training curves (column name to values, per epoch) and the failure analysis, possibly empty;
    `history_note` says what of history.csv was left out, when something was."""

    history: tuple[tuple[str, tuple[float, ...]], ...] = ()
    analysis: str = ""
    history_note: str = ""

    def to_json(self) -> dict:
        return {"history": {name: list(values) for name, values in self.history}, "analysis": self.analysis,
                "history_note": self.history_note}

    @classmethod
    def from_json(cls, data: dict) -> "Extras":
        history = tuple((name, tuple(values)) for name, values in (data.get("history") or {}).items())
        return cls(history, data.get("analysis", ""), data.get("history_note", ""))


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _thinned(count: int) -> list[int]:
    """At most MAX_HISTORY_POINTS row indices out of `count`, evenly spaced, the first and last included."""
    if count <= MAX_HISTORY_POINTS:
        return list(range(count))
    return sorted({round(k * (count - 1) / (MAX_HISTORY_POINTS - 1)) for k in range(MAX_HISTORY_POINTS)})


def parse_history(text: str) -> tuple[tuple[tuple[str, tuple[float, ...]], ...], str]:
    """Numeric columns of a CSV with a header row (non-numeric columns are left out), and a note of
    what else was left out: columns past the epoch and MAX_HISTORY_SERIES others, rows past
    MAX_HISTORY_ROWS, and points past MAX_HISTORY_POINTS (the rows are thinned evenly)."""
    try:
        rows = list(itertools.islice(csv.reader(io.StringIO(text)), MAX_HISTORY_ROWS + 2))
    except csv.Error:  # a field longer than the csv module allows
        return (), "history.csv could not be read as a CSV file, so no curves are drawn."
    if len(rows) < 2:
        return (), ""
    header, body = rows[0], rows[1:MAX_HISTORY_ROWS + 1]
    names = [name.strip()[:40] for name in header]

    def numeric(k: int) -> list[float] | None:
        values = [_number(row[k]) if k < len(row) else None for row in body]
        return values if names[k] and values and all(v is not None for v in values) else None

    epoch = next((k for k, name in enumerate(names) if name == EPOCH_COLUMN), None)
    epoch_values = numeric(epoch) if epoch is not None else None
    others: list[tuple[str, list[float]]] = []
    more = False  # numeric columns past MAX_HISTORY_SERIES: the scan stops at the first
    for k, name in enumerate(names):
        if name == EPOCH_COLUMN or (values := numeric(k)) is None:
            continue
        if len(others) == MAX_HISTORY_SERIES:
            more = True
            break
        others.append((name, values))
    kept = ([(EPOCH_COLUMN, epoch_values)] if epoch_values else []) + others
    picks = _thinned(len(body))
    notes = []
    if more:
        notes.append(f"only its first {MAX_HISTORY_SERIES} numeric columns are drawn (it has {len(header)} columns)")
    if len(rows) > MAX_HISTORY_ROWS + 1:
        notes.append(f"only its first {MAX_HISTORY_ROWS} rows are read")
    if len(picks) < len(body):
        notes.append(f"{len(picks)} of the {len(body)} rows read are drawn, evenly spaced")
    note = f"history.csv is larger than a report shows: {'; '.join(notes)}." if notes else ""
    return tuple((name, tuple(values[i] for i in picks)) for name, values in kept), note


def _analysis_from_notebook(raw: bytes, tag: str) -> str:
    try:
        cells = json.loads(raw.decode("utf-8")).get("cells", [])
    except (UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        return ""
    parts = []
    for cell in cells if isinstance(cells, list) else []:
        tags = (cell.get("metadata") or {}).get("tags") or [] if isinstance(cell, dict) else []
        if tag in tags:
            source = cell.get("source", "")
            parts.append("".join(source) if isinstance(source, list) else str(source))
    return "\n\n".join(parts).strip()


def read_extras(folder: Path, entry: str, files: SubmissionFiles = SubmissionFiles()) -> Extras:
    """The extras of a staged submission; anything missing, linked or oversized is simply absent."""
    def read(name: str, cap: int) -> bytes | None:
        try:
            return read_untrusted(Path(folder), name, cap)
        except UntrustedOutputError:
            return None

    history_raw = read(files.history_file, MAX_HISTORY_BYTES) if files.history_file else None
    history, note = parse_history(history_raw.decode("utf-8", "replace")) if history_raw else ((), "")
    analysis = ""
    if entry.endswith(".ipynb") and files.answer_tag:
        raw = read(entry, MAX_NOTEBOOK_BYTES)
        analysis = _analysis_from_notebook(raw, files.answer_tag) if raw else ""
    if not analysis and files.answer_file:
        raw = read(files.answer_file, MAX_ANALYSIS_CHARS * 4)
        analysis = raw.decode("utf-8", "replace") if raw else ""
    return Extras(history, analysis[:MAX_ANALYSIS_CHARS], note)

"""`gradebook.sqlite`: every grading run, never overwritten. A student's grade is their latest run;
earlier runs stay as history, so a re-grade can be compared with what it replaced."""

from __future__ import annotations

import io
import json
import sqlite3
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from grader.errors import UserError
from grader.scoring.extras import Extras
from grader.scoring.results import GradeResult, from_gradescope, to_gradescope

GRADEBOOK_FILE = "gradebook.sqlite"
# `PRAGMA user_version` of the layout below; bumped (with a migration) whenever it changes. A
# gradebook of version 0 is one made before the version was written: opened if its tables match.
SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    student TEXT NOT NULL,
    display_name TEXT NOT NULL,
    lms_id TEXT NOT NULL,
    submission_path TEXT NOT NULL,
    submission_hash TEXT NOT NULL,
    assignment TEXT NOT NULL,
    assignment_version TEXT NOT NULL,
    assignment_fingerprint TEXT NOT NULL,
    grader_version TEXT NOT NULL,
    selection TEXT NOT NULL,
    graded_at TEXT NOT NULL,
    seconds REAL NOT NULL,
    score REAL NOT NULL,
    max_score REAL NOT NULL,
    problem TEXT NOT NULL,
    results TEXT NOT NULL,
    extras TEXT NOT NULL,
    kept_json TEXT NOT NULL,
    kept_arrays BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_by_student ON runs (student, id);
CREATE TABLE IF NOT EXISTS test_scores (
    run_id INTEGER NOT NULL REFERENCES runs (id),
    test_id TEXT NOT NULL,
    score REAL NOT NULL,
    max_score REAL NOT NULL,
    status TEXT NOT NULL,
    PRIMARY KEY (run_id, test_id)
);
CREATE TABLE IF NOT EXISTS manual_scores (
    id INTEGER PRIMARY KEY,
    student TEXT NOT NULL,
    item TEXT NOT NULL,
    points REAL NOT NULL,
    comment TEXT NOT NULL,
    source TEXT NOT NULL,
    entered_at TEXT NOT NULL
);
"""


class GradebookVersionError(UserError, ValueError):
    """A gradebook file this grader cannot read: another layout, or not SQLite at all."""


def _layout(db: sqlite3.Connection) -> dict[str, list[tuple]]:
    """Each table's columns (name, type, not null, primary key) in a database."""
    names = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    return {name: [(c[1], c[2], c[3], c[5]) for c in db.execute(f"PRAGMA table_info({name})")] for name in names}


def _expected_layout() -> dict[str, list[tuple]]:
    with sqlite3.connect(":memory:") as db:
        db.executescript(SCHEMA)
        return _layout(db)


@dataclass(frozen=True)
class Identity:
    """Who a submission belongs to: a folder-safe key, and what the LMS called them."""

    student: str
    display_name: str = ""
    lms_id: str = ""


@dataclass(frozen=True)
class Run:
    """One grading of one submission, as the gradebook keeps it."""

    identity: Identity
    submission_path: str
    submission_hash: str
    assignment: str
    assignment_version: str
    assignment_fingerprint: str
    grader_version: str
    result: GradeResult
    selection: tuple[str, ...] = ()  # the test ids re-graded, when not all
    graded_at: str = ""
    id: int | None = None

    @property
    def student(self) -> str:
        return self.identity.student


@dataclass(frozen=True)
class ManualScore:
    student: str
    item: str
    points: float
    comment: str = ""
    source: str = ""


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _encode_kept(result: GradeResult) -> tuple[str, bytes]:
    """Kept values as JSON, with arrays moved into one compressed `.npz` (no pickles either way)."""
    arrays: dict[str, np.ndarray] = {}

    def encode(value: Any) -> Any:
        if isinstance(value, np.ndarray):
            key = f"a{len(arrays)}"
            arrays[key] = value
            return {"__array__": key}
        if isinstance(value, (list, tuple)):
            return [encode(v) for v in value]
        if isinstance(value, dict):
            return {str(k): encode(v) for k, v in value.items()}
        if isinstance(value, np.generic):
            return value.item()
        return value

    kept = {t.number: encode(t.kept) for t in result.tests if t.kept}
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return json.dumps(kept), buffer.getvalue()


def _decode_kept(text: str, blob: bytes) -> dict[str, dict]:
    arrays = np.load(io.BytesIO(blob), allow_pickle=False)

    def decode(value: Any) -> Any:
        if isinstance(value, dict) and set(value) == {"__array__"}:
            return arrays[value["__array__"]]
        if isinstance(value, list):
            return [decode(v) for v in value]
        if isinstance(value, dict):
            return {k: decode(v) for k, v in value.items()}
        return value

    return decode(json.loads(text))


class Gradebook:
    """The SQLite gradebook of one batch folder (WAL, synchronous writes: a run is there or not at all)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._create_or_check()
        except sqlite3.DatabaseError as err:
            self._db.close()
            raise GradebookVersionError(f"{self.path}: not a gradebook this grader can open ({err}); point --out at "
                                        "the batch folder that grader batch wrote, or move this file away") from err
        except BaseException:
            self._db.close()
            raise

    def _create_or_check(self) -> None:
        """Create the tables in a new file; check the layout version of an existing one."""
        with self._transaction():
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise GradebookVersionError(
                    f"{self.path}: gradebook layout version {version}, written by a newer grader; this grader reads "
                    f"version {SCHEMA_VERSION}. Use the grader that wrote it (grader_version in its runs), or "
                    "grade into a new --out folder")
            if version == SCHEMA_VERSION:
                return
            found, expected = _layout(self._db), _expected_layout()
            if found and found != expected:
                raise GradebookVersionError(
                    f"{self.path}: gradebook layout version {version} with tables this grader does not know "
                    f"({', '.join(found)}); this grader reads version {SCHEMA_VERSION}. Use the grader that wrote "
                    "it, or grade into a new --out folder")
            for statement in filter(str.strip, SCHEMA.split(";")):
                self._db.execute(statement)
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "Gradebook":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def record(self, run: Run) -> Run:
        """Add a run, with its per-test scores, in one transaction."""
        r = run.result
        kept_json, kept_arrays = _encode_kept(r)
        graded_at = run.graded_at or now_iso()
        with self._transaction():
            cursor = self._db.execute(
                "INSERT INTO runs (student, display_name, lms_id, submission_path, submission_hash, assignment, "
                "assignment_version, assignment_fingerprint, grader_version, selection, graded_at, seconds, score, "
                "max_score, problem, results, extras, kept_json, kept_arrays) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run.student, run.identity.display_name, run.identity.lms_id, run.submission_path,
                 run.submission_hash, run.assignment, run.assignment_version, run.assignment_fingerprint,
                 run.grader_version, json.dumps(list(run.selection)), graded_at, r.execution_time, r.score,
                 r.max_score, r.problem, json.dumps(to_gradescope(r)), json.dumps(r.extras.to_json()), kept_json,
                 kept_arrays))
            run_id = cursor.lastrowid
            self._db.executemany(
                "INSERT INTO test_scores (run_id, test_id, score, max_score, status) VALUES (?, ?, ?, ?, ?)",
                [(run_id, t.number, t.score, t.max_score, t.status) for t in r.tests])
        return replace(run, id=run_id, graded_at=graded_at)

    def _transaction(self):
        db = self._db

        class _Tx:
            def __enter__(self):
                db.execute("BEGIN IMMEDIATE")

            def __exit__(self, kind, *rest):
                db.execute("ROLLBACK" if kind else "COMMIT")

        return _Tx()

    def _runs(self, where: str = "", params: tuple = ()) -> Iterator[Run]:
        for row in self._db.execute(f"SELECT * FROM runs {where}", params):
            kept = _decode_kept(row["kept_json"], row["kept_arrays"])
            result = from_gradescope(json.loads(row["results"]), Extras.from_json(json.loads(row["extras"])), kept)
            yield Run(Identity(row["student"], row["display_name"], row["lms_id"]), row["submission_path"],
                      row["submission_hash"], row["assignment"], row["assignment_version"],
                      row["assignment_fingerprint"], row["grader_version"], result,
                      tuple(json.loads(row["selection"])), row["graded_at"], row["id"])

    def latest(self, student: str) -> Run | None:
        return next(self._runs("WHERE student = ? ORDER BY id DESC LIMIT 1", (student,)), None)

    def current_runs(self) -> list[Run]:
        """Every student's latest run, by student key."""
        return list(self._runs("WHERE id IN (SELECT MAX(id) FROM runs GROUP BY student) ORDER BY student"))

    def history(self, student: str) -> list[Run]:
        """All of a student's runs, oldest first."""
        return list(self._runs("WHERE student = ? ORDER BY id", (student,)))

    def run_counts(self) -> dict[str, int]:
        return {row[0]: row[1] for row in self._db.execute("SELECT student, COUNT(*) FROM runs GROUP BY student")}

    def record_manual(self, scores: list[ManualScore]) -> None:
        """Add hand-graded rubric scores; the latest entry per student and item counts."""
        with self._transaction():
            self._db.executemany(
                "INSERT INTO manual_scores (student, item, points, comment, source, entered_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(s.student, s.item, s.points, s.comment, s.source, now_iso()) for s in scores])

    def manual_scores(self) -> dict[str, dict[str, ManualScore]]:
        """student -> item -> the latest score entered for it."""
        latest: dict[str, dict[str, ManualScore]] = {}
        for row in self._db.execute("SELECT * FROM manual_scores ORDER BY id"):
            latest.setdefault(row["student"], {})[row["item"]] = ManualScore(
                row["student"], row["item"], row["points"], row["comment"], row["source"])
        return latest

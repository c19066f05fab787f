import numpy as np
import pytest

from grader.gradebook import Gradebook, GradebookVersionError, Identity, ManualScore, Run
from grader.scoring import Extras, GradeResult, TestResult


def result(score: float, kept=None) -> GradeResult:
    tests = (TestResult("arithmetic.add", "add", score, 2, "passed" if score == 2 else "failed", "msg", "visible",
                        ("arithmetic",), kept or {}),
             TestResult("heldout.x", "x", 1, 1, "passed", "", "after_due_date", ("heldout",)))
    return GradeResult(tests, 1.5, "Graded in: bubblewrap.", "bubblewrap", "", Extras((("epoch", (1.0, 2.0)),), "why"))


def run(student: str, score: float, digest: str = "h1", kept=None) -> Run:
    return Run(Identity(student, student.title(), "42"), f"/subs/{student}", digest, "mini", "1", "fp", "0.1.0",
               result(score, kept))


def test_runs_round_trip_with_kept_arrays_and_extras(tmp_path):
    prediction = np.arange(12, dtype=np.uint8).reshape(3, 4)
    with Gradebook(tmp_path / "g.sqlite") as book:
        stored = book.record(run("ada", 2, kept={"predictions": [prediction], "dice": {"nucleus": 0.5}}))
        assert stored.id == 1 and stored.graded_at
    with Gradebook(tmp_path / "g.sqlite") as book:
        back = book.latest("ada")
    assert back.identity == Identity("ada", "Ada", "42") and back.result == result(2)
    kept = back.result.tests[0].kept
    assert np.array_equal(kept["predictions"][0], prediction) and kept["dice"] == {"nucleus": 0.5}
    assert back.result.extras == Extras((("epoch", (1.0, 2.0)),), "why")


def test_the_latest_run_is_current_and_history_keeps_every_run(tmp_path):
    with Gradebook(tmp_path / "g.sqlite") as book:
        book.record(run("ada", 0))
        book.record(run("alan", 2))
        book.record(run("ada", 2, digest="h2"))
        assert [(r.student, r.result.score) for r in book.current_runs()] == [("ada", 3), ("alan", 3)]
        assert [r.submission_hash for r in book.history("ada")] == ["h1", "h2"]
        assert book.run_counts() == {"ada": 2, "alan": 1}


def test_manual_scores_keep_the_latest_entry_per_item(tmp_path):
    with Gradebook(tmp_path / "g.sqlite") as book:
        book.record_manual([ManualScore("ada", "explanation", 1, "thin"), ManualScore("ada", "remedy", 2)])
        book.record_manual([ManualScore("ada", "explanation", 2, "better")])
        scores = book.manual_scores()["ada"]
    assert scores["explanation"].points == 2 and scores["explanation"].comment == "better"
    assert scores["remedy"].points == 2


def test_the_gradebook_uses_wal(tmp_path):
    with Gradebook(tmp_path / "g.sqlite") as book:
        assert book._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_new_gradebook_records_its_layout_version(tmp_path):
    import sqlite3

    from grader.gradebook.store import SCHEMA_VERSION

    Gradebook(tmp_path / "g.sqlite").close()
    with sqlite3.connect(tmp_path / "g.sqlite") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 1


def test_a_gradebook_made_before_versions_opens_and_gets_the_version(tmp_path):
    import sqlite3

    from grader.gradebook.store import SCHEMA, SCHEMA_VERSION

    with Gradebook(tmp_path / "g.sqlite") as book:
        book.record(run("ada", 2))
    with sqlite3.connect(tmp_path / "g.sqlite") as db:
        db.execute("PRAGMA user_version = 0")  # what the grader wrote before it kept a version
    with Gradebook(tmp_path / "g.sqlite") as book:
        assert book.latest("ada").result.score == 3
    with sqlite3.connect(tmp_path / "g.sqlite") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    with sqlite3.connect(tmp_path / "other.sqlite") as db:
        db.executescript(SCHEMA.replace("kept_arrays BLOB NOT NULL", "kept BLOB NOT NULL"))
    with pytest.raises(GradebookVersionError, match="layout version 0 with tables this grader does not know"):
        Gradebook(tmp_path / "other.sqlite")


def test_a_newer_gradebook_is_refused_with_both_versions(tmp_path):
    import sqlite3

    from grader.gradebook.store import SCHEMA_VERSION

    Gradebook(tmp_path / "g.sqlite").close()
    with sqlite3.connect(tmp_path / "g.sqlite") as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(GradebookVersionError) as info:
        Gradebook(tmp_path / "g.sqlite")
    assert f"layout version {SCHEMA_VERSION + 1}" in str(info.value) and f"reads version {SCHEMA_VERSION}" in str(info.value)


def test_a_file_that_is_not_sqlite_is_a_clear_error(tmp_path):
    (tmp_path / "g.sqlite").write_text("student,score\nada,3\n" * 100)
    with pytest.raises(GradebookVersionError, match="not a gradebook this grader can open"):
        Gradebook(tmp_path / "g.sqlite")

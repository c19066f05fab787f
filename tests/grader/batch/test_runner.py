import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from grader.batch import BatchInputError, BatchOptions, run_batch, runner
from grader.gradebook import GRADEBOOK_FILE, Gradebook
from grader.scoring import GradingPlan
from tests.fixtures.mini import module, write_class
from tests.grader.batch.hostile import hostile_class, nested, remove_hostile_class

QUIET = BatchOptions(progress=False)


def plan(mini_assignment) -> GradingPlan:
    return GradingPlan(mini_assignment, allow_unsandboxed=True)


def grades(out: Path) -> dict[str, dict[str, float]]:
    with Gradebook(out / GRADEBOOK_FILE) as book:
        return {r.student: {t.number: t.score for t in r.result.tests} for r in book.current_runs()}


def test_two_workers_grade_a_batch_of_twenty(mini_assignment, tmp_path):
    expected = write_class(tmp_path / "class", 20)
    report = run_batch(tmp_path / "class", tmp_path / "out", plan(mini_assignment), BatchOptions(workers=2,
                                                                                                progress=False))
    assert sorted(report.graded) == sorted(expected) and not report.errors
    assert len(report.arrivals) == 20 and report.arrivals == sorted(report.arrivals) and report.arrivals[0] > 0
    with Gradebook(tmp_path / "out" / GRADEBOOK_FILE) as book:
        totals = {r.student: r.result.score for r in book.current_runs()}
    assert totals == expected
    for student in expected:
        results = json.loads((tmp_path / "out" / student / "results.json").read_text())
        assert results["score"] == expected[student] and len(results["tests"]) == 3
        assert (tmp_path / "out" / student / "report.html").is_file()
    for export in ("gradebook.csv", "canvas.csv", "junit.xml", "summary.html", "summary.md"):
        assert (tmp_path / "out" / export).is_file()


def test_relative_folders_grade_as_absolute_ones(mini_assignment, tmp_path, monkeypatch):
    # `grader batch submissions/ --out graded`: the batch stages under graded/.work, which every
    # sandbox must find from a working directory of its own.
    monkeypatch.chdir(tmp_path)
    expected = write_class(Path("class"), 3)
    report = run_batch(Path("class"), Path("out"), plan(mini_assignment), BatchOptions(workers=1, progress=False))
    assert sorted(report.graded) == sorted(expected) and not report.errors
    with Gradebook(Path("out") / GRADEBOOK_FILE) as book:
        assert {r.student: r.result.score for r in book.current_runs()} == expected


def test_running_again_grades_nothing_and_a_changed_submission_again(mini_assignment, tmp_path):
    write_class(tmp_path / "class", 3)
    run_batch(tmp_path / "class", tmp_path / "out", plan(mini_assignment), QUIET)
    again = run_batch(tmp_path / "class", tmp_path / "out", plan(mini_assignment), QUIET)
    assert again.graded == [] and len(again.skipped) == 3
    (tmp_path / "class" / "student01.py").write_text(module(0))
    changed = run_batch(tmp_path / "class", tmp_path / "out", plan(mini_assignment), QUIET)
    assert changed.graded == ["student01"]
    with Gradebook(tmp_path / "out" / GRADEBOOK_FILE) as book:
        assert book.run_counts() == {"student00": 1, "student01": 2, "student02": 1}


def test_a_regrade_keeps_the_old_run_in_the_history(mini_assignment, tmp_path):
    write_class(tmp_path / "class", 2)
    run_batch(tmp_path / "class", tmp_path / "out", plan(mini_assignment), QUIET)
    report = run_batch(tmp_path / "class", tmp_path / "out", plan(mini_assignment),
                       BatchOptions(regrade=("student01",), progress=False))
    assert report.graded == ["student01"]
    with Gradebook(tmp_path / "out" / GRADEBOOK_FILE) as book:
        history = book.history("student01")
        assert len(history) == 2 and history[0].id < history[1].id
        assert history[0].result.score == history[1].result.score
        assert len(book.history("student00")) == 1


def test_only_one_test_is_regraded_and_the_others_keep_their_scores(mini_assignment, tmp_path):
    write_class(tmp_path / "class", 2)
    run_batch(tmp_path / "class", tmp_path / "out", plan(mini_assignment), QUIET)
    before = grades(tmp_path / "out")
    report = run_batch(tmp_path / "class", tmp_path / "out", plan(mini_assignment),
                       BatchOptions(only=("arithmetic.scale",), progress=False))
    assert sorted(report.graded) == ["student00", "student01"]
    assert grades(tmp_path / "out") == before
    with Gradebook(tmp_path / "out" / GRADEBOOK_FILE) as book:
        latest = book.latest("student01")
        assert latest.selection == ("arithmetic.scale",) and len(latest.result.tests) == 3


def test_bad_batch_arguments_are_clear_errors(mini_assignment, tmp_path):
    write_class(tmp_path / "class", 1)
    with pytest.raises(BatchInputError, match="no such student"):
        run_batch(tmp_path / "class", tmp_path / "out", plan(mini_assignment),
                  BatchOptions(regrade=("nobody",), progress=False))
    with pytest.raises(Exception, match="no test has the id"):
        run_batch(tmp_path / "class", tmp_path / "out", plan(mini_assignment),
                  BatchOptions(only=("metrics.nope",), progress=False))
    (tmp_path / "empty").mkdir()
    with pytest.raises(BatchInputError, match="no submissions found"):
        run_batch(tmp_path / "empty", tmp_path / "out", plan(mini_assignment), QUIET)


def _count_runs(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    except sqlite3.Error:
        return 0


def _batch_command(folder: Path, out: Path, assignment: Path) -> list[str]:
    return [sys.executable, "-m", "grader", "batch", str(folder), "--assignment", str(assignment), "--out", str(out),
            "--workers", "2", "--allow-unsandboxed", "--no-progress"]


def test_a_batch_killed_with_sigkill_and_run_again_grades_each_submission_exactly_once(mini_assignment, tmp_path):
    expected = write_class(tmp_path / "class", 12, sleep=0.4)
    out = tmp_path / "out"
    system_temp = tmp_path / "tmp"  # the system's temporary folder, as the batch sees it
    system_temp.mkdir()
    env = {**os.environ, "TMPDIR": str(system_temp)}
    process = subprocess.Popen(_batch_command(tmp_path / "class", out, mini_assignment), start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 120
    while _count_runs(out / GRADEBOOK_FILE) < 3 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # the coordinator, its pool workers and their sandboxes
    process.wait()
    graded_before = _count_runs(out / GRADEBOOK_FILE)
    assert 3 <= graded_before < 12, "the batch should have been killed part-way"
    # What the killed gradings left lies in the batch's own work folder, which the next run empties.
    assert not [p.name for p in system_temp.iterdir() if p.name.startswith(("grader-stage-", "grader-io-",
                                                                            "answers-"))]

    done = subprocess.run(_batch_command(tmp_path / "class", out, mini_assignment), capture_output=True, text=True,
                          timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    assert f"already graded and unchanged {graded_before}" in done.stdout
    with Gradebook(out / GRADEBOOK_FILE) as book:
        assert book.run_counts() == {student: 1 for student in expected}
    uninterrupted = tmp_path / "uninterrupted"
    run_batch(tmp_path / "class", uninterrupted, plan(mini_assignment), BatchOptions(workers=2, progress=False))
    assert grades(out) == grades(uninterrupted)
    assert not list(out.glob("**/.*.tmp")) and list((out / ".work").iterdir()) == []
    for student in expected:
        json.loads((out / student / "results.json").read_text())  # complete JSON, never half-written


def test_the_dask_path_on_a_local_cluster_gives_the_same_gradebook(mini_assignment, tmp_path):
    distributed = pytest.importorskip("distributed")
    write_class(tmp_path / "class", 6)
    run_batch(tmp_path / "class", tmp_path / "local", plan(mini_assignment), BatchOptions(workers=2, progress=False))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        report = run_batch(tmp_path / "class", tmp_path / "dask", plan(mini_assignment),
                           BatchOptions(executor="dask", scheduler=cluster.scheduler_address, progress=False))
    assert len(report.graded) == 6 and not report.errors
    assert grades(tmp_path / "dask") == grades(tmp_path / "local")
    local_csv = (tmp_path / "local" / "gradebook.csv").read_text().splitlines()
    dask_csv = (tmp_path / "dask" / "gradebook.csv").read_text().splitlines()
    columns = local_csv[0].split(",")
    keep = [columns.index(c) for c in columns if c not in ("graded_at", "run_id")]
    assert [[r.split(",")[k] for k in keep] for r in local_csv] == [[r.split(",")[k] for k in keep] for r in dask_csv]


def test_a_second_batch_on_the_same_folder_is_refused(mini_assignment, tmp_path):
    import fcntl

    write_class(tmp_path / "class", 1)
    (tmp_path / "out").mkdir()
    with open(tmp_path / "out" / ".batch.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with pytest.raises(BatchInputError, match="another grader batch"):
            run_batch(tmp_path / "class", tmp_path / "out", plan(mini_assignment), QUIET)


@pytest.fixture
def hostile(tmp_path):
    folder = tmp_path / "class"
    students = hostile_class(folder)
    yield folder, students
    remove_hostile_class(folder)


def test_a_class_of_hostile_submissions_is_graded_through_and_found_unchanged_again(mini_assignment, hostile,
                                                                                     tmp_path):
    folder, students = hostile
    out = tmp_path / "out"
    report = run_batch(folder, out, plan(mini_assignment), QUIET)
    assert sorted(report.graded) == sorted(students) and not report.errors
    with Gradebook(out / GRADEBOOK_FILE) as book:
        runs = {r.student: r for r in book.current_runs()}
    deep = runs["deep"].result
    assert deep.problem == "not graded" and all("folders more than" in t.output for t in deep.tests)
    for student in ("alice", "fifo", "bytes", "gradebook.sqlite_student", "summary.html_student"):
        assert runs[student].result.score == 5 and not runs[student].result.problem, student
    assert runs["gradebook.sqlite_student"].identity.display_name == "gradebook.sqlite"
    assert runs["markup"].result.score == 1  # its add raises; scale is right
    for name in ("gradebook.sqlite", "gradebook.csv", "canvas.csv", "junit.xml", "summary.html", "summary.md"):
        assert (out / name).is_file(), name
    for student in students:
        assert (out / student / "report.html").is_file() and (out / student / "results.json").is_file()
    ET.parse(out / "junit.xml")  # the markup student's NUL, SOH and ESC are not in it
    assert "\ufffd" not in (out / "markup" / "report.html").read_text()  # the lone surrogate: "?", not a crash
    again = run_batch(folder, out, plan(mini_assignment), QUIET)
    assert again.graded == [] and sorted(again.skipped) == sorted(students)


def test_stale_temporaries_are_removed_only_where_the_batch_writes(mini_assignment, tmp_path):
    write_class(tmp_path / "class", 1)
    out = tmp_path / "out"
    kept = out / "_submissions" / "git" / "ada" / ".notes.tmp"  # a student's file, inside their submission
    kept.parent.mkdir(parents=True)
    kept.write_text("mine")
    stale = [out / ".gradebook.csv.x.tmp", out / "student00" / ".report.html.y.tmp"]
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("half")
    run_batch(tmp_path / "class", out, plan(mini_assignment), QUIET)
    assert kept.read_text() == "mine" and not any(path.exists() for path in stale)


def test_gradings_stage_in_the_batch_work_folder_which_starts_empty(mini_assignment, tmp_path, monkeypatch):
    write_class(tmp_path / "class", 2)
    out = tmp_path / "out"
    leftover = out / ".work" / "grader-stage-killed"
    leftover.mkdir(parents=True)
    nested(leftover)  # deeper than shutil.rmtree can walk before Python 3.12
    seen = []
    real_grade = runner.grade

    def spying_grade(plan, submission, work_dir=None):
        seen.append((work_dir, sorted(p.name for p in work_dir.iterdir())))
        return real_grade(plan, submission, work_dir)

    monkeypatch.setattr(runner, "grade", spying_grade)
    monkeypatch.setattr(runner, "make_executor", lambda *args: InlineExecutor())  # to see into the grading
    run_batch(tmp_path / "class", out, plan(mini_assignment), QUIET)
    assert [work for work, _ in seen] == [out / ".work"] * 2
    assert seen[0][1] == [] and not leftover.exists() and list((out / ".work").iterdir()) == []


class InlineExecutor:
    """Grades each job in this process, one after the other."""

    def run(self, fn, jobs):
        for job in jobs:
            yield job, fn(job), None

    def close(self, cancel=False):
        pass

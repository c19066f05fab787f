import os
import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest

from grader.batch import BatchOptions, run_batch
from grader.batch.git import GitSourceError, fetch_repositories, parse_deadline, read_repository_list
from grader.fileio import remove_tree
from grader.gradebook import GRADEBOOK_FILE, Gradebook
from grader.scoring import GradingPlan
from tests.fixtures.mini import RIGHT, module
from tests.grader.batch.hostile import DEEP, nested

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
DEADLINE = "2026-12-01T12:00:00+00:00"


def git(*args, cwd, when="2026-11-30T12:00:00+00:00"):
    env = {**os.environ, "GIT_AUTHOR_DATE": when, "GIT_COMMITTER_DATE": when, "GIT_AUTHOR_NAME": "s",
           "GIT_AUTHOR_EMAIL": "s@example.org", "GIT_COMMITTER_NAME": "s", "GIT_COMMITTER_EMAIL": "s@example.org"}
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


def pushed_repository(root, name, commits):
    """A bare repository `name.git` with `commits`: (date, text of solution.py) in order."""
    work = root / f"{name}-work"
    work.mkdir()
    git("init", "-q", "-b", "main", cwd=work)
    for when, text in commits:
        (work / "solution.py").write_text(text)
        git("add", "solution.py", cwd=work, when=when)
        git("commit", "-q", "-m", "work", cwd=work, when=when)
    bare = root / f"{name}.git"
    git("clone", "-q", "--bare", str(work), str(bare), cwd=root)
    return bare


def test_repositories_are_graded_at_their_last_commit_before_the_deadline(mini_assignment, tmp_path):
    ada = pushed_repository(tmp_path, "ada", [("2026-11-30T10:00:00+00:00", module(1)),
                                              ("2026-12-01T11:59:00+00:00", RIGHT),
                                              ("2026-12-02T09:00:00+00:00", "raise SystemExit('late')\n")])
    alan = pushed_repository(tmp_path, "alan", [("2026-12-03T09:00:00+00:00", RIGHT)])
    listing = tmp_path / "repos.txt"
    listing.write_text(f"# student repositories\n{ada}\nturing {alan}\n")
    subs = fetch_repositories(listing, parse_deadline(DEADLINE), tmp_path / "out")
    by_student = {s.student: s for s in subs}
    assert (by_student["ada"].path / "solution.py").read_text() == RIGHT
    assert not (by_student["ada"].path / ".git").exists() and len(by_student["ada"].revision) == 40
    assert "no commit" in by_student["turing"].unavailable

    run_batch(subs, tmp_path / "out", GradingPlan(mini_assignment, allow_unsandboxed=True), BatchOptions(progress=False))
    with Gradebook(tmp_path / "out" / GRADEBOOK_FILE) as book:
        runs = {r.student: r for r in book.current_runs()}
    assert runs["ada"].result.score == 5 and runs["ada"].submission_hash == by_student["ada"].revision
    assert runs["turing"].result.score == 0 and runs["turing"].result.problem == "not graded"
    assert "no commit on the default branch before the deadline" in runs["turing"].result.tests[0].output


def test_an_unreachable_repository_is_graded_zero_with_the_reason(mini_assignment, tmp_path):
    listing = tmp_path / "repos.txt"
    listing.write_text(f"ghost {tmp_path / 'missing.git'}\n")
    subs = fetch_repositories(listing, parse_deadline(DEADLINE), tmp_path / "out")
    assert "could not be cloned" in subs[0].unavailable


def test_bad_lists_and_deadlines_are_clear_errors(tmp_path):
    (tmp_path / "bad.txt").write_text("a b c\n")
    with pytest.raises(GitSourceError, match="line 1"):
        read_repository_list(tmp_path / "bad.txt")
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(GitSourceError, match="no repositories"):
        read_repository_list(tmp_path / "empty.txt")
    with pytest.raises(GitSourceError, match="ISO"):
        parse_deadline("next friday")
    assert parse_deadline("2026-12-01T12:00") == datetime(2026, 12, 1, 12, tzinfo=timezone.utc)


def test_a_repository_named_like_a_batch_file_is_graded_under_a_key_of_its_own(mini_assignment, tmp_path):
    # The red team's repository `gradebook.sqlite`: its folder took the gradebook's name, on every run.
    hostile = pushed_repository(tmp_path, "gradebook.sqlite", [("2026-11-30T10:00:00+00:00", RIGHT)])
    ada = pushed_repository(tmp_path, "ada", [("2026-11-30T10:00:00+00:00", RIGHT)])
    listing = tmp_path / "repos.txt"
    listing.write_text(f"{ada}\n{hostile}\nsummary.html {ada}\n")
    out = tmp_path / "out"
    for run in range(2):
        subs = fetch_repositories(listing, parse_deadline(DEADLINE), out)
        assert [(s.student, s.identity.display_name) for s in subs] == [
            ("ada", "ada"), ("gradebook.sqlite_student", "gradebook.sqlite"), ("summary.html_student", "summary.html")]
        report = run_batch(subs, out, GradingPlan(mini_assignment, allow_unsandboxed=True),
                           BatchOptions(progress=False))
        assert len(report.graded if run == 0 else report.skipped) == 3 and not report.errors
    for name in ("gradebook.sqlite", "summary.html", "gradebook.csv", "junit.xml"):
        assert (out / name).is_file()
    with Gradebook(out / GRADEBOOK_FILE) as book:
        assert {r.student: r.result.score for r in book.current_runs()} == {
            "ada": 5, "gradebook.sqlite_student": 5, "summary.html_student": 5}


def test_links_in_a_repository_are_left_out_of_its_export(mini_assignment, tmp_path):
    work = tmp_path / "mallory-work"
    work.mkdir()
    git("init", "-q", "-b", "main", cwd=work)
    (work / "solution.py").write_text(RIGHT)
    (work / "passwd").symlink_to("/etc/passwd")  # tarfile's data filter refuses it: the export stopped
    (work / "up").symlink_to("../../../outside")
    (work / "inside").symlink_to("solution.py")
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "work", cwd=work)
    listing = tmp_path / "repos.txt"
    listing.write_text(f"mallory {work}\n")
    (sub,) = fetch_repositories(listing, parse_deadline(DEADLINE), tmp_path / "out")
    assert not sub.unavailable and sorted(p.name for p in sub.path.iterdir()) == ["solution.py"]


def test_a_repository_nesting_a_thousand_folders_is_listed_as_not_graded_on_every_run(mini_assignment, tmp_path):
    # Its export is replaced on each run: a recursive removal of the old one stopped the whole batch.
    work = tmp_path / "mallory-work"
    work.mkdir()
    git("init", "-q", "-b", "main", cwd=work)
    (work / "solution.py").write_text(RIGHT)
    bottom = Path(os.path.join(nested(work), *["d"] * DEEP))
    (bottom / "notes.txt").write_text("at the bottom")
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "work", cwd=work)
    ada = pushed_repository(tmp_path, "ada", [("2026-11-30T10:00:00+00:00", RIGHT)])
    listing = tmp_path / "repos.txt"
    listing.write_text(f"mallory {work}\n{ada}\n")
    out = tmp_path / "out"
    try:
        for _ in range(2):
            subs = fetch_repositories(listing, parse_deadline(DEADLINE), out)
            run_batch(subs, out, GradingPlan(mini_assignment, allow_unsandboxed=True), BatchOptions(progress=False))
        with Gradebook(out / GRADEBOOK_FILE) as book:
            runs = {r.student: r.result for r in book.current_runs()}
        assert runs["ada"].score == 5 and runs["mallory"].problem == "not graded"
        assert "more than 64 levels deep" in runs["mallory"].tests[0].output
    finally:
        remove_tree(work)
        remove_tree(out)

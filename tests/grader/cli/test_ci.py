"""`grader ci`: a pushed repository graded with the public tests, as the release's workflow runs it."""

import shutil
import subprocess

import pytest

from grader.assignments.release import CI_COMMAND, REPORT_FOLDER
from grader.cli import main


def git_repository(folder):
    env = {"GIT_AUTHOR_NAME": "s", "GIT_AUTHOR_EMAIL": "s@example.org", "GIT_COMMITTER_NAME": "s",
           "GIT_COMMITTER_EMAIL": "s@example.org", "PATH": "/usr/bin:/bin"}
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "submission"]):
        subprocess.run(["git", *args], cwd=folder, env=env, check=True, capture_output=True)
    return folder


def run_ci(repo, summary, monkeypatch):
    """The workflow's own command line, in the repository, with GitHub's summary file."""
    monkeypatch.chdir(repo)
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    return main(CI_COMMAND.split()[1:])


pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def test_ci_on_the_untouched_release_annotates_every_failed_test_and_exits_1(assignment, release, tmp_path,
                                                                             monkeypatch, capsys):
    repo = git_repository(shutil.copytree(release, tmp_path / "repo"))
    summary = tmp_path / "runner" / "step_summary.md"
    summary.parent.mkdir()
    assert run_ci(repo, summary, monkeypatch) == 1
    out = capsys.readouterr().out
    errors = [line for line in out.splitlines() if line.startswith("::error ")]
    text = summary.read_text()
    assert errors and all(f"file={assignment.notebook}," in line for line in errors)
    assert "NotImplementedError" in errors[0] and "%0A" not in errors[0].split("::")[1]
    assert text.startswith(f"## {assignment.title}: 0 / ") and "❌ failed" in text
    assert (repo / REPORT_FOLDER / "report.html").is_file() and (repo / REPORT_FOLDER / "results.json").is_file()
    assert (repo / REPORT_FOLDER / "report.md").read_text() + "\n" == text  # the summary, kept with the report
    assert (summary.parent / "report.html").is_file()  # beside the step summary, as CONTRACT.md says


@pytest.mark.slow
def test_ci_on_a_solved_repository_passes_and_exits_0(assignment, release, smoke_run, tmp_path, monkeypatch, capsys):
    repo = shutil.copytree(release, tmp_path / "repo")
    shutil.copy(assignment.folder / assignment.notebook, repo / assignment.notebook)  # the solved notebook
    shutil.copy(smoke_run / "model.pt", repo / "model.pt")
    git_repository(repo)
    summary = tmp_path / "step_summary.md"
    assert run_ci(repo, summary, monkeypatch) == 0, capsys.readouterr().out
    assert "::error" not in capsys.readouterr().out
    assert "❌" not in summary.read_text() and "✅ passed" in summary.read_text()

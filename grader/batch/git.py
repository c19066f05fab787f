"""`grader batch --from-git LIST`: each student's pushed repository at its last commit before the
deadline, exported (without `.git`) into a folder the batch grades like any other."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from grader.batch.discover import Submission
from grader.batch.hashing import MAX_DEPTH, MAX_ENTRIES
from grader.batch.layout import SUBMISSIONS_DIR, readable, student_key
from grader.errors import UserError
from grader.fileio import remove_tree
from grader.gradebook import Identity


GIT_SECONDS = 600


class GitSourceError(UserError, ValueError):
    """A repository list that cannot be read, or git missing; the message names the line."""


@dataclass(frozen=True)
class Repository:
    student: str  # the folder-safe key
    url: str
    name: str = ""  # as the list gives it, or the repository's name in its URL


def read_repository_list(path: Path) -> list[Repository]:
    """Lines of `URL` or `STUDENT URL`; blank lines and `#` comments are skipped."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as err:
        raise GitSourceError(f"{path}: cannot be read ({err.strerror})") from err
    repos = []
    for number, line in enumerate(lines, start=1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if len(fields) > 2:
            raise GitSourceError(f"{path}, line {number}: expected `URL` or `STUDENT URL`, got {line.strip()!r}")
        url = fields[-1]
        name = fields[0] if len(fields) == 2 else re.sub(r"\.git$", "", url.rstrip("/").rsplit("/", 1)[-1])
        repos.append(Repository(student_key(name), url, name))
    if not repos:
        raise GitSourceError(f"{path}: no repositories listed")
    return repos


def parse_deadline(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as err:
        raise GitSourceError(f"--deadline {text!r}: use an ISO date-time such as 2026-12-18T17:00+01:00") from err
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _git(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    if shutil.which("git") is None:
        raise GitSourceError("--from-git needs git installed (apt-get install git)")
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, timeout=GIT_SECONDS,
                              env={"GIT_TERMINAL_PROMPT": "0", "PATH": "/usr/bin:/bin:/usr/local/bin",
                                   "HOME": "/nonexistent", "GIT_CONFIG_NOSYSTEM": "1"})
    except subprocess.TimeoutExpired:  # one slow or endless repository fails alone
        return subprocess.CompletedProcess(["git", *args], 124, b"", f"timed out after {GIT_SECONDS} s".encode())


def _plain_only(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
    """tarfile's safe `data` filter, keeping only files and folders: links (which may point anywhere)
    and anything else are left out rather than stopping the export."""
    if not (member.isfile() or member.isdir()):
        return None
    return tarfile.data_filter(member, dest)


def _check_shape(members: list[tarfile.TarInfo]) -> None:
    """The bounds the submission hash keeps, checked before extracting: the `data` filter's checks
    cost time in the square of a path's depth, and a repository may nest folders thousands deep."""
    if len(members) > MAX_ENTRIES:
        raise GitSourceError(f"it holds more than {MAX_ENTRIES} files and folders; keep only what the "
                             "submission needs in the repository")
    deepest = max(members, key=lambda m: m.name.count("/"), default=None)
    if deepest is not None and deepest.name.strip("/").count("/") > MAX_DEPTH:
        raise GitSourceError(f"its folders nest more than {MAX_DEPTH} levels deep (at {deepest.name[:60]}…); keep "
                             "the repository's folders shallow")


def _export(clone: Path, commit: str, dest: Path) -> None:
    """The commit's tree into `dest`, through `git archive`, plain files and folders only."""
    archive = _git("archive", "--format=tar", commit, cwd=clone)
    if archive.returncode != 0:
        raise GitSourceError(f"git archive failed: {archive.stderr.decode(errors='replace').strip()[-300:]}")
    partial = dest.with_name(f".{dest.name}.partial")
    remove_tree(partial)
    partial.mkdir(parents=True)
    try:
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            _check_shape(tar.getmembers())
            tar.extractall(partial, filter=_plain_only)
    except (tarfile.TarError, OSError) as err:
        remove_tree(partial)
        raise GitSourceError(f"its files could not be exported ({err})") from err
    except GitSourceError:
        remove_tree(partial)
        raise
    remove_tree(dest)
    partial.rename(dest)


def fetch_at_deadline(repo: Repository, deadline: datetime, into: Path) -> Submission:
    """Clone `repo` and export its last commit (committer date) at or before `deadline` on the default
    branch; a repository that cannot be cloned or has no such commit becomes an ungradable submission."""
    clone = into / ".clones" / repo.student
    dest = into / repo.student
    identity = Identity(repo.student, readable(repo.name or repo.student))
    remove_tree(clone)
    clone.parent.mkdir(parents=True, exist_ok=True)
    done = _git("clone", "--quiet", "--no-checkout", "--no-hardlinks", repo.url, str(clone))
    if done.returncode != 0:
        return Submission(identity, dest, unavailable=f"the repository {repo.url} could not be cloned")
    rev = _git("rev-list", "-1", "--first-parent", f"--before={deadline.isoformat()}", "HEAD", cwd=clone)
    commit = rev.stdout.decode().strip()
    if rev.returncode != 0 or not commit:
        remove_tree(clone)
        return Submission(identity, dest, unavailable=f"no commit on the default branch before the deadline "
                                                      f"{deadline.isoformat()}")
    try:
        _export(clone, commit, dest)
    except GitSourceError as err:
        return Submission(identity, dest, unavailable=f"commit {commit[:12]} of {repo.url}: {err}")
    finally:
        remove_tree(clone)
    return Submission(identity, dest, revision=commit)


def fetch_repositories(list_path: Path, deadline: datetime, out: Path) -> list[Submission]:
    repos = read_repository_list(list_path)
    dupes = {r.student for r in repos if sum(o.student == r.student for o in repos) > 1}
    if dupes:
        raise GitSourceError(f"{list_path}: student {sorted(dupes)[0]!r} is listed twice")
    into = Path(out) / SUBMISSIONS_DIR / "git"
    return sorted((fetch_at_deadline(r, deadline, into) for r in repos), key=lambda s: s.student)

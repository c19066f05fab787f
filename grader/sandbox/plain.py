"""The fallback where bubblewrap is missing: a plain subprocess with the same limits, no isolation.

As root with `GRADER_SANDBOX_USER` set (a user name or number; the Gradescope bundle sets it), each
run drops to that user with `setpriv` and gets a private temporary folder; its scratch copy and
exchange folder are that user's for the run, and every process the user still has is killed when
the run ends, so nothing it started outlives it or tampers with the next run (runs as one user
therefore take turns)."""

from __future__ import annotations

import fcntl
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from grader.sandbox.base import Layout, SandboxRequest, run_request, scrubbed_env
from grader.sandbox.exceptions import SandboxError
from grader.sandbox.process import Conductor, ProcessResult, Watchdog

WARNING = ("WARNING: running student code WITHOUT a sandbox (bubblewrap is not available). It can read "
           "and change your files and use the network. Fine for checking your own work; never for grading.")
SANDBOX_USER_ENV = "GRADER_SANDBOX_USER"


class PlainSandbox:
    """Same limits, timeout and output cap as the real sandbox, but it shares the machine."""

    name = "plain subprocess (no isolation)"
    isolated = False

    def __init__(self, announce: bool = True):
        user = os.environ.get(SANDBOX_USER_ENV, "").strip()
        if user:
            self.name = f"plain subprocess as user {user} (no namespaces)"
        if announce:
            print(WARNING, file=sys.stderr)

    def run(self, request: SandboxRequest, watchdog: Watchdog | None = None,
            conductor: Conductor | None = None) -> ProcessResult:
        layout = Layout(str(request.scratch), str(request.io_dir), str(request.harness_dir))
        uid = sandbox_uid()
        if uid is None:
            return run_request(request.argv(layout), request, scrubbed_env(layout, request.env), watchdog, conductor)
        with _as_user(request, uid) as tmp:
            env = scrubbed_env(layout, {**request.env, "TMPDIR": tmp, "JUPYTER_RUNTIME_DIR": f"{tmp}/jupyter",
                                        "IPYTHONDIR": f"{tmp}/ipython", "TORCH_HOME": f"{tmp}/torch",
                                        "MPLCONFIGDIR": f"{tmp}/matplotlib"})
            return run_request(drop_argv(uid) + request.argv(layout), request, env, watchdog, conductor)


def sandbox_uid() -> int | None:
    """The uid `GRADER_SANDBOX_USER` names, or None when it is unset; refused unless it can be used."""
    value = os.environ.get(SANDBOX_USER_ENV, "").strip()
    if not value:
        return None
    if os.geteuid() != 0:
        raise SandboxError(f"{SANDBOX_USER_ENV}={value}: running student code as another user needs the grader "
                           "to run as root; unset it or run as root")
    try:
        uid = int(value) if value.isdigit() else pwd.getpwnam(value).pw_uid
    except KeyError:
        raise SandboxError(f"{SANDBOX_USER_ENV}={value}: no such user; create it (useradd --no-create-home "
                           f"{value}) or unset {SANDBOX_USER_ENV}") from None
    if uid == 0:
        raise SandboxError(f"{SANDBOX_USER_ENV}={value} is root; name an unprivileged user")
    if shutil.which("setpriv") is None:
        raise SandboxError(f"{SANDBOX_USER_ENV} is set but setpriv (util-linux) is not installed")
    return uid


def drop_argv(uid: int) -> list[str]:
    """The prefix that runs a command as `uid`, with no groups, capabilities or new privileges."""
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all",
            "--bounding-set=-all", "--no-new-privs", "--"]


def _traversable(folder: Path) -> None:
    """Refuse a folder the sandbox user cannot reach (a parent without the others' execute bit)."""
    for parent in [folder, *folder.parents]:
        if not os.stat(parent).st_mode & stat.S_IXOTH:
            raise SandboxError(f"{parent} cannot be entered by other users, so {folder} is out of the sandbox "
                               "user's reach; install the grader's Python, and point TMPDIR, at folders every "
                               "user may enter")


@contextmanager
def _as_user(request: SandboxRequest, uid: int) -> Iterator[str]:
    """The scratch copy and exchange folder owned by `uid` for the run (their parents, the grader's
    own temporary folders, made enterable but not listable), a private temporary folder, and after
    the run every process of `uid` killed and everything handed back to root."""
    from grader.sandbox.bubblewrap import _chown_tree
    from grader.sandbox.identity import _lock_dir

    # One run per user at a time: the end of a run kills all of the user's processes.
    lock = os.open(_lock_dir() / f"user-{uid}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)
    opened: list[tuple[Path, int]] = []
    tmp = Path(tempfile.mkdtemp(prefix="grader-tmp-"))
    try:
        for folder in (request.scratch, request.io_dir):
            parent = Path(folder).resolve().parent
            mode = stat.S_IMODE(os.stat(parent).st_mode)
            if not mode & stat.S_IXOTH and all(p != parent for p, _ in opened):
                opened.append((parent, mode))
                os.chmod(parent, mode | stat.S_IXOTH)
        python = [Path(sys.executable).resolve().parent] if "{python}" in " ".join(request.command) else []
        for folder in (Path(request.harness_dir), *python,
                       *(Path(f).resolve().parent for f in (request.scratch, request.io_dir, tmp))):
            _traversable(Path(folder).resolve())
        for folder in (request.scratch, request.io_dir, tmp):
            _chown_tree(Path(folder), uid)
        yield str(tmp)
    finally:
        try:
            kill_user_processes(uid)
        finally:
            for folder in (request.scratch, request.io_dir):
                _chown_tree(Path(folder), 0)
            for parent, mode in opened:
                os.chmod(parent, mode)
            shutil.rmtree(tmp, ignore_errors=True)
            os.close(lock)  # releases the lock


def kill_user_processes(uid: int, rounds: int = 50) -> None:
    """SIGKILL every process of `uid` (`kill -1` as that user reaches exactly its own) until none is left."""
    for _ in range(rounds):
        if not _processes_of(uid):
            return
        subprocess.run(drop_argv(uid) + ["/bin/sh", "-c", "kill -KILL -1"], capture_output=True)
    raise SandboxError(f"processes of uid {uid} kept appearing after {rounds} rounds of SIGKILL")


def _processes_of(uid: int) -> list[int]:
    """The ids of the live processes (zombies are already dead) whose real or effective user is `uid`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as handle:
                fields = dict(line.split(":", 1) for line in handle if ":" in line)
        except OSError:
            continue  # it ended meanwhile
        state, uids = fields.get("State", "Z").split(), fields.get("Uid", "").split()
        if state[:1] != ["Z"] and str(uid) in uids[:2]:
            found.append(int(entry))
    return found

"""The real sandbox: bubblewrap. The only module that knows bwrap's command line.

The command sees a private root: the Python environment and system libraries read-only, a private
copy of the submission on a tmpfs of a fixed size (its working directory), the exchange folder
read-only but for the sub-folders a request names, a sized private /tmp, its own network namespace
(no interface but its own loopback), PID, IPC and UTS namespaces, a scrubbed environment, and an
unprivileged user of its own (a uid slot, when the grader runs as root). Nothing else of the host is
there: not the grader's code, not the hidden data, not the output folder, not other submissions.
"""

from __future__ import annotations

import dataclasses
import functools
import glob
import logging
import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from grader.sandbox.base import Layout, SandboxRequest, run_request, scrubbed_env
from grader.sandbox import seccomp
from grader.sandbox.identity import uid_slot
from grader.sandbox.process import Conductor, ProcessResult, Watchdog

LOG = logging.getLogger(__name__)
LAYOUT = Layout(submission="/sandbox/submission", io="/sandbox/io", harness="/sandbox/harness")
SOURCE = "/sandbox/source"  # the staged submission, read-only; copied into the sized tmpfs at start
SERVER, SPOOL = "/sandbox/zygote", "/sandbox/spool"  # a warm start's server, and where it finds the runs' folders
SYSTEM_DIRS = ("/usr", "/bin", "/lib", "/lib64", "/lib32", "/etc", "/sbin")
NO_ROOM = 97  # the exit status when the submission does not fit in its scratch space


@functools.cache
def probe() -> str | None:
    """None when bubblewrap can build a sandbox here, else why not."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return "bwrap is not installed"
    try:
        done = subprocess.run([bwrap, "--ro-bind", "/", "/", "--unshare-net", "--unshare-pid", "--dev", "/dev",
                               "--proc", "/proc", "true"], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"bwrap failed to start ({err})"
    if done.returncode != 0:
        return f"bwrap cannot create namespaces here ({done.stderr.decode(errors='replace').strip()})"
    return None


def _python_dirs() -> list[str]:
    """The interpreter, the virtual environment and the base installation it points at."""
    dirs = {sys.prefix, sys.base_prefix, os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix)}
    dirs.add(os.path.dirname(os.path.realpath(sys.executable)))
    return sorted(d for d in dirs if not d.startswith(SYSTEM_DIRS))


def _with_parents(target: str) -> list[str]:
    """`--dir` for each missing parent of a mount point, world-traversable."""
    args = []
    parts = Path(target).parts[1:-1]
    for i in range(len(parts)):
        args += ["--perms", "0755", "--dir", "/" + "/".join(parts[:i + 1])]
    return args


def _copy_in(limits) -> list[str]:
    """A prefix that copies the read-only submission into the tmpfs scratch, then runs the command."""
    copy = f"cd {SOURCE} && find . -mindepth 1 -maxdepth 1 -exec cp -RP --preserve=mode,timestamps -t {LAYOUT.submission} {{}} +"
    script = (f"{{ {copy}; }} 2>/dev/null && cd {LAYOUT.submission} || {{ echo \"the submission does not fit in the "
              f"sandbox's {limits.scratch_bytes // 2 ** 20} MiB of scratch space\" >&2; exit {NO_ROOM}; }}; exec \"$@\"")
    return ["/bin/sh", "-c", script, "sh"]


def _namespaces_and_system(tmp_bytes: int) -> list[str]:
    """bwrap with the namespaces, a sized private /tmp, /proc, /dev, and the system and Python read-only."""
    argv = [shutil.which("bwrap") or "bwrap", "--die-with-parent", "--new-session", "--unshare-net",
            "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try", "--hostname", "sandbox",
            "--clearenv", "--proc", "/proc", "--dev", "/dev",
            "--perms", "1777", "--size", str(tmp_bytes), "--tmpfs", "/tmp"]
    for path in SYSTEM_DIRS:
        if os.path.exists(path):
            argv += ["--ro-bind", path, path]
    for path in _python_dirs():
        argv += _with_parents(path) + ["--ro-bind", path, path]
    return argv


def _setenv(env: dict[str, str]) -> list[str]:
    return [arg for key, value in env.items() for arg in ("--setenv", key, value)]


def bwrap_argv(request: SandboxRequest, uid: int | None, seccomp_fd: int | None = None) -> list[str]:
    """The full command line: bwrap's options, then the request's command. `uid`: the user to drop to
    (when the grader runs as root), else None for an unprivileged user namespace; `seccomp_fd`: the
    filter's program for bwrap to install."""
    limits = request.limits
    argv = _namespaces_and_system(limits.tmp_bytes)
    argv += _with_parents(LAYOUT.submission)
    argv += ["--ro-bind", str(request.scratch), SOURCE,
             "--perms", "1777", "--size", str(limits.scratch_bytes), "--tmpfs", LAYOUT.submission,
             "--ro-bind", str(request.io_dir), LAYOUT.io]
    for sub in request.writable_io:  # only these can change: the grader's inputs and request stay intact
        argv += ["--bind", str(request.io_dir / sub), f"{LAYOUT.io}/{sub}"]
    argv += ["--ro-bind", str(request.harness_dir), LAYOUT.harness, "--chdir", LAYOUT.submission]
    if request.gpu:
        for device in sorted(glob.glob("/dev/nvidia*")):
            argv += ["--dev-bind", device, device]
    argv += _setenv(scrubbed_env(LAYOUT, request.env))
    if seccomp_fd is not None:
        argv += ["--seccomp", str(seccomp_fd)]
    if uid is not None:  # drop to an unprivileged user of this run's own; rlimits on processes count for it alone
        argv += ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                 "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]
    else:
        argv[1:1] = ["--unshare-user", "--cap-drop", "ALL"]
    return argv + _copy_in(limits) + request.argv(LAYOUT)


def server_argv(spool: Path, harness_dir: Path, server_dir: Path, env: dict[str, str], root: bool,
                caps: tuple[str, ...]) -> list[str]:
    """bwrap for a warm start's server (grader.sandbox.warm): the system, Python, the harness and the
    server read-only, `spool` writable at SPOOL for the runs it builds, and the capabilities it needs to
    build them (in a user namespace of its own unless the grader is root). It never runs student code."""
    argv = _namespaces_and_system(16 * 2 ** 20)
    for point in (SOURCE, LAYOUT.submission, LAYOUT.io):
        argv += _with_parents(point) + ["--dir", point]
    argv += ["--ro-bind", str(harness_dir), LAYOUT.harness, "--ro-bind", str(server_dir), SERVER,
             "--bind", str(spool), SPOOL, "--chdir", "/"]
    argv += _setenv(scrubbed_env(LAYOUT, env))
    access = ["--cap-drop", "ALL"] + [arg for cap in caps for arg in ("--cap-add", cap)]
    argv[1:1] = access if root else ["--unshare-user"] + access
    return argv


class BubblewrapSandbox:
    """Runs requests under bwrap and the seccomp filter, each as a user of its own when the grader is root."""

    name = "bubblewrap"
    isolated = True

    def run(self, request: SandboxRequest, watchdog: Watchdog | None = None,
            conductor: Conductor | None = None) -> ProcessResult:
        from grader.sandbox import warm  # it builds its server's command line here

        with _run_user(request) as uid:
            if warm.eligible(request):
                try:
                    return warm.run(request, uid, watchdog, conductor)
                except warm.WarmUnavailable as why:  # nothing of the submission ran: a cold sandbox serves it
                    LOG.debug("a cold sandbox serves this run: %s", why)
            with _seccomp_fd() as fd:
                request = dataclasses.replace(request, pass_fds=request.pass_fds + ((fd,) if fd is not None else ()))
                return run_request(bwrap_argv(request, uid, fd), request, {"PATH": os.environ.get("PATH", "")},
                                   watchdog, conductor)


@contextmanager
def _run_user(request: SandboxRequest) -> Iterator[int | None]:
    """The run's own uid when the grader is root (else None: an unprivileged user namespace). The
    sandbox user owns the scratch copy and the exchange folder (mode 0700, so no other local user
    reads the grader's inputs); they go back to root when the run ends, so nothing the slot's uid owns
    outlives the run."""
    if os.geteuid() != 0:
        yield None
        return
    with uid_slot() as uid:
        for folder in (request.scratch, request.io_dir):
            _chown_tree(folder, uid)
        try:
            yield uid
        finally:
            for folder in (request.scratch, request.io_dir):
                _chown_tree(folder, 0)


@contextmanager
def _seccomp_fd() -> Iterator[int | None]:
    fd = seccomp.program_fd() if seccomp.supported() else None
    try:
        yield fd
    finally:
        if fd is not None:
            os.close(fd)


def _chown_tree(root: Path, uid: int) -> None:
    if not root.exists():
        return
    os.chown(root, uid, uid, follow_symlinks=False)
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            os.chown(os.path.join(folder, name), uid, uid, follow_symlinks=False)

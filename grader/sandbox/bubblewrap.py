"""The real sandbox: bubblewrap. The only module that knows bwrap's command line.

The command sees a private root: the Python environment and system libraries read-only, the
scratch copy of the submission and the exchange folder writable, a private /tmp, its own network
namespace (no interface but its own loopback), PID, IPC and UTS namespaces, a scrubbed
environment, and an unprivileged user. Nothing else of the host is there: not the grader's code,
not the hidden data, not the output folder, not other submissions.
"""

from __future__ import annotations

import functools
import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

from grader.sandbox.base import Layout, SandboxRequest, scrubbed_env
from grader.sandbox.process import ProcessResult, Watchdog, run_contained

LAYOUT = Layout(submission="/sandbox/submission", io="/sandbox/io", harness="/sandbox/harness")
SYSTEM_DIRS = ("/usr", "/bin", "/lib", "/lib64", "/lib32", "/etc", "/sbin")
SANDBOX_UID = 65534  # nobody


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


def bwrap_argv(request: SandboxRequest, as_root: bool) -> list[str]:
    """The full command line: bwrap's options, then the request's command."""
    argv = [shutil.which("bwrap") or "bwrap", "--die-with-parent", "--new-session", "--unshare-net",
            "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try", "--hostname", "sandbox",
            "--clearenv", "--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", "/tmp"]
    for path in SYSTEM_DIRS:
        if os.path.exists(path):
            argv += ["--ro-bind", path, path]
    for path in _python_dirs():
        argv += _with_parents(path) + ["--ro-bind", path, path]
    argv += _with_parents(LAYOUT.submission)
    argv += ["--bind", str(request.scratch), LAYOUT.submission, "--ro-bind", str(request.io_dir), LAYOUT.io]
    for sub in request.writable_io:  # only these can change: the grader's inputs and request stay intact
        argv += ["--bind", str(request.io_dir / sub), f"{LAYOUT.io}/{sub}"]
    argv += ["--ro-bind", str(request.harness_dir), LAYOUT.harness, "--chdir", LAYOUT.submission]
    if request.gpu:
        for device in sorted(glob.glob("/dev/nvidia*")):
            argv += ["--dev-bind", device, device]
    for key, value in scrubbed_env(LAYOUT, request.env).items():
        argv += ["--setenv", key, value]
    if as_root:  # drop to an unprivileged user inside; rlimits on processes then count for it
        argv += ["setpriv", f"--reuid={SANDBOX_UID}", f"--regid={SANDBOX_UID}", "--clear-groups",
                 "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]
    else:
        argv[1:1] = ["--unshare-user", "--cap-drop", "ALL"]
    return argv + request.argv(LAYOUT)


class BubblewrapSandbox:
    """Runs requests under bwrap; scratch and exchange folders are handed to the sandbox user."""

    name = "bubblewrap"
    isolated = True

    def run(self, request: SandboxRequest, watchdog: Watchdog | None = None) -> ProcessResult:
        as_root = os.geteuid() == 0
        if as_root:
            for folder in (request.scratch, *(request.io_dir / sub for sub in request.writable_io)):
                _chown_tree(folder, SANDBOX_UID)
        limits = request.limits
        return run_contained(bwrap_argv(request, as_root), cwd=request.scratch, env={"PATH": os.environ.get("PATH", "")},
                             rlimits=limits.rlimits(request.gpu), wall_seconds=limits.wall_seconds,
                             output_bytes=limits.output_bytes, watchdog=watchdog)


def _chown_tree(root: Path, uid: int) -> None:
    os.chown(root, uid, uid)
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            os.chown(os.path.join(folder, name), uid, uid, follow_symlinks=False)

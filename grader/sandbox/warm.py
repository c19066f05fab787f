"""Warm starts: a server per grading process that has imported the public libraries a run needs
(torch and smp take seconds of a core), and forks each run from that state instead of starting a
fresh interpreter.

The server (`inside/zygote.py`) runs under bubblewrap with the system, Python, the harness and
itself read-only, and the capabilities to build namespaces; it never runs student code and nothing
of a submission can reach it. Each run it forks gets mount, PID, IPC, UTS and network namespaces of
its own, fresh tmpfs scratch space and /tmp, its own folders bound in, everything else read-only;
then it drops to the run's uid (when the grader is root), all capabilities, no new privileges and
the same seccomp filter as a cold sandbox, and only then runs the request's script. Its PID 1 stays
root without capabilities (so the run cannot signal or trace it) and ends, with every process of
the namespace, when the script's process does. The host puts the run in its cgroup and kills it
through a pidfd, as it would a cold run.

A run is warm only when it asks (`SandboxRequest.preload` and `spool`) and runs `{python} SCRIPT`
without a GPU on x86-64; anything that goes wrong before the submission's code starts falls back
on a cold sandbox. `GRADER_WARM=0` turns warm starts off.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import resource
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from grader.sandbox import seccomp
from grader.sandbox.base import SandboxRequest, run_group, scrubbed_env, with_memory_verdict
from grader.sandbox.exceptions import SandboxError
from grader.sandbox.process import Conductor, ProcessResult, Watchdog, supervise

SERVER_DIR = Path(__file__).parent / "inside"
CAPABILITIES = ("CAP_SYS_ADMIN", "CAP_NET_ADMIN", "CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP", "CAP_DAC_READ_SEARCH")
START_SECONDS = 180.0  # the server's imports, on a busy machine
READY_SECONDS = 30.0  # a run's namespaces and privilege drop
MAX_SERVERS = 2  # per process, the most recently used (each holds the libraries' memory, about 0.5 GiB)


class WarmUnavailable(SandboxError):
    """No warm run could be started; nothing of the submission ran (the caller starts a cold one).
    `refused`: the server could not build a run here at all, so it is not asked again."""

    def __init__(self, reason: str, refused: bool = False):
        super().__init__(reason)
        self.refused = refused


def enabled() -> bool:
    return os.environ.get("GRADER_WARM", "1") != "0" and seccomp.supported() and hasattr(os, "pidfd_open")


@functools.cache
def probe() -> str | None:
    """None when a warm run can be made here (one is made, once per process), else why not."""
    from grader.sandbox.bubblewrap import _run_user, probe as bubblewrap_probe

    if not enabled():
        return "turned off (GRADER_WARM=0), or not x86-64"
    if (why := bubblewrap_probe()) is not None:
        return why
    with tempfile.TemporaryDirectory(prefix="grader-warm-probe-") as folder:
        spool = Path(folder)
        for name in ("scratch", "io", "harness"):
            (spool / name).mkdir()
        (spool / "harness" / "probe.py").write_text("print('warm')\n")
        request = SandboxRequest(["{python}", "{harness}/probe.py"], spool / "scratch", spool / "io", spool / "harness",
                                 preload=("json",), spool=spool)
        try:
            with _run_user(request) as uid:
                result = run(request, uid, None, None)
        except WarmUnavailable as err:
            return str(err)
        finally:
            with _servers_lock:
                for key in [k for k in _servers if k.spool == os.path.realpath(spool)]:
                    _servers.pop(key).close()
    return None if result.ok and result.output.strip() == "warm" else f"a warm run failed ({result.output[-200:]})"


def eligible(request: SandboxRequest) -> bool:
    """Whether `request` may be served warm: it asks for it, runs a Python script, and its folders
    lie in its spool."""
    if not (enabled() and request.preload and request.spool is not None and not request.gpu):
        return False
    if len(request.command) < 2 or request.command[0] != "{python}" or not request.command[1].endswith(".py"):
        return False
    return all(_inside(path, request.spool) for path in (request.scratch, request.io_dir))


def _inside(path: Path, folder: Path) -> bool:
    try:
        Path(os.path.realpath(path)).relative_to(os.path.realpath(folder))
        return True
    except ValueError:
        return False


def run(request: SandboxRequest, uid: int | None, watchdog: Watchdog | None,
        conductor: Conductor | None) -> ProcessResult:
    """Serve `request` from a warm server; WarmUnavailable if no run could be started."""
    server = _server_for(request)
    try:
        return _run_on(server, request, uid, watchdog, conductor)
    finally:
        with _servers_lock:
            server.in_flight -= 1


def _run_on(server: "Server", request: SandboxRequest, uid: int | None, watchdog: Watchdog | None,
            conductor: Conductor | None) -> ProcessResult:
    if shadowed := _shadowed(server.modules, request.scratch):
        # Cold, the submission's own copy would be imported; forked, the server's would be used instead.
        raise WarmUnavailable(f"the submission ships modules the server has imported: {', '.join(sorted(shadowed))}")
    with run_group(request.limits) as group:
        process = server.spawn(request, uid, conductor is not None)
        try:
            if group is not None:
                group.add(process.pid)
            process.go()
        except (OSError, WarmUnavailable) as err:
            process.kill()
            process.close()
            raise WarmUnavailable(f"the warm run could not be started ({err})") from err
        start = time.monotonic()
        try:
            result = supervise(process, process.kill, start, request.limits.wall_seconds,
                               request.limits.output_bytes, watchdog, conductor)
        finally:
            process.close()
        return with_memory_verdict(result, group)


ALWAYS_COLD = {"sitecustomize", "usercustomize"}  # run by a fresh interpreter's startup, from its path
ARCHIVES = (".zip", ".egg", ".whl", ".pth")  # a path entry of modules the names below would not show
MAX_ENTRIES = 20_000


def importable_names(folder: Path) -> set[str]:
    """Every module name the submission's folder could provide, at any depth (its code may put any of
    its folders on sys.path); `ALWAYS_COLD` when it holds archives or more entries than are read."""
    names, seen = set(), 0
    for root, dirs, files in os.walk(folder):
        seen += len(dirs) + len(files)
        if seen > MAX_ENTRIES:
            return names | ALWAYS_COLD
        names.update(d for d in dirs if d not in ("__pycache__",))
        for name in files:
            if name.endswith(ARCHIVES):
                names |= ALWAYS_COLD
            elif name.endswith((".py", ".pyc", ".so", ".pyd")) and name.split(".")[0] not in ("__init__", "__main__"):
                names.add(name.split(".")[0])
    return names


def _shadowed(server_modules: set[str], folder: Path) -> set[str]:
    return (server_modules | ALWAYS_COLD) & importable_names(folder)


@dataclass(frozen=True)
class _Key:
    spool: str
    harness: str
    env: tuple[tuple[str, str], ...]
    preload: tuple[str, ...]


_servers: dict[_Key, "Server"] = {}
_servers_lock = threading.Lock()


def _server_for(request: SandboxRequest) -> "Server":
    key = _Key(os.path.realpath(request.spool), os.path.realpath(request.harness_dir),
               tuple(sorted(request.env.items())), request.preload)
    with _servers_lock:
        server = _servers.get(key)
        if server is not None and server.broken:
            raise WarmUnavailable(server.broken)
        if server is None or not server.alive():
            if server is not None:
                server.close()
            server = Server(key)
        _servers.pop(key, None)
        _servers[key] = server  # the most recently used last
        idle = [k for k, s in _servers.items() if k != key and not s.in_flight]
        for old in idle[:max(0, len(_servers) - MAX_SERVERS)]:  # never one a run is using: that would end it
            _servers.pop(old).close()
        if server.broken:
            raise WarmUnavailable(server.broken)
        server.in_flight += 1
        return server


def close_all() -> None:
    """Stop every server of this process (they also die with it)."""
    with _servers_lock:
        for server in _servers.values():
            server.close()
        _servers.clear()


atexit.register(close_all)


class Server:
    """One warm server under bubblewrap, started on first use; `broken` says why it cannot serve."""

    def __init__(self, key: _Key):
        from grader.sandbox.bubblewrap import server_argv

        self.key, self.broken, self.in_flight = key, "", 0
        self.modules: set[str] = set()  # top-level modules the server has imported
        # Address space the server mapped after its first library (the one every run imports): a run's
        # RLIMIT_AS is raised by it, so a fork never has less room for its own data than a lean cold run.
        self.extra_address_space = 0
        self.lock = threading.Lock()
        self.process, self.control = None, None
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        argv = server_argv(Path(key.spool), Path(key.harness), SERVER_DIR, dict(key.env), os.geteuid() == 0,
                           CAPABILITIES)
        argv += [sys.executable, "/sandbox/zygote/zygote.py", str(theirs.fileno()), json.dumps(list(key.preload))]
        try:
            self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL, pass_fds=(theirs.fileno(),),
                                            start_new_session=True, env={"PATH": os.environ.get("PATH", "")})
        except OSError as err:
            self.broken = f"bwrap did not start ({err})"
            ours.close()
            return
        finally:
            theirs.close()
        self.control = ours
        message = _receive(ours, START_SECONDS, 1 << 20)
        if not message or not message[0].get("ready"):
            self.close()
            self.broken = "the warm server did not start"
            return
        self.modules = {str(name) for name in message[0].get("modules", [])}
        extra = message[0].get("extra_address_space", 0)
        self.extra_address_space = extra if isinstance(extra, int) and 0 <= extra < 2 ** 40 else 0

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def spawn(self, request: SandboxRequest, uid: int | None, with_stdin: bool) -> "WarmProcess":
        """Ask for a run of `request`; returns it built and privileges dropped, waiting for `go`."""
        from grader.sandbox.bubblewrap import LAYOUT, SOURCE

        spool = Path(self.key.spool)
        scratch = os.path.relpath(os.path.realpath(request.scratch), spool)
        io = os.path.relpath(os.path.realpath(request.io_dir), spool)
        binds = [[scratch, SOURCE, False], [io, LAYOUT.io, False]]
        binds += [[os.path.join(io, sub), f"{LAYOUT.io}/{sub}", True] for sub in request.writable_io]
        spec = {"argv": request.argv(LAYOUT), "env": scrubbed_env(LAYOUT, request.env), "uid": uid,
                "seccomp": seccomp.program().hex(), "rlimits": self._rlimits(request),
                "tmp_bytes": request.limits.tmp_bytes, "scratch_bytes": request.limits.scratch_bytes,
                "submission": LAYOUT.submission, "source": SOURCE, "binds": binds,
                "pass_fds": list(request.pass_fds)}
        stdin_read, stdin_write = os.pipe() if with_stdin else (os.open(os.devnull, os.O_RDONLY), None)
        output_read, output_write = os.pipe()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)  # the run's pid, as the kernel gives it
        process = WarmProcess(ours, stdin_write, output_read)
        try:
            with self.lock:
                socket.send_fds(self.control, [json.dumps(spec).encode()],
                                [stdin_read, output_write, theirs.fileno(), *request.pass_fds])
        except OSError as err:
            process.close()
            raise WarmUnavailable(f"the warm server is gone ({err})") from err
        finally:
            for fd in (stdin_read, output_write):
                os.close(fd)
            theirs.close()
        try:
            process.await_ready(uid)
        except WarmUnavailable as err:
            if err.refused:
                self.broken = str(err)
            raise
        return process

    def _rlimits(self, request: SandboxRequest) -> list[list[int]]:
        return [[kind, value + self.extra_address_space if kind == resource.RLIMIT_AS else value]
                for kind, value in request.limits.rlimits(False)]

    def close(self) -> None:
        if self.control is not None:
            self.control.close()
            self.control = None
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.process.wait()


def _receive(sock: socket.socket, seconds: float,
             size: int = 4096) -> tuple[dict, tuple[int, int, int] | None] | None:
    """One JSON message and the sender's (pid, uid, gid), or None on end, timeout or nonsense."""
    ready, _, _ = select.select([sock], [], [], max(0.0, seconds))
    if not ready:
        return None
    try:
        data, ancillary, _, _ = sock.recvmsg(size, socket.CMSG_SPACE(struct.calcsize("iII")))
    except OSError:
        return None
    if not data:
        return None
    creds = None
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS and len(payload) >= 12:
            creds = struct.unpack("iII", payload[:12])
    try:
        message = json.loads(data)
    except ValueError:
        return None
    return (message, creds) if isinstance(message, dict) else None


class WarmProcess:
    """A warm run as `supervise` drives it (Popen's `stdin`, `stdout`, `poll`, `wait`, `returncode`):
    `pid` is the script's process, killed through a pidfd; its PID 1 then ends, and with it every
    process of the namespace. The exit status comes from the server's side of the run."""

    def __init__(self, report: socket.socket, stdin_write: int | None, output_read: int):
        self.report = report
        self.stdin = os.fdopen(stdin_write, "wb") if stdin_write is not None else None
        self.stdout = os.fdopen(output_read, "rb", buffering=0)
        self.pid = 0
        self.pidfd: int | None = None
        self.returncode: int | None = None

    def await_ready(self, uid: int | None) -> None:
        received = _receive(self.report, READY_SECONDS)
        if received is None or not received[0].get("ready") or received[1] is None:
            reason = received[0].get("refused", "no answer") if received else "no answer"
            self.close()
            raise WarmUnavailable(f"the warm run was not built ({reason})", refused=bool(received))
        pid, sender_uid, _ = received[1]
        if pid <= 0 or (uid is not None and sender_uid != uid):
            self.close()
            raise WarmUnavailable("the warm run did not take its user")
        self.pid, self.pidfd = pid, os.pidfd_open(pid)

    def go(self) -> None:
        self.report.send(b"go")

    def poll(self) -> int | None:
        if self.returncode is None:
            self._read_exit(0.0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        end = None if timeout is None else time.monotonic() + timeout
        while self.returncode is None:
            left = 3600.0 if end is None else end - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired("warm run", timeout)
            self._read_exit(min(left, 3600.0))
        return self.returncode

    def _read_exit(self, seconds: float) -> None:
        if self.report.fileno() < 0:
            self.returncode = -signal.SIGKILL
            return
        ready, _, _ = select.select([self.report], [], [], seconds)
        if not ready:
            return
        try:
            data = self.report.recv(4096)
        except OSError:
            data = b""
        if not data:  # its parent in the server is gone without a word: treat it as killed
            self.returncode = -signal.SIGKILL
            return
        try:
            code = json.loads(data).get("exit")
        except (ValueError, AttributeError):
            code = None
        if isinstance(code, int):
            self.returncode = code

    def kill(self) -> None:
        if self.pidfd is not None:
            try:
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
            except (ProcessLookupError, OSError):
                pass

    def close(self) -> None:
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None
        self.report.close()
        self.stdout.close()
        if self.stdin is not None:
            try:
                self.stdin.close()
            except OSError:
                pass

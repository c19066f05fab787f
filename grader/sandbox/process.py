"""Running one contained process: limits, captured output with a size cap, and a wall-clock
timeout (or a watchdog's or conductor's verdict) that kills its whole process group."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

# Called about ten times a second while the process runs; returns a reason to kill it, or None.
Watchdog = Callable[[], "str | None"]


class Conductor(Protocol):
    """Drives a running process through its stdin (and whatever channel it set up) on the host's clock.
    Returns a reason to kill the process, or None once the process has ended by itself."""

    def __call__(self, process: subprocess.Popen, deadline: float) -> str | None: ...


@dataclass(frozen=True)
class ProcessResult:
    """How a contained process ended."""

    returncode: int | None  # None when it was killed by us
    signal: int | None  # the signal that ended it, if any
    killed_reason: str | None  # "timeout" or the watchdog's or conductor's reason
    output: str  # stdout and stderr together, at most the cap
    output_truncated: bool
    output_bytes: int  # everything it printed, kept or not
    seconds: float
    memory_exceeded: bool = False  # its cgroup hit the memory limit (where a cgroup contained it)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.killed_reason is None


class _CappedReader(threading.Thread):
    """Drains a pipe to its end, keeping only the first `cap` bytes, so a flood cannot block the
    child on a full pipe nor fill the grader's memory."""

    def __init__(self, pipe, cap: int):
        super().__init__(daemon=True)
        self.pipe, self.cap, self.kept, self.total = pipe, cap, bytearray(), 0

    def run(self) -> None:
        while chunk := self.pipe.read(65536):
            self.total += len(chunk)
            room = self.cap - len(self.kept)
            if room > 0:
                self.kept += chunk[:room]


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _poll(process: subprocess.Popen, deadline: float, watchdog: Watchdog | None) -> str | None:
    """Wait for the process to end, asking the watchdog ten times a second; a reason to kill it, or None."""
    while process.poll() is None:
        if time.monotonic() > deadline:
            return "timeout"
        if watchdog is not None and (reason := watchdog()):
            return reason
        try:  # returns within milliseconds of the exit: an idle tenth of a second is a core's worth in a batch
            process.wait(timeout=max(0.0, min(0.1, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            pass
    return None


def run_contained(argv: list[str], *, cwd: Path, env: dict[str, str], rlimits: list[tuple[int, int]],
                  wall_seconds: float, output_bytes: int, watchdog: Watchdog | None = None,
                  conductor: Conductor | None = None, pass_fds: tuple[int, ...] = (),
                  enter: Callable[[], None] | None = None) -> ProcessResult:
    """Run `argv` in its own session and process group; kill the group on timeout, or when the
    watchdog or the conductor says so. `enter` runs in the child before it starts (a cgroup, say)."""
    from grader.sandbox.limits import apply_rlimits

    def prepare() -> None:
        if enter is not None:
            enter()
        apply_rlimits(rlimits)

    start = time.monotonic()
    process = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.PIPE if conductor else subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                               pass_fds=pass_fds, preexec_fn=prepare)
    return supervise(process, lambda: _kill_group(process), start, wall_seconds, output_bytes, watchdog, conductor)


def supervise(process, kill: Callable[[], None], start: float, wall_seconds: float, output_bytes: int,
              watchdog: Watchdog | None = None, conductor: Conductor | None = None) -> ProcessResult:
    """Drive a started process to its end: its output read with a cap, the conductor or the watchdog
    asked, `kill` called on a verdict and once it ends (for stragglers). `process` is a Popen or
    anything with its `stdin`, `stdout`, `poll`, `wait` and `returncode`."""
    reader = _CappedReader(process.stdout, output_bytes)
    reader.start()
    deadline = start + wall_seconds
    try:
        if conductor is not None:
            reason = conductor(process, deadline)
            if reason is None:  # done: a moment to exit cleanly, then whatever still runs is killed below
                _poll(process, min(deadline, time.monotonic() + 2), None)
        else:
            reason = _poll(process, deadline, watchdog)
    finally:
        kill()  # on a verdict, and for stragglers that outlived the leader
        process.wait()
        if process.stdin is not None:
            try:
                process.stdin.close()
            except OSError:
                pass
    reader.join(timeout=5)
    code = process.returncode
    return ProcessResult(
        returncode=None if reason else code, signal=-code if code is not None and code < 0 else None,
        killed_reason=reason, output=bytes(reader.kept).decode("utf-8", "replace"),
        output_truncated=reader.total > output_bytes, output_bytes=reader.total,
        seconds=time.monotonic() - start)

"""Running one contained process: limits, captured output with a size cap, and a wall-clock
timeout (or a watchdog's verdict) that kills its whole process group."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from grader.sandbox.limits import apply_rlimits

# Called about ten times a second while the process runs; returns a reason to kill it, or None.
Watchdog = Callable[[], "str | None"]


@dataclass(frozen=True)
class ProcessResult:
    """How a contained process ended."""

    returncode: int | None  # None when it was killed by us
    signal: int | None  # the signal that ended it, if any
    killed_reason: str | None  # "timeout" or the watchdog's reason
    output: str  # stdout and stderr together, at most the cap
    output_truncated: bool
    output_bytes: int  # everything it printed, kept or not
    seconds: float

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
    except ProcessLookupError:
        pass


def run_contained(argv: list[str], *, cwd: Path, env: dict[str, str], rlimits: list[tuple[int, int]],
                  wall_seconds: float, output_bytes: int, watchdog: Watchdog | None = None) -> ProcessResult:
    """Run `argv` in its own session and process group; kill the group on timeout or watchdog."""
    start = time.monotonic()
    process = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, start_new_session=True,
                               preexec_fn=lambda: apply_rlimits(rlimits))
    reader = _CappedReader(process.stdout, output_bytes)
    reader.start()
    reason = None
    while process.poll() is None:
        if time.monotonic() - start > wall_seconds:
            reason = "timeout"
        elif watchdog is not None:
            reason = watchdog()
        if reason:
            _kill_group(process)
            process.wait()
            break
        time.sleep(0.1)
    _kill_group(process)  # stragglers that outlived the leader
    reader.join(timeout=5)
    code = process.returncode
    return ProcessResult(
        returncode=None if reason else code, signal=-code if code is not None and code < 0 else None,
        killed_reason=reason, output=bytes(reader.kept).decode("utf-8", "replace"),
        output_truncated=reader.total > output_bytes, output_bytes=reader.total,
        seconds=time.monotonic() - start)

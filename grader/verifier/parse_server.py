"""Where acceptance parses a submitted graph: never in the grader's own process, but in a
grandchild forked for that one graph from a long-lived server child, under CPU and memory limits
and killed at a wall-clock limit. The server imports onnx once per grader process, so a grading
pays for parsing its graphs, not for starting Python and importing onnx once per graph.

Protocol (one JSON line each way): the grader sends `{"path": ...}`; the server answers
`{"verdict": {...}}` with what `verdict_of(path)` returned in the grandchild, or
`{"failed": "timeout" | "limits"}` when the grandchild ran out of time, or died (CPU or memory).
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

from grader.sandbox.limits import Limits, apply_rlimits


class ParseServer:
    """The grader's side: starts the server on first use, restarts it when it is gone."""

    def __init__(self, limits: Limits, entry: str):
        self.limits, self.entry = limits, entry  # entry: "module:function" the server runs per path
        self._process: subprocess.Popen | None = None
        self._lock = threading.Lock()

    def ask(self, path: Path) -> dict | str:
        """The grandchild's verdict on `path` (a dict), or why there is none ("timeout", "limits")."""
        with self._lock:
            for _ in range(2):  # a server found dead (killed from outside, say) is restarted once
                process = self._running()
                try:
                    process.stdin.write((json.dumps({"path": str(path)}) + "\n").encode())
                    process.stdin.flush()
                except (BrokenPipeError, OSError):
                    self.close()
                    continue
                ready, _, _ = select.select([process.stdout], [], [], self.limits.wall_seconds + 10)
                if not ready:  # the server itself hangs: never expected; start afresh next time
                    self.close()
                    return "timeout"
                line = process.stdout.readline()
                if not line:
                    self.close()
                    continue
                reply = json.loads(line)
                return reply["verdict"] if "verdict" in reply else str(reply.get("failed", "limits"))
            return "limits"

    def _running(self) -> subprocess.Popen:
        if self._process is None or self._process.poll() is not None:
            module, function = self.entry.split(":")
            code = (f"from grader.verifier.parse_server import serve; from {module} import {function}; "
                    f"serve({function}, {self.limits.wall_seconds!r}, {self.limits.rlimits()!r})")
            env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
                   "OMP_NUM_THREADS": "1"}
            self._process = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
                                             cwd=tempfile.gettempdir(), start_new_session=True)
        return self._process

    def close(self) -> None:
        """Stop the server (it also ends by itself when the grader's process is gone)."""
        if self._process is not None:
            try:
                self._process.kill()
            except OSError:
                pass
            self._process.wait()
            for pipe in (self._process.stdin, self._process.stdout):
                try:
                    pipe.close()
                except OSError:
                    pass
            self._process = None


def serve(verdict_of: Callable[[str], dict], wall_seconds: float, rlimits: list[tuple[int, int]]) -> None:
    """The server's loop: for each request line, fork a grandchild that applies `rlimits`, computes
    `verdict_of(path)` and writes it back on a pipe; kill it at `wall_seconds`. Ends at end of input."""
    for line in sys.stdin:
        path = json.loads(line)["path"]
        print(json.dumps(_one(verdict_of, path, wall_seconds, rlimits)), flush=True)


def _one(verdict_of, path: str, wall_seconds: float, rlimits) -> dict:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the grandchild: nothing of it reaches the server's stdout but the verdict
        status = 1
        try:
            os.close(read_end)
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            apply_rlimits(rlimits)
            data = json.dumps(verdict_of(path)).encode()
            while data:
                data = data[os.write(write_end, data):]
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    deadline, chunks, timed_out = time.monotonic() + wall_seconds, [], False
    with os.fdopen(read_end, "rb", buffering=0) as pipe:
        while True:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([pipe], [], [], max(0.0, left))
            if not ready:
                timed_out = True
                os.kill(pid, signal.SIGKILL)
                break
            chunk = pipe.read(65536)
            if not chunk:
                break
            chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    if timed_out:
        return {"failed": "timeout"}
    if status != 0 or not chunks:
        return {"failed": "limits"}
    return {"verdict": json.loads(b"".join(chunks))}

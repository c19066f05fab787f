"""Running a verifier job: one sandboxed process per (graph, job), with an empty working directory,
an exchange folder holding only the graph, the inputs and the job, `out/` its only writable place, no
network, and memory, CPU and wall-clock limits. Results are cached per (graph sha256, job digest), so
every test that reads the same graph shares one run.
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path

import grader.sandbox
from grader.sandbox import BubblewrapSandbox, Limits, PlainSandbox, ProcessResult, Sandbox, SandboxRequest
from grader.verifier.acceptance import AcceptedGraph
from grader.verifier.job import Job
from grader.verifier.results import Verification, read_verification
from grader.verifier.usage import current, record

INSIDE_DIR = Path(__file__).parent / "inside"
GIB = 2 ** 30
CACHE_SIZE = 8
MAX_OUTPUT_ELEMENTS = 2 ** 24  # the probe outputs handed back: 64 MiB of float32 at most


def _threads() -> int:
    return max(1, min(4, os.cpu_count() or 1))


@dataclass(frozen=True)
class VerifierLimits:
    """What one verifier run may use."""

    memory_bytes: int = 3 * GIB
    wall_seconds: float = 120.0  # for the probes and the structure analysis
    seconds_per_megapixel: float = 20.0  # more for each million pixels of images to label
    threads: int = _threads()

    def wall_for(self, job: Job) -> float:
        return float(math.ceil(self.wall_seconds + self.seconds_per_megapixel * job.label_pixels / 1e6))

    def sandbox_limits(self, job: Job) -> Limits:
        wall = self.wall_for(job)
        return Limits(wall_seconds=wall, cpu_seconds=int(wall * self.threads) + 30,
                      memory_bytes=self.memory_bytes, processes=512, file_size_bytes=256 * 2 ** 20,
                      open_files=256, output_bytes=64 * 1024)


# What the verifier imports, for a warm sandbox (not onnxruntime: its import starts a thread, which a fork would lose).
PRELOAD = ("numpy", "onnx", "onnx.checker", "onnx.numpy_helper")


def default_sandbox() -> Sandbox:
    """Bubblewrap where it runs. Elsewhere the plain fallback: a grading only reaches its checks after
    `make_sandbox` allowed an unsandboxed run there, and the fallback keeps every limit."""
    return BubblewrapSandbox() if grader.sandbox.probe() is None else PlainSandbox(announce=False)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def why_missing(result: ProcessResult, wall_seconds: float, memory_bytes: int) -> str:
    """Why a part never came back, for a student."""
    memory = f"{memory_bytes / GIB:g} GiB"
    if result.killed_reason == "timeout":
        return f"it ran longer than the {wall_seconds:g} s the grader allows for it"
    text = result.output.lower()
    if "memoryerror" in text or "bad_alloc" in text or "bad allocation" in text:
        return f"it needed more than the {memory} of memory the grader allows"
    died_of = result.signal if result.signal is not None else (
        result.returncode - 128 if result.returncode and 128 < result.returncode < 160 else None)
    if died_of is not None:
        name = _signal_name(died_of)
        if name == "SIGXCPU":
            return f"it used more CPU time than the grader allows ({wall_seconds:g} s per thread)"
        return (f"the process running it was killed ({name}), most often by a graph that asks for more than "
                f"the {memory} of memory the grader allows")
    if result.returncode:
        return f"the process running it failed (exit status {result.returncode})"
    return "the grader's verifier did not answer"


class Verifier:
    """Runs jobs over graphs in a sandbox, one process per (graph, job), results cached."""

    def __init__(self, sandbox: Sandbox | None = None, limits: VerifierLimits = VerifierLimits()):
        self.sandbox, self.limits = sandbox, limits
        self._cache: OrderedDict[tuple[str, str], Verification] = OrderedDict()
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()

    def verify(self, graph: AcceptedGraph, job: Job) -> Verification:
        """The job's answers for an accepted graph: from the cache, or from one verifier run."""
        key = (graph.sha256, job.digest)
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            with self._guard:
                if key in self._cache:
                    self._cache.move_to_end(key)
                    return self._cache[key]
            result = self.run(graph.data, job)
            with self._guard:
                self._cache[key] = result
                while len(self._cache) > CACHE_SIZE:
                    self._locks.pop(self._cache.popitem(last=False)[0], None)
        return result

    def run(self, data: bytes, job: Job) -> Verification:
        """One run over raw graph bytes (acceptance is the caller's business), never cached."""
        start = time.monotonic()
        usage = current()
        limits = self.limits if usage is None or usage.threads is None else replace(
            self.limits, threads=max(1, usage.threads))
        root = Path(tempfile.mkdtemp(prefix="grader-verify-"))
        try:
            root.chmod(0o755)
            scratch, io_dir = root / "scratch", root / "io"
            scratch.mkdir()
            io_dir.mkdir(mode=0o755)
            (io_dir / "graph.onnx").write_bytes(data)
            job.write(io_dir, limits.memory_bytes / GIB, limits.threads, MAX_OUTPUT_ELEMENTS)
            (io_dir / "out").mkdir()
            _world_readable(io_dir)
            request = SandboxRequest(["{python}", "{harness}/verify_worker.py", "{io}"], scratch, io_dir, INSIDE_DIR,
                                     limits.sandbox_limits(job), gpu=False, writable_io=("out",),
                                     env={"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                                          "MKL_NUM_THREADS": "1"}, preload=PRELOAD, spool=root.parent)
            result = (self.sandbox or default_sandbox()).run(request)
            missing = why_missing(result, limits.wall_for(job), limits.memory_bytes)
            verification = read_verification(io_dir, job, missing, MAX_OUTPUT_ELEMENTS)
            verification.seconds = time.monotonic() - start
            inside = sum(verification.stages.values())
            record("verifier: sandbox, process start, reading answers", verification.seconds - inside)
            for stage, seconds in verification.stages.items():
                record(f"verifier: {stage}", seconds)
            return verification
        finally:
            shutil.rmtree(root, ignore_errors=True)


def _world_readable(root: Path) -> None:
    for path in root.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)


_default = Verifier()


def verify(graph: AcceptedGraph, job: Job) -> Verification:
    """The job's answers for an accepted graph, from the process-wide verifier and its cache."""
    return _default.verify(graph, job)

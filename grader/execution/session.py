"""Running a list of calls against one submission in the sandbox, with failures isolated per call.

The submission loads once and answers the calls in order. A call that hangs is killed by the
watchdog when its own timeout passes; one that crashes the interpreter, exhausts memory or kills
its parent ends the sandbox. Either way that call alone is marked failed, and a fresh sandbox
answers the calls after it. Each restart consumes at least one call, so a run is bounded by
(calls + 1) x (load budget + slowest call). Once a function has hung or crashed, its later calls
fail at once with the same reason (one strike per function).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from grader.execution.calls import Call, CallOutcome, Encoder
from grader.execution.readback import read_load_events, read_outcome
from grader.execution.staging import StagedSubmission
from grader.sandbox import Limits, ProcessResult, Sandbox, SandboxRequest

HARNESS_DIR = Path(__file__).parent / "inside"
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Budget:
    """Time allowed to load the submission (the whole notebook) and per notebook cell."""

    load_seconds: float = 300.0
    cell_seconds: float = 120.0
    limits: Limits = Limits()
    gpu: bool = False
    call_seconds_cap: float | None = None  # lowers every call's own timeout (self-checks, tests)

    def timeout_of(self, c: Call) -> float:
        return min(c.timeout, self.call_seconds_cap) if self.call_seconds_cap else c.timeout


@dataclass
class SessionReport:
    """Every call's outcome, what happened at load time, and the sandbox runs it took."""

    outcomes: dict[str, CallOutcome]
    load_events: list[dict] = field(default_factory=list)
    runs: list[ProcessResult] = field(default_factory=list)
    sandbox: str = ""


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _crash_reason(result: ProcessResult, timeout: float, limits: Limits) -> tuple[str, str]:
    """(status, reason) for the call that was running when the sandbox ended."""
    if result.killed_reason and result.killed_reason.startswith("call "):
        return "timeout", f"did not finish within its time limit of {timeout:g} s (an endless loop?)"
    if result.killed_reason == "timeout":
        return "timeout", f"the submission ran past its total time limit of {limits.wall_seconds:g} s"
    died_of = result.signal if result.signal is not None else (
        result.returncode - 128 if result.returncode and 128 < result.returncode < 160 else None)  # bwrap's init
    if died_of is not None:
        name = _signal_name(died_of)
        hint = {"SIGSEGV": " (a segmentation fault)", "SIGKILL": " (killed: memory or process limits?)",
                "SIGXCPU": " (CPU time limit)", "SIGXFSZ": " (file size limit)"}.get(name, "")
        return "crashed", f"the Python process died with {name}{hint}"
    return "crashed", (f"the Python process exited with status {result.returncode} in the middle of this call "
                       "(does the code call sys.exit, os._exit, or kill a process?)")


class _Watchdog:
    """Kills the sandbox when the call now running has exceeded its own timeout."""

    def __init__(self, out_dir: Path, calls: list[Call], budget: Budget):
        self.out_dir, self.calls, self.budget, self.seen = out_dir, calls, budget, {}

    def __call__(self) -> str | None:
        now = time.monotonic()
        for c in self.calls:
            if (self.out_dir / f"{c.id}.json").exists():
                continue
            if (self.out_dir / f"{c.id}.started").exists():
                started = self.seen.setdefault(c.id, now)
                if now - started > self.budget.timeout_of(c):
                    return f"call {c.id} timed out"
            return None
        return None


def run_calls(staged: StagedSubmission, calls: list[Call], sandbox: Sandbox, budget: Budget = Budget(),
              work_dir: Path | None = None) -> SessionReport:
    """Answer `calls` from the staged submission; every call gets an outcome, whatever happens."""
    io_dir = Path(tempfile.mkdtemp(prefix="grader-io-", dir=work_dir))
    io_dir.chmod(0o755)  # readable by the sandbox user; only io/out is theirs to write
    try:
        return _run(staged, calls, sandbox, budget, io_dir)
    finally:
        if not os.environ.get("GRADER_KEEP_IO"):  # set it to inspect the exchange folder when debugging
            shutil.rmtree(io_dir, ignore_errors=True)


def _run(staged: StagedSubmission, calls: list[Call], sandbox: Sandbox, budget: Budget, io_dir: Path) -> SessionReport:
    encoder = Encoder(io_dir)
    report = SessionReport({}, sandbox=sandbox.name)
    remaining = list(calls)
    while remaining:
        out_dir = io_dir / "out"
        shutil.rmtree(out_dir, ignore_errors=True)
        if out_dir.is_symlink():
            out_dir.unlink()
        out_dir.mkdir()
        request = SandboxRequest(["{python}", "{harness}/grader_worker.py", "{io}"], staged.scratch, io_dir,
                                 HARNESS_DIR, result_limits(budget, remaining), budget.gpu, writable_io=("out",))
        _write_request(io_dir, staged, remaining, encoder, budget)
        result = sandbox.run(request, watchdog=_Watchdog(out_dir, remaining, budget))
        report.runs.append(result)
        if not report.load_events:
            report.load_events = read_load_events(io_dir)
        remaining = _collect(remaining, io_dir, result, budget, report)
    return report


def _write_request(io_dir: Path, staged: StagedSubmission, calls: list[Call], encoder: Encoder,
                   budget: Budget) -> None:
    """`request.json`: the submission's entry (relative to its folder, the working directory) and the calls."""
    data = {"schema_version": SCHEMA_VERSION, "submission": {"kind": staged.kind, "entry": staged.entry},
            "cell_timeout": budget.cell_seconds, "skip_train": staged.has_model,
            "calls": [encoder.call(c) for c in calls]}
    path = io_dir / "request.json"
    path.unlink(missing_ok=True)  # never write through whatever stands there
    path.write_text(json.dumps(data))
    os.chmod(path, 0o644)


def _collect(remaining: list[Call], io_dir: Path, result: ProcessResult, budget: Budget,
             report: SessionReport) -> list[Call]:
    """Record answered calls; mark the one that was running when the sandbox ended; return the rest."""
    out_dir = io_dir / "out"
    for index, c in enumerate(remaining):
        if (out_dir / f"{c.id}.json").is_file():
            report.outcomes[c.id] = read_outcome(io_dir, c.id)
            continue
        if (out_dir / f"{c.id}.started").exists():
            status, reason = _crash_reason(result, budget.timeout_of(c), result_limits(budget, remaining))
            report.outcomes[c.id] = CallOutcome(c.id, status, reason=reason)
            return _skip_same_function(c, remaining[index + 1:], reason, report)
        reason = _load_failure(result, report, result_limits(budget, remaining))
        for rest in remaining[index:]:
            report.outcomes[rest.id] = CallOutcome(rest.id, "not_run", reason=reason)
        return []
    return []


def _skip_same_function(broken: Call, rest: list[Call], reason: str, report: SessionReport) -> list[Call]:
    """One strike per function: once a call of F has hung or crashed the interpreter, later calls of
    F fail with that reason instead of each costing its own timeout. Returns the calls still to run."""
    if broken.kind != "call":
        return rest
    keep = []
    for c in rest:
        if c.kind == "call" and c.function == broken.function:
            report.outcomes[c.id] = CallOutcome(c.id, "not_run", reason=f"was not run: an earlier call of "
                                                f"{broken.function} {reason}")
        else:
            keep.append(c)
    return keep


def result_limits(budget: Budget, calls: list[Call]) -> Limits:
    """The limits a sandbox run over `calls` gets: the wall clock covers loading and every call."""
    wall = budget.load_seconds + sum(budget.timeout_of(c) for c in calls)
    return dataclasses.replace(budget.limits, wall_seconds=wall)


def _load_failure(result: ProcessResult, report: SessionReport, limits: Limits) -> str:
    """Why the submission never reached its calls."""
    if result.killed_reason == "timeout":
        return f"the submission did not finish loading within {limits.wall_seconds:g} s"
    dead = [e for e in report.load_events if e.get("kind") == "dead_kernel"]
    if dead:
        return f"the notebook's kernel died while running cell {dead[0].get('cell')}"
    if result.signal is not None:
        return f"the submission crashed while loading ({_signal_name(result.signal)})"
    tail = result.output.strip().splitlines()[-1:] if result.output.strip() else []
    detail = f": {tail[0][:300]}" if tail else ""
    return f"the submission could not be loaded (exit status {result.returncode}){detail}"

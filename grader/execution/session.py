"""Running a list of calls against one submission in the sandbox, with failures isolated per call.

The submission loads once, then the host hands it one call at a time over a pipe it owns and waits
for each answer with that call's own timeout, on its own clock. A call that hangs is killed when
its time is up; one that crashes the interpreter, exhausts memory or kills its parent ends the
sandbox. Either way that call alone is marked failed, and a fresh sandbox answers the calls after
it. Once a function has hung or crashed, its later calls fail at once with the same reason (one
strike per function). A per-submission ceiling bounds everything, restarts included, and after
`max_restarts` restarts the remaining calls fail with the reason.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from grader.execution.calls import Call, CallOutcome, Encoder
from grader.execution.channel import Answer, AnswerChannel, ChannelError, Closed
from grader.execution.readback import (LOAD_ID, MAX_ANSWER_BYTES, MAX_SUBMISSION_ANSWER_BYTES, LoadEvent,
                                       read_load_events, read_outcome)
from grader.execution.staging import StagedSubmission
from grader.fileio import remove_tree
from grader.sandbox import Limits, ProcessResult, Sandbox, SandboxRequest

HARNESS_DIR = Path(__file__).parent / "inside"
# What a submission of the chapter imports: a warm sandbox has them imported already (public libraries only).
# torch first: every submission imports it, and a warm run's address-space limit leaves out only what came after.
PRELOAD = ("torch", "numpy", "torchvision", "segmentation_models_pytorch", "PIL.Image", "onnx")
SCHEMA_VERSION = 2


@dataclass(frozen=True)
class Budget:
    """Time allowed to load the submission (the whole notebook), per notebook cell, and in all."""

    load_seconds: float = 300.0
    cell_seconds: float = 120.0
    limits: Limits = Limits()
    gpu: bool = False
    call_seconds_cap: float | None = None  # lowers every call's own timeout (self-checks, tests)
    submission_seconds: float = 3600.0  # the ceiling on all sandbox runs of one submission, restarts included
    max_restarts: int = 3  # fresh sandboxes after a crash or a hang; then the remaining calls fail
    threads: int | None = None  # CPU threads the submission's libraries use (None: every core)

    def timeout_of(self, c: Call) -> float:
        return min(c.timeout, self.call_seconds_cap) if self.call_seconds_cap else c.timeout


@dataclass
class SessionReport:
    """Every call's outcome, what happened at load time, and the sandbox runs it took."""

    outcomes: dict[str, CallOutcome]
    load_events: list[LoadEvent] = field(default_factory=list)
    runs: list[ProcessResult] = field(default_factory=list)
    sandbox: str = ""
    ceiling_reached: bool = False
    load_seconds: list[float] = field(default_factory=list)  # each run's start and load, on the host's clock


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


class _Conductor:
    """One sandbox run: waits for the load, then sends each call and waits for its answer."""

    def __init__(self, calls: list[Call], budget: Budget, channel: AnswerChannel, ceiling: float,
                 report: SessionReport, write_fd: int):
        self.calls, self.budget, self.channel, self.ceiling, self.report = calls, budget, channel, ceiling, report
        self.write_fd = write_fd  # the sandbox's end of the channel, closed here once it has started
        self.loaded = False
        self.current: Call | None = None  # the call in flight when the run ended
        self.verdict = ""  # why the host ended the run: "load timeout", "call timeout", "ceiling", "protocol"
        self.protocol_error = ""

    def __call__(self, process, deadline: float) -> str | None:
        start = time.monotonic()
        os.close(self.write_fd)  # else the channel never reads as closed when the sandbox ends
        message = self.channel.wait(min(deadline, self.ceiling, start + self.budget.load_seconds) - time.monotonic())
        if not isinstance(message, Answer):
            return self._ended(message, "load timeout", self.ceiling < start + self.budget.load_seconds)
        self.report.load_seconds.append(time.monotonic() - start)
        self.report.load_events = read_load_events(self.channel.folder, LOAD_ID)
        if any(e.kind == "dead_kernel" for e in self.report.load_events):
            return None  # loading failed for good: no call can be answered
        self.loaded = True
        for c in self.calls:
            self.current = c
            self.channel.expect(c.id)
            sent = time.monotonic()
            try:
                process.stdin.write(f"{c.id}\n".encode())
                process.stdin.flush()
            except (BrokenPipeError, OSError):
                return None  # it has gone; the call in flight crashed
            limit = sent + self.budget.timeout_of(c)
            message = self.channel.wait(min(limit, deadline, self.ceiling) - time.monotonic())
            if not isinstance(message, Answer):
                return self._ended(message, "call timeout", self.ceiling < limit)
            outcome = read_outcome(self.channel.folder, c.id)
            for name in message.names:  # read once: nothing on the host's disk outlives its reading
                (self.channel.folder / "out" / name).unlink(missing_ok=True)
            self.report.outcomes[c.id] = dataclasses.replace(outcome, seconds=time.monotonic() - sent)
            self.current = None
        try:
            process.stdin.close()
        except OSError:
            pass
        return None

    def _ended(self, message, timeout_verdict: str, ceiling_first: bool) -> str | None:
        if isinstance(message, Closed):
            return None
        if isinstance(message, ChannelError):
            self.verdict, self.protocol_error = "protocol", str(message)
            return "protocol"
        self.verdict = "ceiling" if ceiling_first else timeout_verdict
        return self.verdict


def run_calls(staged: StagedSubmission, calls: list[Call], sandbox: Sandbox, budget: Budget = Budget(),
              work_dir: Path | None = None) -> SessionReport:
    """Answer `calls` from the staged submission; every call gets an outcome, whatever happens."""
    io_dir = Path(tempfile.mkdtemp(prefix="grader-io-", dir=work_dir))  # 0700: the sandbox's user alone reads it
    try:
        return _run(staged, calls, sandbox, budget, io_dir)
    finally:
        if not os.environ.get("GRADER_KEEP_IO"):  # set it to inspect the exchange folder when debugging
            remove_tree(io_dir)


def _run(staged: StagedSubmission, calls: list[Call], sandbox: Sandbox, budget: Budget, io_dir: Path) -> SessionReport:
    encoder = Encoder(io_dir)
    _write_request(io_dir, staged, calls, encoder, budget)
    report = SessionReport({}, sandbox=sandbox.name)
    ceiling = time.monotonic() + budget.submission_seconds
    received = 0
    remaining = list(calls)
    while remaining:
        if len(report.runs) > budget.max_restarts:
            _fail_rest(remaining, report, f"was not run: the submission's sandbox had to be started "
                       f"{len(report.runs)} times (after crashes or hangs), the most one grading allows")
            break
        if time.monotonic() >= ceiling:
            _fail_rest(remaining, report, _ceiling_reason(budget))
            report.ceiling_reached = True
            break
        answers = Path(tempfile.mkdtemp(prefix="answers-", dir=io_dir.parent))  # the host's alone
        read_fd, write_fd = os.pipe()
        channel = AnswerChannel(read_fd, answers, MAX_ANSWER_BYTES, MAX_SUBMISSION_ANSWER_BYTES - received)
        channel.expect(LOAD_ID)  # before the run starts: a warm run can load and answer within milliseconds
        conductor = _Conductor(remaining, budget, channel, ceiling, report, write_fd)
        request = SandboxRequest(["{python}", "{harness}/grader_worker.py", "{io}", str(write_fd)], staged.scratch,
                                 io_dir, HARNESS_DIR, result_limits(budget, remaining), budget.gpu,
                                 env=thread_env(budget.threads), pass_fds=(write_fd,), preload=PRELOAD,
                                 spool=io_dir.parent)
        try:
            result = sandbox.run(request, conductor=conductor)
        finally:
            channel.close()
            received += channel.received
            remove_tree(answers)
        report.runs.append(result)
        remaining = _collect(remaining, conductor, result, budget, report)
    return report


def thread_env(threads: int | None) -> dict[str, str]:
    """Environment that caps the threads of OpenMP, BLAS and torch (None: leave the sandbox's default)."""
    if threads is None:
        return {}
    value = str(max(1, threads))
    return {name: value for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}


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


def _ceiling_reason(budget: Budget) -> str:
    return (f"was not run: the submission used up its whole time allowance of {budget.submission_seconds:g} s "
            "for this grading")


def _fail_rest(calls: list[Call], report: SessionReport, reason: str) -> None:
    for c in calls:
        report.outcomes.setdefault(c.id, CallOutcome(c.id, "not_run", reason=reason))


def _collect(remaining: list[Call], conductor: _Conductor, result: ProcessResult, budget: Budget,
             report: SessionReport) -> list[Call]:
    """Mark the call in flight when the run ended, or every call when loading failed; return the rest."""
    rest = [c for c in remaining if c.id not in report.outcomes]
    if not conductor.loaded:
        _fail_rest(rest, report, _load_failure(result, conductor, report, budget))
        return []
    if conductor.current is None:
        return rest
    broken = conductor.current
    status, reason = _crash_reason(result, conductor, budget.timeout_of(broken), budget)
    report.outcomes[broken.id] = CallOutcome(broken.id, status, reason=reason)
    if conductor.verdict == "ceiling":
        report.ceiling_reached = True
        _fail_rest(rest, report, _ceiling_reason(budget))
        return []
    return _skip_same_function(broken, [c for c in rest if c is not broken], reason, report)


def _crash_reason(result: ProcessResult, conductor: _Conductor, timeout: float, budget: Budget) -> tuple[str, str]:
    """(status, reason) for the call that was running when the sandbox ended."""
    if conductor.verdict == "call timeout":
        return "timeout", f"did not finish within its time limit of {timeout:g} s (an endless loop?)"
    if conductor.verdict == "ceiling":
        return "timeout", f"was stopped: the submission used up its whole time allowance of {budget.submission_seconds:g} s"
    if conductor.verdict == "protocol":
        return "crashed", f"its answer could not be read back safely ({conductor.protocol_error})"
    if result.killed_reason == "timeout":
        return "timeout", f"the submission ran past its total time limit of {result.seconds:.0f} s"
    if result.memory_exceeded:
        return "crashed", (f"the Python process ran out of memory (the limit is "
                           f"{budget.limits.memory_bytes / 2 ** 30:g} GiB)")
    died_of = result.signal if result.signal is not None else (
        result.returncode - 128 if result.returncode and 128 < result.returncode < 160 else None)  # bwrap's init
    if died_of is not None:
        name = _signal_name(died_of)
        hint = {"SIGSEGV": " (a segmentation fault)", "SIGKILL": " (killed: memory or process limits?)",
                "SIGXCPU": " (CPU time limit)", "SIGXFSZ": " (file size limit)"}.get(name, "")
        return "crashed", f"the Python process died with {name}{hint}"
    return "crashed", (f"the Python process exited with status {result.returncode} in the middle of this call "
                       "(does the code call sys.exit, os._exit, or kill a process?)")


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
    wall = min(budget.load_seconds + sum(budget.timeout_of(c) for c in calls), budget.submission_seconds) + 5
    return dataclasses.replace(budget.limits, wall_seconds=wall)


def _load_failure(result: ProcessResult, conductor: _Conductor, report: SessionReport, budget: Budget) -> str:
    """Why the submission never reached its calls."""
    if conductor.verdict == "ceiling":
        report.ceiling_reached = True
        return _ceiling_reason(budget)
    if conductor.verdict == "load timeout" or result.killed_reason == "timeout":
        return f"the submission did not finish loading within {budget.load_seconds:g} s"
    if conductor.verdict == "protocol":
        return f"the submission's sandbox broke the grader's protocol while loading ({conductor.protocol_error})"
    dead = [e for e in report.load_events if e.kind == "dead_kernel"]
    if dead:
        return f"the notebook's kernel died while running cell {dead[0].cell}"
    if result.memory_exceeded:
        return f"the submission ran out of memory while loading (the limit is {budget.limits.memory_bytes / 2 ** 30:g} GiB)"
    if result.signal is not None:
        return f"the submission crashed while loading ({_signal_name(result.signal)})"
    tail = result.output.strip().splitlines()[-1:] if result.output.strip() else []
    detail = f": {tail[0][:300]}" if tail else ""
    return f"the submission could not be loaded (exit status {result.returncode}){detail}"

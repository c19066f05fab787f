"""What every sandbox takes and gives: a request in, a `ProcessResult` out."""

from __future__ import annotations

import dataclasses
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Protocol

from grader.sandbox.cgroups import Cgroup, probe_cgroups
from grader.sandbox.limits import Limits
from grader.sandbox.process import Conductor, ProcessResult, Watchdog, run_contained


@dataclass(frozen=True)
class Layout:
    """Where the three exchange folders appear to the sandboxed command."""

    submission: str  # the scratch copy of the submission: writable, the working directory
    io: str  # inputs the grader wrote (read-only) and `writable_io` folders for outputs
    harness: str  # the code that loads the submission and answers calls: read-only


@dataclass(frozen=True)
class SandboxRequest:
    """One command over one submission. `command` may use `{submission}`, `{io}`, `{harness}` and
    `{python}`, filled in with the paths the sandbox gives them."""

    command: list[str]
    scratch: Path
    io_dir: Path
    harness_dir: Path
    limits: Limits = Limits()
    gpu: bool = False
    env: dict[str, str] = field(default_factory=dict)
    writable_io: tuple[str, ...] = ()  # sub-folders of io_dir the command may write; the rest is read-only
    pass_fds: tuple[int, ...] = ()  # host file descriptors the command inherits (a conductor's channel)
    # A warm start (see grader.sandbox.warm): public libraries a `{python} SCRIPT` command may find
    # imported already, and the folder holding `scratch` and `io_dir` that its server may bind from.
    preload: tuple[str, ...] = ()
    spool: Path | None = None

    def __post_init__(self) -> None:
        # Absolute, whatever the caller passed (`grader batch --out graded` stages under graded/.work):
        # a sandbox binds and enters them from a working directory of its own.
        for name in ("scratch", "io_dir", "harness_dir", "spool"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, Path(getattr(self, name)).absolute())

    def argv(self, layout: Layout) -> list[str]:
        values = {"submission": layout.submission, "io": layout.io, "harness": layout.harness,
                  "python": sys.executable}
        return [part.format(**values) for part in self.command]


def scrubbed_env(layout: Layout, extra: dict[str, str]) -> dict[str, str]:
    """A minimal environment: nothing of the grader's own variables crosses into the sandbox."""
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": layout.submission, "TMPDIR": "/tmp", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
        "PYTHONPATH": f"{layout.harness}:{layout.submission}", "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "MPLBACKEND": "Agg",
        "TORCH_HOME": "/tmp/torch", "JUPYTER_RUNTIME_DIR": "/tmp/jupyter", "IPYTHONDIR": "/tmp/ipython",
        "OMP_NUM_THREADS": str(os.cpu_count() or 1),
    }
    env.update(extra)
    return env


class Sandbox(Protocol):
    """Runs a request with its limits; `isolated` says whether it is a real sandbox."""

    name: str
    isolated: bool

    def run(self, request: SandboxRequest, watchdog: Watchdog | None = None,
            conductor: Conductor | None = None) -> ProcessResult: ...


@contextmanager
def run_group(limits: Limits) -> Iterator[Cgroup | None]:
    """A cgroup of the run's own where the host allows one (then the memory limit covers tmpfs pages
    and the process limit is the run's alone), destroyed with whatever is left in it; else None."""
    layout, _ = probe_cgroups()
    group = Cgroup(layout, limits.memory_bytes, limits.processes) if layout is not None else None
    try:
        yield group
    finally:
        if group is not None:
            group.destroy()


def with_memory_verdict(result: ProcessResult, group: Cgroup | None) -> ProcessResult:
    return dataclasses.replace(result, memory_exceeded=group.memory_exceeded()) if group is not None else result


def run_request(argv: list[str], request: SandboxRequest, env: dict[str, str], watchdog: Watchdog | None,
                conductor: Conductor | None) -> ProcessResult:
    """Run a sandbox's command line with the request's limits, in a cgroup of its own where allowed."""
    limits = request.limits
    with run_group(limits) as group:
        result = run_contained(argv, cwd=request.scratch, env=env, rlimits=limits.rlimits(request.gpu),
                               wall_seconds=limits.wall_seconds, output_bytes=limits.output_bytes,
                               watchdog=watchdog, conductor=conductor, pass_fds=request.pass_fds,
                               enter=group.enter if group is not None else None)
        return with_memory_verdict(result, group)

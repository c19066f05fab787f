"""A control group per sandboxed run, so that one submission's memory (tmpfs pages included),
processes and share of the CPU are its own budget, whatever its neighbours do.

cgroup v2 where our own group delegates the `memory` and `pids` controllers, else the v1 `memory`
and `pids` hierarchies where the host mounts them writable (as CI machines do, as root). Where
neither can be used, `probe_cgroups` says why, and the sandbox falls back on rlimits and a uid of
its own per run.
"""

from __future__ import annotations

import functools
import os
import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
GROUP = "grader"  # our groups live under <own group>/grader/


@dataclass(frozen=True)
class CgroupLayout:
    """Where new groups go: one folder per controller (v1), or one folder for both (v2)."""

    version: int
    memory_parent: Path
    pids_parent: Path
    cpu_parent: Path | None = None  # where the cpu controller can weigh runs equally; None if it cannot


def _own_paths() -> dict[str, str]:
    """Controller name (or "" for v2) to this process's group path, from /proc/self/cgroup."""
    paths = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for name in controllers.split(",") if controllers else [""]:
            paths[name] = path
    return paths


def _v2_layout() -> CgroupLayout | None:
    for mount in (ROOT, ROOT / "unified"):
        if not (mount / "cgroup.controllers").exists():
            continue
        own = mount / _own_paths().get("", "/").lstrip("/")
        enabled = (own / "cgroup.subtree_control").read_text().split() if (own / "cgroup.subtree_control").exists() else []
        if {"memory", "pids"} <= set(enabled):
            parent = own / GROUP
            return CgroupLayout(2, parent, parent, parent if "cpu" in enabled else None)
    return None


def _v1_layout() -> CgroupLayout | None:
    own = _own_paths()
    memory, pids = ROOT / "memory", ROOT / "pids"
    if not ((memory / "memory.limit_in_bytes").exists() and (pids / "cgroup.procs").exists()):
        return None
    cpu = ROOT / "cpu"
    return CgroupLayout(1, memory / own.get("memory", "/").lstrip("/") / GROUP,
                        pids / own.get("pids", "/").lstrip("/") / GROUP,
                        cpu / own.get("cpu", "/").lstrip("/") / GROUP if (cpu / "cpu.shares").exists() else None)


@functools.cache
def probe_cgroups() -> tuple[CgroupLayout | None, str]:
    """(layout, "") when groups can be made here, else (None, why not)."""
    try:
        layout = _v2_layout() or _v1_layout()
    except OSError as err:
        return None, f"cannot read the cgroup hierarchy ({err})"
    if layout is None:
        return None, "no cgroup v2 delegation of memory and pids, and no v1 memory and pids controllers"
    try:
        for parent in {layout.memory_parent, layout.pids_parent}:
            _try_parent(parent)
    except OSError as err:
        return None, f"cgroups are not writable here ({err.strerror or err})"
    if layout.cpu_parent is not None:
        try:
            _try_parent(layout.cpu_parent)
        except OSError:
            layout = CgroupLayout(layout.version, layout.memory_parent, layout.pids_parent, None)
    return layout, ""


def _try_parent(parent: Path) -> None:
    parent.mkdir(parents=True, exist_ok=True)
    trial = parent / f"probe-{uuid.uuid4().hex[:8]}"
    trial.mkdir()
    trial.rmdir()


class Cgroup:
    """One run's group: a memory limit and a process limit; `enter` runs in the child before exec."""

    def __init__(self, layout: CgroupLayout, memory_bytes: int, processes: int):
        self.layout = layout
        name = f"run-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self.memory = layout.memory_parent / name
        self.pids = layout.pids_parent / name
        self.cpu = layout.cpu_parent / name if layout.cpu_parent is not None else None
        self.folders = list(dict.fromkeys(f for f in (self.memory, self.pids, self.cpu) if f is not None))
        for folder in self.folders:
            folder.mkdir()
        if layout.version == 2:
            (self.memory / "memory.max").write_text(str(memory_bytes))
            if (self.memory / "memory.swap.max").exists():
                (self.memory / "memory.swap.max").write_text("0")
        else:
            (self.memory / "memory.limit_in_bytes").write_text(str(memory_bytes))
            if (self.memory / "memory.memsw.limit_in_bytes").exists():
                (self.memory / "memory.memsw.limit_in_bytes").write_text(str(memory_bytes))
        (self.pids / "pids.max").write_text(str(processes))
        if self.cpu is not None:  # every run weighs the same, however many processes it starts
            (self.cpu / ("cpu.weight" if layout.version == 2 else "cpu.shares")).write_text(
                "100" if layout.version == 2 else "1024")

    def enter(self) -> None:
        """Move the calling process (the child, between fork and exec) into the group."""
        self.add(os.getpid())

    def add(self, pid: int) -> None:
        """Move process `pid` into the group (a warm run's first process, before it starts)."""
        for folder in self.folders:
            with open(folder / "cgroup.procs", "w") as handle:
                handle.write(str(pid))

    def memory_exceeded(self) -> bool:
        """Whether the kernel had to kill or refuse for lack of memory in this group."""
        try:
            if self.layout.version == 2:
                events = dict(line.split() for line in (self.memory / "memory.events").read_text().splitlines())
                return int(events.get("oom_kill", 0)) > 0 or int(events.get("oom", 0)) > 0
            control = dict(line.split() for line in (self.memory / "memory.oom_control").read_text().splitlines())
            if "oom_kill" in control:
                return int(control["oom_kill"]) > 0
            return int((self.memory / "memory.failcnt").read_text()) > 0
        except (OSError, ValueError):
            return False

    def destroy(self) -> None:
        """Kill whatever is left in the group, then remove it."""
        for _ in range(50):
            pids = [int(p) for folder in self.folders for p in _read(folder / "cgroup.procs").split()]
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            time.sleep(0.02)
        for folder in self.folders:
            try:
                folder.rmdir()
            except OSError:
                pass


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""

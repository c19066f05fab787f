"""Resource limits for one sandboxed run, applied with setrlimit in the child before it starts, and
by a cgroup and sized tmpfs mounts where bubblewrap and the host allow them."""

from __future__ import annotations

import resource
from dataclasses import dataclass

GIB = 2 ** 30
MIB = 2 ** 20


@dataclass(frozen=True)
class Limits:
    """What one sandboxed command may use. Memory is address space (`RLIMIT_AS`) on a CPU and
    data segment (`RLIMIT_DATA`) when a GPU is passed in, since CUDA reserves vast address space;
    where a cgroup contains the run, `memory_bytes` is also its memory limit (tmpfs pages included)."""

    wall_seconds: float = 600.0
    cpu_seconds: int = 1800
    memory_bytes: int = 6 * GIB
    processes: int = 512
    file_size_bytes: int = 256 * MIB
    open_files: int = 1024
    output_bytes: int = 1 * MIB
    tmp_bytes: int = 512 * MIB  # the sandbox's /tmp (a tmpfs of this size)
    scratch_bytes: int = 1 * GIB  # the private copy of the submission it works in (a tmpfs of this size)

    def rlimits(self, gpu: bool = False) -> list[tuple[int, int]]:
        memory = resource.RLIMIT_DATA if gpu else resource.RLIMIT_AS
        return [(resource.RLIMIT_CPU, self.cpu_seconds), (memory, self.memory_bytes),
                (resource.RLIMIT_NPROC, self.processes), (resource.RLIMIT_FSIZE, self.file_size_bytes),
                (resource.RLIMIT_NOFILE, self.open_files), (resource.RLIMIT_CORE, 0)]


def apply_rlimits(pairs: list[tuple[int, int]]) -> None:
    """Set each limit, soft and hard alike, never above an existing hard limit."""
    for kind, value in pairs:
        _, hard = resource.getrlimit(kind)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(kind, (value, value))

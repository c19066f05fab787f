"""What isolation a sandbox run gets on this host, in words, for `grader env` and the README."""

from __future__ import annotations

import os
import platform

from grader.sandbox import seccomp, warm
from grader.sandbox.bubblewrap import probe
from grader.sandbox.cgroups import probe_cgroups
from grader.sandbox.identity import SLOTS, UID_BASE
from grader.sandbox.limits import Limits


def isolation_report(limits: Limits = Limits()) -> dict[str, str]:
    """One line per kind of isolation: what is in force here, or why not and what follows."""
    bwrap = probe()
    layout, why_not = probe_cgroups()
    root = os.geteuid() == 0
    mib = 2 ** 20
    lines = {"sandbox": "bubblewrap (namespaces: mount, pid, net, ipc, uts)" if bwrap is None else
             f"unavailable ({bwrap}); grading refuses to run without --allow-unsandboxed"}
    if bwrap is None:
        lines["sandbox user"] = (f"a uid of its own per run (slots {UID_BASE}..{UID_BASE + SLOTS - 1}), so process "
                                 "limits are never shared" if root else
                                 "an unprivileged user namespace mapping the grader's own uid: parallel sandboxes "
                                 "share one process budget (run as root for a uid per run)")
        lines["/tmp"] = f"tmpfs of {limits.tmp_bytes // mib} MiB"
        lines["scratch"] = f"tmpfs of {limits.scratch_bytes // mib} MiB (a private copy of the submission)"
        lines["seccomp"] = ("a filter refusing keyrings, namespaces, mounts, ptrace, bpf, perf events, io_uring"
                            if seccomp.supported() else
                            f"none on {platform.machine()} (the filter is written for x86-64)")
        why_cold = warm.probe()
        lines["warm start"] = ("on: a submission's run is forked, in namespaces of its own, from a server that "
                               "imported torch and smp (GRADER_WARM=0 turns it off)" if why_cold is None else
                               f"off ({why_cold}): every run starts a fresh interpreter")
    lines["cgroup"] = (f"v{layout.version}: memory {limits.memory_bytes // mib} MiB (tmpfs pages included), "
                       f"{limits.processes} processes, per run" if layout is not None else
                       f"none ({why_not}); memory is bounded per process by RLIMIT_AS, processes by RLIMIT_NPROC")
    return lines

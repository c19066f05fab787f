"""The fallback where bubblewrap is missing: a plain subprocess with the same limits, no isolation."""

from __future__ import annotations

import sys

from grader.sandbox.base import Layout, SandboxRequest, run_request, scrubbed_env
from grader.sandbox.process import Conductor, ProcessResult, Watchdog

WARNING = ("WARNING: running student code WITHOUT a sandbox (bubblewrap is not available). It can read "
           "and change your files and use the network. Fine for checking your own work; never for grading.")


class PlainSandbox:
    """Same limits, timeout and output cap as the real sandbox, but it shares the machine."""

    name = "plain subprocess (no isolation)"
    isolated = False

    def __init__(self, announce: bool = True):
        if announce:
            print(WARNING, file=sys.stderr)

    def run(self, request: SandboxRequest, watchdog: Watchdog | None = None,
            conductor: Conductor | None = None) -> ProcessResult:
        layout = Layout(str(request.scratch), str(request.io_dir), str(request.harness_dir))
        return run_request(request.argv(layout), request, scrubbed_env(layout, request.env), watchdog, conductor)

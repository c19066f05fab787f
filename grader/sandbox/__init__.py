"""Running untrusted commands: bubblewrap when it works here, else (only when allowed) a plain
subprocess with the same limits that says loudly that it is not a sandbox.

Public surface: `make_sandbox`, `SandboxRequest`, `Limits`, `ProcessResult`, `SandboxUnavailable`.
"""

from grader.sandbox.base import Layout, Sandbox, SandboxRequest
from grader.sandbox.bubblewrap import BubblewrapSandbox, probe
from grader.sandbox.exceptions import SandboxError, SandboxUnavailable
from grader.sandbox.limits import Limits
from grader.sandbox.plain import PlainSandbox
from grader.sandbox.process import ProcessResult


def make_sandbox(allow_unsandboxed: bool = False, announce: bool = True) -> Sandbox:
    """Bubblewrap if it can run here; the plain fallback only if `allow_unsandboxed`."""
    reason = probe()
    if reason is None:
        return BubblewrapSandbox()
    if not allow_unsandboxed:
        raise SandboxUnavailable(reason)
    return PlainSandbox(announce=announce)


__all__ = ["make_sandbox", "Sandbox", "SandboxRequest", "Layout", "Limits", "ProcessResult", "BubblewrapSandbox",
           "PlainSandbox", "SandboxError", "SandboxUnavailable", "probe"]

"""Errors of the sandbox layer. Infrastructure problems only: what student code does inside the
sandbox (crashing, hanging, flooding output) is a result, not an exception."""

from grader.errors import UserError


class SandboxError(RuntimeError):
    """The sandbox could not be set up or started."""


class SandboxUnavailable(SandboxError, UserError):
    """Bubblewrap is missing or cannot create namespaces here, and the fallback was not allowed."""

    def __init__(self, reason: str):
        super().__init__(
            f"no sandbox available: {reason}. Install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap), "
            "or pass --allow-unsandboxed to run student code as a plain subprocess (only on a machine you "
            "do not mind a submission reading or changing)")
        self.reason = reason

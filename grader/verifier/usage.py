"""What the verifier spent during one grading, by stage, and how many threads its runs may use: a
context the grading opens around its checks, which acceptance and verifier runs report into."""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Iterator


@dataclass
class VerifierUsage:
    """Seconds by stage (acceptance, each verifier run's parts), and the threads runs may use
    (None: the verifier's own default)."""

    threads: int | None = None
    stages: dict[str, float] = field(default_factory=dict)

    def add(self, stage: str, seconds: float) -> None:
        self.stages[stage] = self.stages.get(stage, 0.0) + max(0.0, float(seconds))


_current: ContextVar[VerifierUsage | None] = ContextVar("verifier_usage", default=None)


@contextmanager
def verifier_usage(threads: int | None = None) -> Iterator[VerifierUsage]:
    """Collect the verifier's stages inside the block; its runs use `threads` threads. A batch gives
    each worker cores / workers, so the verifiers of two gradings do not fight over the same cores."""
    usage = VerifierUsage(threads)
    token = _current.set(usage)
    try:
        yield usage
    finally:
        _current.reset(token)


def current() -> VerifierUsage | None:
    """The usage being collected, if a grading opened one."""
    return _current.get()


def record(stage: str, seconds: float) -> None:
    """Add `seconds` to `stage` of the usage being collected; nothing when none is."""
    usage = _current.get()
    if usage is not None:
        usage.add(stage, seconds)

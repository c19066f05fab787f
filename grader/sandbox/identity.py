"""A user id of its own for each sandbox running at the same moment, so that per-user limits
(`RLIMIT_NPROC`, signals, file ownership) never join two submissions into one budget.

Slots are claimed with an exclusive `flock` on a file in a root-only folder and released when the
run ends (or its grader dies): two graders on one machine never hand out the same uid at once.
"""

from __future__ import annotations

import fcntl
import os
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from grader.sandbox.exceptions import SandboxError

UID_BASE = 1_800_000_000  # far above any uid a distribution hands out, and above subuid ranges
SLOTS = 4096
LOCK_DIR = Path(os.environ.get("GRADER_UID_LOCKS", Path(tempfile.gettempdir()) / "grader-uid-slots"))


def _lock_dir() -> Path:
    LOCK_DIR.mkdir(mode=0o700, exist_ok=True)
    info = os.lstat(LOCK_DIR)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
        raise SandboxError(f"{LOCK_DIR} must be a folder of the grader's own user with mode 0700; "
                           "remove it and run again")
    return LOCK_DIR


@contextmanager
def uid_slot() -> Iterator[int]:
    """A uid no other sandbox of this machine holds until the block ends."""
    folder = _lock_dir()
    start = os.getpid() % SLOTS  # spread concurrent graders over the slots
    for offset in range(SLOTS):
        slot = (start + offset) % SLOTS
        fd = os.open(folder / f"{slot}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        try:
            yield UID_BASE + slot
        finally:
            os.close(fd)  # closing releases the lock
        return
    raise SandboxError(f"all {SLOTS} sandbox user ids are in use")

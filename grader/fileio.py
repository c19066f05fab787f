"""Writing files so that a crash never leaves a half-written one: temporary name, fsync, rename."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Callable


def write_atomic(path: Path, write: Callable[[io.BufferedWriter], None]) -> Path:
    """Call `write` on a temporary file beside `path`, fsync it, and rename it to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp's 0600 would hide reports from a web server or a TA
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def publish_folder(folder: Path, fill: Callable[[Path], None], prefix: str = ".staging-", mode: int = 0o755) -> Path:
    """Call `fill` on a staging folder beside `folder`, then rename it to `folder` with `mode`, so
    concurrent graders never read half of one. Another grader that published first wins; the staging
    folder is removed whatever happens."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=prefix, dir=folder.parent))
    try:
        fill(staging)
        staging.chmod(mode)  # mkdtemp makes it 0700
        try:
            staging.rename(folder)
        except OSError:  # another grader published it first
            pass
    finally:
        remove_tree(staging)
    return folder


def make_private(folder: Path) -> None:
    """Mode 0700 for a folder of the grader's secrets whose mode lets others in (one made by an earlier
    version, or by another step with the default mode); left alone where it is not ours to change."""
    try:
        if Path(folder).stat().st_mode & 0o077:
            Path(folder).chmod(0o700)
    except OSError:
        pass


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_text_atomic(path: Path, text: str) -> Path:
    """`text` as UTF-8. A lone surrogate (which a submission's JSON-escaped message decodes to) is
    written as `?` rather than failing the write, and with it a whole batch."""
    return write_atomic(path, lambda handle: handle.write(text.encode("utf-8", "replace")))


def remove_tree(path: Path) -> bool:
    """Remove a folder and everything in it, however deep it nests and however long its paths grow (a
    submission's scratch folder may hold a chain of folders made to break a recursive walk, which
    `shutil.rmtree` is before Python 3.12). One folder is open at a time: the walk climbs back by
    `..` and remembers only names. Best effort, like `rmtree(ignore_errors=True)`: returns whether
    the folder is gone; never follows a link."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    names: list[str] = []  # the folders below `path` leading to `fd`
    try:
        while True:
            child = _empty_but_folders(fd)
            if child is not None:
                os.chmod(child, 0o700, dir_fd=fd)  # a folder its owner made unreadable
                below = os.open(child, flags, dir_fd=fd)
                os.close(fd)
                fd, names = below, [*names, child]
                continue
            if not names:
                break
            above = os.open("..", flags, dir_fd=fd)
            os.close(fd)
            fd = above
            os.rmdir(names.pop(), dir_fd=fd)
    except OSError:
        return False
    finally:
        os.close(fd)
    try:
        os.rmdir(path)
    except OSError:
        return False
    return True


def _empty_but_folders(fd: int) -> str | None:
    """Unlink everything in the open folder `fd` but folders; the name of one folder left, if any."""
    with os.scandir(fd) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                return entry.name
            os.unlink(entry.name, dir_fd=fd)
    return None

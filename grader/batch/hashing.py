"""The content hash of a submission: what the gradebook compares to skip an unchanged submission, and
what a grading's seed is drawn from. The coordinator computes it over student-made folders, so the
walk is iterative and bounded, opens regular files alone, and takes every name as bytes."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

MAX_DEPTH = 64  # folders inside folders; staging refuses far less than this anyway
MAX_ENTRIES = 50_000  # files, folders and links together
MAX_BYTES = 4 * 2 ** 30  # of file contents read
BLOCK = 1 << 20
VERSION = b"submission-hash/2"


class SubmissionHashError(ValueError):
    """A submission too deep, too large or unreadable to hash; the message says what to change."""


def _field(data: bytes) -> bytes:
    """One length-prefixed field, so that no two different entries frame to the same bytes."""
    return len(data).to_bytes(8, "big") + data


def _shown(relative: bytes) -> str:
    text = os.fsdecode(relative).encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= 80 else f"{text[:36]}…{text[-36:]}"


class _Walk:
    """Feeds a digest with each entry under a folder, iteratively, in byte order of the relative names."""

    def __init__(self, digest: "hashlib._Hash"):
        self.digest = digest
        self.entries = 0
        self.bytes = 0

    def entry(self, kind: bytes, name: bytes, content: bytes) -> None:
        self.entries += 1
        if self.entries > MAX_ENTRIES:
            raise SubmissionHashError(f"the submission holds more than {MAX_ENTRIES} files and folders; submit the "
                                      "notebook or module with only the files it needs")
        self.digest.update(kind + _field(name) + _field(content))

    def file(self, path: bytes, name: bytes, follow: bool = False) -> None:
        """A regular file, by its content; opened without blocking, and without following a link unless
        `follow` (the submission itself, which the instructor may have linked)."""
        flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
        try:
            fd = os.open(path, flags)
        except OSError as err:
            raise SubmissionHashError(f"{_shown(name)} in the submission could not be read ({err.strerror})") from err
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):  # replaced by something else since it was listed
                self.entry(b"s", name, b"")
                return
            content = hashlib.sha256()
            size = 0
            while block := os.read(fd, BLOCK):
                size += len(block)
                self.bytes += len(block)
                if self.bytes > MAX_BYTES:
                    raise SubmissionHashError(f"the submission's files hold more than {MAX_BYTES // 2 ** 30} GiB; "
                                              "leave data sets and checkpoints other than model.pt out of it")
                content.update(block)
        except OSError as err:
            raise SubmissionHashError(f"{_shown(name)} in the submission could not be read ({err.strerror})") from err
        finally:
            os.close(fd)
        self.entry(b"f", name, size.to_bytes(8, "big") + content.digest())

    def one(self, path: bytes, name: bytes, mode: int, follow: bool = False) -> None:
        """A file, a link (by its target text) or anything else (by its name alone: never opened)."""
        if stat.S_ISREG(mode):
            self.file(path, name, follow)
        elif stat.S_ISLNK(mode):
            self.entry(b"l", name, os.readlink(path))
        else:
            self.entry(b"s", name, b"")

    def folder(self, root: bytes) -> None:
        pending = [(b"", 0)]  # relative folders still to list, with their depth
        while pending:
            relative, depth = pending.pop()
            if depth > MAX_DEPTH:
                raise SubmissionHashError(f"the submission nests folders more than {MAX_DEPTH} levels deep (at "
                                          f"{_shown(relative)}); keep its folders shallow")
            where = os.path.join(root, relative) if relative else root
            try:
                with os.scandir(where) as listing:
                    children = sorted((entry.name, entry.stat(follow_symlinks=False).st_mode) for entry in listing)
            except OSError as err:
                raise SubmissionHashError(f"the folder {_shown(relative or b'.')} in the submission could not be "
                                          f"read ({err.strerror})") from err
            subfolders = []
            for child, mode in children:
                name = os.path.join(relative, child) if relative else child
                if stat.S_ISDIR(mode):
                    self.entry(b"d", name, b"")
                    subfolders.append(name)
                else:
                    self.one(os.path.join(root, name), name, mode)
            pending.extend((name, depth + 1) for name in reversed(subfolders))


def submission_hash(path: Path) -> str:
    """SHA-256 over a submission's entries: for each, its kind, its name relative to the submission (as
    bytes) and its content (a file's size and SHA-256, a link's target text), every field
    length-prefixed. A missing path hashes as empty; raises `SubmissionHashError` past the bounds."""
    digest = hashlib.sha256(VERSION)
    raw = os.fsencode(path)
    try:
        info = os.stat(raw)  # the submission itself may be a link the instructor made
    except FileNotFoundError:
        return digest.hexdigest()
    except OSError as err:
        raise SubmissionHashError(f"the submission could not be read ({err.strerror})") from err
    walk = _Walk(digest)
    if stat.S_ISDIR(info.st_mode):
        walk.folder(raw)
    else:
        walk.one(raw, os.path.basename(raw), info.st_mode, follow=True)
    return digest.hexdigest()

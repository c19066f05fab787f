"""The assignment's secret: 128 random bits in the git-ignored `hidden/secret`, made once by
`grader assign` or the first grading. The held-out set and every grading's drawn cases derive from
it, so neither can be regenerated from anything public."""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import tempfile
from pathlib import Path

from grader.assignments.config import Assignment, AssignmentError
from grader.fileio import make_private

SECRET_FILE = "secret"
SECRET_BYTES = 16
_HEX = re.compile(rf"^[0-9a-f]{{{2 * SECRET_BYTES}}}$")
SEED_BITS = 53  # a grading's seed stays exact in any JSON reader (JavaScript's integers)


def secret_path(assignment: Assignment) -> Path:
    return assignment.hidden_dir / SECRET_FILE


def _parse(path: Path) -> bytes:
    text = path.read_text(errors="replace").strip()
    if not _HEX.match(text):
        raise AssignmentError(f"{path} is not {2 * SECRET_BYTES} hexadecimal digits; restore it from a backup. "
                              "Deleting it draws a new secret, which changes the held-out set and every "
                              "grading's drawn cases, so every submission must be graded again")
    return bytes.fromhex(text)


def read_secret(assignment: Assignment) -> bytes | None:
    """The secret, or None where none was drawn (a student's release)."""
    path = secret_path(assignment)
    return _parse(path) if path.is_file() else None


def ensure_secret(assignment: Assignment) -> bytes:
    """The secret, drawn now if there is none. Concurrent graders agree on one: each writes its
    draw to a private temporary file and links it into place, which fails if another got there
    first (O_EXCL semantics, and the file is whole the moment it appears); losers read the winner's."""
    path = secret_path(assignment)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    make_private(path.parent)  # hidden/: the grader's user's alone, whoever made it first
    if path.is_file():
        return _parse(path)
    fd, temporary = tempfile.mkstemp(prefix=".secret-", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_bytes(SECRET_BYTES).hex() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another grader drew first: theirs is the secret
    finally:
        os.unlink(temporary)
    return _parse(path)


def secret_digest(assignment: Assignment) -> str:
    """A digest that names the secret without revealing it ("" where there is none)."""
    secret = read_secret(assignment)
    return "" if secret is None else hashlib.sha256(b"unet-grader secret\0" + secret).hexdigest()[:16]


def derive_seed(secret: bytes | None, submission_digest: str) -> int:
    """The seed of one grading's drawn cases: the same submission under the same secret always
    draws the same cases; without the secret nobody can tell which."""
    digest = hashlib.sha256(b"unet-grader cases\0" + (secret or b"") + b"\0" + submission_digest.encode()).digest()
    return int.from_bytes(digest[:8], "big") >> (64 - SEED_BITS)

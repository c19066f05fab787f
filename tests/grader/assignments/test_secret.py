"""The assignment's secret: drawn once, agreed on by concurrent graders, never guessable from
anything committed, and the root of the held-out set, the drawn cases and the fingerprint."""

from __future__ import annotations

import os
import re
import stat
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from grader.assignments import AssignmentError, derive_seed, ensure_secret, fingerprint, load_assignment, read_secret
from grader.assignments.secret import secret_digest, secret_path

TOML = 'name = "tiny"\nsuite = "suite"\n'


def tiny_assignment(folder: Path, extra: str = "") -> Path:
    """A minimal assignment folder (an empty suite) in `folder`."""
    (folder / "suite").mkdir(parents=True, exist_ok=True)
    (folder / "assignment.toml").write_text(TOML + extra)
    return folder


def test_the_secret_is_drawn_once_private_and_128_bits(tmp_path):
    assignment = load_assignment(tiny_assignment(tmp_path))
    assert read_secret(assignment) is None and secret_digest(assignment) == ""
    secret = ensure_secret(assignment)
    assert len(secret) == 16 and ensure_secret(assignment) == secret == read_secret(assignment)
    path = secret_path(assignment)
    assert path == tmp_path / "hidden" / "secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["secret"]  # no temporary file left
    assert secret.hex() not in secret_digest(assignment)


def _draw(folder: str) -> bytes:
    return ensure_secret(load_assignment(Path(folder)))


def test_concurrent_graders_agree_on_one_secret(tmp_path):
    tiny_assignment(tmp_path)
    with ProcessPoolExecutor(max_workers=8) as pool:
        secrets = set(pool.map(_draw, [str(tmp_path)] * 32))
    assert len(secrets) == 1
    assert sorted(p.name for p in (tmp_path / "hidden").iterdir()) == ["secret"]


def test_a_damaged_secret_is_named_with_what_to_do(tmp_path):
    assignment = load_assignment(tiny_assignment(tmp_path))
    secret_path(assignment).parent.mkdir()
    secret_path(assignment).write_text("not hex\n")
    with pytest.raises(AssignmentError, match="is not 32 hexadecimal digits; restore it from a backup"):
        ensure_secret(assignment)


def test_seeds_follow_the_secret_and_the_submission():
    a, b = bytes(16), bytes(range(16))
    assert derive_seed(a, "abc") == derive_seed(a, "abc")
    assert len({derive_seed(a, "abc"), derive_seed(b, "abc"), derive_seed(a, "abd"), derive_seed(None, "abc")}) == 4
    assert all(0 <= derive_seed(bytes([i]) * 16, "x") < 2 ** 53 for i in range(50))


def test_the_fingerprint_changes_with_the_secret(tmp_path):
    assignment = load_assignment(tiny_assignment(tmp_path))
    before = fingerprint(assignment)
    ensure_secret(assignment)
    drawn = fingerprint(assignment)
    os.unlink(secret_path(assignment))
    ensure_secret(assignment)
    assert len({before, drawn, fingerprint(assignment)}) == 3


def test_a_toml_that_still_has_a_heldout_seed_says_what_to_do(tmp_path):
    with pytest.raises(AssignmentError, match=r"assignment.toml: heldout.seed is not a setting.*Delete the line"):
        load_assignment(tiny_assignment(tmp_path, "[heldout]\nseed = 81731\n"))


def test_the_committed_assignment_has_no_seed_and_its_folder_ignores_hidden(assignment):
    text = (assignment.folder / "assignment.toml").read_text()
    assert not re.search(r"^\s*seed\s*=", text, re.M)
    assert "hidden/" in (assignment.folder / ".gitignore").read_text().splitlines()

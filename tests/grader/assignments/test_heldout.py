"""The held-out set: drawn from the assignment's secret (so a committed file cannot regenerate it),
cached under a digest, made all at once or not at all; or an instructor's folder of real data,
validated with errors that say what to fix."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from PIL import Image

from grader.assignments import AssignmentError, ensure_secret, load_assignment, load_heldout
from grader.assignments import heldout as heldout_module
from grader.assignments.secret import secret_path
from tests.grader.assignments.test_secret import tiny_assignment

SMALL = "[heldout]\ncount = 3\nsizes = [[32, 40], [24, 24]]\n"


def test_the_synthetic_set_is_drawn_from_the_secret_and_cached_under_a_digest(tmp_path):
    assignment = load_assignment(tiny_assignment(tmp_path / "a", SMALL))
    first = load_heldout(assignment)
    assert len(first.names) == 3 and [m.shape for m in first.masks] == [(32, 40), (24, 24), (32, 40)]
    assert all(i.shape == (3, *m.shape) and i.dtype == np.float32 for i, m in zip(first.images, first.masks))
    assert first.groups() == [[0, 2], [1]]
    secret = ensure_secret(assignment)
    cached = [p for p in assignment.hidden_dir.iterdir() if p.name != "secret"]
    assert len(cached) == 1 and cached[0].name.startswith("heldout-")
    assert secret.hex() not in cached[0].name and str(int.from_bytes(secret, "big")) not in cached[0].name
    again = load_heldout(assignment)
    assert all(np.array_equal(a, b) for a, b in zip(first.masks, again.masks))

    secret_path(assignment).unlink()  # a new secret: a new held-out set
    redrawn = load_heldout(load_assignment(assignment.folder))
    assert not all(np.array_equal(a, b) for a, b in zip(first.images, redrawn.images))


def test_the_held_out_masks_and_the_secret_are_for_the_graders_user_alone(tmp_path):
    # On a shared grading host, another local user must not read the held-out masks (or the secret).
    assignment = load_assignment(tiny_assignment(tmp_path / "a", SMALL))
    load_heldout(assignment)
    cached = next(p for p in assignment.hidden_dir.iterdir() if p.name.startswith("heldout-"))
    assert [oct(p.stat().st_mode & 0o777) for p in (assignment.hidden_dir, cached, secret_path(assignment))] == [
        "0o700", "0o700", "0o600"]
    cached.chmod(0o755)  # a cache made by an earlier version, hidden/ by a step with the default mode
    assignment.hidden_dir.chmod(0o755)
    load_heldout(assignment)
    assert oct(cached.stat().st_mode & 0o777) == oct(assignment.hidden_dir.stat().st_mode & 0o777) == "0o700"


def test_the_same_secret_gives_the_same_set_anywhere(tmp_path):
    one = load_assignment(tiny_assignment(tmp_path / "one", SMALL))
    two = load_assignment(tiny_assignment(tmp_path / "two", SMALL))
    ensure_secret(one)
    secret_path(two).parent.mkdir()
    secret_path(two).write_bytes(secret_path(one).read_bytes())
    assert all(np.array_equal(a, b) for a, b in zip(load_heldout(one).images, load_heldout(two).images))


def test_a_failed_generation_leaves_no_staging_folder(tmp_path, monkeypatch):
    assignment = load_assignment(tiny_assignment(tmp_path, SMALL))

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(heldout_module, "_generator", lambda assignment: broken)
    with pytest.raises(RuntimeError, match="disk full"):
        load_heldout(assignment)
    assert sorted(p.name for p in assignment.hidden_dir.iterdir()) == ["secret"]


def test_without_the_reference_package_the_error_says_what_to_do(tmp_path, monkeypatch):
    assignment = load_assignment(tiny_assignment(tmp_path, SMALL))
    monkeypatch.setitem(sys.modules, "reference", None)  # not importable, as from the grader's wheel
    monkeypatch.setitem(sys.modules, "reference.synthetic", None)
    with pytest.raises(AssignmentError) as info:
        load_heldout(assignment)
    message = str(info.value)
    assert "no project checkout (a folder with reference/__init__.py) holds" in message
    assert "copy its hidden/ folder here" in message and "heldout.folder" in message
    assert sorted(p.name for p in assignment.hidden_dir.iterdir()) == ["secret"]


def test_the_checkout_is_found_above_the_assignment(assignment, tmp_path):
    from grader.assignments.heldout import checkout_root

    assert checkout_root(assignment.folder) == assignment.folder.parents[1]
    assert checkout_root(tmp_path) is None


def _real_folder(root, masks=None, images=None):
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    for name, mask in (masks or {"a": rng.integers(0, 3, (20, 30)), "b": rng.integers(0, 3, (16, 16))}).items():
        shape = (images or {}).get(name, mask.shape[:2])
        Image.fromarray(rng.integers(0, 256, (*shape, 3)).astype(np.uint8)).save(root / "images" / f"{name}.png")
        Image.fromarray(np.asarray(mask).astype(np.uint8)).save(root / "masks" / f"{name}.png")
    return root


def test_an_instructor_folder_of_real_data_is_used_as_is(tmp_path):
    _real_folder(tmp_path / "a" / "real")
    assignment = load_assignment(tiny_assignment(tmp_path / "a", '[heldout]\nfolder = "real"\n'))
    held = load_heldout(assignment)
    assert held.names == ("a", "b") and [m.shape for m in held.masks] == [(20, 30), (16, 16)]
    assert not assignment.hidden_dir.exists()  # no secret needed, nothing generated


@pytest.mark.parametrize("make,message", [
    (lambda root: None, "heldout.folder 'real' is not a folder"),
    (lambda root: (root / "images").mkdir(parents=True), "has no masks/ folder"),
    (lambda root: (_real_folder(root), (root / "masks" / "b.png").unlink()), "images/b.png has no partner in masks/"),
    (lambda root: _real_folder(root, {"a": np.full((8, 8), 3)}), "holds label 3; labels must be 0 to 2"),
    (lambda root: _real_folder(root, {"a": np.zeros((8, 8, 3))}), "must be a single-channel mask"),
    (lambda root: _real_folder(root, {"a": np.zeros((8, 8))}, {"a": (8, 9)}), "a.png is 8×8 but its image is 8×9"),
])
def test_a_broken_instructor_folder_is_named_with_what_to_fix(tmp_path, make, message):
    make(tmp_path / "real")
    with pytest.raises(AssignmentError, match=message):
        load_heldout(load_assignment(tiny_assignment(tmp_path, '[heldout]\nfolder = "real"\n')))

import os

import pytest

from grader.fileio import publish_folder, remove_tree, write_text_atomic


def test_text_with_a_lone_surrogate_is_written_rather_than_failing(tmp_path):
    # A submission's message escaped as "\ud800" in the exchange's JSON decodes to a lone surrogate,
    # which UTF-8 cannot encode: writing its report stopped the whole batch.
    path = write_text_atomic(tmp_path / "report.html", "bad \ud800 value \u00e9")
    assert path.read_text(encoding="utf-8") == "bad ? value \u00e9"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]  # no temporary left behind


def test_a_tree_deeper_and_longer_than_a_recursive_walk_or_a_path_allows_is_removed(tmp_path):
    # 3000 folders of 200-character names: 600,000 characters of path, past PATH_MAX and the recursion limit.
    root = tmp_path / "work"
    root.mkdir()
    fd = os.open(root, os.O_RDONLY)
    for _ in range(3000):
        os.mkdir("n" * 200, dir_fd=fd)
        os.close(os.open("file", os.O_WRONLY | os.O_CREAT, dir_fd=fd))
        below = os.open("n" * 200, os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = below
    os.symlink(tmp_path / "outside", "link", dir_fd=fd)
    os.mkdir("locked", mode=0, dir_fd=fd)
    os.close(fd)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "keep").write_text("kept")
    assert remove_tree(root) and not root.exists()
    assert (tmp_path / "outside" / "keep").read_text() == "kept"  # the link is removed, not followed
    assert remove_tree(tmp_path / "never there")


def test_a_published_folder_appears_whole_and_a_failed_fill_leaves_nothing(tmp_path):
    target = tmp_path / "cache" / "split"

    def fill(staging):
        assert not target.exists()  # nobody can read it half-written
        (staging / "a.txt").write_text("a")

    assert publish_folder(target, fill) == target
    assert (target / "a.txt").read_text() == "a" and oct(target.stat().st_mode & 0o777) == "0o755"

    def broken(staging):
        (staging / "b.txt").write_text("b")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        publish_folder(tmp_path / "other", broken)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["split"]


def test_the_first_published_folder_wins_and_the_second_is_discarded(tmp_path):
    target = tmp_path / "split"
    publish_folder(target, lambda staging: (staging / "first").write_text("1"))
    publish_folder(target, lambda staging: (staging / "second").write_text("2"))
    assert [p.name for p in target.iterdir()] == ["first"]
    assert [p.name for p in tmp_path.iterdir()] == ["split"]

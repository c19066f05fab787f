import json

import nbformat
import pytest

from grader.execution import NoSubmissionFile, NotebookUnreadable, stage


def test_a_folder_with_one_notebook_and_model_is_staged(tmp_path):
    src = tmp_path / "alice"
    src.mkdir()
    nbformat.write(nbformat.v4.new_notebook(), src / "unet.ipynb")
    (src / "model.pt").write_bytes(b"weights")
    (src / "notes.txt").write_text("hi")
    staged = stage(src, tmp_path / "scratch")
    assert (staged.kind, staged.entry, staged.has_model) == ("notebook", "unet.ipynb", True)
    assert (tmp_path / "scratch" / "notes.txt").exists()


def test_a_single_module_file(tmp_path):
    (tmp_path / "solution.py").write_text("x = 1\n")
    staged = stage(tmp_path / "solution.py", tmp_path / "scratch")
    assert (staged.kind, staged.entry, staged.has_model) == ("module", "solution.py", False)


def test_symlinks_are_copied_as_links_not_followed(tmp_path):
    src = tmp_path / "bob"
    src.mkdir()
    (src / "submission.py").write_text("x = 1\n")
    secret = tmp_path / "secret.txt"
    secret.write_text("answer key")
    (src / "link.txt").symlink_to(secret)
    (src / "model.pt").symlink_to(secret)
    staged = stage(src, tmp_path / "scratch")
    assert (tmp_path / "scratch" / "link.txt").is_symlink()
    assert not staged.has_model  # a linked model.pt is not the student's file


@pytest.mark.parametrize("files,message", [
    ({}, "holds no .ipynb notebook and no .py module"),
    ({"a.ipynb": None, "b.ipynb": None}, r"holds several notebooks \(a.ipynb, b.ipynb\)"),
    ({"a.py": "", "b.py": ""}, "name the one to grade submission.py"),
])
def test_ambiguous_or_empty_folders_say_what_to_do(tmp_path, files, message):
    src = tmp_path / "carol"
    src.mkdir()
    for name, text in files.items():
        if name.endswith(".ipynb"):
            nbformat.write(nbformat.v4.new_notebook(), src / name)
        else:
            (src / name).write_text(text)
    with pytest.raises(NoSubmissionFile, match=message):
        stage(src, tmp_path / "scratch")


def test_a_broken_notebook_is_named_with_a_fix(tmp_path):
    (tmp_path / "hw.ipynb").write_text(json.dumps({"cells": "not a list"}))
    with pytest.raises(NotebookUnreadable, match="hw.ipynb is not a valid notebook .* save it again"):
        stage(tmp_path / "hw.ipynb", tmp_path / "scratch")


def test_a_missing_path_is_a_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        stage(tmp_path / "nope", tmp_path / "scratch")


def test_several_weight_files_count_as_trained_only_when_all_are_there(tmp_path):
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "compare.ipynb").write_text(json.dumps(nbformat.v4.new_notebook()))
    (sub / "model_resnet18.pt").write_bytes(b"x")
    models = ("model_resnet18.pt", "model_resnet34.pt")
    assert not stage(sub, tmp_path / "a", models).has_model
    (sub / "model_resnet34.pt").write_bytes(b"x")
    assert stage(sub, tmp_path / "b", models).has_model

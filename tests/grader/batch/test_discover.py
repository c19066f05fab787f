import zipfile

import pytest

from grader.batch import BatchInputError, discover, submission_hash


def touch(path, text="x = 1\n"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_a_folder_per_student_and_loose_files(tmp_path):
    touch(tmp_path / "in" / "ada" / "notebook.ipynb", "{}")
    touch(tmp_path / "in" / "alan.py")
    touch(tmp_path / "in" / "notes.txt")
    touch(tmp_path / "in" / ".hidden" / "x.py")
    subs = discover(tmp_path / "in", tmp_path / "out")
    assert [(s.student, s.path.name) for s in subs] == [("ada", "ada"), ("alan", "alan.py")]


def test_the_output_folder_inside_the_batch_folder_is_not_a_student(tmp_path):
    touch(tmp_path / "in" / "ada.py")
    touch(tmp_path / "in" / "graded" / "ada" / "results.json")
    assert [s.student for s in discover(tmp_path / "in", tmp_path / "in" / "graded")] == ["ada"]


def test_canvas_files_are_gathered_per_student_under_their_original_names(tmp_path):
    touch(tmp_path / "in" / "lovelaceada_1234_5678_unet_urothelial.ipynb", "{}")
    touch(tmp_path / "in" / "lovelaceada_1234_5690_model-1.pt", "weights")
    touch(tmp_path / "in" / "turingalan_LATE_4321_8765_unet_urothelial.ipynb", "{}")
    subs = {s.student: s for s in discover(tmp_path / "in", tmp_path / "out")}
    assert set(subs) == {"lovelaceada_1234", "turingalan_4321"}
    ada = subs["lovelaceada_1234"]
    assert ada.identity.lms_id == "1234" and ada.path.is_dir()
    assert sorted(p.name for p in ada.path.iterdir()) == ["model.pt", "unet_urothelial.ipynb"]
    alan = subs["turingalan_4321"]
    assert alan.path.name == "unet_urothelial.ipynb" and alan.identity.lms_id == "4321"


def test_a_canvas_zip_download_is_unpacked(tmp_path):
    archive = tmp_path / "submissions.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("lovelaceada_1234_5678_solution.py", "x = 1\n")
        zf.writestr("hopperg_99_100_solution.py", "x = 2\n")
    subs = discover(archive, tmp_path / "out")
    assert [s.student for s in subs] == ["hopperg_99", "lovelaceada_1234"]
    assert subs[1].path.read_text() == "x = 1\n"


def test_moodle_folders_and_prefixed_files(tmp_path):
    touch(tmp_path / "in" / "Ada Lovelace_123456_assignsubmission_file_" / "unet.ipynb", "{}")
    touch(tmp_path / "in" / "Alan Turing_654321_assignsubmission_file_solution.py")
    subs = {s.student: s for s in discover(tmp_path / "in", tmp_path / "out")}
    assert subs["Ada_Lovelace_123456"].identity.display_name == "Ada Lovelace"
    assert subs["Ada_Lovelace_123456"].path.name.endswith("assignsubmission_file_")
    assert subs["Alan_Turing_654321"].path.name == "solution.py"


def test_a_zip_that_escapes_its_folder_is_refused(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../../outside.py", "x = 1\n")
    with pytest.raises(BatchInputError, match="leaves the folder"):
        discover(archive, tmp_path / "out")
    assert not (tmp_path / "outside.py").exists()


def test_two_entries_for_one_student_and_missing_folders_are_clear_errors(tmp_path):
    touch(tmp_path / "in" / "ada.py")
    touch(tmp_path / "in" / "ada" / "x.py")
    with pytest.raises(BatchInputError, match="rename one"):
        discover(tmp_path / "in", tmp_path / "out")
    with pytest.raises(BatchInputError, match="no such folder"):
        discover(tmp_path / "nope", tmp_path / "out")
    touch(tmp_path / "grades.csv")
    with pytest.raises(BatchInputError, match="expected a folder"):
        discover(tmp_path / "grades.csv", tmp_path / "out")


def test_the_submission_hash_follows_content_and_names(tmp_path):
    a = touch(tmp_path / "a" / "s.py", "x = 1\n").parent
    b = touch(tmp_path / "b" / "s.py", "x = 1\n").parent
    assert submission_hash(a) == submission_hash(b)
    touch(b / "model.pt", "w")
    assert submission_hash(a) != submission_hash(b)

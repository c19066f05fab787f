import os
import threading
import zipfile

import pytest

from grader.batch import BatchInputError, discover, submission_hash
from grader.batch.hashing import MAX_DEPTH, SubmissionHashError
from grader.batch.layout import LOCK_FILE, SUBMISSIONS_DIR, WORK_DIR, is_reserved, student_key
from grader.gradebook import GRADEBOOK_FILE, RUBRIC_CSV
from grader.gradebook.exports import CANVAS_CSV, GRADEBOOK_CSV, JUNIT_XML
from grader.reports import SUMMARY_HTML, SUMMARY_MD
from tests.grader.batch.hostile import nested, not_utf8, remove_nested


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


@pytest.fixture
def deep_submission(tmp_path):
    """A right submission beside a chain of 1000 nested folders, the red team's `deep_folder`."""
    submission = touch(tmp_path / "mallory" / "submission.py").parent
    yield nested(submission)
    remove_nested(submission)


def test_a_folder_chain_a_thousand_deep_is_refused_without_recursion(tmp_path, deep_submission):
    with pytest.raises(SubmissionHashError, match=f"more than {MAX_DEPTH} levels deep .*keep its folders shallow"):
        submission_hash(deep_submission)
    shallow = touch(tmp_path / "alice" / "submission.py").parent
    plain = touch(tmp_path / "b" / "submission.py").parent
    assert submission_hash(nested(shallow, MAX_DEPTH)) != submission_hash(plain)  # as deep as allowed


def test_a_fifo_in_the_submission_is_hashed_by_name_and_never_opened(tmp_path):
    submission = touch(tmp_path / "mallory" / "submission.py").parent
    os.mkfifo(submission / "history.csv")
    done = []
    worker = threading.Thread(target=lambda: done.append(submission_hash(submission)), daemon=True)
    worker.start()
    worker.join(10)
    if worker.is_alive():  # blocked opening the FIFO: a writer releases it before failing
        os.close(os.open(submission / "history.csv", os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("submission_hash opened a FIFO and blocked")
    plain = touch(tmp_path / "alice" / "submission.py").parent
    assert done and done[0] != submission_hash(plain)


def test_file_names_that_are_not_utf8_are_hashed_as_bytes(tmp_path):
    submission = touch(tmp_path / "mallory" / "submission.py").parent
    other = touch(tmp_path / "other" / "submission.py").parent
    not_utf8(submission, b"notes-\xff.txt").write_text("x")
    not_utf8(other, b"notes-\xfe.txt").write_text("x")
    assert submission_hash(submission) != submission_hash(other)


def test_the_hash_frames_every_name_and_content_apart(tmp_path):
    # Without length prefixes, each pair below fed the digest the same bytes.
    one = tmp_path / "one"
    one.mkdir()
    (one / "a").write_bytes(b"x\0b\0y")
    two = tmp_path / "two"
    two.mkdir()
    (two / "a").write_bytes(b"x")
    (two / "b").write_bytes(b"y")
    assert submission_hash(one) != submission_hash(two)
    link, text = tmp_path / "link", tmp_path / "text"
    link.mkdir()
    text.mkdir()
    (link / "s.py").symlink_to("target")
    (text / "s.py").write_bytes(b"link:target")
    assert submission_hash(link) != submission_hash(text)
    empty_folder, empty_file = tmp_path / "folder", tmp_path / "file"
    (empty_folder / "x").mkdir(parents=True)
    empty_file.mkdir()
    (empty_file / "x").write_bytes(b"")
    assert submission_hash(empty_folder) != submission_hash(empty_file)


def test_the_hash_is_stable_and_a_missing_path_hashes_as_empty(tmp_path):
    a = touch(tmp_path / "a" / "sub" / "s.py", "x = 1\n").parent.parent
    assert submission_hash(a) == submission_hash(a)
    assert submission_hash(tmp_path / "nothing") == submission_hash(tmp_path / "nothing either")


@pytest.mark.parametrize("name", ["gradebook.sqlite", "gradebook.sqlite-wal", "summary.html", "Summary.HTML",
                                  "junit.xml", "canvas.csv", "gradebook.csv", "summary.md", "rubric.csv"])
def test_a_student_named_like_a_batch_file_gets_a_key_of_their_own(tmp_path, name):
    assert is_reserved(name) and student_key(name) == f"{name}_student" and not is_reserved(student_key(name))
    touch(tmp_path / "in" / name / "submission.py")
    touch(tmp_path / "in" / "alice.py")
    subs = discover(tmp_path / "in", tmp_path / "out")
    assert {(s.student, s.identity.display_name) for s in subs} == {("alice", "alice"), (f"{name}_student", name)}
    assert [s.student for s in discover(tmp_path / "in", tmp_path / "out")] == [s.student for s in subs]  # stable


def test_every_name_the_batch_writes_is_reserved():
    for name in (GRADEBOOK_FILE, GRADEBOOK_CSV, CANVAS_CSV, JUNIT_XML, SUMMARY_HTML, SUMMARY_MD, RUBRIC_CSV,
                 SUBMISSIONS_DIR, WORK_DIR, LOCK_FILE, "_anything", ".anything"):
        assert is_reserved(name), name
    assert student_key("junit.xml") == "junit.xml_student" and student_key("_submissions") == "submissions"
    assert not is_reserved("alice") and student_key("Ada Lovelace") == "Ada_Lovelace"


def test_a_name_that_is_not_utf8_is_shown_readably(tmp_path):
    touch(not_utf8(tmp_path / "in", b"Jos\xe9") / "submission.py")
    (sub,) = discover(tmp_path / "in", tmp_path / "out")
    assert sub.student == "Jos" and sub.identity.display_name == "Jos\ufffd"
    sub.identity.display_name.encode("utf-8")  # writable anywhere

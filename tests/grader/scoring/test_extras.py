from grader.scoring.extras import (MAX_HISTORY_POINTS, MAX_HISTORY_ROWS, MAX_HISTORY_SERIES, Extras, parse_history,
                                   read_extras)


def test_a_small_history_is_kept_whole_without_a_note():
    history, note = parse_history("epoch,train_loss,name,val_dice\n1,0.9,a,0.5\n2,0.5,b,0.7\n")
    assert history == (("epoch", (1.0, 2.0)), ("train_loss", (0.9, 0.5)), ("val_dice", (0.5, 0.7))) and note == ""


def test_a_wide_history_keeps_the_epoch_and_the_first_columns_and_says_so():
    names = ["step", *(f"c{k}" for k in range(5000)), "epoch"]
    text = ",".join(names) + "\n" + "\n".join(",".join([str(row)] * len(names)) for row in range(3)) + "\n"
    history, note = parse_history(text)
    assert [name for name, _ in history] == ["epoch", "step", *(f"c{k}" for k in range(MAX_HISTORY_SERIES - 1))]
    assert note == (f"history.csv is larger than a report shows: only its first {MAX_HISTORY_SERIES} numeric "
                    f"columns are drawn (it has {len(names)} columns).")


def test_a_long_history_is_thinned_evenly_keeping_the_first_and_last_epoch():
    text = "epoch,loss\n" + "".join(f"{k},{1 / (k + 1)}\n" for k in range(1, 9001))
    history, note = parse_history(text)
    epochs = dict(history)["epoch"]
    assert len(epochs) == MAX_HISTORY_POINTS and epochs[0] == 1 and epochs[-1] == MAX_HISTORY_ROWS
    assert f"only its first {MAX_HISTORY_ROWS} rows are read" in note
    assert f"{MAX_HISTORY_POINTS} of the {MAX_HISTORY_ROWS} rows read are drawn, evenly spaced" in note


def test_a_field_too_long_for_the_csv_module_is_a_note_not_a_crash(tmp_path):
    # csv raises on fields over 128 KiB: grading the submission failed in the grader, on every run.
    (tmp_path / "history.csv").write_text("epoch,loss\n1," + "9" * 200_000 + "\n")
    (tmp_path / "submission.py").write_text("x = 1\n")
    extras = read_extras(tmp_path, "submission.py")
    assert extras.history == () and "could not be read as a CSV file" in extras.history_note


def test_the_note_travels_through_the_gradebook_json():
    extras = Extras((("epoch", (1.0,)),), "why", "history.csv is larger than a report shows: ...")
    assert Extras.from_json(extras.to_json()) == extras
    assert Extras.from_json({"history": {"epoch": [1.0]}, "analysis": "old row"}).history_note == ""


def test_the_written_answer_comes_from_the_file_or_cells_the_assignment_names(tmp_path):
    from grader.assignments.config import SubmissionFiles

    (tmp_path / "comparison.md").write_text("ResNet18 did best on cytoplasm.")
    (tmp_path / "failure_analysis.md").write_text("not this one")
    assert read_extras(tmp_path, "submission.py", SubmissionFiles(answer_file="comparison.md")).analysis == \
        "ResNet18 did best on cytoplasm."
    assert read_extras(tmp_path, "submission.py").analysis == ""  # nothing named: nothing read
    notebook = {"cells": [{"cell_type": "markdown", "metadata": {"tags": ["my_answer"]}, "source": ["Merged nuclei."]}]}
    (tmp_path / "nb.ipynb").write_text(__import__("json").dumps(notebook))
    assert read_extras(tmp_path, "nb.ipynb", SubmissionFiles(answer_tag="my_answer")).analysis == "Merged nuclei."

"""A corpus of hostile submissions, graded for real in the bubblewrap sandbox: each attack is
contained, the host is unchanged, and results.json is complete with the right failures."""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import socket
import threading
import time
from pathlib import Path

import nbformat
import pytest

from grader.execution import Budget, load_weights_call, run_calls, stage
from grader.execution.calls import call
from grader.sandbox import BubblewrapSandbox, Limits, probe
from grader.scoring import grade_submission, write_results
from grader.suites import load_suite

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "fixtures" / "hostile"
SUITE = ROOT / "test_suites" / "unet_urothelial"
FAST = Budget(load_seconds=60, cell_seconds=20, call_seconds_cap=4,
              limits=Limits(memory_bytes=4 * 2 ** 30, processes=64, output_bytes=256 * 1024))

pytestmark = pytest.mark.skipif(probe() is not None, reason=f"bubblewrap unavailable: {probe()}")


@pytest.fixture(scope="module")
def metric_tests(assignment):
    return [t for t in load_suite(SUITE, assignment) if t.tag == "metrics"]


def make_submission(folder: Path, name: str, **fill: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "_base.py").write_text((CORPUS / "_base.py").read_text())
    text = (CORPUS / f"{name}.py").read_text()
    for key, value in fill.items():
        text = text.replace(f"__{key}__", repr(value))
    (folder / "submission.py").write_text(text)
    return folder


def grade(submission: Path, tests, out_dir: Path) -> dict:
    result = grade_submission(submission, tests, BubblewrapSandbox(), FAST)
    write_results(out_dir / "results.json", result)
    return json.loads((out_dir / "results.json").read_text())


def statuses(results: dict) -> dict[str, str]:
    return {t["number"]: t["status"] for t in results["tests"]}


def output_of(results: dict, number: str) -> str:
    return next(t["output"] for t in results["tests"] if t["number"] == number)


@pytest.fixture(scope="module")
def all_pass(metric_tests):
    return {t.id: "passed" for t in metric_tests}


def failing(metric_tests, function: str) -> dict[str, str]:
    """Every metric test passed, but those that call `function`."""
    return {t.id: "failed" if any(c.function == function for c in t.calls) else "passed" for t in metric_tests}


def test_a_correct_submission_passes(tmp_path, metric_tests, all_pass):
    results = grade(make_submission(tmp_path / "s", "passes_all"), metric_tests, tmp_path / "out")
    assert statuses(results) == all_pass
    assert results["score"] == results["max_score"] == sum(t.points for t in metric_tests)


def test_no_connection_reaches_a_listener_on_the_host_loopback(tmp_path, metric_tests, all_pass):
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    accepted: list[bytes] = []
    stop = threading.Event()

    def listen():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                accepted.append(conn.recv(100))
            except OSError:
                continue

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    try:
        port = server.getsockname()[1]
        results = grade(make_submission(tmp_path / "s", "connects_to_host_loopback", PORT=port), metric_tests,
                        tmp_path / "out")
    finally:
        stop.set()
        thread.join()
        server.close()
    assert accepted == []
    assert statuses(results) == all_pass  # the attack failed, so the honest answer came back


def test_other_submissions_grader_files_and_hidden_data_are_unreadable(tmp_path, metric_tests, all_pass):
    other = make_submission(tmp_path / "other_student", "passes_all") / "submission.py"
    hidden = tmp_path / "hidden" / "masks" / "heldout_0001.png"
    hidden.parent.mkdir(parents=True)
    hidden.write_bytes(b"secret mask")
    targets = [str(other), str(SUITE / "test_metrics.py"), str(hidden), str(ROOT / "grader" / "scoring" / "grade.py")]
    assert all(Path(t).exists() for t in targets)
    results = grade(make_submission(tmp_path / "s", "reads_other_files", TARGETS=targets), metric_tests,
                    tmp_path / "out")
    assert statuses(results) == all_pass
    assert "LEAKED" not in json.dumps(results)


def test_nothing_is_written_outside_the_scratch_copy(tmp_path, metric_tests, all_pass):
    out_dir = tmp_path / "out"
    targets = [str(out_dir / "pwned.txt"), str(SUITE / "pwned.txt"), str(tmp_path / "host_tmp" / "pwned.txt"),
               str(ROOT / "pwned.txt")]
    results = grade(make_submission(tmp_path / "s", "writes_outside_scratch", TARGETS=targets), metric_tests,
                    out_dir)
    assert statuses(results) == all_pass
    assert not any(Path(t).exists() for t in targets)
    assert sorted(p.name for p in out_dir.iterdir()) == ["results.json"]


@pytest.mark.parametrize("name,function,first,reason", [
    ("fork_bomb_in_iou", "iou_per_class", "metrics.iou_hand_table", "time limit"),
    ("memory_bomb_in_dice", "dice_per_class", "metrics.dice_hand_table", "MemoryError"),
    ("endless_loop_in_accuracy", "pixel_accuracy", "metrics.pixel_accuracy", "did not finish within its time limit of 4 s"),
    ("exits_in_iou", "iou_per_class", "metrics.iou_hand_table", "exited with status 0 in the middle of this call"),
    ("segfault_in_iou", "iou_per_class", "metrics.iou_hand_table", "SIGSEGV"),
    ("kills_parent_in_accuracy", "pixel_accuracy", "metrics.pixel_accuracy", "PermissionError"),
    ("signals_pid_1_in_accuracy", "pixel_accuracy", "metrics.pixel_accuracy", "PermissionError"),
])
def test_an_attack_inside_one_function_costs_only_its_tests(tmp_path, metric_tests, name, function, first, reason):
    results = grade(make_submission(tmp_path / "s", name), metric_tests, tmp_path / "out")
    assert statuses(results) == failing(metric_tests, function)
    assert reason in output_of(results, first)
    assert results["score"] == sum(t["max_score"] for t in results["tests"] if t["status"] == "passed")
    assert results["execution_time"] < 60  # one strike per function: a hang costs one timeout, not one per call


def test_the_grader_inputs_cannot_be_swapped_for_links_to_host_files(tmp_path, metric_tests):
    host_file = tmp_path / "host_file.txt"
    host_file.write_text("precious")
    submission = make_submission(tmp_path / "s", "tampers_with_grader_inputs", HOST_FILE=str(host_file))
    # endless_loop-style restart: a crash after the tampering makes the grader write a new request
    (submission / "submission.py").write_text((submission / "submission.py").read_text() +
                                              "\n\ndef iou_per_class(pred, target, num_classes):\n    os._exit(1)\n")
    results = grade(submission, metric_tests, tmp_path / "out")
    assert host_file.read_text() == "precious"
    assert statuses(results) == failing(metric_tests, "iou_per_class")


def test_a_flood_of_output_is_capped_and_grading_goes_on(tmp_path, metric_tests):
    staged = stage(make_submission(tmp_path / "s", "floods_output"), tmp_path / "scratch")
    calls = [c for t in metric_tests for c in t.calls]
    report = run_calls(staged, calls, BubblewrapSandbox(), FAST)
    assert all(o.ok for o in report.outcomes.values())
    run = report.runs[0]
    assert run.output_bytes >= 200 * 2 ** 20 and run.output_truncated
    assert len(run.output.encode()) <= FAST.limits.output_bytes


def test_patched_comparisons_inside_the_sandbox_do_not_save_a_wrong_dice(tmp_path, metric_tests):
    results = grade(make_submission(tmp_path / "s", "patches_assertions_wrong_dice"), metric_tests,
                    tmp_path / "out")
    assert statuses(results)["metrics.dice_hand_table"] == "failed"
    assert statuses(results)["metrics.iou_hand_table"] == "passed"
    assert "returned [0.5, 0.5, 0.5]" in output_of(results, "metrics.dice_hand_table")


def test_fake_results_json_everywhere_changes_nothing(tmp_path, metric_tests, capfd):
    out_dir = tmp_path / "out"
    results = grade(make_submission(tmp_path / "s", "fakes_results_json", OUT_DIR=str(out_dir)), metric_tests,
                    out_dir)
    assert results["score"] == 0 and results["max_score"] == sum(t.points for t in metric_tests)
    assert all(t["status"] == "failed" for t in results["tests"])
    assert not (ROOT / "results.json").exists() and not Path("/results.json").exists()
    assert "1000" not in (out_dir / "results.json").read_text()


def test_a_pickle_in_model_pt_never_runs(tmp_path):
    folder = make_submission(tmp_path / "s", "pickle_in_model_pt")

    class Payload:
        def __reduce__(self):
            return (os.system, ("touch pwned_by_pickle",))

    (folder / "model.pt").write_bytes(pickle.dumps({"weight": Payload()}))
    staged = stage(folder, tmp_path / "scratch")
    assert staged.has_model
    calls = [call("build", "build_model", store_as="model", timeout=60), load_weights_call("load", "model")]
    report = run_calls(staged, calls, BubblewrapSandbox(), Budget(load_seconds=60))
    assert report.outcomes["build"].ok
    load = report.outcomes["load"]
    assert load.status == "error" and "Weights only load failed" in load.error.message
    assert not (tmp_path / "scratch" / "pwned_by_pickle").exists()


def test_a_notebook_that_is_not_json_gets_a_complete_failing_result(tmp_path, metric_tests):
    notebook = tmp_path / "broken.ipynb"
    notebook.write_text('{"cells": [ {"cell_type": "code", "source": "x = 1"')
    results = grade(notebook, metric_tests, tmp_path / "out")
    assert [t["number"] for t in results["tests"]] == [t.id for t in metric_tests]
    assert all(t["status"] == "failed" for t in results["tests"])
    assert all("broken.ipynb is not a valid notebook (it is not valid JSON)" in t["output"] for t in results["tests"])


def test_a_notebook_kernel_that_kills_its_parent_costs_only_that_test(tmp_path, metric_tests):
    base = (CORPUS / "_base.py").read_text()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(base),
                nbformat.v4.new_code_cell("import os, signal, time\n"
                                          "def pixel_accuracy(pred, target):\n"
                                          "    os.kill(os.getppid(), signal.SIGKILL)  # the nbclient process\n"
                                          "    time.sleep(30)\n")]
    nbformat.write(nb, tmp_path / "student.ipynb")
    results = grade(tmp_path / "student.ipynb", metric_tests, tmp_path / "out")
    assert statuses(results) == failing(metric_tests, "pixel_accuracy")
    assert "SIGKILL" in output_of(results, "metrics.pixel_accuracy")


def test_a_hang_is_timed_on_the_hosts_clock_whatever_the_submission_deletes(tmp_path, metric_tests):
    results = grade(make_submission(tmp_path / "s", "hides_its_hang"), metric_tests, tmp_path / "out")
    assert statuses(results) == failing(metric_tests, "pixel_accuracy")
    assert "did not finish within its time limit of 4 s" in output_of(results, "metrics.pixel_accuracy")
    assert results["execution_time"] < 60


def test_restarts_are_bounded_and_the_calls_left_say_why(tmp_path):
    staged = stage(make_submission(tmp_path / "s", "crashes_every_function"), tmp_path / "scratch")
    calls = [call(f"c{i}", f"f{i}") for i in range(12)]
    start = time.monotonic()
    report = run_calls(staged, calls, BubblewrapSandbox(), FAST)
    assert len(report.runs) == FAST.max_restarts + 1
    crashed = [c.id for c in calls if report.outcomes[c.id].status == "crashed"]
    assert crashed == [f"c{i}" for i in range(FAST.max_restarts + 1)]
    rest = report.outcomes["c11"]
    assert rest.status == "not_run" and f"had to be started {FAST.max_restarts + 1} times" in rest.reason
    assert time.monotonic() - start < 60


def test_a_per_submission_ceiling_bounds_every_call_together(tmp_path):
    staged = stage(make_submission(tmp_path / "s", "slow_in_every_call"), tmp_path / "scratch")
    calls = [call(f"s{i}", "slow", i) for i in range(20)]
    budget = dataclasses.replace(FAST, submission_seconds=12)
    start = time.monotonic()
    report = run_calls(staged, calls, BubblewrapSandbox(), budget)
    assert time.monotonic() - start < 12 + 5
    assert report.ceiling_reached
    answered = [c.id for c in calls if report.outcomes[c.id].ok]
    assert 1 <= len(answered) <= 5
    assert "used up its whole time allowance of 12 s" in report.outcomes["s19"].reason


def test_answers_forged_on_the_channel_cost_only_the_forging_function(tmp_path, metric_tests):
    results = grade(make_submission(tmp_path / "s", "forges_answers_on_the_channel"), metric_tests, tmp_path / "out")
    assert statuses(results) == failing(metric_tests, "iou_per_class")
    assert "could not be read back safely" in output_of(results, "metrics.iou_hand_table")


@pytest.mark.parametrize("text,why", [
    ('{"cells": ' + "[" * 200_000 + "]" * 200_000 + ', "metadata": {}, "nbformat": 4, "nbformat_minor": 5}',
     "its JSON nests too deeply"),
    (b'{"cells": [], "metadata": {"k": "\xff\xfe"}, "nbformat": 4, "nbformat_minor": 5}', "it is not UTF-8 text"),
    ('{"cells": 7, "metadata": [], "nbformat": "four"}', "not a valid notebook"),
])
def test_a_malformed_notebook_gets_a_complete_result_with_the_reason(tmp_path, metric_tests, text, why):
    notebook = tmp_path / "student.ipynb"
    notebook.write_bytes(text if isinstance(text, bytes) else text.encode())
    results = grade(notebook, metric_tests, tmp_path / "out")
    assert results["problem"] == "not graded"
    assert [t["number"] for t in results["tests"]] == [t.id for t in metric_tests]
    assert all(why in t["output"] for t in results["tests"])


def test_special_files_in_a_submission_folder_are_not_read(tmp_path, metric_tests, all_pass):
    folder = make_submission(tmp_path / "s", "passes_all")
    os.mkfifo(folder / "blocks_a_reader")
    results = grade(folder, metric_tests, tmp_path / "out")
    assert statuses(results) == all_pass


def test_an_answer_may_name_only_its_own_files(tmp_path, metric_tests):
    results = grade(make_submission(tmp_path / "s", "names_one_big_array_in_every_answer"), metric_tests,
                    tmp_path / "out")
    outputs = " ".join(t["output"] for t in results["tests"])
    assert "is not a file of this answer" in outputs
    assert results["max_score"] == sum(t.points for t in metric_tests)


def test_an_empty_array_file_is_a_failed_call_not_a_grader_crash(tmp_path, metric_tests):
    results = grade(make_submission(tmp_path / "s", "forges_an_empty_array_file"), metric_tests, tmp_path / "out")
    assert statuses(results)["metrics.pixel_accuracy"] == "failed"
    assert "is not a readable .npy array (EOFError)" in output_of(results, "metrics.pixel_accuracy")
    assert statuses(results)["metrics.dice_hand_table"] == "passed"


def test_a_huge_returned_value_is_quoted_only_in_part(tmp_path, metric_tests):
    results = grade(make_submission(tmp_path / "s", "returns_a_huge_message"), metric_tests, tmp_path / "out")
    message = output_of(results, "metrics.pixel_accuracy")
    assert len(message) < 3000 and "characters in all]" in message
    assert (tmp_path / "out" / "results.json").stat().st_size < 100_000


def test_the_kernel_keyring_carries_nothing_from_one_submission_to_the_next(tmp_path, metric_tests):
    grade(make_submission(tmp_path / "writer", "leaves_a_note_in_the_keyring"), metric_tests, tmp_path / "w")
    results = grade(make_submission(tmp_path / "reader", "reads_the_keyring"), metric_tests, tmp_path / "r")
    message = output_of(results, "metrics.pixel_accuracy")
    assert "found b" not in message and "nothing found (errno 1)" in message  # EPERM: the filter refuses keyctl


def test_namespaces_mounts_and_nested_sandboxes_are_refused(tmp_path, metric_tests):
    results = grade(make_submission(tmp_path / "s", "probes_namespaces_and_mounts"), metric_tests, tmp_path / "out")
    report = output_of(results, "metrics.pixel_accuracy")
    assert "mounted" not in report and "uid=0" not in report
    assert report.count("rc=0") <= 1  # at most the `keyctl` probe's shell, which finds no keyctl or is refused


@pytest.fixture(scope="module")
def data_tests(assignment):
    return [t for t in load_suite(SUITE, assignment) if t.tag == "data"]


@pytest.mark.parametrize("name,lost", [
    ("augments_to_blank_arrays", {"data.augment_keeps_alignment", "data.augment_types_and_randomness"}),
    ("hides_unscaled_pixels_behind_nan", {"data.load_split_shapes_dtypes", "data.load_split_order_and_labels"}),
])
def test_data_answers_that_only_look_right_lose_their_points(tmp_path, data_tests, name, lost):
    results = grade(make_submission(tmp_path / "s", name), data_tests, tmp_path / "out")
    assert {number for number, status in statuses(results).items() if status == "failed"} >= lost


@pytest.fixture(scope="module")
def loss_tests(assignment):
    return [t for t in load_suite(SUITE, assignment) if t.tag == "loss"]


def test_a_nan_accuracy_is_wrong(tmp_path, metric_tests):
    results = grade(make_submission(tmp_path / "s", "accuracy_is_nan"), metric_tests, tmp_path / "out")
    lost = {number for number, status in statuses(results).items() if status == "failed"}
    assert {"metrics.pixel_accuracy", "metrics.random_cases", "metrics.drawn_accuracy"} <= lost


@pytest.mark.parametrize("name", ["loss_is_a_constant", "patches_the_descent"])
def test_a_loss_that_is_not_the_definition_earns_no_loss_points(tmp_path, loss_tests, name):
    results = grade(make_submission(tmp_path / "s", name), loss_tests, tmp_path / "out")
    assert results["score"] == 0, {t["number"]: t["status"] for t in results["tests"]}

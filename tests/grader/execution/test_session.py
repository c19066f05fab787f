import nbformat
import numpy as np
import pytest

from grader.execution import Array, Budget, Rng, call, names_call, run_calls, stage



QUICK = Budget(load_seconds=60, cell_seconds=3, call_seconds_cap=10)


def _notebook(path, cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = cells
    nbformat.write(nb, path)
    return path


def test_cells_that_raise_or_hang_are_recorded_and_the_run_goes_on(tmp_path, sandbox):
    code = nbformat.v4.new_code_cell
    _notebook(tmp_path / "sub" / "hw.ipynb" if (tmp_path / "sub").mkdir() is None else None, [
        nbformat.v4.new_markdown_cell("# Homework"),
        code("def late(): return 'defined after the failures'"),
        code("raise ValueError('my bug')"),
        code("import time\ntime.sleep(60)"),
        code("LOADED = 'yes'"),
    ])
    staged = stage(tmp_path / "sub", tmp_path / "scratch")
    report = run_calls(staged, [call("a", "late"), names_call("n", ["LOADED", "late", "absent"])], sandbox, QUICK)
    assert report.outcomes["a"].value == "defined after the failures"
    assert report.outcomes["n"].value == {"LOADED": False, "late": True, "absent": None}
    kinds = [(e.kind, e.cell) for e in report.load_events if e.kind != "start"]
    assert kinds == [("error", 2), ("timeout", 3)]


@pytest.mark.parametrize("with_model", [True, False])
def test_train_cells_are_skipped_only_when_model_pt_is_there(tmp_path, sandbox, with_model):
    (tmp_path / "sub").mkdir()
    _notebook(tmp_path / "sub" / "hw.ipynb", [
        nbformat.v4.new_code_cell("TRAINED = False"),
        nbformat.v4.new_code_cell("TRAINED = True", metadata={"tags": ["train"]}),
        nbformat.v4.new_code_cell("def trained(): return TRAINED"),
    ])
    if with_model:
        (tmp_path / "sub" / "model.pt").write_bytes(b"x")
    report = run_calls(stage(tmp_path / "sub", tmp_path / "scratch"), [call("t", "trained")], sandbox, QUICK)
    assert report.outcomes["t"].value is (not with_model)


def test_names_are_found_whatever_the_cell_order(tmp_path, sandbox):
    (tmp_path / "sub").mkdir()
    _notebook(tmp_path / "sub" / "renamed by student.ipynb", [
        nbformat.v4.new_code_cell("def pixel_accuracy(p, t):\n    return helper(p, t)"),
        nbformat.v4.new_code_cell("# an extra cell of my own\nimport numpy as np"),
        nbformat.v4.new_code_cell("def helper(p, t):\n    return float((np.asarray(p) == np.asarray(t)).mean())"),
    ])
    report = run_calls(stage(tmp_path / "sub", tmp_path / "scratch"),
                       [call("acc", "pixel_accuracy", np.array([1, 2]), np.array([1, 1]))], sandbox, QUICK)
    assert report.outcomes["acc"].value == 0.5


def test_a_module_that_fails_halfway_still_answers_for_what_it_defined(tmp_path, sandbox):
    (tmp_path / "solution.py").write_text("def first():\n    return 1\n\nraise RuntimeError('oops')\n\n"
                                          "def second():\n    return 2\n")
    report = run_calls(stage(tmp_path / "solution.py", tmp_path / "scratch"),
                       [call("a", "first"), call("b", "second")], sandbox, QUICK)
    assert report.outcomes["a"].value == 1
    assert report.outcomes["b"].error.type == "NameError"
    error = [e for e in report.load_events if e.kind == "error"][0]
    assert error.ename == "RuntimeError" and error.where == "solution.py:4"


def test_tensors_gradients_and_generators_cross_the_boundary(tmp_path, sandbox):
    (tmp_path / "solution.py").write_text(
        "import numpy as np\n"
        "def square_sum(x):\n    return (x ** 2).sum()\n"
        "def draw(rng):\n    return rng.integers(0, 100, 3)\n")
    x = np.array([1.0, -2.0, 3.0])
    calls = [call("g", "square_sum", Array(x, tensor=True, grad=True), grad=True), call("r", "draw", Rng(7))]
    report = run_calls(stage(tmp_path / "solution.py", tmp_path / "scratch"), calls, sandbox, QUICK)
    value = report.outcomes["g"].value
    assert float(value["value"]) == 14.0
    np.testing.assert_allclose(value["grads"][0], 2 * x)
    np.testing.assert_array_equal(report.outcomes["r"].value, np.random.default_rng(7).integers(0, 100, 3))


def test_a_module_that_never_finishes_loading_fails_every_call_with_the_reason(tmp_path, sandbox):
    (tmp_path / "solution.py").write_text("while True:\n    pass\n")
    budget = Budget(load_seconds=2, call_seconds_cap=1)
    report = run_calls(stage(tmp_path / "solution.py", tmp_path / "scratch"),
                       [call("a", "f"), call("b", "g")], sandbox, budget)
    assert {o.status for o in report.outcomes.values()} == {"not_run"}
    assert "did not finish loading within 2 s" in report.outcomes["b"].reason


def test_one_strike_per_function_keeps_a_run_bounded(tmp_path, sandbox):
    (tmp_path / "solution.py").write_text("def hang(i):\n    while True:\n        pass\n\n"
                                          "def fine(i):\n    return i\n")
    calls = [call(f"h{i}", "hang", i) for i in range(5)] + [call("f", "fine", 7)]
    report = run_calls(stage(tmp_path / "solution.py", tmp_path / "scratch"), calls, sandbox,
                       Budget(load_seconds=30, call_seconds_cap=2))
    assert report.outcomes["h0"].status == "timeout"
    assert all(report.outcomes[f"h{i}"].status == "not_run" for i in range(1, 5))
    assert "an earlier call of hang did not finish" in report.outcomes["h3"].reason
    assert report.outcomes["f"].value == 7
    assert len(report.runs) == 2


def test_a_budget_of_threads_reaches_the_submissions_libraries(tmp_path, sandbox):
    (tmp_path / "solution.py").write_text("import os\ndef threads():\n    return os.environ.get('OMP_NUM_THREADS')\n")
    report = run_calls(stage(tmp_path / "solution.py", tmp_path / "scratch"), [call("t", "threads")], sandbox,
                       Budget(load_seconds=60, threads=1))
    assert report.outcomes["t"].value == "1"


def test_a_module_that_answers_at_once_is_heard_every_time(tmp_path, sandbox):
    """A warm run loads a small module within milliseconds: its load answer must never beat the host."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "quick.py").write_text("def seven():\n    return 7\n")
    staged = stage(tmp_path / "sub", tmp_path / "scratch")
    for _ in range(5):
        report = run_calls(staged, [call("a", "seven")], sandbox, QUICK, work_dir=tmp_path)
        assert report.outcomes["a"].value == 7, report.outcomes["a"]

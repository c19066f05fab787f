"""The encoder comparison assignment's own machinery, without grading a submission: the results
table parsed as hostile text, the suite's settings, the public test split, the graph's weight count,
and the suite loading against its assignment."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from grader.assignments import AssignmentError, check_suite, load_assignment
from grader.execution.calls import CallOutcome
from grader.suites import Answers, Failure, load_suite

ROOT = Path(__file__).resolve().parents[2]
ASSIGNMENT = ROOT / "assignments" / "encoder_comparison"
SUITE = ROOT / "test_suites" / "encoder_comparison"
ENCODERS = ("resnet18", "resnet34", "resnet50")
GOOD = ("encoder,dice_background,dice_cytoplasm,dice_nucleus,parameters\n"
        "resnet18,0.9812,0.8433,0.9021,14328499\n"
        "resnet34,0.9825,0.8512,0.9105,24436659\n"
        "resnet50,0.9801,0.8390,0.8999,32521395\n")


def _module(stem: str):
    name = f"_grader_suite_{SUITE.name}_{stem}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, SUITE / f"{stem}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="module")
def table():
    return _module("test_table")


@pytest.fixture(scope="module")
def comparison():
    return load_assignment(ASSIGNMENT)


def test_a_well_formed_table_parses_to_one_row_per_encoder(table):
    rows = table.parse_table(GOOD, ENCODERS)
    assert set(rows) == set(ENCODERS)
    assert rows["resnet34"].dice == (0.9825, 0.8512, 0.9105) and rows["resnet34"].parameters == 24436659


def test_columns_in_another_order_blank_lines_and_a_byte_order_mark_are_fine(table):
    text = ("\ufeffparameters,encoder,dice_nucleus,dice_cytoplasm,dice_background\n\n"
            "14328499,ResNet18,0.9,0.8,0.98\n24436659,resnet34,.91,0.85,1\n32521395, resnet50 ,0.9,0.84,0\n")
    rows = table.parse_table(text, ENCODERS)
    assert rows["resnet18"].dice == (0.98, 0.8, 0.9) and rows["resnet34"].dice == (1.0, 0.85, 0.91)


@pytest.mark.parametrize("text, says", [
    ("", "empty"),
    ("\n \n", "empty"),
    (GOOD.replace("resnet18,", "resnet18\0,"), "NUL"),
    (GOOD + "resnet18,0.9,0.8,0.9,1\n" * 10, "lines"),
    (GOOD.replace("dice_background", "dice_bg"), "header"),
    (GOOD.replace("parameters\n", "parameters,notes\n"), "header"),
    (GOOD.replace("0.9812", "98.12"), "percentage"),
    (GOOD.replace("0.9812", "nan"), "plain decimal"),
    (GOOD.replace("0.9812", "inf"), "plain decimal"),
    (GOOD.replace("0.9812", "-0.5"), "plain decimal"),
    (GOOD.replace("0.9812", "9.812e-1"), "plain decimal"),
    (GOOD.replace("0.9812", "0x1p-1"), "plain decimal"),
    (GOOD.replace("0.9812", "."), "plain decimal"),
    (GOOD.replace("0.9812", "0" * 5000), "plain decimal"),
    (GOOD.replace("14328499", "14,328,499"), "cells"),
    (GOOD.replace("14328499", '"14,328,499"'), "digits only"),
    (GOOD.replace("14328499", "1.4e7"), "digits only"),
    (GOOD.replace("14328499", "9" * 40), "digits only"),
    (GOOD.replace("14328499", "-14328499"), "digits only"),
    (GOOD.replace("resnet50,", "resnet101,"), "the encoders are"),
    (GOOD.replace("resnet50,", "resnet18,"), "more than one row"),
    ("\n".join(GOOD.splitlines()[:3]), "no row for resnet50"),
    (GOOD.replace("resnet34,0.9825,", "resnet34,0.9825,0.1,"), "cells"),
])
def test_a_malformed_table_is_refused_with_what_to_fix(table, text, says):
    with pytest.raises(table.TableError, match=says):
        table.parse_table(text, ENCODERS)


def test_a_cell_echoed_in_a_message_is_cut_short(table):
    with pytest.raises(table.TableError) as caught:
        table.parse_table(GOOD.replace("resnet50,", "x" * 10_000 + ","), ENCODERS)
    assert len(str(caught.value)) < 300


def _answers(value, status="ok"):
    return Answers({"t.results": CallOutcome("t.results", status, value)})


@pytest.mark.parametrize("value, says", [
    ({"absent": True}, "no results.csv was found"),
    ({"link": True}, "is a link to another file"),
    ({"text": GOOD, "truncated": True}, "over 4096 bytes"),
    ({"text": GOOD}, "over 4096 bytes"),  # a forged answer without the flag
    ({"text": "x" * 10_000, "truncated": False}, "over 4096 bytes"),
    ({"text": b"bytes"}, "could not be read"),
    ("encoder,...", "could not be read"),
    ([GOOD], "could not be read"),
    ({"text": 'encoder,"dice_background\n', "truncated": False}, "results.csv"),
])
def test_what_the_sandbox_answers_for_the_table_is_checked_before_parsing(table, value, says):
    with pytest.raises(Failure, match=says):
        table.read_table(_answers(value), "t.results", ENCODERS)


def test_a_well_formed_answer_reads(table):
    rows = table.read_table(_answers({"text": GOOD, "truncated": False}), "t.results", ENCODERS)
    assert rows["resnet50"].parameters == 32521395


def _with_settings(assignment, **settings):
    from dataclasses import replace

    return replace(assignment, suite_settings={**assignment.suite_settings, **settings})


@pytest.mark.parametrize("value", [0, 1.5, -0.01, "0.01", True])
def test_a_bad_tolerance_in_the_toml_is_an_error_naming_the_key(table, comparison, value):
    with pytest.raises(AssignmentError, match="suite_settings.table_dice_tolerance"):
        table.settings(_with_settings(comparison, table_dice_tolerance=value))


@pytest.mark.parametrize("value, says", [
    (None, "missing"),
    ({"resnet18": 0.9, "resnet34": 0.9}, "expected exactly"),
    ({"resnet18": 0.9, "resnet34": 0.9, "resnet50": 0.9, "resnet101": 0.9}, "expected exactly"),
    ({"resnet18": 0.9, "resnet34": 0, "resnet50": 0.9}, "resnet34"),
    ({"resnet18": "0.9", "resnet34": 0.9, "resnet50": 0.9}, "resnet18"),
])
def test_per_encoder_reference_dice_is_checked(comparison, value, says):
    heldout = _module("hidden_heldout")
    settings = dict(comparison.suite_settings)
    settings.pop("heldout_reference_dice")
    if value is not None:
        settings["heldout_reference_dice"] = value
    from dataclasses import replace

    with pytest.raises(AssignmentError, match=says):
        heldout.reference_dice(replace(comparison, suite_settings=settings), ENCODERS)


def test_the_toml_gives_every_encoder_a_reference_dice(comparison):
    references = _module("hidden_heldout").reference_dice(comparison, ENCODERS)
    assert set(references) == set(ENCODERS) and all(0.5 < v <= 1 for v in references.values())
    assert comparison.heldout.reference_dice == references["resnet34"]  # the report's held-out section


def test_the_public_test_split_is_what_reference_data_writes(table, comparison, tmp_path):
    from reference.data import load_split
    from reference.synthetic import SyntheticSpec, write_dataset

    write_dataset(tmp_path, seed=0, spec=SyntheticSpec(n_train=0, n_val=0, n_test=2))
    images, masks = table.public_test_split(comparison)
    written_images, written_masks = load_split(tmp_path, "test")
    assert len(images) == 16 and images[0].shape == (3, 256, 256) and images[0].dtype == np.float32
    np.testing.assert_array_equal(np.stack(images[:2]), written_images)
    np.testing.assert_array_equal(np.stack(masks[:2]), written_masks)


def test_a_release_reads_its_own_data_folder(table, tmp_path):
    from reference.synthetic import SyntheticSpec, write_dataset

    write_dataset(tmp_path / "data", seed=5, spec=SyntheticSpec(size=64, n_train=0, n_val=0, n_test=3))
    release = type("Release", (), {"folder": tmp_path})()
    images, masks = table.public_test_split(release)
    assert len(images) == 3 and images[0].shape == (3, 64, 64) and masks[0].dtype == np.int64


def _graph(weights: list[tuple[str, tuple[int, ...]]], convs: list[str], constant_weight: bool = False) -> bytes:
    """A chain of convolutions over initializers (or, with `constant_weight`, one weight from a Constant node)."""
    nodes, inits, previous = [], [], "images"
    for k, name in enumerate(convs):
        out = f"y{k}"
        nodes.append(helper.make_node("Conv", [previous, name], [out], pads=[1, 1, 1, 1]))
        previous = out
    for name, shape in weights:
        tensor = numpy_helper.from_array(np.zeros(shape, np.float32), name)
        if constant_weight and name == weights[-1][0]:
            nodes.insert(0, helper.make_node("Constant", [], [name], value=tensor))
        else:
            inits.append(tensor)
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info(previous, TensorProto.FLOAT, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def test_the_graphs_convolution_weights_are_counted_once_each():
    from grader.verifier import accept

    encoders = _module("test_encoders")
    data = _graph([("w0", (4, 3, 3, 3)), ("w1", (4, 4, 3, 3))], ["w0", "w1", "w1"])
    assert encoders.conv_weights(accept(data)) == 4 * 3 * 9 + 4 * 4 * 9
    hidden = _graph([("w0", (4, 3, 3, 3)), ("w1", (4, 4, 3, 3))], ["w0", "w1"], constant_weight=True)
    assert encoders.conv_weights(accept(hidden)) == 4 * 3 * 9  # only initializers count: folding makes them all


def test_the_suite_loads_against_its_assignment_and_its_points_add_up(comparison):
    tests = load_suite(comparison.suite_dir, comparison)
    check_suite(comparison, tests)
    by_tag = {}
    for test in tests:
        by_tag.setdefault(test.tag, []).append(test.id)
    assert set(by_tag) == {"encoders", "table", "variant", "heldout"}
    assert len(by_tag["encoders"]) == 6 and len(by_tag["table"]) == 7 and len(by_tag["heldout"]) == 3
    assert comparison.report.heldout_test in {t.id for t in tests}
    public = load_suite(comparison.suite_dir, comparison, hidden=False)
    assert {t.tag for t in public} == {"encoders", "table", "variant"}


def test_the_release_strips_solutions_and_ships_only_public_tests(comparison, tmp_path):
    import nbformat

    from grader.assignments import write_release

    out = write_release(comparison, tmp_path / "release")
    notebook = nbformat.read(out / comparison.notebook, as_version=4)
    source = "\n".join(c.source for c in notebook.cells if c.cell_type == "code")
    assert "smp.Unet(encoder" not in source and "decoder_attention_type=\"scse\"" not in source
    assert 'raise NotImplementedError("build_model: write your code here")' in source
    assert sorted(p.name for p in (out / "tests").glob("*.py")) == ["test_encoders.py", "test_table.py",
                                                                      "test_variant.py"]
    assert len(list((out / "data" / "test" / "masks").glob("*.png"))) == 16
    released = load_assignment(out)
    check_suite(released, load_suite(released.suite_dir, released, hidden=False))


def test_read_text_call_reads_a_file_beside_the_submission_capped_and_undecodable_bytes_replaced(tmp_path, sandbox):
    from grader.execution import Budget, read_text_call, run_calls, stage

    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "submission.py").write_text("X = 1\n")
    (tmp_path / "sub" / "results.csv").write_bytes(GOOD.encode())
    (tmp_path / "sub" / "big.csv").write_bytes(b"a" * 5000)
    (tmp_path / "sub" / "binary.csv").write_bytes(b"\xff\xfeok")
    (tmp_path / "sub" / "linked.csv").symlink_to("/etc/hostname")  # host data the grader must not echo
    calls = [read_text_call("r", "results.csv", 4096), read_text_call("b", "big.csv", 4096),
             read_text_call("m", "missing.csv", 4096), read_text_call("x", "binary.csv", 4096),
             read_text_call("l", "linked.csv", 4096)]
    report = run_calls(stage(tmp_path / "sub", tmp_path / "scratch"), calls, sandbox,
                       Budget(load_seconds=60, cell_seconds=3, call_seconds_cap=10))
    assert report.outcomes["r"].value == {"text": GOOD, "truncated": False}
    assert report.outcomes["b"].value == {"text": "a" * 4096, "truncated": True}
    assert report.outcomes["m"].value == {"absent": True}
    assert report.outcomes["x"].value == {"text": "\ufffd\ufffdok", "truncated": False}
    assert report.outcomes["l"].value == {"link": True}

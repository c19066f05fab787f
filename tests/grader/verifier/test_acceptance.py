"""Acceptance in the grader's process: real exports of the chapter's networks pass, from both torch
exporters; every hostile graph is refused with a message naming what was found."""

import subprocess
import sys

import pytest
from onnx import TensorProto, helper

from grader.verifier import GraphRejected, accept
from grader.verifier import acceptance
from reference.models import UNet, create_model
from tests.grader.verifier.graphs import ROOT, make_graphs, networks, unet_variants

_exports: dict[str, bytes] = {}


def exported(name, factory, dynamo=False):
    key = f"{name}-{dynamo}"
    if key not in _exports:
        _exports[key] = networks.export(factory(), dynamo=dynamo)
    return _exports[key]


SMALL = {
    "scratch_unet": lambda: UNet(base_filters=8, depth=4),
    "transpose_concat": lambda: unet_variants.TinyUNet(),
    "bilinear_concat": lambda: unet_variants.TinyUNet(up="bilinear"),
    "added_skips": lambda: unet_variants.TinyUNet(skip="add"),
    "no_skips": lambda: unet_variants.TinyUNet(skip="none"),
    "wrong_level": lambda: unet_variants.TinyUNet(skip="wrong_level"),
    "dead_skips": lambda: networks.SkipUNet(dead=True),
}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_small_networks_of_every_style_are_accepted(name):
    graph = accept(exported(name, SMALL[name]))
    assert {"Conv", "Relu"} <= graph.op_types
    assert graph.input_name == "images" and graph.output_names == ("logits",)


def test_the_dynamo_exporter_is_accepted_too():
    graph = accept(exported("wrong_level", SMALL["wrong_level"], dynamo=True))
    assert {"Resize", "Concat", "Conv"} <= graph.op_types


@pytest.mark.parametrize("name,factory", [("smp_unet_resnet34", lambda: create_model()),
                                          ("smp_fpn_resnet34", lambda: create_model("FPN"))])
def test_smp_networks_are_accepted(name, factory):
    graph = accept(exported(name, factory))
    assert graph.op_types <= acceptance.ALLOWED_OPS
    assert len(graph.sha256) == 64


@pytest.mark.slow
@pytest.mark.parametrize("name,factory", [("smp_unet_resnet34", lambda: create_model()),
                                          ("smp_fpn_resnet34", lambda: create_model("FPN"))])
def test_smp_networks_from_the_dynamo_exporter_are_accepted(name, factory):
    accept(exported(name, factory, dynamo=True))


@pytest.mark.parametrize("where", sorted(make_graphs.ALL_EXTERNAL))
def test_external_data_is_refused_wherever_it_hides(where):
    with pytest.raises(GraphRejected, match="in an external file"):
        accept(make_graphs.ALL_EXTERNAL[where]("secret.txt"))


def test_external_data_is_found_by_location_alone():
    model = helper.make_model(helper.make_graph(
        [helper.make_node("Add", ["images", "w"], ["logits"])], "g",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1])],
        [helper.make_tensor("w", TensorProto.FLOAT, [1], [1.0])]))
    model.graph.initializer[0].external_data.add(key="location", value="../../hidden/seed")  # no data_location
    with pytest.raises(GraphRejected, match="external file"):
        accept(model.SerializeToString())


@pytest.mark.parametrize("make,message", [
    (make_graphs.endless_loop, "uses the operator Loop"),
    (make_graphs.custom_domain, "non-standard domain 'com.student'"),
    (make_graphs.with_function, "defines its own functions"),
    (make_graphs.many_nodes, "more than 5000 operators"),
    (make_graphs.declared_enormous_output, "declares an output of shape"),
    (make_graphs.oversized_tensor_declaration, "over the cap"),
    (make_graphs.random_output, "uses the operator RandomNormalLike, which a convolutional network does not need"),
])
def test_hostile_graphs_are_refused_with_what_was_found(make, message):
    with pytest.raises(GraphRejected, match=message):
        accept(make())


def test_bombs_pass_acceptance_and_are_left_to_the_verifier_limits():
    for make in (make_graphs.expand_bomb, make_graphs.constant_of_shape_bomb, make_graphs.tile_bomb,
                 make_graphs.enormous_output):
        data = make()
        assert len(data) < 1024
        accept(data)


def test_garbage_oversized_and_multi_input_graphs_are_refused(monkeypatch):
    with pytest.raises(GraphRejected, match="not a valid ONNX file"):
        accept(b"\x00not onnx at all")
    two_inputs = helper.make_model(helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["logits"])], "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1]) for n in "ab"],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1])]))
    with pytest.raises(GraphRejected, match="takes 2 inputs"):
        accept(two_inputs.SerializeToString())
    monkeypatch.setattr(acceptance, "MAX_ONNX_BYTES", 10)
    with pytest.raises(GraphRejected, match="over the 0 MiB cap"):
        accept(make_graphs.plain(3.0))


def test_a_rejection_is_remembered_and_raised_again():
    data = make_graphs.custom_domain()
    for _ in range(2):
        with pytest.raises(GraphRejected, match="com.student"):
            accept(data)


def test_acceptance_never_imports_onnxruntime():
    code = ("import sys; sys.path.insert(0, 'tests/fixtures/hostile/graphs'); import make_graphs; "
            "from grader.verifier import accept; accept(make_graphs.plain()); "
            "print('onnxruntime' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["False"], done.stderr

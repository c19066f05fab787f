"""The ResNet34 U-Net, inspected as the ONNX graph the sandbox hands over and run by the grader."""

import numpy as np

from grader.execution import call, export_call
from grader.execution.onnx_graph import ModelRejected, agrees, check_graph, run_graph
from grader.suites import Failure, register

TESTS = []

_rng = np.random.default_rng(20261124)
EXAMPLE = _rng.random((1, 3, 64, 64), dtype=np.float32)
PROBES = [_rng.random((2, 3, 64, 96), dtype=np.float32), _rng.random((1, 3, 96, 64), dtype=np.float32)]

build = call("a.build_model", "build_model", store_as="model", timeout=120)
export = export_call("a.export_model", "model", EXAMPLE, PROBES)


def _graph(answers):
    answers.value("a.build_model", "build_model()")
    exported = answers.value("a.export_model", "exporting build_model()'s network to ONNX")
    try:
        return check_graph(exported["onnx"]), exported["outputs"]
    except ModelRejected as err:
        raise Failure(f"the network could not be inspected: {err}")


@register(TESTS, id="architecture.build_model_output_shape", name="build_model: logits per pixel, several sizes",
          points=2, tag="architecture", calls=[build, export],
          hint="A segmentation network returns (N, num_classes, H, W) logits for any H, W divisible by 32.")
def _output_shape(answers):
    graph, outputs = _graph(answers)
    for probe, theirs in zip(PROBES, outputs):
        expected = (probe.shape[0], 3, *probe.shape[2:])
        ours = run_graph(graph, probe)
        if ours.shape != expected:
            raise Failure(f"for input {probe.shape} the network returns {ours.shape}; expected {expected}")
        if not agrees(graph, probe, theirs):
            raise Failure("the exported network and the model in your code give different outputs on the same "
                          "input; make sure build_model() returns the network as it runs")


@register(TESTS, id="architecture.fully_convolutional", name="build_model: no fully connected layer", points=1,
          tag="architecture", calls=[build, export],
          hint="Flattening and dense layers destroy the spatial layout that segmentation needs.")
def _fully_convolutional(answers):
    graph, _ = _graph(answers)
    dense = graph.op_types & {"Gemm", "MatMul", "Flatten"}
    if dense:
        raise Failure(f"the network contains {', '.join(sorted(dense))}: a fully connected part")

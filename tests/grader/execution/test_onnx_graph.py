import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from grader.execution.onnx_graph import ModelRejected, agrees, check_graph, run_graph


def _graph(op="Relu", domain=""):
    node = helper.make_node(op, ["x"], ["y"], domain=domain)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3])
    opsets = [helper.make_opsetid("", 18)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    return helper.make_model(helper.make_graph([node], "g", [x], [y]), opset_imports=opsets)


def test_a_standard_graph_runs_here_and_agrees_only_with_the_truth():
    graph = check_graph(_graph().SerializeToString())
    x = np.array([[-1, 2, -3]], np.float32)
    np.testing.assert_array_equal(run_graph(graph, x), [[0, 2, 0]])
    assert agrees(graph, x, np.array([[0, 2, 0]], np.float32))
    assert not agrees(graph, x, np.array([[0, 2, 1]], np.float32))


def test_custom_operator_domains_are_rejected():
    with pytest.raises(ModelRejected, match="non-standard operators"):
        check_graph(_graph("Evil", "com.student").SerializeToString())


def test_external_data_is_rejected():
    model = _graph()
    weight = helper.make_tensor("w", TensorProto.FLOAT, [1], [1.0])
    weight.data_location = TensorProto.EXTERNAL
    weight.ClearField("float_data")
    weight.external_data.add(key="location", value="/etc/passwd")
    model.graph.initializer.append(weight)
    with pytest.raises(ModelRejected):
        check_graph(model.SerializeToString())


def test_garbage_and_oversized_bytes_are_rejected(monkeypatch):
    with pytest.raises(ModelRejected, match="not a valid ONNX graph"):
        check_graph(b"\x00not onnx at all")
    monkeypatch.setattr("grader.execution.onnx_graph.MAX_ONNX_BYTES", 10)
    with pytest.raises(ModelRejected, match="over the"):
        check_graph(_graph().SerializeToString())


def test_a_torch_export_matches_eager_within_tolerance(tmp_path):
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU()).eval()
    x = torch.rand(1, 3, 32, 32)
    program = torch.onnx.export(model, (x,), dynamo=True, verbose=False,
                                dynamic_shapes={"input": {0: torch.export.Dim("b", max=8)}})
    program.save(str(tmp_path / "m.onnx"))
    graph = check_graph((tmp_path / "m.onnx").read_bytes())
    probe = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert agrees(graph, probe.numpy(), model(probe).numpy())
    assert onnx.load(str(tmp_path / "m.onnx")).graph.node

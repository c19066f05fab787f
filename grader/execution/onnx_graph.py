"""A model that crossed the boundary as an ONNX graph: checked, then run by the grader itself.

The grader trusts the graph only after `onnx.checker` accepts it, every node uses a standard
domain, no tensor points at external data (which would make onnxruntime read host files), and it
is under a size cap. Running it with onnxruntime in the grader's process and comparing with the
sandbox's own outputs means a submission that patches torch inside the sandbox cannot misreport
what its network computes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx

STANDARD_DOMAINS = {"", "ai.onnx"}
MAX_ONNX_BYTES = 400 * 2 ** 20


class ModelRejected(Exception):
    """The graph is not one the grader will run; the message says why."""


@dataclass(frozen=True)
class CheckedGraph:
    """An ONNX model that passed every check, with its bytes for onnxruntime."""

    model: onnx.ModelProto
    data: bytes

    @property
    def op_types(self) -> set[str]:
        return {node.op_type for node in self.model.graph.node}


def _uses_external_data(model: onnx.ModelProto) -> bool:
    tensors = list(model.graph.initializer)
    for node in model.graph.node:
        tensors += [a.t for a in node.attribute if a.type == onnx.AttributeProto.TENSOR]
    return any(t.data_location == onnx.TensorProto.EXTERNAL for t in tensors)


def check_graph(data: bytes) -> CheckedGraph:
    """Parse and check an exported graph; raise `ModelRejected` with the reason otherwise."""
    if len(data) > MAX_ONNX_BYTES:
        raise ModelRejected(f"the exported model is {len(data) // 2 ** 20} MiB, over the {MAX_ONNX_BYTES // 2 ** 20} MiB cap")
    try:
        model = onnx.load_from_string(data)
        onnx.checker.check_model(model)
    except Exception as err:  # onnx raises several unrelated types for malformed bytes
        raise ModelRejected(f"the exported model is not a valid ONNX graph ({str(err).splitlines()[0][:200]})") from err
    domains = {node.domain for node in model.graph.node} | {f.domain for f in model.functions}
    if not domains <= STANDARD_DOMAINS or model.functions:
        raise ModelRejected(f"the exported model uses non-standard operators (domains {sorted(domains - STANDARD_DOMAINS)})")
    if _uses_external_data(model):
        raise ModelRejected("the exported model refers to external data files")
    return CheckedGraph(model, data)


def run_graph(graph: CheckedGraph, inputs: np.ndarray) -> np.ndarray:
    """The graph's first output on `inputs`, computed by onnxruntime in this process."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(graph.data, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return session.run(None, {name: np.ascontiguousarray(inputs, np.float32)})[0]


def agrees(graph: CheckedGraph, inputs: np.ndarray, sandbox_output: np.ndarray, atol: float = 2e-4,
           rtol: float = 1e-3) -> bool:
    """Whether the graph, run here, gives what the sandbox said its model gives."""
    ours = run_graph(graph, inputs)
    theirs = np.asarray(sandbox_output)
    return ours.shape == theirs.shape and bool(np.allclose(ours, theirs, atol=atol, rtol=rtol))

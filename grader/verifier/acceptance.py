"""Graph acceptance: parse the bytes and walk every graph, subgraph and tensor of the protobuf in
pure Python. Nothing here runs the graph, checks it with `onnx.checker` or infers shapes (those read
files and allocate memory as the graph says): that is the verifier's job, in its sandbox. A graph is
refused when it holds anything a convolutional network's export does not: external data, functions,
custom domains, control flow, operators off the allow-list, or sizes past the caps.

Parsing itself costs what the bytes say (a few MiB of empty attributes cost the protobuf library
gigabytes and minutes), so `accept` parses and walks in a grandchild of the grader's own code, forked
for each graph by `parse_server` with memory, CPU and wall limits, and only its verdict comes back.
"""

from __future__ import annotations

import hashlib
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import onnx
from google.protobuf.message import DecodeError
from onnx import AttributeProto, TensorProto

from grader.execution.onnx_graph import MAX_ONNX_BYTES
from grader.sandbox.limits import GIB, Limits
from grader.verifier.parse_server import ParseServer
from grader.verifier.usage import record

STANDARD_DOMAINS = frozenset({"", "ai.onnx"})
MAX_NODES = 5000
MAX_TENSOR_ELEMENTS = 2 ** 27  # one tensor: 512 MiB of float32, far past any layer of these networks
MAX_INITIALIZER_BYTES = 512 * 2 ** 20
MAX_OUTPUT_ELEMENTS = 2 ** 28  # a declared output shape with every dimension fixed

# What the exports of the chapter's networks (from-scratch U-Nets, smp U-Net/FPN with ResNet
# encoders, both torch exporters) use, plus harmless relatives a student's network may add.
ALLOWED_OPS = frozenset({
    # convolution, pooling, normalisation, resampling
    "Conv", "ConvTranspose", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "LpPool",
    "BatchNormalization", "InstanceNormalization", "LayerNormalization", "GroupNormalization",
    "LpNormalization", "Dropout", "Resize", "Upsample", "DepthToSpace", "SpaceToDepth", "Pad",
    # activations
    "Relu", "LeakyRelu", "PRelu", "Elu", "Selu", "Celu", "Gelu", "Sigmoid", "HardSigmoid", "HardSwish",
    "Tanh", "Softplus", "Softsign", "Mish", "Softmax", "LogSoftmax", "Clip", "ThresholdedRelu", "Shrink",
    # arithmetic and comparisons
    "Add", "Sub", "Mul", "Div", "Neg", "Abs", "Sqrt", "Pow", "Exp", "Log", "Reciprocal", "Erf", "Floor",
    "Ceil", "Round", "Sign", "Max", "Min", "Sum", "Mean", "Mod", "Equal", "Less", "Greater",
    "LessOrEqual", "GreaterOrEqual", "Not", "And", "Or", "Xor", "Where", "IsNaN", "IsInf",
    "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
    "ReduceSumSquare", "ReduceLogSumExp", "ArgMax", "ArgMin", "MatMul", "Gemm", "Einsum",
    # shapes and layout
    "Shape", "Size", "Gather", "GatherElements", "Unsqueeze", "Squeeze", "Reshape", "Flatten",
    "Transpose", "Concat", "Split", "Slice", "Expand", "Tile", "Cast", "CastLike", "Constant",
    "ConstantOfShape", "Range", "Identity", "ScatterND", "ScatterElements", "Trilu", "CumSum",
})
CONTROL_FLOW = frozenset({"Loop", "If", "Scan", "SequenceMap"})
_SPARSE_NOTE = "a sparse tensor"
# The child that parses: a real export of these networks parses in about a second and a few hundred MiB.
PARSE_LIMITS = Limits(wall_seconds=30, cpu_seconds=20, memory_bytes=3 * GIB, processes=64, output_bytes=64 * 1024)
MAX_ATTRIBUTES = 64  # on one node; the exporters write a handful
_parser = ParseServer(PARSE_LIMITS, "grader.verifier.acceptance:verdict_of")


class GraphRejected(Exception):
    """The graph is not one the grader will run; the message names what was found."""


@dataclass(frozen=True)
class AcceptedGraph:
    """Bytes of a graph that passed acceptance, with the facts the grader reads without running it."""

    data: bytes
    sha256: str
    op_types: frozenset[str]
    input_name: str
    output_names: tuple[str, ...]


def _tensors_of_attribute(attribute: AttributeProto) -> Iterator[tuple[TensorProto, str]]:
    """Every tensor an attribute holds, whatever its declared type says."""
    if attribute.HasField("t"):
        yield attribute.t, f"attribute {attribute.name}"
    for tensor in attribute.tensors:
        yield tensor, f"attribute {attribute.name}"
    sparse = [attribute.sparse_tensor] if attribute.HasField("sparse_tensor") else []
    for item in [*sparse, *attribute.sparse_tensors]:
        yield item.values, f"{_SPARSE_NOTE} in attribute {attribute.name}"
        yield item.indices, f"{_SPARSE_NOTE} in attribute {attribute.name}"


def _subgraphs(attribute: AttributeProto) -> list[onnx.GraphProto]:
    return ([attribute.g] if attribute.HasField("g") else []) + list(attribute.graphs)


def _walk(graph: onnx.GraphProto, depth: int = 0) -> Iterator[tuple[str, object, str]]:
    """("node", node, where), ("tensor", tensor, where) and ("dense", sparse, where) for a graph and
    every graph nested in its nodes' attributes, depth first."""
    if depth > 8:
        raise GraphRejected("the exported model nests graphs inside graphs more than 8 levels deep")
    where = "the main graph" if depth == 0 else f"a subgraph ({graph.name or 'unnamed'})"
    for tensor in graph.initializer:
        yield "tensor", tensor, f"initializer {tensor.name!r} of {where}"
    for sparse in graph.sparse_initializer:
        yield "tensor", sparse.values, f"{_SPARSE_NOTE} initializer of {where}"
        yield "tensor", sparse.indices, f"{_SPARSE_NOTE} initializer of {where}"
        yield "dense", sparse, f"{_SPARSE_NOTE} initializer of {where}"
    for node in graph.node:
        yield "node", node, where
        for attribute in node.attribute:
            for tensor, what in _tensors_of_attribute(attribute):
                yield "tensor", tensor, f"{what} of a {node.op_type} node in {where}"
            for sparse in ([attribute.sparse_tensor] if attribute.HasField("sparse_tensor") else []) + list(
                    attribute.sparse_tensors):
                yield "dense", sparse, f"{_SPARSE_NOTE} of a {node.op_type} node in {where}"
            for sub in _subgraphs(attribute):
                yield from _walk(sub, depth + 1)


def _elements(dims) -> int:
    count = 1
    for d in dims:
        if d < 0:
            return -1
        count *= int(d)
    return count


def _itemsize(tensor: TensorProto) -> int:
    try:
        return max(1, onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize)
    except (KeyError, ValueError, TypeError):
        return 8


def _is_external(tensor: TensorProto) -> bool:
    return tensor.data_location == TensorProto.EXTERNAL or len(tensor.external_data) > 0


def _check_tensor(tensor: TensorProto, where: str) -> int:
    """The tensor's declared bytes; refuses external data and sizes past the cap."""
    if _is_external(tensor):
        raise GraphRejected(f"the exported model keeps the data of {where} in an external file; export the "
                            "network as one self-contained .onnx file (weights inside)")
    elements = _elements(tensor.dims)
    if elements < 0 or elements > MAX_TENSOR_ELEMENTS:
        raise GraphRejected(f"{where} declares {elements if elements >= 0 else 'a negative number of'} elements, "
                            f"over the cap of {MAX_TENSOR_ELEMENTS}")
    return elements * _itemsize(tensor)


def _check_node(node: onnx.NodeProto, where: str) -> None:
    if node.domain not in STANDARD_DOMAINS:
        raise GraphRejected(f"the exported model uses the operator {node.op_type} of the non-standard domain "
                            f"{node.domain!r}; the grader runs only standard ONNX operators")
    if node.op_type in CONTROL_FLOW or any(_subgraphs(a) for a in node.attribute):
        raise GraphRejected(f"the exported model uses the operator {node.op_type} (control flow) in {where}, "
                            "which a convolutional network does not need: write forward() without loops or "
                            "branches that depend on the data")
    if node.op_type not in ALLOWED_OPS:
        raise GraphRejected(f"the exported model uses the operator {node.op_type}, which a convolutional network "
                            "does not need")


def _check_outputs(graph: onnx.GraphProto) -> tuple[str, ...]:
    if not graph.output:
        raise GraphRejected("the exported model has no output")
    for output in graph.output:
        dims = output.type.tensor_type.shape.dim
        if dims and all(d.HasField("dim_value") for d in dims) and _elements([d.dim_value for d in dims]) > \
                MAX_OUTPUT_ELEMENTS:
            raise GraphRejected(f"the exported model declares an output of shape {[d.dim_value for d in dims]}, "
                                "far larger than a segmentation of its input")
    return tuple(o.name for o in graph.output)


def _input_name(graph: onnx.GraphProto) -> str:
    stored = {t.name for t in graph.initializer} | {s.values.name for s in graph.sparse_initializer}
    inputs = [i.name for i in graph.input if i.name not in stored]
    if len(inputs) != 1:
        raise GraphRejected(f"the exported model takes {len(inputs)} inputs ({', '.join(inputs[:5]) or 'none'}); "
                            "a segmentation network takes one batch of images")
    return inputs[0]


def _parse(data: bytes) -> onnx.ModelProto:
    if len(data) > MAX_ONNX_BYTES:
        raise GraphRejected(f"the exported model is {len(data) // 2 ** 20} MiB, over the "
                            f"{MAX_ONNX_BYTES // 2 ** 20} MiB cap")
    try:
        return onnx.load_from_string(data)
    except (DecodeError, ValueError, TypeError, RuntimeError, RecursionError) as err:
        why = str(err).splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise GraphRejected(f"the exported model is not a valid ONNX file ({why})") from err


_recent: OrderedDict[bytes, AcceptedGraph | GraphRejected] = OrderedDict()
_recent_lock = threading.Lock()
RECENT = 2  # the graphs of the grading under way: every test of a graph accepts the same bytes


def accept(data: bytes) -> AcceptedGraph:
    """Parse and walk an exported graph; raise `GraphRejected` with the reason, else accept it. The
    verdicts on the last few graphs are remembered (bytes cache their hash, so a repeat costs little)."""
    data = bytes(data)
    with _recent_lock:
        verdict = _recent.get(data)
    if verdict is None:
        began = time.monotonic()
        verdict = _accept_bounded(data)
        record("acceptance (bounded child)", time.monotonic() - began)
        with _recent_lock:
            _recent[data] = verdict
            while len(_recent) > RECENT:
                _recent.popitem(last=False)
    if isinstance(verdict, GraphRejected):
        raise GraphRejected(str(verdict))
    return verdict


def _accept_bounded(data: bytes) -> AcceptedGraph | GraphRejected:
    """`_accept` in a grandchild with PARSE_LIMITS (`parse_server`); its verdict, or a rejection saying
    which limit hit."""
    if len(data) > MAX_ONNX_BYTES:
        return GraphRejected(f"the exported model is {len(data) // 2 ** 20} MiB, over the "
                             f"{MAX_ONNX_BYTES // 2 ** 20} MiB cap")
    with tempfile.TemporaryDirectory(prefix="grader-accept-") as folder:
        path = Path(folder) / "graph.onnx"
        path.write_bytes(data)
        verdict = _parser.ask(path)
    limits = PARSE_LIMITS
    if isinstance(verdict, dict) and "rejected" in verdict:
        return GraphRejected(str(verdict["rejected"]))
    if isinstance(verdict, dict):
        return AcceptedGraph(data, hashlib.sha256(data).hexdigest(), frozenset(verdict["op_types"]),
                             verdict["input_name"], tuple(verdict["output_names"]))
    why = "it took longer than" if verdict == "timeout" else "reading it needed more memory or CPU than"
    return GraphRejected(f"the exported model could not be read: {why} the grader allows "
                         f"({limits.wall_seconds:g} s, {limits.memory_bytes // GIB} GiB); a network of this "
                         "chapter exports to a graph that parses in about a second")


def verdict_of(path: str) -> dict:
    """The parsing side (a grandchild of `parse_server`): accept the graph at `path`; its verdict as JSON data."""
    try:
        graph = _accept(Path(path).read_bytes())
        return {"op_types": sorted(graph.op_types), "input_name": graph.input_name,
                "output_names": list(graph.output_names)}
    except GraphRejected as rejected:
        return {"rejected": str(rejected)}


def _accept(data: bytes) -> AcceptedGraph:
    model = _parse(data)
    if len(model.graph.node) > MAX_NODES:  # before any walk: counting costs nothing
        raise GraphRejected(f"the exported model has more than {MAX_NODES} operators; the chapter's "
                            "networks need a few hundred")
    crowded = next((n for n in model.graph.node if len(n.attribute) > MAX_ATTRIBUTES), None)
    if crowded is not None:
        raise GraphRejected(f"a {crowded.op_type[:40]} node of the exported model carries {len(crowded.attribute)} "
                            "attributes; an exported operator has a handful")
    if model.functions:
        raise GraphRejected(f"the exported model defines its own functions ({model.functions[0].name}, ...); "
                            "the grader runs only standard ONNX operators")
    if model.training_info:
        raise GraphRejected("the exported model carries training graphs; export the network for inference")
    nodes, stored, first_problem = 0, 0, None
    for kind, item, where in _walk(model.graph):  # every tensor first: external data is the worst finding
        if kind == "node":
            nodes += 1
            if nodes > MAX_NODES:
                raise GraphRejected(f"the exported model has more than {MAX_NODES} operators; the chapter's "
                                    "networks need a few hundred")
            try:
                _check_node(item, where)
            except GraphRejected as problem:
                first_problem = first_problem or problem
        elif kind == "tensor":
            stored += _check_tensor(item, where)
        else:  # a sparse tensor is as large as its dense shape once loaded
            elements = _elements(item.dims)
            if elements < 0 or elements > MAX_TENSOR_ELEMENTS:
                raise GraphRejected(f"{where} declares a dense shape of {list(item.dims)}, over the cap of "
                                    f"{MAX_TENSOR_ELEMENTS} elements")
            stored += elements * _itemsize(item.values)
        if stored > MAX_INITIALIZER_BYTES:
            raise GraphRejected(f"the exported model's weights and constants take more than "
                                f"{MAX_INITIALIZER_BYTES // 2 ** 20} MiB")
    if first_problem is not None:
        raise first_problem
    outputs = _check_outputs(model.graph)
    op_types = frozenset(n.op_type for n in model.graph.node)
    return AcceptedGraph(data, hashlib.sha256(data).hexdigest(), op_types, _input_name(model.graph), outputs)

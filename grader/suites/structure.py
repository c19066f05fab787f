"""What a network computes, read from its ONNX graph: residual blocks, skip connections and where
they join, found from tensors and resolutions, never from class or attribute names.

The graph is run once by onnxruntime on a non-square probe with every intermediate tensor exposed,
so each tensor's real shape is known. Then:

- the *bottleneck* is the smallest feature map a convolution makes; the *trunk* (the encoder) is
  every tensor at that resolution and everything they depend on;
- a tensor is *decoder-side* when it is computed from the bottleneck and is not in the trunk;
- a U-Net skip is a `Concat` joining a decoder-side tensor with trunk features of the same
  resolution; trunk features *added* instead are reported as such (FPN's lateral connections are
  additive by design), and trunk features resampled from another resolution are a skip from the
  wrong level.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import helper

RESAMPLING = {"Resize", "Upsample", "MaxPool", "AveragePool", "ConvTranspose", "Pad", "Slice"}


@dataclass(frozen=True)
class Join:
    """A Concat or Add where decoder-side features meet encoder features."""

    op: str  # "Concat" or "Add"
    size: tuple[int, int]  # spatial size where they join
    encoder_size: tuple[int, int]  # where the encoder features came from
    channels: int  # encoder channels joined

    @property
    def same_level(self) -> bool:
        return self.size == self.encoder_size


@dataclass(frozen=True)
class Structure:
    """The facts a test needs about a network."""

    input_size: tuple[int, int]
    output_shape: tuple[int, ...]
    trunk_levels: tuple[tuple[int, int], ...]  # spatial sizes of encoder feature maps, largest first
    bottleneck: tuple[int, int]
    joins: tuple[Join, ...]
    residual_adds: dict[int, int] = field(default_factory=dict)  # channels -> residual blocks in the trunk
    stem: tuple[int, int, int] | None = None  # (out channels, kernel, stride) of the first convolution
    op_types: frozenset[str] = frozenset()

    def scale(self, size: tuple[int, int]) -> str:
        """`1/4` for a size a quarter of the input's."""
        factor = self.input_size[0] / size[0]
        return "1" if factor == 1 else f"1/{factor:g}"

    @property
    def skip_levels(self) -> tuple[tuple[int, int], ...]:
        """Encoder resolutions that should feed the decoder: every trunk level but the bottleneck."""
        return tuple(s for s in self.trunk_levels if s != self.bottleneck)


def _expose_all(model: onnx.ModelProto) -> tuple[onnx.ModelProto, dict[str, int]]:
    """A copy whose outputs include every float tensor a node produces."""
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {vi.name: vi.type.tensor_type.elem_type for vi in
             list(inferred.graph.value_info) + list(inferred.graph.output) + list(inferred.graph.input)}
    exposed = onnx.ModelProto()
    exposed.CopyFrom(model)
    present = {o.name for o in exposed.graph.output}
    for node in exposed.graph.node:
        for name in node.output:
            if name and name not in present and types.get(name) == onnx.TensorProto.FLOAT:
                exposed.graph.output.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
                present.add(name)
    return exposed, types


def tensor_shapes(model: onnx.ModelProto, probe: np.ndarray) -> dict[str, tuple[int, ...]]:
    """The real shape of every float tensor when the graph runs on `probe`."""
    import onnxruntime as ort

    exposed, _ = _expose_all(model)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(exposed.SerializeToString(), options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    names = [o.name for o in session.get_outputs()]
    values = session.run(names, {input_name: probe.astype(np.float32)})
    shapes = {name: tuple(v.shape) for name, v in zip(names, values)}
    shapes[input_name] = tuple(probe.shape)
    return shapes


class _Graph:
    """Producers, consumers and spatial sizes of the tensors of one graph."""

    def __init__(self, model: onnx.ModelProto, shapes: dict[str, tuple[int, ...]]):
        self.nodes = list(model.graph.node)
        self.producer = {out: node for node in self.nodes for out in node.output}
        self.shapes = shapes
        self.initializers = {i.name: i for i in model.graph.initializer}

    def size(self, name: str) -> tuple[int, int] | None:
        shape = self.shapes.get(name)
        return tuple(shape[2:4]) if shape is not None and len(shape) == 4 else None

    def data_inputs(self, node: onnx.NodeProto) -> list[str]:
        return [i for i in node.input if i and i not in self.initializers and self.size(i) is not None]

    def ancestors(self, name: str) -> set[str]:
        seen, stack = set(), [name]
        while stack:
            current = stack.pop()
            node = self.producer.get(current)
            for parent in (self.data_inputs(node) if node else []):
                if parent not in seen:
                    seen.add(parent)
                    stack.append(parent)
        return seen


def _area(size: tuple[int, int]) -> int:
    return size[0] * size[1]


def _descendants(graph: _Graph, roots: set[str]) -> set[str]:
    """Every tensor computed from any of `roots` (topological pass)."""
    reached = set(roots)
    for node in graph.nodes:
        if any(i in reached for i in node.input):
            reached.update(o for o in node.output if o)
    return reached


def _encoder_source(graph: _Graph, name: str, trunk: set[str]) -> tuple[int, int] | None:
    """Where trunk features reaching `name` come from: the size of the nearest trunk tensor."""
    frontier, seen = [name], set()
    while frontier:
        current = frontier.pop(0)
        if current in trunk:
            return graph.size(current)
        node = graph.producer.get(current)
        for parent in (graph.data_inputs(node) if node else []):
            if parent not in seen:
                seen.add(parent)
                frontier.append(parent)
    return None


def _stem(graph: _Graph) -> tuple[int, int, int] | None:
    for node in graph.nodes:
        if node.op_type == "Conv":
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            weight = graph.initializers.get(node.input[1])
            out_channels = weight.dims[0] if weight is not None else graph.shapes.get(node.output[0], (0, 0))[1]
            kernel = attrs.get("kernel_shape", [0])[0]
            stride = attrs.get("strides", [1])[0]
            return int(out_channels), int(kernel), int(stride)
    return None


def analyse(model: onnx.ModelProto, probe: np.ndarray) -> Structure:
    """Read the network's structure from its graph and one forward pass on `probe`."""
    graph = _Graph(model, tensor_shapes(model, probe))
    output_name = model.graph.output[0].name
    conv_maps = [out for node in graph.nodes if node.op_type == "Conv" for out in node.output
                 if graph.size(out) is not None and min(graph.size(out)) > 1]
    bottleneck = min((graph.size(t) for t in conv_maps), key=_area)
    deepest = {out for node in graph.nodes for out in node.output if graph.size(out) == bottleneck}
    trunk = set().union(*(graph.ancestors(t) for t in deepest)) | deepest
    decoder = _descendants(graph, deepest) - trunk
    levels = sorted({graph.size(t) for t in conv_maps if t in trunk}, key=_area, reverse=True)
    joins, residual = [], defaultdict(int)
    for node in graph.nodes:
        if node.op_type not in ("Concat", "Add") or graph.size(node.output[0]) is None:
            continue
        inputs = graph.data_inputs(node)
        size = graph.size(node.output[0])
        decoder_side = [i for i in inputs if i in decoder]
        encoder_side = [i for i in inputs if i not in decoder]
        if decoder_side and encoder_side:
            for e in encoder_side:
                source = _encoder_source(graph, e, trunk) or size
                joins.append(Join(node.op_type, size, source, int(graph.shapes[e][1])))
        elif node.op_type == "Add" and node.output[0] in trunk and len(inputs) == 2:
            residual[int(graph.shapes[node.output[0]][1])] += 1
    return Structure(tuple(probe.shape[2:]), tuple(graph.shapes.get(output_name, ())), tuple(levels), bottleneck,
                     tuple(joins), dict(residual), _stem(graph), frozenset(n.op_type for n in graph.nodes))


def describe_skips(structure: Structure) -> list[str]:
    """Problems with the skip connections of a U-Net, each a sentence naming what was found."""
    problems = []
    concat_levels = {j.size for j in structure.joins if j.op == "Concat" and j.same_level}
    for join in structure.joins:
        if not join.same_level:
            problems.append(f"at resolution {structure.scale(join.size)} the decoder {'concatenates' if join.op == 'Concat' else 'adds'} "
                            f"encoder features taken from resolution {structure.scale(join.encoder_size)}, "
                            "resized to fit: a skip from the wrong level")
    added = sorted({j.size for j in structure.joins if j.op == "Add" and j.same_level}, key=_area, reverse=True)
    if added:
        problems.append("encoder features are added to the decoder at resolution "
                        f"{', '.join(structure.scale(s) for s in added)} (additive lateral connections, as in "
                        "FPN); a U-Net concatenates them along the channel axis")
    wrong = {j.size for j in structure.joins if not j.same_level}
    missing = [s for s in structure.skip_levels if s not in concat_levels and s not in wrong]
    if missing and not added:
        found = ", ".join(structure.scale(s) for s in sorted(concat_levels, key=_area, reverse=True)) or "none"
        problems.append(f"no encoder features are concatenated into the decoder at resolution "
                        f"{', '.join(structure.scale(s) for s in missing)} (concatenations found at: {found})")
    elif missing:
        problems.append(f"no concatenated skip at resolution {', '.join(structure.scale(s) for s in missing)}")
    return problems

"""A graph's data flow and the sites where the verifier perturbs it, found from tensors and
resolutions, never from names. Runs inside the verifier (imports numpy and onnx only).

- a *data* tensor carries values computed from the input image and has a 4-D shape (weights,
  constants and shape arithmetic are not data);
- the *bottleneck* is the smallest feature map a convolution makes; the *trunk* (the encoder) is
  every data tensor at that resolution and everything they depend on;
- a tensor is *decoder-side* when it is computed from the bottleneck and is not in the trunk;
- a *join* is a Concat or Add of decoder-side tensors with encoder-side ones: its site perturbs the
  nearest trunk feature on the skip path only (not on the way to the bottleneck);
- a *residual add* is an Add of two data tensors in the trunk: its sites perturb what enters each
  side (an identity side is its own edge into the Add), and the outputs of the convolutions that
  belong to one side only; its *chain* is the longest run of full 3×3 convolutions in series on one
  side (a basic block's branch has two); its *kind* is `bottleneck` when one side holds a 1×1, a 3×3
  and a 1×1 full convolution in series whose last one makes the Add's channels (ResNet50's block: its
  chain is those three, its *widths* their output channels), `basic` when the 3×3 chain has two or
  more, `plain` otherwise;
- a *gate* is a Mul of a feature by a sigmoid (a Sigmoid or HardSigmoid output, through at most a few
  one-input operations) outside the trunk, on a skip: the feature is a join's output (smp's scSE
  attention after the concat) or the Mul lies on a join's skip path (an attention gate before the
  concat); a skip whose encoder feature reaches the join only through such a gate computed with
  decoder features is still a join's encoder side; a gate is *learned* when the sigmoid's input is
  made by a convolution or linear layer with constant weights (through a few one-input operations),
  which SiLU (`x * sigmoid(x)`) or a sigmoid of a statistic of the feature is not;
- the *stem* is the first convolution of the trunk; a *bypass* is a path along which the input's
  values reach the output without passing through it (a second network riding along).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import helper

Edge = tuple[int, int]  # (node index, input slot)
CONVOLUTIONS = ("Conv", "ConvTranspose")


def _bytes(tensor: onnx.TensorProto) -> int:
    """The bytes a constant's values take, from its type and dims (a string element as 8, unknown types: none)."""
    try:
        size = np.dtype(helper.tensor_dtype_to_np_dtype(tensor.data_type)).itemsize
    except (KeyError, TypeError, ValueError):
        return 0
    return int(np.prod(tuple(int(d) for d in tensor.dims), dtype=np.int64)) * size


@dataclass
class JoinSite:
    node: int
    op: str
    size: tuple[int, int]
    encoder_size: tuple[int, int] | None
    channels: int
    edges: list[Edge]


@dataclass
class Side:
    entries: list[Edge]
    convs: list[int]  # node indices of convolutions on this side only


@dataclass
class ResidualSite:
    node: int
    channels: int
    size: tuple[int, int]
    sides: tuple[Side, Side]
    in_size: tuple[int, int]  # the largest resolution entering it: larger than `size` when it downsamples
    chain: list[int]  # node indices of the block's series: 1×1-3×3-1×1 (bottleneck) or the longest 3×3 run
    kind: str = "plain"  # "basic", "bottleneck" or "plain", from the graph alone (liveness is measured later)
    widths: tuple[int, ...] = ()  # output channels of each convolution of `chain`
    fan_ins: tuple[int, ...] = ()  # input channels each output channel of a `chain` convolution reads
    stored: tuple[int, ...] = ()  # weights stored for each `chain` convolution alone (see _stored_per_conv)


@dataclass
class GateSite:
    node: int  # the Mul
    gate: str  # the sigmoid's output tensor
    feature: str  # the tensor the gate multiplies
    where: str  # "join": the feature is a join's output; "skip": the Mul is on a join's skip path
    size: tuple[int, int]
    channels: int
    learned: bool = False  # the sigmoid's input comes from a weighted layer of the gate's own (see _learned)


@dataclass
class Layout:
    input_size: tuple[int, int]
    output_shape: tuple[int, ...]
    trunk_levels: list[tuple[int, int]]
    bottleneck: tuple[int, int]
    joins: list[JoinSite] = field(default_factory=list)
    residuals: list[ResidualSite] = field(default_factory=list)
    gates: list[GateSite] = field(default_factory=list)
    stem: tuple[int, int, int] | None = None
    stem_node: int | None = None
    bypass: bool = False  # the input reaches the output without passing through the stem
    trunk_weights: int = 0  # elements of the weights of the trunk's convolutions
    op_types: list[str] = field(default_factory=list)


class AnalysisError(Exception):
    """The graph has no structure to analyse (no convolution making a feature map)."""


class Topology:
    """Producers, consumers, data tensors and spatial sizes of one graph."""

    def __init__(self, graph: onnx.GraphProto, shapes: dict[str, tuple[int, ...]], input_name: str):
        self.nodes = list(graph.node)
        self.shapes = shapes
        self.initializer_dims = {t.name: tuple(int(d) for d in t.dims) for t in graph.initializer}
        self.constant_bytes = {t.name: _bytes(t) for t in graph.initializer}
        for node in self.nodes:
            value = next((a.t for a in node.attribute if a.name == "value"), None)
            if node.op_type == "Constant" and value is not None and node.output:
                self.constant_bytes[node.output[0]] = _bytes(value)
        self.input = input_name
        self.producer: dict[str, int] = {}
        self.consumers: dict[str, list[Edge]] = defaultdict(list)
        for index, node in enumerate(self.nodes):
            for slot, name in enumerate(node.input):
                if name:
                    self.consumers[name].append((index, slot))
            for name in node.output:
                if name:
                    self.producer[name] = index
        self.dynamic = {input_name}
        for node in self.nodes:  # nodes are in topological order (the checker insists)
            if any(name in self.dynamic for name in node.input):
                self.dynamic.update(o for o in node.output if o)
        self.valued = self.values_reached()  # computed from the input's values, not only from its shape

    def size(self, name: str) -> tuple[int, int] | None:
        shape = self.shapes.get(name)
        return (int(shape[2]), int(shape[3])) if shape is not None and len(shape) == 4 else None

    def is_data(self, name: str) -> bool:
        return name in self.dynamic and self.size(name) is not None

    def data_inputs(self, index: int) -> list[tuple[int, str]]:
        return [(slot, name) for slot, name in enumerate(self.nodes[index].input) if name and self.is_data(name)]

    def stored_weights(self, name: str) -> int:
        """The float32 weights constant `name` holds the bytes of (int8 or packed weights count as what they
        could hold); 0 for a tensor that is not a stored constant."""
        return self.constant_bytes.get(name, 0) // 4

    def constants_behind(self, names: list[str]) -> set[str]:
        """The stored constants (initializers and Constant nodes) that `names` are computed from, themselves
        included where they are constants."""
        found, seen, stack = set(), set(), [n for n in names if n]
        while stack:
            name = stack.pop()
            if name in seen:
                continue
            seen.add(name)
            if name in self.constant_bytes:
                found.add(name)
            elif (index := self.producer.get(name)) is not None:
                node = self.nodes[index]  # a convolution's bias (batch norm folded into it) is not a weight
                stack += [n for n in (node.input[:2] if node.op_type in CONVOLUTIONS else node.input) if n]
        return found

    def values_reached(self, avoid_node: int | None = None, avoid: str | None = None) -> set[str]:
        """Tensors the input's values reach (never by way of a shape), passing neither node `avoid_node` nor
        tensor `avoid`."""
        reached = {self.input}
        for index, node in enumerate(self.nodes):
            if index != avoid_node and node.op_type not in SHAPE_ONLY and any(i in reached for i in node.input if i):
                reached.update(o for o in node.output if o and o != avoid)
        return reached

    def computed_from(self, names: set[str], through: set[str] | None = None) -> set[str]:
        """Every tensor of `through` (default: those computed from the input) that `names` are computed from,
        whatever its rank, not `names` themselves: what `ancestors` finds, and the work between."""
        through = self.dynamic if through is None else through
        seen, stack = set(), list(names)
        while stack:
            index = self.producer.get(stack.pop())
            for parent in (self.nodes[index].input if index is not None else ()):
                if parent and parent in through and parent not in seen:
                    seen.add(parent)
                    stack.append(parent)
        return seen

    def ancestors(self, name: str) -> set[str]:
        """Every data tensor `name` is computed from (not `name` itself), across tensors of other ranks on the
        way (GroupNorm computes through a 3-D reshape of the features), never through a shape."""
        return {t for t in self.computed_from({name}, self.valued) if self.is_data(t)}

    def weight_shape(self, index: int) -> tuple[int, ...]:
        """The shape of a convolution's weight, from the initializer or the value it had on the probe."""
        node = self.nodes[index]
        name = node.input[1] if len(node.input) > 1 else ""
        return self.initializer_dims.get(name) or tuple(self.shapes.get(name, ()))

    def conv(self, index: int) -> tuple[tuple[int, int], int, int]:
        """(kernel, stride, groups) of a convolution, the kernel from its weight when not an attribute."""
        attrs = {a.name: helper.get_attribute_value(a) for a in self.nodes[index].attribute}
        weight = self.weight_shape(index)
        kernel = tuple(attrs.get("kernel_shape") or weight[2:4] or (0, 0))
        strides = tuple(attrs.get("strides") or (1, 1))
        return ((int(kernel[0]), int(kernel[-1])), int(max(strides)), int(attrs.get("group", 1)))

    def descendants(self, roots: set[str]) -> set[str]:
        reached = set(roots)
        for node in self.nodes:
            if any(i in reached for i in node.input):
                reached.update(o for o in node.output if o)
        return reached


def _area(size: tuple[int, int]) -> int:
    return size[0] * size[1]


def _nearest_trunk(topo: Topology, name: str, trunk: set[str]) -> str | None:
    """The trunk tensor nearest upstream of `name` (breadth first), or None."""
    frontier, seen = [name], {name}
    while frontier:
        current = frontier.pop(0)
        if current in trunk:
            return current
        index = topo.producer.get(current)
        for _, parent in (topo.data_inputs(index) if index is not None else []):
            if parent not in seen:
                seen.add(parent)
                frontier.append(parent)
    return None


def _skip_edges(topo: Topology, source: str, join: int, slot: int, trunk: set[str]) -> list[Edge]:
    """Where `source` enters the path to input `slot` of node `join`, off the way to the bottleneck."""
    target = topo.nodes[join].input[slot]
    if target == source:
        return [(join, slot)]
    upstream = topo.ancestors(target) | {target}
    edges = []
    for index, in_slot in topo.consumers.get(source, []):
        outputs = [o for o in topo.nodes[index].output if o]
        if any(o in trunk for o in outputs):
            continue
        if any(o in upstream for o in outputs) or index == join:
            edges.append((index, in_slot))
    return edges


def _side(topo: Topology, add: int, slot: int, mine: set[str], other: set[str]) -> Side:
    """What enters one input of a residual Add from what both inputs share, and its own convolutions."""
    name = topo.nodes[add].input[slot]
    if name in other:  # the input itself is shared: an identity shortcut, entered at the Add
        return Side([(add, slot)], [])
    own = mine - other
    nodes = sorted({topo.producer[t] for t in own if t in topo.producer})
    entries = [(n, s) for n in nodes for s, t in topo.data_inputs(n) if t not in own]
    convs = [n for n in nodes if topo.nodes[n].op_type in CONVOLUTIONS]
    return Side(entries, convs)


def _chain(topo: Topology, convs: list[int]) -> list[int]:
    """The longest series of full 3×3 convolutions among `convs` (each computed from the one before)."""
    basic = [n for n in sorted(convs) if topo.nodes[n].op_type == "Conv" and topo.conv(n)[0] == (3, 3)
             and topo.conv(n)[2] == 1]
    best: dict[int, list[int]] = {}
    for n in basic:  # in topological order
        upstream = topo.ancestors(topo.nodes[n].input[0]) | {topo.nodes[n].input[0]}
        before = [best[m] for m in best if topo.nodes[m].output[0] in upstream]
        best[n] = max(before, key=len, default=[]) + [n]
    return max(best.values(), key=len, default=[])


def _series(topo: Topology, convs: list[int], kernels: tuple[tuple[int, int], ...]) -> list[int]:
    """Full convolutions among `convs` with `kernels` in that order, each computed from the one before:
    the series ending last in the graph, or [] when there is none."""
    partial: list[dict[int, list[int]]] = [{} for _ in kernels]
    for n in sorted(convs):
        node = topo.nodes[n]
        if node.op_type != "Conv" or topo.conv(n)[2] != 1:
            continue
        upstream = topo.ancestors(node.input[0]) | {node.input[0]}
        for position in reversed(range(len(kernels))):
            if topo.conv(n)[0] != kernels[position]:
                continue
            if position == 0:
                partial[0][n] = [n]
                continue
            before = [series for m, series in partial[position - 1].items() if topo.nodes[m].output[0] in upstream]
            if before:
                partial[position][n] = before[-1] + [n]
    return partial[-1][max(partial[-1])] if partial[-1] else []


BOTTLENECK = ((1, 1), (3, 3), (1, 1))


def _block(topo: Topology, sides: tuple[Side, Side], channels: int) -> tuple[str, list[int], tuple[int, ...]]:
    """(kind, chain, widths) of a residual add from its sides' convolutions."""
    for side in sides:
        series = _series(topo, side.convs, BOTTLENECK)
        widths = tuple(_channels(topo, topo.nodes[n].output[0]) for n in series)
        if series and widths[-1] == channels:
            return "bottleneck", series, widths
    chain = max((_chain(topo, side.convs) for side in sides), key=len)[:4]  # a basic block needs 2
    return ("basic" if len(chain) >= 2 else "plain"), chain, tuple(_channels(topo, topo.nodes[n].output[0])
                                                                  for n in chain)


def _channels(topo: Topology, name: str) -> int:
    shape = topo.shapes.get(name, ())
    return int(shape[1]) if len(shape) == 4 else 0


GATE_OPS = ("Sigmoid", "HardSigmoid")
PASS_THROUGH = ("Mul", "Add", "Sub", "Div", "Identity", "Cast", "Expand", "Tile", "Neg", "Resize", "Upsample")
GATE_DEPTH = 4  # one-input operations between a sigmoid and the Mul it gates
MAX_GATES = 32  # gates measured (two perturbation runs each); U-Nets with attention have one or two per level


def _sigmoid_of(topo: Topology, name: str) -> str | None:
    """The sigmoid output `name` is computed from through one-input operations, or None."""
    for _ in range(GATE_DEPTH + 1):
        index = topo.producer.get(name)
        if index is None:
            return None
        node = topo.nodes[index]
        if node.op_type in GATE_OPS:
            return node.output[0]
        inputs = [n for _, n in topo.data_inputs(index)] or [n for n in node.input if n in topo.dynamic]
        if node.op_type not in PASS_THROUGH or len(inputs) != 1:
            return None
        name = inputs[0]
    return None


WEIGHTED = ("Conv", "ConvTranspose", "Gemm", "MatMul")
GATE_SHAPING = ("Identity", "Cast", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "BatchNormalization",
                "Relu", "LeakyRelu", "Add", "Sub", "Mul", "Div", "Expand", "Tile", "Resize", "Upsample")


def _learned(topo: Topology, sigmoid: str, feature: str) -> bool:
    """Whether the sigmoid producing `sigmoid` is fed, through at most GATE_DEPTH operations of one
    computed input each, by a convolution or linear layer of the gate's own: one whose other inputs (its
    weights) are constants and whose output is not on the way to the gated `feature`. Attention
    computes its gate with such a layer; an activation such as SiLU (`x * sigmoid(x)`, where the walk
    reaches the feature itself or the layer that made it) or a sigmoid of the feature's mean does not."""
    on_the_way = topo.ancestors(feature) | {feature}
    node = topo.nodes[topo.producer[sigmoid]]
    computed = [n for n in node.input if n and n in topo.dynamic]
    for _ in range(GATE_DEPTH + 1):
        if len(computed) != 1 or computed[0] in on_the_way or topo.producer.get(computed[0]) is None:
            return False
        node = topo.nodes[topo.producer[computed[0]]]
        computed = [n for n in node.input if n and n in topo.dynamic]
        if node.op_type in WEIGHTED:
            return len(computed) == 1 and any(n and n not in topo.dynamic for n in node.input)
        if node.op_type not in GATE_SHAPING:
            return False
    return False


def _gate_operands(topo: Topology, index: int) -> tuple[str, str] | None:
    """(sigmoid output, feature) when node `index` multiplies a data tensor by a sigmoid gate."""
    node = topo.nodes[index]
    if node.op_type != "Mul" or len(node.input) != 2 or not all(topo.is_data(n) for n in node.input):
        return None
    for gate, feature in ((node.input[1], node.input[0]), (node.input[0], node.input[1])):
        sigmoid = _sigmoid_of(topo, gate)
        if sigmoid is not None and _sigmoid_of(topo, feature) is None:
            return sigmoid, feature
    return None


def _gated_feature(topo: Topology, name: str, decoder: set[str]) -> str | None:
    """The encoder-side feature behind `name` when `name` is that feature times a gate computed with
    decoder features (an attention gate on a skip), else None."""
    index = topo.producer.get(name)
    operands = _gate_operands(topo, index) if index is not None else None
    return operands[1] if operands and operands[1] not in decoder else None


def _gates(topo: Topology, trunk: set[str], decoder: set[str], joins: dict[int, list[str]]) -> list[GateSite]:
    """Sigmoid gates on a join's output or on a join's skip path (`joins`: node -> encoder-side inputs)."""
    outputs = {topo.nodes[j].output[0] for j in joins}
    skip_paths: set[str] = set()
    for names in joins.values():
        for name in names:
            skip_paths |= {name} | (topo.ancestors(name) - trunk - decoder)
    found = []
    for index, node in enumerate(topo.nodes):
        operands = _gate_operands(topo, index)
        if operands is None or node.output[0] in trunk:
            continue
        gate, feature = operands
        where = "join" if feature in outputs else "skip" if node.output[0] in skip_paths else None
        size = topo.size(node.output[0])
        if where and size is not None:
            found.append(GateSite(index, gate, feature, where, size, _channels(topo, feature),
                                   _learned(topo, gate, feature)))
    return found[:MAX_GATES]


def _inside_gates(topo: Topology, layout: Layout, output: str) -> set[int]:
    """Add joins whose every path to `output` passes through a gate's sigmoid: part of the gate."""
    sigmoids = {topo.producer[g.gate] for g in layout.gates}
    inside = set()
    for join in {j.node for j in layout.joins if j.op == "Add"} if sigmoids else ():
        reached = {topo.nodes[join].output[0]}
        for index, node in enumerate(topo.nodes):
            if index not in sigmoids and any(i in reached for i in node.input):
                reached.update(o for o in node.output if o)
        if output not in reached:
            inside.add(join)
    return inside


def _stem_node(topo: Topology, trunk: set[str]) -> int | None:
    """The trunk's first convolution: in topological order, none of the trunk's comes before it."""
    return next((i for i, node in enumerate(topo.nodes) if node.op_type == "Conv" and node.output[0] in trunk), None)


def _stem(topo: Topology, index: int | None) -> tuple[int, int, int] | None:
    if index is None:
        return None
    shape = topo.shapes.get(topo.nodes[index].output[0], ())
    (kernel, _), stride, _ = topo.conv(index)
    return int(shape[1]) if len(shape) == 4 else 0, kernel, stride


SHAPE_ONLY = ("Shape", "Size")  # their outputs carry a tensor's shape, none of its values


def _bypass(topo: Topology, stem: int | None, output: str) -> bool:
    """Whether the input's values reach `output` along a path that avoids the stem."""
    return output in topo.values_reached(avoid_node=stem)


def _trunk_weights(topo: Topology, deepest: set[str], end: str | None) -> int:
    """The weights the encoder computes with, counted where they are stored. Its operations are those on the
    way to its deepest features through tensors of any rank; their weights are each convolution's weight and
    every other operand that is not a feature map (a MatMul's or Einsum's matrix, a Mul's table). Each weight
    counts as the constants it is computed from, each constant once, by its bytes / 4: a 3×3 weight expanded
    at run time from (c, 1, 3, 3) values counts those, int8 or packed weights count what they could hold, and
    weights cut into small constants add up. Work the input reaches only by way of `end`, the trunk's last
    residual block, is a bridge the decoder starts with (smp's center block), not encoder: it sees the
    trunk's features, never the image."""
    reach = topo.computed_from(deepest) | deepest
    bridge = _only_through(topo, end) if end is not None else set()
    operands = []
    for node in topo.nodes:
        if not node.output or node.output[0] not in reach or node.output[0] in bridge:
            continue
        if node.op_type in CONVOLUTIONS:
            operands += node.input[1:2]
        else:
            operands += [name for name in node.input if name and not topo.is_data(name)]
    return sum(topo.stored_weights(name) for name in topo.constants_behind(operands))


def _stored_per_conv(topo: Topology) -> dict[int, int]:
    """For each convolution, the weights stored for it alone: the constants its weight is computed from that
    no convolution before it used. A (c, c, 3, 3) weight expanded at run time from (c, 1, 3, 3) values, or
    one weight shared by several convolutions, does not make each of them a full convolution."""
    claimed: set[str] = set()
    stored = {}
    for index, node in enumerate(topo.nodes):
        if node.op_type in CONVOLUTIONS:
            mine = topo.constants_behind(node.input[1:2]) - claimed
            stored[index] = sum(topo.stored_weights(name) for name in mine)
            claimed |= mine
    return stored


def _only_through(topo: Topology, end: str) -> set[str]:
    """Tensors whose values the input reaches only by way of `end` (shapes carry no values)."""
    return topo.dynamic - topo.values_reached(avoid=end) - {end}


def _trunk_end(topo: Topology, layout: Layout) -> str | None:
    """The output of the trunk's last residual addition at the bottleneck's resolution, if it has one."""
    last = [r.node for r in layout.residuals if r.size == layout.bottleneck]
    return topo.nodes[max(last)].output[0] if last else None


LEARNING_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul", "BatchNormalization", "InstanceNormalization")


def _refuse_hidden_ranks(topo: Topology) -> None:
    """The analysis reads levels, joins and blocks from (N, C, H, W) tensors. Convolutions over tensors of
    another rank (a ResNet computed in 5-D over a dummy axis, or Conv1d over flattened pixels), or any
    weighted operation on a computed tensor of more than four dimensions, would do work it cannot see,
    so such a graph is refused rather than misread."""
    for node in topo.nodes:
        computed = [n for n in node.input if n and n in topo.dynamic and n in topo.shapes]
        ranks = {len(topo.shapes[n]) for n in computed}
        if node.op_type in CONVOLUTIONS and ranks - {4}:
            rank = min(ranks - {4})
            raise AnalysisError(f"it has a convolution ({node.op_type}) over {rank}-dimensional tensors; the grader "
                                "analyses 2-D networks whose convolutions take (N, C, H, W) tensors: use Conv2d on "
                                "those only")
        if node.op_type in LEARNING_OPS and max(ranks, default=0) > 4:
            raise AnalysisError(f"it computes {node.op_type} on {max(ranks)}-dimensional tensors; the grader analyses "
                                "2-D networks whose features are (N, C, H, W) tensors: compute with those only")


def analyse(graph: onnx.GraphProto, shapes: dict[str, tuple[int, ...]], input_name: str,
            output_name: str) -> tuple[Layout, Topology]:
    """Joins, residual adds and levels of a network from its graph and every tensor's real shape."""
    topo = Topology(graph, shapes, input_name)
    _refuse_hidden_ranks(topo)
    conv_maps = [o for node in topo.nodes if node.op_type == "Conv" for o in node.output
                 if topo.is_data(o) and min(topo.size(o)) > 1]
    if not conv_maps:
        raise AnalysisError("the network has no convolution that makes a feature map")
    bottleneck = min((topo.size(t) for t in conv_maps), key=_area)
    deepest = {o for node in topo.nodes for o in node.output if topo.is_data(o) and topo.size(o) == bottleneck}
    trunk = set().union(*(topo.ancestors(t) for t in deepest)) | deepest
    decoder = topo.descendants(deepest) - trunk
    levels = sorted({topo.size(t) for t in conv_maps if t in trunk}, key=_area, reverse=True)
    stem = _stem_node(topo, trunk)
    layout = Layout(tuple(shapes[input_name][2:4]), tuple(shapes.get(output_name, ())), levels, bottleneck,
                    stem=_stem(topo, stem), stem_node=stem, bypass=_bypass(topo, stem, output_name),
                    op_types=sorted({n.op_type for n in topo.nodes}))
    stored = _stored_per_conv(topo)
    join_inputs: dict[int, list[str]] = {}
    for index, node in enumerate(topo.nodes):
        if node.op_type not in ("Concat", "Add") or not node.output or topo.size(node.output[0]) is None:
            continue
        inputs = topo.data_inputs(index)
        size = topo.size(node.output[0])
        gated = {name: _gated_feature(topo, name, decoder) for _, name in inputs if name in decoder}
        decoder_side = [name for _, name in inputs if name in decoder and not gated.get(name)]
        encoder_side = [(slot, name) for slot, name in inputs if name not in decoder or gated.get(name)]
        if decoder_side and encoder_side:
            join_inputs[index] = [name for _, name in encoder_side]
            for slot, name in encoder_side:
                source = _nearest_trunk(topo, gated.get(name) or name, trunk)
                edges = _skip_edges(topo, source, index, slot, trunk) if source else []
                layout.joins.append(JoinSite(index, node.op_type, size, topo.size(source) if source else None,
                                             int(shapes[name][1]), edges))
        elif node.op_type == "Add" and node.output[0] in trunk and len(inputs) == 2:
            (slot_a, a), (slot_b, b) = inputs
            mine_a, mine_b = topo.ancestors(a) | {a}, topo.ancestors(b) | {b}
            sides = (_side(topo, index, slot_a, mine_a, mine_b), _side(topo, index, slot_b, mine_b, mine_a))
            entering = [topo.size(topo.nodes[n].input[k]) for side in sides for n, k in side.entries]
            in_size = max([size] + [e for e in entering if e is not None], key=_area)
            channels = int(shapes[node.output[0]][1])
            kind, chain, widths = _block(topo, sides, channels)
            fan_ins = tuple(int(topo.weight_shape(n)[1]) if len(topo.weight_shape(n)) > 1 else 0 for n in chain)
            layout.residuals.append(ResidualSite(index, channels, size, sides, in_size, chain, kind, widths, fan_ins,
                                                 tuple(stored[n] for n in chain)))
    layout.trunk_weights = _trunk_weights(topo, deepest, _trunk_end(topo, layout))
    layout.gates = _gates(topo, trunk, decoder, join_inputs)
    inside = _inside_gates(topo, layout, output_name)
    if inside:  # an attention gate's own addition of skip and decoder features is not a skip
        layout.joins = [j for j in layout.joins if j.node not in inside]
        layout.gates = _gates(topo, trunk, decoder, {k: v for k, v in join_inputs.items() if k not in inside})
    return layout, topo

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
  side (a basic block's branch has two);
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
    chain: list[int]  # node indices of the longest series of full 3×3 convolutions on one side


@dataclass
class Layout:
    input_size: tuple[int, int]
    output_shape: tuple[int, ...]
    trunk_levels: list[tuple[int, int]]
    bottleneck: tuple[int, int]
    joins: list[JoinSite] = field(default_factory=list)
    residuals: list[ResidualSite] = field(default_factory=list)
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

    def size(self, name: str) -> tuple[int, int] | None:
        shape = self.shapes.get(name)
        return (int(shape[2]), int(shape[3])) if shape is not None and len(shape) == 4 else None

    def is_data(self, name: str) -> bool:
        return name in self.dynamic and self.size(name) is not None

    def data_inputs(self, index: int) -> list[tuple[int, str]]:
        return [(slot, name) for slot, name in enumerate(self.nodes[index].input) if name and self.is_data(name)]

    def ancestors(self, name: str) -> set[str]:
        """Every data tensor `name` is computed from (not `name` itself)."""
        seen, stack = set(), [name]
        while stack:
            index = self.producer.get(stack.pop())
            for _, parent in (self.data_inputs(index) if index is not None else []):
                if parent not in seen:
                    seen.add(parent)
                    stack.append(parent)
        return seen

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
    reached = {topo.input}
    for index, node in enumerate(topo.nodes):
        if index != stem and node.op_type not in SHAPE_ONLY and any(i in reached for i in node.input):
            reached.update(o for o in node.output if o)
    return output in reached


def _trunk_weights(topo: Topology, trunk: set[str]) -> int:
    total = 0
    for index, node in enumerate(topo.nodes):
        if node.op_type in CONVOLUTIONS and node.output[0] in trunk:
            shape = topo.weight_shape(index)
            total += int(np.prod(shape, dtype=np.int64)) if shape else 0
    return total


def analyse(graph: onnx.GraphProto, shapes: dict[str, tuple[int, ...]], input_name: str,
            output_name: str) -> tuple[Layout, Topology]:
    """Joins, residual adds and levels of a network from its graph and every tensor's real shape."""
    topo = Topology(graph, shapes, input_name)
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
                    trunk_weights=_trunk_weights(topo, trunk), op_types=sorted({n.op_type for n in topo.nodes}))
    for index, node in enumerate(topo.nodes):
        if node.op_type not in ("Concat", "Add") or not node.output or topo.size(node.output[0]) is None:
            continue
        inputs = topo.data_inputs(index)
        size = topo.size(node.output[0])
        decoder_side = [name for _, name in inputs if name in decoder]
        encoder_side = [(slot, name) for slot, name in inputs if name not in decoder]
        if decoder_side and encoder_side:
            for slot, name in encoder_side:
                source = _nearest_trunk(topo, name, trunk)
                edges = _skip_edges(topo, source, index, slot, trunk) if source else []
                layout.joins.append(JoinSite(index, node.op_type, size, topo.size(source) if source else None,
                                             int(shapes[name][1]), edges))
        elif node.op_type == "Add" and node.output[0] in trunk and len(inputs) == 2:
            (slot_a, a), (slot_b, b) = inputs
            mine_a, mine_b = topo.ancestors(a) | {a}, topo.ancestors(b) | {b}
            sides = (_side(topo, index, slot_a, mine_a, mine_b), _side(topo, index, slot_b, mine_b, mine_a))
            entering = [topo.size(topo.nodes[n].input[k]) for side in sides for n, k in side.entries]
            in_size = max([size] + [e for e in entering if e is not None], key=_area)
            chain = max((_chain(topo, side.convs) for side in sides), key=len)[:4]  # a basic block needs 2
            layout.residuals.append(ResidualSite(index, int(shapes[node.output[0]][1]), size, sides, in_size, chain))
    return layout, topo

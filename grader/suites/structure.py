"""What a network computes, as the verifier measured it from its ONNX graph: skip connections and
residual blocks found from tensors and resolutions, and counted only when they change the output.

The verifier (grader/verifier/inside/topology.py) finds the bottleneck, the encoder trunk, the
joins where decoder features meet encoder features, and the residual additions of the trunk. It
then perturbs each join's encoder feature on the skip path only, each addition's two sides and its
convolutions, and measures the change of the output next to the change a perturbation of the join's
(or addition's) own output makes. This module turns that report into facts and sentences:

- a skip counts when its encoder feature changes the output (`torch.cat([x, skip * 0])` does not);
- a residual block counts when both sides carry its input to the output and one of its
  convolutions does too (`x + 0 * x` and `x + conv(x) * 0` do not); it is a *basic block* (ResNet18/34's)
  when two full 3×3 convolutions in series on its branch each carry its input and change the output,
  a *bottleneck block* (ResNet50's) when a 1×1, a 3×3 and a 1×1 convolution in series on its branch
  each do, the last one making the block's channels (its *expansion*: those over the 3×3's);
- an encoder is identified against specs (`EncoderSpec`: stem, block kind, blocks per stage, weights)
  by what it computes, never by names (`describe_encoder`, `identify_encoder`);
- attention on the skips counts when a sigmoid gate multiplying the skip features (on the skip before
  the concat, or the concatenation itself, as smp's scSE does) changes the output and is itself
  changed by the input: a gate multiplied by 0, or computed from nothing that varies, does not.
  Dropout is not detectable: an evaluation-mode export leaves no trace of it (`detect_variants`);
- the encoder carries the signal when perturbing its first convolution's output changes the output
  about as much as perturbing the input does, and no path takes the input to the output around it (a
  U-Net scaled down to nothing next to a second network would pass every other, yardstick-relative test).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

INFLUENCE_RATIO = 1e-3  # of the yardstick: a real skip or branch measures 1e-2 to 1, a dead one exactly 0
SIGNAL_RATIO = 0.1  # of the input's influence, the stem's: real U-Nets 0.5 to 2, one riding along at 1e-4 of it
WEIGHTS_TOLERANCE = 0.05  # of the expected number of convolution weights in the encoder
KINDS = ("basic", "bottleneck", "plain")


@dataclass(frozen=True)
class Block:
    """One residual addition of the encoder, as measured: what its branch computes, and whether it counts."""

    channels: int
    kind: str  # "basic" or "bottleneck" when its series of convolutions all change the output, else "plain"
    width: int  # output channels of the 3×3 convolution of a bottleneck block (0 for the others)
    counted: bool  # both sides and a branch convolution change the output
    downsamples: bool

    @property
    def expansion(self) -> float:
        return self.channels / self.width if self.width else 0.0


@dataclass(frozen=True)
class Gate:
    """A sigmoid gate multiplying skip features: on the skip path (`where="skip"`) or on the join's output."""

    where: str
    size: tuple[int, int]
    channels: int
    live: bool  # perturbing the gate changes the output
    input_dependent: bool  # perturbing the input changes the gate
    learned: bool = False  # a convolution or linear layer of the gate's own computes the sigmoid's input

    @property
    def counts(self) -> bool:
        return self.live and self.input_dependent and self.learned


@dataclass(frozen=True)
class Join:
    """A Concat or Add where decoder-side features meet encoder features."""

    op: str  # "Concat" or "Add"
    size: tuple[int, int]  # spatial size where they join
    encoder_size: tuple[int, int] | None  # where the encoder features came from; None: no encoder feature
    channels: int  # encoder channels joined
    live: bool = True  # the encoder feature changes the output through this join

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
    residual_adds: dict[int, int] = field(default_factory=dict)  # channels -> residual blocks that count
    inert_adds: dict[int, int] = field(default_factory=dict)  # channels -> additions whose branch does nothing
    stem: tuple[int, int, int] | None = None  # (out channels, kernel, stride) of the first convolution
    op_types: frozenset[str] = frozenset()
    basic_blocks: dict[int, int] = field(default_factory=dict)  # channels -> counted blocks with two live 3×3 convs
    downsampling: dict[int, int] = field(default_factory=dict)  # channels -> counted blocks that shrink the size
    trunk_weights: int = 0  # elements of the encoder's convolution weights
    stem_influence: float = 1.0  # relative output change when the stem's output is perturbed
    input_influence: float = 1.0  # relative output change when the input is perturbed
    bypass: bool = False  # the input reaches the output without passing through the stem
    bottleneck_blocks: dict[int, int] = field(default_factory=dict)  # channels -> counted live 1×1-3×3-1×1 blocks
    blocks: tuple[Block, ...] = ()  # every residual addition of the encoder, in the graph's order
    gates: tuple[Gate, ...] = ()  # sigmoid gates on skips

    def scale(self, size: tuple[int, int]) -> str:
        """`1/4` for a size a quarter of the input's."""
        factor = self.input_size[0] / size[0]
        return "1" if factor == 1 else f"1/{factor:g}"

    @property
    def skip_levels(self) -> tuple[tuple[int, int], ...]:
        """Encoder resolutions that should feed the decoder: every trunk level but the bottleneck."""
        return tuple(s for s in self.trunk_levels if s != self.bottleneck)


def _size(value: Any) -> tuple[int, int]:
    if not isinstance(value, list) or len(value) != 2 or not all(isinstance(v, int) and v > 0 for v in value):
        raise ValueError(f"{str(value)[:60]} is not a spatial size")
    return value[0], value[1]


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or value < 0:
        raise ValueError(f"{str(value)[:60]} is not an influence")
    return float(value)


def _live(influence: Any, reference: Any, ratio: float) -> bool:
    influence, reference = _number(influence), _number(reference)
    return reference > 0 and influence >= ratio * reference


def _ints(value: Any, length: int | None = None) -> tuple[int, ...]:
    if not isinstance(value, list) or (length is not None and len(value) != length) or len(value) > 8 or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise ValueError(f"{str(value)[:60]} is not a list of integers")
    return tuple(value)


def _counts(value: Any) -> tuple[int, ...]:
    """`_ints`, none negative (weights stored per convolution)."""
    counts = _ints(value)
    if any(v < 0 for v in counts):
        raise ValueError(f"{str(value)[:60]} is not a list of counts")
    return counts


def from_layout(layout: dict[str, Any], ratio: float = INFLUENCE_RATIO) -> Structure:
    """The structure the verifier reported; `ValueError` when the report is malformed."""
    if not isinstance(layout, dict):
        raise ValueError("the report is not an object")
    joins = []
    for j in layout.get("joins") or []:
        encoder = j.get("encoder_size")
        joins.append(Join(str(j["op"])[:20], _size(j["size"]), _size(encoder) if encoder is not None else None,
                          int(j["channels"]), encoder is not None and _live(j["influence"], j["reference"], ratio)))
    counted, inert, basic, downsampling, bottleneck = Counter(), Counter(), Counter(), Counter(), Counter()
    blocks = []
    for r in layout.get("residual_adds") or []:
        sides = r["influence"]
        if not isinstance(sides, list) or len(sides) != 2:
            raise ValueError("a residual addition without two sides")
        yardstick = max(_number(s) for s in sides)  # a real block's two sides are of one order
        real = all(_live(s, yardstick, ratio) for s in sides) and _live(r["conv_influence"], yardstick, ratio)
        channels = int(r["channels"])
        (counted if real else inert)[channels] += 1
        chain = r["chain"]
        if not isinstance(chain, list) or len(chain) > 8:
            raise ValueError("a residual addition's chain is not a list")
        live = [c["carried"] is True and _live(c["influence"], yardstick, ratio) for c in chain]
        kind, widths, fan_ins = r.get("kind", "basic"), _ints(r.get("widths", [])), _ints(r.get("fan_ins", []))
        stored = _counts(r.get("stored", []))
        if kind not in KINDS:
            raise ValueError(f"{str(kind)[:20]} is not a kind of residual block")
        if kind == "bottleneck":
            kind = "bottleneck" if real and len(chain) == len(widths) == 3 and all(live) else "plain"
        else:  # a basic block's 3×3s each read and give the block's channels (the first reads half, where a
            # stage opens), with weights of their own: one squeezed through a few channels, reading their mean,
            # grouped, expanded from a few stored values or sharing another's weights is padding
            full = [fan_in for alive, width, fan_in, weights in zip(live, widths, fan_ins, stored)
                    if alive and width == channels and 2 * fan_in >= channels and 2 * weights >= 9 * width * fan_in]
            kind = "basic" if real and len(full) >= 2 and max(full) >= channels else "plain"
        basic[channels] += kind == "basic"
        bottleneck[channels] += kind == "bottleneck"
        downsampling[channels] += real and _size(r["in_size"]) != _size(r["size"])
        blocks.append(Block(channels, kind, widths[1] if kind == "bottleneck" else 0, real,
                            _size(r["in_size"]) != _size(r["size"])))
    gates = []
    for g in layout.get("gates") or []:
        learned = g.get("learned", False)  # absent: not shown to be learned
        if g["where"] not in ("skip", "join") or not isinstance(g["input_dependent"], bool) or not isinstance(
                learned, bool):
            raise ValueError("a gate's report is malformed")
        gates.append(Gate(g["where"], _size(g["size"]), int(g["channels"]),
                          _live(g["influence"], g["reference"], ratio), g["input_dependent"], learned))
    stem = layout.get("stem")
    op_types = layout.get("op_types") or []
    if not isinstance(op_types, list) or len(op_types) > 500:
        raise ValueError("op_types is not a list")
    weights = layout["trunk_weights"]
    if isinstance(weights, bool) or not isinstance(weights, int) or weights < 0:
        raise ValueError("trunk_weights is not a count")
    if not isinstance(layout["bypass"], bool):
        raise ValueError("bypass is not a boolean")
    return Structure(_size(layout["input_size"]), _ints(layout["output_shape"]),
                     tuple(_size(s) for s in layout["trunk_levels"]), _size(layout["bottleneck"]), tuple(joins),
                     dict(counted), dict(inert), _ints(stem, 3) if stem is not None else None,
                     frozenset(str(o)[:50] for o in op_types), {c: n for c, n in basic.items() if n},
                     {c: n for c, n in downsampling.items() if n}, weights, _number(layout["stem_influence"]),
                     _number(layout["input_influence"]), layout["bypass"], {c: n for c, n in bottleneck.items() if n},
                     tuple(blocks), tuple(gates))


def _area(size: tuple[int, int]) -> int:
    return size[0] * size[1]


def _scales(structure: Structure, sizes) -> str:
    return ", ".join(structure.scale(s) for s in sorted(set(sizes), key=_area, reverse=True))


def describe_signal(structure: Structure) -> list[str]:
    """Whether the encoder carries the signal to the output, as sentences naming what was found."""
    problems = []
    if structure.bypass:
        problems.append("the input reaches the output along a path that does not pass through the encoder's first "
                        "convolution: a second network next to the encoder computes part of the output")
    if not _live(structure.stem_influence, structure.input_influence, SIGNAL_RATIO):
        share = structure.stem_influence / structure.input_influence if structure.input_influence else 0.0
        problems.append(f"perturbing the features of the encoder's first convolution changed the output "
                        f"{share:.1e} times as much as perturbing the input did (in a U-Net, about as much): the "
                        "output hardly depends on the encoder")
    return problems


def describe_skips(structure: Structure) -> list[str]:
    """Problems with the skip connections of a U-Net, each a sentence naming what was found."""
    problems = describe_signal(structure)
    live = [j for j in structure.joins if j.live]
    dead = [j.size for j in structure.joins if not j.live and (j.encoder_size is None or j.same_level)]
    concat_levels = {j.size for j in live if j.op == "Concat" and j.same_level}
    for join in live:
        if not join.same_level:
            problems.append(f"at resolution {structure.scale(join.size)} the decoder {'concatenates' if join.op == 'Concat' else 'adds'} "
                            f"encoder features taken from resolution {structure.scale(join.encoder_size)}, "
                            "resized to fit: a skip from the wrong level")
    added = {j.size for j in live if j.op == "Add" and j.same_level}
    if added:
        problems.append("encoder features are added to the decoder at resolution "
                        f"{_scales(structure, added)} (additive lateral connections, as in "
                        "FPN); a U-Net concatenates them along the channel axis")
    inert = [s for s in dead if s not in concat_levels]
    if inert:
        problems.append(f"at resolution {_scales(structure, inert)} the encoder features joined into the decoder "
                        "do not change its output (the grader perturbed them and the output stayed the same): "
                        "the skip must carry the encoder's features themselves")
    wrong = {j.size for j in live if not j.same_level}
    missing = [s for s in structure.skip_levels if s not in concat_levels and s not in wrong and s not in inert]
    if missing and not added:
        found = _scales(structure, concat_levels) or "none"
        problems.append(f"no encoder features are concatenated into the decoder at resolution "
                        f"{_scales(structure, missing)} (concatenations found at: {found})")
    elif missing:
        problems.append(f"no concatenated skip at resolution {_scales(structure, missing)}")
    return problems


@dataclass(frozen=True)
class EncoderSpec:
    """An encoder as it computes: the stem (filters, kernel, stride), the kind of residual block, blocks per
    stage keyed by the blocks' output channels (stages in order; each but the first opens by halving the
    resolution), and the elements of its convolutions' weights, the stem's included."""

    name: str  # what sentences call it
    stem: tuple[int, int, int]
    blocks: dict[int, int]
    weights: int
    kind: str = "basic"  # "basic" (two 3×3 on the branch) or "bottleneck" (1×1, 3×3, 1×1)
    expansion: int = 1  # bottleneck blocks: output channels over the 3×3's

    @property
    def outline(self) -> str:
        """`basic blocks 3-4-6-3 at 64/128/256/512 channels`."""
        return _outline(self.kind, list(self.blocks.values()), list(self.blocks), self.expansion)

    def feature_shapes(self, height: int, width: int) -> list[tuple[int, int, int]]:
        """Each stage's output `(C, H, W)` for an input of `height` × `width`, worked out as torchvision's
        layers compute it: the stem's convolution (padding k // 2), a 3×3 stride-2 max-pool (padding 1),
        then a 3×3 stride-2 convolution (padding 1) opening every stage after the first. Arithmetic, so the
        grader's process need not import torch (tests check it against torchvision itself)."""
        _, kernel, stride = self.stem
        size = [_conv_out(n, kernel, stride, kernel // 2) for n in (height, width)]
        size = [_conv_out(n, 3, 2, 1) for n in size]
        shapes = []
        for stage, channels in enumerate(self.blocks):
            if stage:
                size = [_conv_out(n, 3, 2, 1) for n in size]
            shapes.append((channels, *size))
        return shapes


def _conv_out(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


# torchvision's ResNets; weights: their convolutions' (stem included, no fc), as smp's encoders hold them
RESNET18 = EncoderSpec("ResNet18", (64, 7, 2), {64: 2, 128: 2, 256: 2, 512: 2}, 11_166_912)
RESNET34 = EncoderSpec("ResNet34", (64, 7, 2), {64: 3, 128: 4, 256: 6, 512: 3}, 21_267_648)
RESNET50 = EncoderSpec("ResNet50", (64, 7, 2), {256: 3, 512: 4, 1024: 6, 2048: 3}, 23_454_912, "bottleneck", 4)
RESNETS = (RESNET18, RESNET34, RESNET50)
BLOCK_WORDS = {"basic": "two 3×3 convolutions in series on the branch that both change the output and both read "
                        "and give the block's number of channels, as a ResNet basic block does",
               "bottleneck": "a 1×1, a 3×3 and a 1×1 convolution in series on the branch that all change the "
                             "output, as a ResNet bottleneck block does"}


def _outline(kind: str, counts: list[int], channels: list[int], expansion: float = 0) -> str:
    text = f"{kind} blocks {'-'.join(map(str, counts))} at {'/'.join(map(str, channels))} channels"
    return text + (f" (expansion {expansion:g})" if kind == "bottleneck" and expansion else "")


def describe_blocks(structure: Structure) -> str:
    """What the encoder's residual blocks compute, per kind, stages in the graph's order: `basic blocks
    3-4-6-3 at 64/128/256/512 channels`, or `no residual block that changes the output`."""
    parts = []
    for kind in dict.fromkeys(b.kind for b in structure.blocks if b.counted):
        mine = [b for b in structure.blocks if b.counted and b.kind == kind]
        per = Counter(b.channels for b in mine)
        if kind == "plain":
            parts.append(f"{len(mine)} other residual block{'s' if len(mine) > 1 else ''} (at "
                         f"{'/'.join(map(str, per))} channels)")
            continue
        expansions = {b.expansion for b in mine}
        parts.append(_outline(kind, list(per.values()), list(per), expansions.pop() if len(expansions) == 1 else 0))
    return ", and ".join(parts) or "no residual block that changes the output"


def _stages(structure: Structure) -> tuple[str, list[int]]:
    """The kind most of the counted blocks are (basic or bottleneck), and its blocks per channel count."""
    kinds = Counter(b.kind for b in structure.blocks if b.counted and b.kind != "plain")
    if not kinds:
        return "", []
    kind = kinds.most_common(1)[0][0]
    return kind, list(Counter(b.channels for b in structure.blocks if b.counted and b.kind == kind).values())


def describe_encoder(structure: Structure, spec: EncoderSpec | tuple[int, int, int],
                     blocks: dict[int, int] | None = None, weights: int | None = None) -> list[str]:
    """Differences from the expected encoder, as sentences: its stem, blocks of its kind per channel count
    (the first of each stage but the first halving the resolution), a bottleneck's expansion, and number
    of convolution weights. `spec` is an EncoderSpec, or the stem of ResNet34-style basic blocks given
    with `blocks` and `weights`."""
    if not isinstance(spec, EncoderSpec):
        spec = EncoderSpec("ResNet34", spec, blocks or {}, int(weights or 0))
    problems = describe_signal(structure)
    if structure.stem is None:
        problems.append("no convolution was found")
    elif structure.stem != spec.stem:
        problems.append(f"the first convolution has {structure.stem[0]} filters of size {structure.stem[1]} and "
                        f"stride {structure.stem[2]}")
    kinds = structure.bottleneck_blocks if spec.kind == "bottleneck" else structure.basic_blocks
    channels = "/".join(str(c) for c in spec.blocks)
    found = [kinds.get(c, 0) for c in spec.blocks]
    if found != list(spec.blocks.values()):
        kind = "bottleneck" if spec.kind == "bottleneck" else "residual"
        problems.append(f"the encoder has {'-'.join(map(str, found))} {kind} blocks at {channels} channels")
    plain = sum(structure.residual_adds.get(c, 0) - kinds.get(c, 0) for c in spec.blocks)
    if plain:
        problems.append(f"{plain} residual block{'s' if plain > 1 else ''} at {channels} channels "
                        f"{'do' if plain > 1 else 'does'} not hold {BLOCK_WORDS[spec.kind]}")
    if spec.kind == "bottleneck":
        problems += _expansion(structure, spec)
    elif structure.bottleneck_blocks:
        problems.append(f"the encoder holds bottleneck blocks ({describe_blocks(structure)}); {spec.name}'s blocks "
                        "are basic blocks")
    first, *later = spec.blocks
    missing = [c for c in later if structure.downsampling.get(c, 0) < 1]
    extra = [c for c in spec.blocks if structure.downsampling.get(c, 0) > (c != first)]
    if missing:
        problems.append(f"no residual block at {'/'.join(map(str, missing))} channels halves the resolution, as the "
                        "first block of each of those ResNet stages does (stride 2)")
    if extra:
        problems.append(f"more residual blocks change the resolution at {'/'.join(map(str, extra))} channels "
                        f"than in {spec.name}")
    if abs(structure.trunk_weights - spec.weights) > WEIGHTS_TOLERANCE * spec.weights:
        problems.append(f"the encoder's convolutions hold {structure.trunk_weights / 1e6:.2f}M weights; "
                        f"{spec.name}'s hold {spec.weights / 1e6:.1f}M")
    inert = sum(structure.inert_adds.get(c, 0) for c in spec.blocks)
    if inert:
        problems.append(f"{inert} addition{'s' if inert > 1 else ''} in the encoder did not count as residual "
                        "blocks: the grader perturbed their branches and the output did not change")
    return problems


def _expansion(structure: Structure, spec: EncoderSpec) -> list[str]:
    """Bottleneck blocks whose last 1×1 does not widen the 3×3's output `spec.expansion` times."""
    off = Counter(b.expansion for b in structure.blocks if b.kind == "bottleneck" and b.expansion != spec.expansion)
    return [f"{n} bottleneck block{'s' if n > 1 else ''} end{'' if n > 1 else 's'} with {e:g} times the channels of "
            f"{'their' if n > 1 else 'its'} 3×3 convolution; {spec.name}'s end with {spec.expansion} times"
            for e, n in sorted(off.items())]


@dataclass(frozen=True)
class Identification:
    """Which spec an encoder matches (`name`, None for none), the closest one and how it differs."""

    name: str | None
    closest: str
    problems: tuple[str, ...]  # describe_encoder's sentences for the closest spec: () when it matches
    computes: str  # describe_blocks: what the encoder's blocks compute


def identify_encoder(structure: Structure, specs: tuple[EncoderSpec, ...] | list[EncoderSpec]) -> Identification:
    """The first of `specs` the encoder matches in every respect, else the closest: of the kind most of its
    blocks are, then with as many blocks per stage, then with the fewest differences, then the nearest
    number of weights."""
    if not specs:
        raise ValueError("identify_encoder needs at least one spec")
    kind, counts = _stages(structure)

    def distance(found):
        problems, spec = found
        return (spec.kind != kind, counts != list(spec.blocks.values()), len(problems),
                abs(structure.trunk_weights - spec.weights) / max(spec.weights, 1))

    problems, spec = min(((describe_encoder(structure, spec), spec) for spec in specs), key=distance)
    return Identification(None if problems else spec.name, spec.name, tuple(problems), describe_blocks(structure))


def detect_variants(structure: Structure) -> frozenset[str]:
    """The U-Net variants the graph computes: "attention" when a sigmoid gate on the skips is computed by
    a layer of its own, changes the output and depends on the input. Dropout is never reported: an
    evaluation-mode graph has none."""
    return frozenset({"attention"} if any(g.counts for g in structure.gates) else set())


def describe_variants(structure: Structure) -> list[str]:
    """Sentences on sigmoid gates on the skips that do not count as attention, and why."""
    dead = [g for g in structure.gates if not g.live]
    constant = [g for g in structure.gates if g.live and not g.input_dependent]
    unlearned = [g for g in structure.gates if g.live and g.input_dependent and not g.learned]
    problems = []
    if dead:
        problems.append(f"{len(dead)} sigmoid gate{'s' if len(dead) > 1 else ''} on the skips at resolution "
                        f"{_scales(structure, [g.size for g in dead])} do{'' if len(dead) > 1 else 'es'} not change "
                        "the output (the grader perturbed the gate and the output stayed the same)")
    if constant:
        problems.append(f"{len(constant)} sigmoid gate{'s' if len(constant) > 1 else ''} on the skips at resolution "
                        f"{_scales(structure, [g.size for g in constant])} stay{'' if len(constant) > 1 else 's'} "
                        "the same whatever the input: attention computes its gate from the features")
    if unlearned:
        problems.append(f"{len(unlearned)} sigmoid gate{'s' if len(unlearned) > 1 else ''} on the skips at resolution "
                        f"{_scales(structure, [g.size for g in unlearned])} take{'' if len(unlearned) > 1 else 's'} "
                        "the sigmoid of the features (or of a summary of them) with no layer of "
                        f"{'their' if len(unlearned) > 1 else 'its'} own: that is an activation such as SiLU; "
                        "attention computes its gate with convolutions or linear layers that it learns")
    return problems

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
  when two full 3×3 convolutions in series on its branch each carry its input and change the output;
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


def from_layout(layout: dict[str, Any], ratio: float = INFLUENCE_RATIO) -> Structure:
    """The structure the verifier reported; `ValueError` when the report is malformed."""
    if not isinstance(layout, dict):
        raise ValueError("the report is not an object")
    joins = []
    for j in layout.get("joins") or []:
        encoder = j.get("encoder_size")
        joins.append(Join(str(j["op"])[:20], _size(j["size"]), _size(encoder) if encoder is not None else None,
                          int(j["channels"]), encoder is not None and _live(j["influence"], j["reference"], ratio)))
    counted, inert, basic, downsampling = Counter(), Counter(), Counter(), Counter()
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
        live_convs = sum(c["carried"] is True and _live(c["influence"], yardstick, ratio) for c in chain)
        basic[channels] += real and live_convs >= 2
        downsampling[channels] += real and _size(r["in_size"]) != _size(r["size"])
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
                     _number(layout["input_influence"]), layout["bypass"])


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


def describe_encoder(structure: Structure, stem: tuple[int, int, int], blocks: dict[int, int],
                     weights: int) -> list[str]:
    """Differences from the expected stem, basic blocks per channel count (the first of each stage but
    the first halving the resolution) and number of convolution weights, as sentences."""
    problems = describe_signal(structure)
    if structure.stem is None:
        problems.append("no convolution was found")
    elif structure.stem != stem:
        problems.append(f"the first convolution has {structure.stem[0]} filters of size {structure.stem[1]} and "
                        f"stride {structure.stem[2]}")
    channels = "/".join(str(c) for c in blocks)
    found = [structure.basic_blocks.get(c, 0) for c in blocks]
    if found != list(blocks.values()):
        problems.append(f"the encoder has {'-'.join(map(str, found))} residual blocks at {channels} channels")
    plain = sum(structure.residual_adds.get(c, 0) - structure.basic_blocks.get(c, 0) for c in blocks)
    if plain:
        problems.append(f"{plain} residual block{'s' if plain > 1 else ''} at {channels} channels "
                        f"{'do' if plain > 1 else 'does'} not hold two 3×3 convolutions in series on the branch "
                        "that both change the output, as a ResNet basic block does")
    first, *later = blocks
    missing = [c for c in later if structure.downsampling.get(c, 0) < 1]
    extra = [c for c in blocks if structure.downsampling.get(c, 0) > (c != first)]
    if missing:
        problems.append(f"no residual block at {'/'.join(map(str, missing))} channels halves the resolution, as the "
                        "first block of each of those ResNet stages does (stride 2)")
    if extra:
        problems.append(f"more residual blocks change the resolution at {'/'.join(map(str, extra))} channels "
                        "than in ResNet34")
    if abs(structure.trunk_weights - weights) > WEIGHTS_TOLERANCE * weights:
        problems.append(f"the encoder's convolutions hold {structure.trunk_weights / 1e6:.2f}M weights; "
                        f"ResNet34's hold {weights / 1e6:.1f}M")
    inert = sum(structure.inert_adds.get(c, 0) for c in blocks)
    if inert:
        problems.append(f"{inert} addition{'s' if inert > 1 else ''} in the encoder did not count as residual "
                        "blocks: the grader perturbed their branches and the output did not change")
    return problems

"""What the verifier computes over one graph, all of it in one run: outputs on probes, the
structure analysis with its perturbations, and labels (argmax) on sets of images."""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

SCHEMA_VERSION = 1
PADS = ("reference", "reflect-end", "replicate-end", "zeros-end", "reflect-center", "replicate-center",
        "zeros-center")
NAME = re.compile(r"^[a-z0-9_]{1,40}$")


@dataclass(frozen=True, eq=False)
class LabelSet:
    """Images `(3, H, W)` to label: each padded to a multiple of `multiple` in each way of `pads`
    (`reference`: reflect at the bottom and right, as the reference's predict does), run, cropped back."""

    name: str
    images: tuple[np.ndarray, ...]
    pads: tuple[str, ...] = ("reference",)
    multiple: int = 32

    def __post_init__(self) -> None:
        if not NAME.match(self.name):
            raise ValueError(f"label set name {self.name!r}: lower-case letters, digits and '_' only")
        unknown = set(self.pads) - set(PADS)
        if unknown or not self.pads:
            raise ValueError(f"label set {self.name}: pads must be some of {', '.join(PADS)}")
        if any(np.ndim(i) != 3 or np.shape(i)[0] != 3 for i in self.images):
            raise ValueError(f"label set {self.name}: images must be (3, H, W)")


@dataclass(frozen=True, eq=False)
class Job:
    """Everything one verifier run answers for one graph; `digest` keys the cache."""

    probes: tuple[np.ndarray, ...] = ()
    structure_probe: np.ndarray | None = None
    label_sets: tuple[LabelSet, ...] = ()
    threshold: float = 1e-3  # a convolution's output counts as changed from this relative change on
    seed: int = 0

    @property
    def influence_probe(self) -> np.ndarray:
        """Where the perturbations run: a 32×64 corner of the structure probe. The sites are tensors,
        found on the full probe; the smaller input (sides multiples of 32, so every network's levels
        stay whole) makes the many runs cheap."""
        return self.structure_probe[:, :, :32, :64]

    @property
    def label_pixels(self) -> int:
        """Pixels the label sets make the network run on, every padding counted."""
        return sum(len(s.pads) * int(np.prod(image.shape[1:])) for s in self.label_sets for image in s.images)

    def with_labels(self, label_set: LabelSet) -> "Job":
        """This job plus `label_set` (replacing one of the same name)."""
        kept = tuple(s for s in self.label_sets if s.name != label_set.name)
        return replace(self, label_sets=kept + (label_set,))

    @functools.cached_property
    def digest(self) -> str:
        h = hashlib.sha256(f"{SCHEMA_VERSION} {self.threshold!r} {self.seed}".encode())
        for array in (*self.probes, *(() if self.structure_probe is None else (self.structure_probe,))):
            h.update(_array_digest(array).encode())
        h.update(b"|")
        for s in self.label_sets:
            h.update(f"{s.name} {s.pads} {s.multiple}".encode())
            for image in s.images:
                h.update(_array_digest(image).encode())
        return h.hexdigest()

    def write(self, io: Path, memory_gib: float, threads: int, max_output_elements: int) -> None:
        """`io/job.json` and `io/in/*.npy`, the inputs of one run."""
        (io / "in").mkdir()

        def save(name: str, array: np.ndarray) -> str:
            np.save(io / "in" / name, np.ascontiguousarray(array, np.float32), allow_pickle=False)
            return f"in/{name}"

        spec = {"schema_version": SCHEMA_VERSION, "graph": "graph.onnx", "threads": threads,
                "memory_gib": memory_gib, "max_output_elements": max_output_elements,
                "probes": [save(f"probe{k}.npy", p) for k, p in enumerate(self.probes)],
                "structure": None if self.structure_probe is None else {
                    "probe": save("structure.npy", self.structure_probe), "threshold": self.threshold,
                    "influence_probe": save("influence.npy", self.influence_probe), "seed": self.seed},
                "labels": [{"name": s.name, "pads": list(s.pads), "multiple": s.multiple,
                            "images": [save(f"{s.name}-{i}.npy", image) for i, image in enumerate(s.images)]}
                           for s in self.label_sets]}
        (io / "job.json").write_text(json.dumps(spec))


def _array_digest(array: np.ndarray) -> str:
    array = np.ascontiguousarray(array, np.float32)
    return hashlib.sha256(array.tobytes() + str(array.shape).encode()).hexdigest()

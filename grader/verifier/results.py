"""What a verifier run handed back, read as hostile data: every file through `read_untrusted` with a
cap from what the job asked for, every JSON value checked for type, every array for dtype and shape.
A part that is missing or malformed becomes a `VerificationFailed` with a reason a student can read,
raised when a test asks for that part."""

from __future__ import annotations

import io
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from grader.execution.exceptions import UntrustedOutputError
from grader.execution.readback import read_untrusted
from grader.verifier.job import SCHEMA_VERSION, Job

MAX_PART_JSON = 4 * 2 ** 20
NPY_HEADER = 4096
INTRO = "your exported network could not be run by the grader: "
ANALYSIS = "the grader could not analyse your exported network: "


class VerificationFailed(Exception):
    """The verifier could not answer a part; the message is for the student."""


@dataclass(frozen=True)
class ProbeOutput:
    """The graph's first output on one probe: always its shape, its values when they were small enough."""

    shape: tuple[int, ...]
    values: np.ndarray | None


@dataclass
class Verification:
    """The answers of one run, part by part; each is a value or the reason it is missing."""

    probes: list[ProbeOutput | str] = field(default_factory=list)
    structure: dict[str, Any] | str = "the structure was not asked for"
    labels: dict[str, dict[str, list[np.ndarray]] | str] = field(default_factory=dict)
    seconds: float = 0.0
    stages: dict[str, float] = field(default_factory=dict)  # the run's own account of its time (benchmarks)

    def probe(self, k: int) -> ProbeOutput:
        return _value(self.probes[k] if k < len(self.probes) else "probe not asked for")

    def layout(self) -> dict[str, Any]:
        return _value(self.structure)

    def label_set(self, name: str) -> dict[str, list[np.ndarray]]:
        """Labels per padding, each a list over the set's images."""
        return _value(self.labels.get(name, f"the label set {name} was not asked for"))


def _value(part):
    if isinstance(part, str):
        raise VerificationFailed(part if part.startswith(ANALYSIS) else INTRO + part)
    return part


def _clean(text: Any, limit: int = 400) -> str:
    text = str(text)[:limit]
    return "".join(c if c.isprintable() else " " for c in text)


def _part(io_dir: Path, name: str, missing: str) -> dict | str:
    """A part's JSON, or why it cannot be used."""
    if not (io_dir / "out" / name).exists():
        return missing
    try:
        data = json.loads(read_untrusted(io_dir, f"out/{name}", MAX_PART_JSON))
    except (UntrustedOutputError, ValueError) as err:
        return f"the grader's verifier answered something it could not read ({_clean(err, 200)})"
    if not isinstance(data, dict):
        return "the grader's verifier answered something it could not read"
    if data.get("schema_version") != SCHEMA_VERSION:
        return (f"the grader's verifier answered in layout version {_clean(data.get('schema_version'), 20)}, not "
                f"{SCHEMA_VERSION}: its files and the grader's come from different versions; reinstall the grader")
    if "error" in data:
        return (ANALYSIS if data.get("kind") == "analysis" else "") + _clean(data["error"])
    return data


def _array(io_dir: Path, name: Any, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    if not isinstance(name, str) or not name.startswith("out/") or "/" in name[4:] or not name.endswith(".npy"):
        raise ValueError(f"{name!r} is not a file of the verifier's answers")
    cap = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize + NPY_HEADER
    array = np.load(io.BytesIO(read_untrusted(io_dir, name, cap)), allow_pickle=False)
    if array.dtype != dtype or array.shape != tuple(shape):
        raise ValueError(f"{name} holds {array.dtype} {array.shape}, not {np.dtype(dtype)} {tuple(shape)}")
    return array


def _shape(value: Any) -> tuple[int, ...]:
    if not isinstance(value, list) or len(value) > 8 or not all(isinstance(d, int) and 0 <= d < 2 ** 40 for d in value):
        raise ValueError(f"{_clean(value, 100)} is not a shape")
    return tuple(value)


def _probes(io_dir: Path, job: Job, missing: str, cap: int) -> list[ProbeOutput | str]:
    data = _part(io_dir, "probes.json", missing)
    if isinstance(data, str):
        return [data] * len(job.probes)
    results = data.get("results")
    if not isinstance(results, list) or len(results) != len(job.probes):
        return ["the grader's verifier answered something it could not read"] * len(job.probes)
    probes: list[ProbeOutput | str] = []
    for item in results:
        try:
            if not isinstance(item, dict):
                raise ValueError("not an object")
            if "error" in item:
                probes.append(_clean(item["error"]))
                continue
            shape = _shape(item.get("shape"))
            small = item.get("file") is not None and math.prod(shape) <= cap
            probes.append(ProbeOutput(shape, _array(io_dir, item["file"], shape, np.float32) if small else None))
        except (UntrustedOutputError, ValueError, TypeError, KeyError) as err:
            probes.append(f"the grader's verifier answered something it could not read ({_clean(err, 200)})")
    return probes


def _labels(io_dir: Path, label_set, missing: str) -> dict[str, list[np.ndarray]] | str:
    data = _part(io_dir, f"labels-{label_set.name}.json", missing)
    if isinstance(data, str):
        return data
    try:
        results = data["results"]
        if data.get("pads") != list(label_set.pads) or not isinstance(results, list) or len(results) != len(
                label_set.images):
            raise ValueError("its labels do not match the job")
        by_pad: dict[str, list[np.ndarray]] = {pad: [] for pad in label_set.pads}
        for image, row in zip(label_set.images, results):
            if not isinstance(row, list) or len(row) != len(label_set.pads):
                raise ValueError("its labels do not match the job")
            for pad, name in zip(label_set.pads, row):
                by_pad[pad].append(_array(io_dir, name, tuple(image.shape[1:]), np.uint8))
        return by_pad
    except (UntrustedOutputError, ValueError, TypeError, KeyError) as err:
        return f"the grader's verifier answered something it could not read ({_clean(err, 200)})"


def read_verification(io_dir: Path, job: Job, missing: str, output_cap: int) -> Verification:
    """Every part of `job` from `io_dir/out`; `missing` is the reason for parts the run never wrote."""
    result = Verification()
    if job.probes:
        result.probes = _probes(io_dir, job, missing, output_cap)
    if job.structure_probe is not None:
        data = _part(io_dir, "structure.json", missing)
        layout = data.get("layout") if isinstance(data, dict) else data
        result.structure = layout if isinstance(layout, (dict, str)) else "the grader's verifier answered " \
                                                                          "something it could not read"
    for label_set in job.label_sets:
        result.labels[label_set.name] = _labels(io_dir, label_set, missing)
    result.stages = _stages(io_dir)
    return result


STAGE = re.compile(r"^[a-z0-9_ ,.]{1,60}$")


def _stages(io_dir: Path) -> dict[str, float]:
    """The run's seconds per stage, if it wrote them sensibly; never needed for a grade."""
    data = _part(io_dir, "timings.json", "")
    seconds = data.get("seconds") if isinstance(data, dict) else None
    if not isinstance(seconds, dict) or len(seconds) > 32:
        return {}
    return {k: float(v) for k, v in seconds.items() if isinstance(k, str) and STAGE.match(k) and
            isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < 1e5}


def outputs_agree(ours: np.ndarray, theirs: Any, atol: float = 2e-4, rtol: float = 1e-3) -> bool:
    """Whether the graph's output (run by the verifier) matches what the sandbox said its model gives: each
    value within `atol` plus `rtol` of the largest magnitude among the logits of its pixel (N, C, H, W: over
    C), else of its own. float32 rounding in PyTorch and in onnxruntime differs in proportion to the values
    summed: an untrained network's logit near 0 beside others near 1e3 differs by up to 0.4. Per pixel, a
    spike planted in one pixel loosens the check for that pixel alone."""
    if not isinstance(theirs, np.ndarray) or theirs.dtype.kind not in "fiub" or ours.shape != theirs.shape:
        return False
    if not (np.all(np.isfinite(ours)) and np.all(np.isfinite(theirs))):
        return bool(np.array_equal(ours, theirs, equal_nan=True))
    ours64, theirs64 = ours.astype(np.float64), theirs.astype(np.float64)
    scale = np.abs(ours64).max(axis=1, keepdims=True) if ours.ndim == 4 and ours.shape[1] else np.abs(ours64)
    return bool(np.all(np.abs(ours64 - theirs64) <= atol + rtol * scale))

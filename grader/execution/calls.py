"""What a test asks of a submission (a `Call`) and what came back (a `CallOutcome`).

Arguments cross into the sandbox as JSON and `.npy` files; use `Array`, `Tensor`, `Rng` and `Ref`
to say how a value must arrive on the other side."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any

import numpy as np

CALL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True, eq=False)
class Array:
    """A NumPy array argument (`tensor=True`: a torch tensor; `grad=True`: one that requires grad)."""

    data: np.ndarray
    tensor: bool = False
    grad: bool = False


@dataclass(frozen=True)
class Rng:
    """A `numpy.random.Generator` seeded with `seed`, built inside the sandbox."""

    seed: int


@dataclass(frozen=True)
class DataDir:
    """A folder copied into the exchange folder; the function receives its path inside the sandbox."""

    source: Path


@dataclass(frozen=True)
class Ref:
    """An object an earlier call stored with `store_as` (a built model, say)."""

    name: str


@dataclass(frozen=True, eq=False)
class Call:
    """One request to the submission. `kind` is `call` (a function by name), `names` (which names
    are defined), `load_weights` (model.pt into a stored model), `export_onnx` (a stored model
    as an ONNX graph, plus its outputs on `probes`) or `read_text` (a file of the submission)."""

    id: str
    kind: str = "call"
    function: str = ""
    args: tuple = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    store_as: str | None = None
    grad: bool = False
    no_grad: bool = False
    timeout: float = 60.0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not CALL_ID.match(self.id):
            raise ValueError(f"call id {self.id!r} must be letters, digits, '_', '.' and '-', starting with a letter or digit")


def call(id: str, function: str, *args, timeout: float = 60.0, store_as: str | None = None, grad: bool = False,
         no_grad: bool = False, **kwargs) -> Call:
    """A call of `function(*args, **kwargs)` in the submission's namespace."""
    return Call(id, "call", function, tuple(args), kwargs, store_as, grad, no_grad, timeout)


class Encoder:
    """Writes array arguments once each (by content hash) under `in/` and returns JSON-ready values."""

    def __init__(self, io_dir):
        self.io_dir = io_dir
        (io_dir / "in").mkdir(parents=True, exist_ok=True)

    def array(self, data: np.ndarray) -> str:
        data = np.array(data, order="C")  # ascontiguousarray would turn a 0-d array into 1-d
        if data.dtype == object:
            raise TypeError("object arrays cannot cross the sandbox boundary")
        digest = hashlib.sha256(data.tobytes() + str((data.dtype, data.shape)).encode()).hexdigest()[:20]
        name = f"in/{digest}.npy"
        if not (self.io_dir / name).exists():
            np.save(self.io_dir / name, data, allow_pickle=False)
        return name

    def value(self, value: Any) -> Any:
        if isinstance(value, Array):
            return {"__array__": self.array(value.data), "torch": value.tensor, "grad": value.grad}
        if isinstance(value, np.ndarray):
            return {"__array__": self.array(value)}
        if isinstance(value, Rng):
            return {"__rng__": value.seed}
        if isinstance(value, DataDir):
            name = f"in/data-{hashlib.sha256(str(value.source).encode()).hexdigest()[:12]}"
            if not (self.io_dir / name).exists():
                shutil.copytree(value.source, self.io_dir / name, symlinks=False)
                _world_readable(self.io_dir / name)
            return {"__path__": name}
        if isinstance(value, Ref):
            return {"__ref__": value.name}
        if isinstance(value, tuple):
            return {"__tuple__": [self.value(v) for v in value]}
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, dict):
            return {str(k): self.value(v) for k, v in value.items()}
        if isinstance(value, float) and value != value:
            return {"__float__": "nan"}
        if isinstance(value, (np.integer, np.floating)):
            return value.item()
        json.dumps(value)  # anything else must be plain JSON
        return value

    def call(self, c: Call) -> dict[str, Any]:
        spec = {"id": c.id, "kind": c.kind, "function": c.function, "args": [self.value(a) for a in c.args],
                "kwargs": {k: self.value(v) for k, v in c.kwargs.items()}, "store_as": c.store_as,
                "grad": c.grad, "no_grad": c.no_grad}
        for key, value in c.extra.items():
            spec[key] = self.array(value) if isinstance(value, np.ndarray) else (
                [self.array(v) for v in value] if key == "probes" else value)
        return spec


@dataclass(frozen=True)
class StudentException:
    """An exception the submission's code raised, as the harness reported it."""

    type: str
    message: str
    where: str = ""

    def __str__(self) -> str:
        where = f" (at {self.where})" if self.where else ""
        return f"{self.type}: {self.message}{where}"


@dataclass(frozen=True)
class CallOutcome:
    """What one call gave: `ok` with a value, or `error`, `timeout`, `crashed`, `not_run` with a reason."""

    call_id: str
    status: str
    value: Any = None
    error: StudentException | None = None
    reason: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def describe(self) -> str:
        """One line for a student: what went wrong in this call."""
        if self.status == "error" and self.error is not None:
            return f"raised {self.error}"
        return self.reason or self.status


def _world_readable(root: Path) -> None:
    """Let the sandbox's unprivileged user read a copied folder, whatever modes its source had."""
    root.chmod(0o755)
    for path in root.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)


def names_call(id: str, names: list[str]) -> Call:
    """Which of `names` the submission defines: `{name: callable?}`, `None` for a missing name."""
    return Call(id, "names", timeout=10.0, extra={"names": list(names)})


def load_weights_call(id: str, ref: str, path: str = "model.pt", optional: bool = False) -> Call:
    """Load the submission's `model.pt` into a stored model, with `weights_only=True`; when `optional`,
    a missing file answers `{"absent": True}` instead of failing."""
    return Call(id, "load_weights", timeout=60.0, extra={"ref": ref, "path": path, "optional": optional})


def read_text_call(id: str, path: str, max_bytes: int = 65536) -> Call:
    """The text of the submission's file `path` (a name beside the notebook): `{"text": str, "truncated":
    bool}` with at most `max_bytes` bytes read, `{"absent": True}`, or `{"link": True}` for a symbolic link
    (not followed). What comes back is the student's claim, hostile input to parse strictly."""
    return Call(id, "read_text", timeout=10.0, extra={"path": path, "max_bytes": int(max_bytes)})


def descend_call(id: str, function: str, logits: np.ndarray, target: np.ndarray, steps: int = 20,
                 lr: float = 20.0, timeout: float = 60.0) -> Call:
    """Plain gradient descent on `logits` with the submission's loss; answers the final logits."""
    return Call(id, "descend", function, timeout=timeout,
                extra={"logits": logits.astype(np.float32), "target": target.astype(np.int64), "steps": steps, "lr": lr})


def export_call(id: str, ref: str, example: np.ndarray, probes: list[np.ndarray], multiple: int = 32,
                timeout: float = 180.0) -> Call:
    """Export a stored model to ONNX (dynamic batch and spatial sizes) and run it on `probes`."""
    return Call(id, "export_onnx", timeout=timeout,
                extra={"ref": ref, "example": example, "probes": list(probes), "multiple": multiple})

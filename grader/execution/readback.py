"""Reading what the sandbox wrote, treating every byte as hostile: regular files only (no
symlinks out of the exchange folder), size caps, JSON and `.npy` without pickles."""

from __future__ import annotations

import io
import json
import os
import re
import stat
from pathlib import Path
from dataclasses import dataclass
from typing import Any

import numpy as np

from grader.execution.calls import CallOutcome, StudentException
from grader.execution.exceptions import UntrustedOutputError
from grader.execution.onnx_graph import MAX_ONNX_BYTES

MAX_JSON_BYTES = 8 * 2 ** 20
MAX_ARRAY_BYTES = 512 * 2 ** 20
MAX_ANSWER_BYTES = MAX_ONNX_BYTES + 64 * 2 ** 20  # one call's answer: a graph and its outputs at most
MAX_SUBMISSION_ANSWER_BYTES = 2 ** 30  # every answer of one grading together
ANSWER_SCHEMA_VERSION = 1  # what the harness writes (inside/grader_harness.py)
LOAD_EVENT_KINDS = ("start", "error", "timeout", "skipped", "dead_kernel")
MAX_LOAD_EVENTS = 200
LOAD_ID = "_load"  # the worker's first message: what happened while the submission loaded (inside/ has its twin)
NAME = re.compile(r"^out/[A-Za-z0-9_.-]+\.(npy|onnx)$")


def read_untrusted(io_dir: Path, relative: str, cap: int) -> bytes:
    """The bytes of `io_dir/relative`, refusing links, non-regular files and anything over `cap`."""
    folder = io_dir / Path(relative).parent
    if Path(relative).parent != Path(".") and (folder.is_symlink() or not folder.is_dir()):
        raise UntrustedOutputError(f"{relative}: its folder is not a plain folder")
    try:
        fd = os.open(io_dir / relative, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as err:
        raise UntrustedOutputError(f"{relative}: cannot be opened as a plain file ({err.strerror})") from err
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise UntrustedOutputError(f"{relative}: not a regular file")
        if info.st_size > cap:
            raise UntrustedOutputError(f"{relative}: {info.st_size} bytes, over the limit of {cap}")
        return handle.read(cap + 1)[:cap]


NUMERIC_KINDS = "biufc"  # bool, signed, unsigned, float, complex


def _load_array(data: bytes, name: str) -> np.ndarray:
    """A plain numeric ndarray from `.npy` bytes; anything else (an archive, records, strings, a
    header promising more than the bytes hold) is refused."""
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except Exception as err:  # numpy raises many types for malformed bytes (EOFError, ValueError, ...)
        raise UntrustedOutputError(f"{name} is not a readable .npy array ({type(err).__name__})") from err
    if not isinstance(array, np.ndarray) or array.dtype.kind not in NUMERIC_KINDS:
        raise UntrustedOutputError(f"{name} is not a numeric array")
    if array.size * max(array.dtype.itemsize, 1) > MAX_ARRAY_BYTES:
        raise UntrustedOutputError(f"{name} is larger than {MAX_ARRAY_BYTES} bytes")
    return array


def _decode(value: Any, io_dir: Path, arrays: dict[str, np.ndarray] | None = None, call_id: str = "") -> Any:
    """JSON from the harness back into values; each array file is read once, however often it is named."""
    arrays = {} if arrays is None else arrays
    if isinstance(value, list):
        return [_decode(v, io_dir, arrays, call_id) for v in value]
    if not isinstance(value, dict):
        return value
    if "__array__" in value:
        name = value["__array__"]
        if not isinstance(name, str) or not NAME.match(name) or not name.startswith(f"out/{call_id}."):
            raise UntrustedOutputError(f"array reference {str(name)[:80]!r} is not a file of this answer")
        if name not in arrays:
            arrays[name] = _load_array(read_untrusted(io_dir, name, MAX_ARRAY_BYTES), name)
        return arrays[name]
    if "__float__" in value:
        return float(value["__float__"]) if value["__float__"] in ("nan", "inf", "-inf") else None
    if "__tuple__" in value:
        items = value["__tuple__"]
        return tuple(_decode(v, io_dir, arrays, call_id) for v in (items if isinstance(items, list) else []))
    if "__object__" in value or "__stored__" in value:
        return {k: v for k, v in value.items() if isinstance(v, str)}
    return {str(k): _decode(v, io_dir, arrays, call_id) for k, v in value.items()}


def read_outcome(io_dir: Path, call_id: str) -> CallOutcome:
    """The harness's answer to one call, decoded; a malformed answer is an error outcome. Only files
    of this call's own answer may be named in it."""
    try:
        raw = json.loads(read_untrusted(io_dir, f"out/{call_id}.json", MAX_JSON_BYTES))
        if not isinstance(raw, dict) or raw.get("id") != call_id or raw.get("status") not in ("ok", "error"):
            raise UntrustedOutputError("the answer does not follow the harness's format")
        if raw.get("schema_version") != ANSWER_SCHEMA_VERSION:
            raise UntrustedOutputError(f"the answer has schema version {str(raw.get('schema_version'))[:20]}, "
                                       f"not {ANSWER_SCHEMA_VERSION}")
        if raw["status"] == "error":
            err = raw.get("error") if isinstance(raw.get("error"), dict) else {}
            return CallOutcome(call_id, "error", error=StudentException(
                _text(err.get("type"), 100) or "Exception", _text(err.get("message"), 2000), _text(err.get("where"), 300)))
        value = _decode(raw.get("value"), io_dir, call_id=call_id)
        if isinstance(value, dict) and isinstance(value.get("onnx"), str):  # an exported model
            if not NAME.match(value["onnx"]) or not value["onnx"].startswith(f"out/{call_id}."):
                raise UntrustedOutputError("the exported model is not a file of the exchange folder")
            value["onnx"] = read_untrusted(io_dir, value["onnx"], MAX_ONNX_BYTES)
        return CallOutcome(call_id, "ok", value=value)
    except (UntrustedOutputError, ValueError, TypeError, OSError, RecursionError, MemoryError) as err:
        return CallOutcome(call_id, "crashed", reason=f"its answer could not be read back safely ({_brief(err)})")


def _text(value: Any, cap: int) -> str:
    return value[:cap] if isinstance(value, str) else ""


def _brief(err: BaseException) -> str:
    if isinstance(err, RecursionError):
        return "it nests too deeply"
    return str(err)[:300] or type(err).__name__


@dataclass(frozen=True)
class LoadEvent:
    """Something that happened while the submission loaded: a cell that raised, timed out, was skipped
    or killed its kernel. Parsed field by field from what the sandbox wrote; nothing else is kept."""

    kind: str  # one of LOAD_EVENT_KINDS
    cell: int | None = None
    where: str = ""
    ename: str = ""
    evalue: str = ""
    reason: str = ""

    @property
    def place(self) -> str:
        """`cell 4` or `submission.py:12`."""
        return self.where or (f"cell {self.cell}" if self.cell is not None else "the submission")


def _load_event(raw: Any) -> LoadEvent | None:
    if not isinstance(raw, dict) or raw.get("kind") not in LOAD_EVENT_KINDS:
        return None
    cell = raw.get("cell")
    return LoadEvent(raw["kind"], cell if type(cell) is int and 0 <= cell < 10 ** 6 else None,
                     _text(raw.get("where"), 300), _text(raw.get("ename"), 100), _text(raw.get("evalue"), 1000),
                     _text(raw.get("reason"), 300))


def read_load_events(io_dir: Path, name: str = LOAD_ID) -> list[LoadEvent]:
    """What happened while the submission loaded; malformed entries are dropped, never trusted."""
    try:
        raw = json.loads(read_untrusted(io_dir, f"out/{name}.json", MAX_JSON_BYTES))
    except (UntrustedOutputError, ValueError, RecursionError, MemoryError):
        return []
    events = raw.get("events") if isinstance(raw, dict) else None
    if not isinstance(events, list):
        return []
    return [e for e in map(_load_event, events[:MAX_LOAD_EVENTS]) if e is not None]

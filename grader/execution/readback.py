"""Reading what the sandbox wrote, treating every byte as hostile: regular files only (no
symlinks out of the exchange folder), size caps, JSON and `.npy` without pickles."""

from __future__ import annotations

import io
import json
import os
import re
import stat
from pathlib import Path
from typing import Any

import numpy as np

from grader.execution.calls import CallOutcome, StudentException
from grader.execution.exceptions import UntrustedOutputError
from grader.execution.onnx_graph import MAX_ONNX_BYTES

MAX_JSON_BYTES = 8 * 2 ** 20
MAX_ARRAY_BYTES = 512 * 2 ** 20
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


def _decode(value: Any, io_dir: Path) -> Any:
    if isinstance(value, list):
        return [_decode(v, io_dir) for v in value]
    if not isinstance(value, dict):
        return value
    if "__array__" in value:
        name = value["__array__"]
        if not isinstance(name, str) or not NAME.match(name):
            raise UntrustedOutputError(f"array reference {name!r} is not a file of the exchange folder")
        return np.load(io.BytesIO(read_untrusted(io_dir, name, MAX_ARRAY_BYTES)), allow_pickle=False)
    if "__float__" in value:
        return float(value["__float__"]) if value["__float__"] in ("nan", "inf", "-inf") else None
    if "__tuple__" in value:
        return tuple(_decode(v, io_dir) for v in value["__tuple__"])
    if "__object__" in value or "__stored__" in value:
        return {k: v for k, v in value.items() if isinstance(v, str)}
    return {str(k): _decode(v, io_dir) for k, v in value.items()}


def read_outcome(io_dir: Path, call_id: str) -> CallOutcome:
    """The harness's answer to one call, decoded; a malformed answer is an error outcome."""
    try:
        raw = json.loads(read_untrusted(io_dir, f"out/{call_id}.json", MAX_JSON_BYTES))
        if not isinstance(raw, dict) or raw.get("id") != call_id or raw.get("status") not in ("ok", "error"):
            raise UntrustedOutputError("the answer does not follow the harness's format")
        seconds = float(raw.get("seconds", 0.0))
        if raw["status"] == "error":
            err = raw.get("error") or {}
            return CallOutcome(call_id, "error", error=StudentException(
                str(err.get("type", "Exception"))[:100], str(err.get("message", ""))[:2000],
                str(err.get("where", ""))[:300]), seconds=seconds)
        value = _decode(raw.get("value"), io_dir)
        if isinstance(value, dict) and isinstance(value.get("onnx"), str):  # an exported model
            if not NAME.match(value["onnx"]):
                raise UntrustedOutputError("the exported model is not a file of the exchange folder")
            value["onnx"] = read_untrusted(io_dir, value["onnx"], MAX_ONNX_BYTES)
        return CallOutcome(call_id, "ok", value=value, seconds=seconds)
    except (UntrustedOutputError, ValueError, TypeError, OSError) as err:
        return CallOutcome(call_id, "crashed", reason=f"its answer could not be read back safely ({err})")


def read_load_events(io_dir: Path) -> list[dict[str, Any]]:
    """What happened while the submission loaded (cells that raised, timed out, were skipped)."""
    try:
        raw = json.loads(read_untrusted(io_dir, "out/_load_events.json", MAX_JSON_BYTES))
        events = raw.get("events", []) if isinstance(raw, dict) else []
        return [e for e in events if isinstance(e, dict)][:200]
    except (UntrustedOutputError, ValueError):
        return []

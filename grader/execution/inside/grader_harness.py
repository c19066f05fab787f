"""Answers the grader's calls in the submission's namespace; runs inside the sandbox.

The worker asks for one call at a time (`answer`); each answer is written to `ID.json` (and
`ID.N.npy`, `ID.onnx` for arrays and graphs) in a private answers folder, to a temporary name and
renamed, and the worker relays those files to the host over a channel the host owns. The host's
clock, not anything written here, decides how long a call took.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import sys
import time
import traceback
from pathlib import Path

SCHEMA_VERSION = 1


class _Store:
    """Objects kept between calls (a built model) and the encoder of values into files."""

    def __init__(self, io: Path):
        self.io, self.objects, self.count = io, {}, 0
        self.answers = io  # where answers are written; set per call by `answer`

    def decode(self, value):
        if isinstance(value, list):
            return [self.decode(v) for v in value]
        if not isinstance(value, dict):
            return value
        if "__array__" in value:
            import numpy as np
            array = np.load(self.io / value["__array__"], allow_pickle=False)
            if value.get("torch"):
                import torch
                tensor = torch.from_numpy(array.copy())
                return tensor.requires_grad_(True) if value.get("grad") else tensor
            return array
        if "__path__" in value:
            return str(self.io / value["__path__"])
        if "__rng__" in value:
            import numpy as np
            return np.random.default_rng(value["__rng__"])
        if "__ref__" in value:
            return self.objects[value["__ref__"]]
        if "__float__" in value:
            return float(value["__float__"])
        if "__tuple__" in value:
            return tuple(self.decode(v) for v in value["__tuple__"])
        return {k: self.decode(v) for k, v in value.items()}

    def encode(self, value, call_id: str):
        import numpy as np
        if type(value).__module__.startswith("torch") and hasattr(value, "detach"):
            return self._array(value.detach().cpu().numpy(), call_id, torch=True)
        if isinstance(value, np.ndarray):
            return self._array(value, call_id)
        if isinstance(value, (np.generic,)):
            return self.encode(value.item(), call_id)
        if isinstance(value, float) and not math.isfinite(value):
            return {"__float__": repr(value)}
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, tuple):
            return {"__tuple__": [self.encode(v, call_id) for v in value]}
        if isinstance(value, list):
            return [self.encode(v, call_id) for v in value]
        if isinstance(value, dict) and all(isinstance(k, str) for k in value):
            return {k: self.encode(v, call_id) for k, v in value.items()}
        return {"__object__": type(value).__qualname__, "module": type(value).__module__}

    def _array(self, array, call_id: str, torch: bool = False):
        import numpy as np
        self.count += 1
        name = f"{call_id}.{self.count}.npy"
        if array.dtype == object:
            return {"__object__": "ndarray of objects", "module": "numpy"}
        np.save(self.answers / name, np.array(array, order="C"), allow_pickle=False)  # keeps 0-d arrays 0-d
        return {"__array__": f"out/{name}", "dtype": str(array.dtype), "shape": list(array.shape), "torch": torch}


def _write_json(path: Path, data) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, allow_nan=False))
    os.replace(tmp, path)


def _error(exc: BaseException) -> dict:
    frames = traceback.extract_tb(exc.__traceback__)
    student = [f for f in frames if "grader_harness" not in f.filename]
    where = ""
    if student:
        frame = student[-1]
        in_notebook = "ipykernel_" in frame.filename or frame.filename.startswith("<")
        where = (f"in {frame.name}(), line {frame.lineno} of its cell" if in_notebook
                 else f"{os.path.basename(frame.filename)}:{frame.lineno}, in {frame.name}()")
    return {"type": type(exc).__name__, "message": str(exc)[:2000], "where": where,
            "traceback": "".join(traceback.format_exception(exc))[-4000:]}


def _grads(args, kwargs, result):
    """Gradient of a scalar result with respect to every tensor argument marked `grad`."""
    tensors = [a for a in list(args) + list(kwargs.values()) if getattr(a, "requires_grad", False)]
    if not tensors:
        return None
    import torch
    if not isinstance(result, torch.Tensor) or result.numel() != 1:
        raise TypeError(f"expected a scalar tensor to differentiate, got {type(result).__name__}")
    if not result.requires_grad:
        raise RuntimeError("the result does not depend on the inputs through autograd (is it detached?)")
    return list(torch.autograd.grad(result, tensors, allow_unused=True))


def _run_call(call: dict, namespace: dict, store: _Store):
    kind = call["kind"]
    if kind == "names":
        return {name: (callable(namespace.get(name)) if name in namespace else None) for name in call["names"]}
    if kind == "load_weights":
        import torch
        model = store.objects[call["ref"]]
        if call.get("optional") and not os.path.isfile(call["path"]):
            return {"absent": True}
        state = torch.load(call["path"], map_location="cpu", weights_only=True)
        model.load_state_dict(state)
        return None
    if kind == "export_onnx":
        return _export_onnx(call, store)
    if kind == "read_text":
        return _read_text(call)
    if kind == "descend":
        return _descend(call, namespace, store)
    function = namespace.get(call["function"])
    if function is None:
        raise NameError(f"name '{call['function']}' is not defined")
    args = [store.decode(a) for a in call.get("args", [])]
    kwargs = {k: store.decode(v) for k, v in call.get("kwargs", {}).items()}
    if call.get("no_grad"):
        import torch
        with torch.no_grad():
            result = function(*args, **kwargs)
    else:
        result = function(*args, **kwargs)
    if call.get("store_as"):
        store.objects[call["store_as"]] = result
        return {"__stored__": call["store_as"], "type": type(result).__qualname__}
    grads = _grads(args, kwargs, result) if call.get("grad") else None
    return {"value": result, "grads": grads} if grads is not None else result


def _read_text(call: dict):
    """At most `max_bytes` of a file beside the submission, decoded as UTF-8 (undecodable bytes replaced).
    A link is not followed (`{"link": True}`): the file handed in is the one to read."""
    path, cap = call["path"], int(call["max_bytes"])
    if os.path.islink(path):
        return {"link": True}
    if not os.path.isfile(path):
        return {"absent": True}
    with open(path, "rb") as handle:
        data = handle.read(cap + 1)
    return {"text": data[:cap].decode("utf-8", errors="replace"), "truncated": len(data) > cap}


def _descend(call: dict, namespace: dict, store: _Store):
    """Gradient descent on logits through the submission's loss; the grader re-scores the result."""
    import numpy as np
    import torch
    loss_fn = namespace.get(call["function"])
    if loss_fn is None:
        raise NameError(f"name '{call['function']}' is not defined")
    logits = torch.from_numpy(np.load(store.io / call["logits"], allow_pickle=False)).requires_grad_(True)
    target = torch.from_numpy(np.load(store.io / call["target"], allow_pickle=False))
    optimizer = torch.optim.SGD([logits], lr=call["lr"])
    for _ in range(call["steps"]):
        optimizer.zero_grad()
        loss = loss_fn(logits, target)
        loss.backward()
        optimizer.step()
    return logits.detach()


def _export_onnx(call: dict, store: _Store):
    """The stored model as an ONNX graph with dynamic batch and spatial sizes, and its outputs on the probes.

    The TorchScript-based exporter is used: several times faster than the dynamo one for these networks,
    and the grader checks and runs whatever graph arrives, so the exporter's choice decides nothing."""
    import warnings

    import numpy as np
    import torch
    model = store.objects[call["ref"]].eval()
    example = torch.from_numpy(np.load(store.io / call["example"], allow_pickle=False))
    path = store.answers / f"{call['id']}.onnx"
    axes = {0: "batch", 2: "height", 3: "width"}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (example,), str(path), dynamo=False, input_names=["images"],
                          output_names=["logits"], dynamic_axes={"images": axes, "logits": axes},
                          opset_version=17, do_constant_folding=True)
    outputs = []
    with torch.no_grad():
        for probe in call.get("probes", []):
            outputs.append(model(torch.from_numpy(np.load(store.io / probe, allow_pickle=False))))
    return {"onnx": f"out/{call['id']}.onnx", "outputs": outputs}


_state: dict = {}


def answer(io: str, call_id: str, answers: str, namespace: dict) -> None:
    """Answer one call of `io/request.json` in `namespace`, into the folder `answers` (the worker relays it)."""
    if "calls" not in _state:
        request = json.loads((Path(io) / "request.json").read_text())
        _state.update(calls={c["id"]: c for c in request["calls"]}, store=_Store(Path(io)))
    call, store = _state["calls"][call_id], _state["store"]
    store.answers = Path(answers)
    start = time.perf_counter()
    try:
        answer = {"status": "ok", "value": store.encode(_run_call(call, namespace, store), call_id)}
    except BaseException as exc:  # a student's error, SystemExit and KeyboardInterrupt included
        answer = {"status": "error", "error": _error(exc)}
    answer.update(schema_version=SCHEMA_VERSION, id=call_id, seconds=time.perf_counter() - start)
    target = store.answers / f"{call_id}.json"
    try:
        _write_json(target, answer)
    except (TypeError, ValueError) as exc:
        _write_json(target, {"schema_version": SCHEMA_VERSION, "id": call_id, "status": "error", "error": _error(exc)})
    sys.stdout.flush()

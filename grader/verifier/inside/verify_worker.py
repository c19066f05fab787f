"""The verifier's entry point, run in its own sandbox: check one submitted graph with onnx, run it with
onnxruntime, and answer the job's parts in `out/`. Imports numpy, onnx and onnxruntime only.
Usage: verify_worker.py IO_DIR

Parts are answered in order (probes, structure, then each label set), each in its own JSON file
written atomically, so that a run killed part-way still hands back the parts it finished.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

SCHEMA_VERSION = 1
MEMORY_WORDS = ("bad_alloc", "bad allocation", "failed to allocate", "memoryerror", "cannot allocate", "out of memory")


class Job:
    """The job description and the folder it came in."""

    def __init__(self, io: Path):
        self.io = io
        self.spec = json.loads((io / "job.json").read_text())
        self.out = io / "out"

    def array(self, name: str) -> np.ndarray:
        return np.load(self.io / name, allow_pickle=False)

    def answer(self, name: str, data: dict) -> None:
        tmp = self.out / f".{name}.tmp"
        tmp.write_text(json.dumps({"schema_version": SCHEMA_VERSION, **data}, allow_nan=False))
        os.replace(tmp, self.out / name)

    def save(self, name: str, array: np.ndarray) -> str:
        np.save(self.out / name, np.ascontiguousarray(array), allow_pickle=False)
        return f"out/{name}"


def describe(err: BaseException, memory_gib: float) -> str:
    """One line for a student; running out of the verifier's memory is named as such."""
    text = f"{type(err).__name__}: {err}"
    if isinstance(err, MemoryError) or any(w in text.lower() for w in MEMORY_WORDS):
        return f"it needed more than the {memory_gib:g} GiB of memory the grader allows"
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return f"onnxruntime could not run it ({first[:300]})"


LIGHT_ELEMENTS = 1024  # float initializers larger than this go to sessions as shared external initializers


def split_weights(model, ort) -> tuple:
    """A copy of `model` whose large float initializers are marked external, and those weights as
    OrtValues: every session over a rewritten copy then shares one set of weights, and no copy of
    the graph is serialized with its weights (which cost more than the runs themselves)."""
    import onnx
    from onnx import numpy_helper

    light = onnx.ModelProto()
    light.CopyFrom(model)
    weights = {}
    for tensor in light.graph.initializer:
        if tensor.data_type != onnx.TensorProto.FLOAT or int(np.prod(tensor.dims)) <= LIGHT_ELEMENTS:
            continue
        weights[tensor.name] = ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(numpy_helper.to_array(tensor)))
        for field in ("raw_data", "float_data", "external_data"):
            tensor.ClearField(field)
        tensor.data_location = onnx.TensorProto.EXTERNAL
        entry = tensor.external_data.add()
        entry.key, entry.value = "location", "shared"
    return light, weights


class Runner:
    """Sessions over the graph, made on demand with the job's thread count. `light` is the graph
    with its large weights held apart (see `split_weights`); rewritten copies start from it."""

    def __init__(self, model, threads: int):
        import onnxruntime as ort

        self.ort, self.threads = ort, threads
        self.light, self.weights = split_weights(model, ort)
        self.plain = self.make(self.light)
        self.input = self.plain.get_inputs()[0].name
        self.output = self.plain.get_outputs()[0].name

    def make(self, model, optimize: bool = True):
        """A session over `model` (the light graph or a rewritten copy of it), weights shared."""
        options = self.ort.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # no busy waits on shared cores
        if not optimize:
            options.graph_optimization_level = self.ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        if self.weights:
            options.add_external_initializers(list(self.weights), list(self.weights.values()))
        return self.ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])

    def first_output(self, batch: np.ndarray) -> np.ndarray:
        return self.plain.run([self.output], {self.input: np.ascontiguousarray(batch, np.float32)})[0]


def run_probes(job: Job, runner: Runner) -> None:
    results, cap = [], int(job.spec["max_output_elements"])
    for k, name in enumerate(job.spec["probes"]):
        try:
            value = np.asarray(runner.first_output(job.array(name)))
        except Exception as err:  # each probe answers for itself
            results.append({"error": describe(err, job.spec["memory_gib"])})
            continue
        kept = value.dtype.kind == "f" and value.size <= cap
        results.append({"shape": list(value.shape), "dtype": str(value.dtype),
                        "file": job.save(f"probe{k}.npy", value.astype(np.float32)) if kept else None})
    job.answer("probes.json", {"results": results})


def _pad(image: np.ndarray, multiple: int, how: str) -> tuple[np.ndarray, tuple[int, int]]:
    """`image` (3, H, W) padded to multiples of `multiple`, and where the original starts (top, left).
    `reference` pads like the reference's predict: reflect at the bottom and right, or replicate
    where the image is too small to reflect."""
    h, w = image.shape[1:]
    pad_h, pad_w = (-h) % multiple, (-w) % multiple
    if how == "reference":
        mode, place = ("reflect" if min(h, w) > max(pad_h, pad_w) else "replicate"), "end"
    else:
        mode, place = how.split("-")
    top, left = (pad_h // 2, pad_w // 2) if place == "center" else (0, 0)
    numpy_mode = {"reflect": "reflect", "replicate": "edge", "zeros": "constant"}[mode]
    padded = np.pad(image, ((0, 0), (top, pad_h - top), (left, pad_w - left)), mode=numpy_mode)
    return padded, (top, left)


def run_labels(job: Job, runner: Runner, spec: dict) -> None:
    """Labels (argmax over classes, uint8) per image and padding, cropped back to the image."""
    results = []
    try:
        for i, name in enumerate(spec["images"]):
            image, row = job.array(name), []
            for how in spec["pads"]:
                padded, (top, left) = _pad(image, int(spec["multiple"]), how)
                logits = np.asarray(runner.first_output(padded[None]))
                if logits.ndim != 4 or logits.shape[0] != 1 or logits.shape[2:] != padded.shape[1:] or not (
                        1 <= logits.shape[1] <= 255):
                    raise ValueError(f"the network returned {tuple(logits.shape)} for an input of shape "
                                     f"{(1, *padded.shape)}; expected (1, classes, {padded.shape[1]}, "
                                     f"{padded.shape[2]})")
                h, w = image.shape[1:]
                labels = logits[0, :, top:top + h, left:left + w].argmax(0).astype(np.uint8)
                row.append(job.save(f"labels-{spec['name']}-{i}-{how}.npy", labels))
            results.append(row)
    except ValueError as err:
        job.answer(f"labels-{spec['name']}.json", {"error": str(err)[:400]})
        return
    except Exception as err:
        job.answer(f"labels-{spec['name']}.json", {"error": describe(err, job.spec["memory_gib"])})
        return
    job.answer(f"labels-{spec['name']}.json", {"pads": spec["pads"], "results": results})


class Stages:
    """Seconds per stage of this run, written last as `out/timings.json` (for benchmarks only)."""

    def __init__(self, job: Job):
        self.job, self.seconds, self.mark = job, {}, time.perf_counter()

    def done(self, stage: str) -> None:
        now = time.perf_counter()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + now - self.mark
        self.mark = now

    def write(self) -> None:
        self.job.answer("timings.json", {"seconds": self.seconds})


def main() -> int:
    job = Job(Path(sys.argv[1]))
    stages = Stages(job)
    try:
        return answer_all(job, stages)
    finally:
        stages.write()


def answer_all(job: Job, stages: Stages) -> int:
    memory = job.spec["memory_gib"]
    parts = ["probes.json"] * bool(job.spec["probes"]) + ["structure.json"] * bool(job.spec.get("structure")) + [
        f"labels-{s['name']}.json" for s in job.spec["labels"]]
    if job.spec.get("schema_version") != SCHEMA_VERSION:
        for part in parts:
            job.answer(part, {"error": f"the job is in layout version {job.spec.get('schema_version')!r} and this "
                                       f"verifier reads {SCHEMA_VERSION}; reinstall the grader"})
        return 0
    data = (job.io / job.spec["graph"]).read_bytes()
    try:
        import onnx

        model = onnx.load_from_string(data)
        onnx.checker.check_model(data)  # the bytes as sent: no second serialization of every weight
    except Exception as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        for part in parts:
            job.answer(part, {"error": f"onnx.checker rejected it ({first[:300]})"})
        return 0
    stages.done("imports, onnx.checker")
    try:
        runner = Runner(model, int(job.spec["threads"]))
    except Exception as err:
        for part in parts:
            job.answer(part, {"error": describe(err, memory)})
        return 0
    stages.done("onnxruntime session")
    if job.spec["probes"]:
        run_probes(job, runner)
        stages.done("probes")
    if job.spec.get("structure"):
        import structure_part

        structure_part.run(job, runner, model, describe)
        stages.done("structure and perturbations")
    for spec in job.spec["labels"]:
        run_labels(job, runner, spec)
        stages.done(f"labels {spec['name']}")
    return 0


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    os._exit(status)  # every answer is on disk: skip tearing down the sessions and their weights

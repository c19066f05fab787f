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


class Runner:
    """Sessions over the graph, made on demand with the job's thread count."""

    def __init__(self, data: bytes, threads: int):
        import onnxruntime as ort

        self.ort, self.data, self.threads = ort, data, threads
        self.plain = self.make(data)
        self.input = self.plain.get_inputs()[0].name
        self.output = self.plain.get_outputs()[0].name

    def make(self, data: bytes, optimize: bool = True):
        options = self.ort.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        if not optimize:
            options.graph_optimization_level = self.ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        return self.ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])

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


def main() -> int:
    job = Job(Path(sys.argv[1]))
    memory = job.spec["memory_gib"]
    parts = ["probes.json"] * bool(job.spec["probes"]) + ["structure.json"] * bool(job.spec.get("structure")) + [
        f"labels-{s['name']}.json" for s in job.spec["labels"]]
    data = (job.io / job.spec["graph"]).read_bytes()
    try:
        import onnx

        model = onnx.load_from_string(data)
        onnx.checker.check_model(model)
    except Exception as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        for part in parts:
            job.answer(part, {"error": f"onnx.checker rejected it ({first[:300]})"})
        return 0
    try:
        runner = Runner(data, int(job.spec["threads"]))
    except Exception as err:
        for part in parts:
            job.answer(part, {"error": describe(err, memory)})
        return 0
    if job.spec["probes"]:
        run_probes(job, runner)
    if job.spec.get("structure"):
        import structure_part

        structure_part.run(job, runner, model, describe)
    for spec in job.spec["labels"]:
        run_labels(job, runner, spec)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The three U-Nets, one per encoder, exported as ONNX graphs in the sandbox, accepted here, and run
and analysed by the grader's verifier in its own sandbox: once per graph, every test of that graph
sharing the run (the table and held-out tests add their images to the same verifier job).

Each model is built with `build_model(encoder)`, given the submission's `model_ENCODER.pt` when there
is one, and exported once per grading. Which encoder a graph holds is read from what it computes
(block kind, blocks per stage, widths, the stem), never from names the submission chose."""

import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from grader.execution import call, export_call, load_weights_call
from grader.suites import Failure, register
from grader.suites.graphs import accepted_export, check_probe_outputs, structure_of
from grader.suites.structure import RESNETS, describe_skips, identify_encoder
from grader.verifier import Job, verify

ENCODERS = ("resnet18", "resnet34", "resnet50")
SPEC_NAMES = dict(zip(ENCODERS, ("ResNet18", "ResNet34", "ResNet50")))

_rng = np.random.default_rng(20261129)
PROBE = _rng.random((1, 3, 64, 96), dtype=np.float32)  # non-square: H and W levels stay distinct
PROBES = [_rng.random((2, 3, 64, 96), dtype=np.float32), _rng.random((1, 3, 128, 64), dtype=np.float32), PROBE]


def _network(key, factory, weights):
    """(factory call, optional weights call, export call, what students call it) of one network."""
    load = load_weights_call(f"e.load_{key}", factory.store_as, path=weights, optional=True)
    export = export_call(f"e.export_{key}", factory.store_as, PROBE, PROBES, multiple=32)
    return factory, load, export


NETWORKS = {enc: _network(enc, call(f"e.build_{enc}", "build_model", enc, store_as=f"unet_{enc}", timeout=120),
                          f"model_{enc}.pt") for enc in ENCODERS}
NETWORKS["variant"] = _network("variant", call("e.build_variant", "build_variant", store_as="unet_variant",
                                                timeout=120), "model_variant.pt")
LABELS = {**{enc: f"build_model({enc!r})" for enc in ENCODERS}, "variant": "build_variant()"}
CALLS = {key: list(calls) for key, calls in NETWORKS.items()}  # build, load weights (when present), export
JOBS = {key: Job(probes=tuple(PROBES), structure_probe=PROBE) for key in NETWORKS}


def add_labels(key, label_set):
    """Have the verifier also label `label_set` with network `key`, in the same run as everything else."""
    JOBS[key] = JOBS[key].with_labels(label_set)


def weights_file(key):
    return f"model_{key}.pt"


def loaded(answers, key):
    """True when the submission's model_KEY.pt was loaded into the network, False when there is none."""
    factory, load, _ = NETWORKS[key]
    answers.value(factory.id, LABELS[key])
    value = answers.value(load.id, f"loading {weights_file(key)} into {LABELS[key]} (save model.state_dict() "
                                   f"of that network as {weights_file(key)} beside your notebook)")
    return not (isinstance(value, dict) and value.get("absent"))


def accepted(answers, key):
    """(accepted graph, the sandbox's own outputs on the probes) of network `key`'s export; the
    weights may fail to load: the structure is the same without them."""
    factory, _, export = NETWORKS[key]
    return accepted_export(answers, factory.id, export.id, LABELS[key])


def verified(answers, key):
    """(accepted graph, the verifier's answers, the sandbox's own outputs on the probes)."""
    graph, outputs = accepted(answers, key)
    return graph, verify(graph, JOBS[key]), outputs


def check_unet(answers, key):
    """Failure unless network `key` gives logits per pixel, agrees with its export and concatenates a
    live skip at every encoder level; returns its structure."""
    label = LABELS[key]
    _, verification, outputs = verified(answers, key)
    check_probe_outputs(verification, outputs, PROBES, label)
    structure = structure_of(verification, label)
    problems = describe_skips(structure)
    if problems:
        raise Failure(f"in {label}: " + "; ".join(problems))
    return structure


# --- the graph's parameter count, read in a bounded child process (the graph is hostile input) ---

COUNT_MARK = "CONV-WEIGHTS "
_COUNT_CODE = """
import json, sys
import onnx
model = onnx.load(sys.argv[1], load_external_data=False)
sizes = {}
for t in model.graph.initializer:
    n = 1
    for d in t.dims:
        n *= int(d)
    sizes[t.name] = n
seen, total = set(), 0
for node in model.graph.node:
    if node.op_type in ("Conv", "ConvTranspose") and len(node.input) > 1 and node.input[1] in sizes:
        if node.input[1] not in seen:
            seen.add(node.input[1])
            total += sizes[node.input[1]]
print("CONV-WEIGHTS " + json.dumps(total), flush=True)
"""
_counts: dict[str, int] = {}


def conv_weights(graph):
    """Elements of the weights of every convolution in an accepted graph: what `parameters` is checked
    against. Counted in a child process with the limits that accepting the graph had."""
    if graph.sha256 in _counts:
        return _counts[graph.sha256]
    from grader.sandbox.process import run_contained
    from grader.verifier.acceptance import PARSE_LIMITS

    with tempfile.TemporaryDirectory(prefix="grader-count-") as folder:
        path = Path(folder) / "graph.onnx"
        path.write_bytes(graph.data)
        env = {"PATH": os.environ.get("PATH", ""), "OMP_NUM_THREADS": "1"}
        result = run_contained([sys.executable, "-c", _COUNT_CODE, str(path)], cwd=Path(folder), env=env,
                               rlimits=PARSE_LIMITS.rlimits(), wall_seconds=PARSE_LIMITS.wall_seconds,
                               output_bytes=PARSE_LIMITS.output_bytes)
    lines = [line for line in result.output.splitlines() if line.startswith(COUNT_MARK)]
    if not result.ok or not lines:
        raise Failure("the grader could not count the weights of your exported model within its limits")
    count = json.loads(lines[-1][len(COUNT_MARK):])
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise Failure("the grader could not count the weights of your exported model")
    _counts[graph.sha256] = count
    return count


def build_tests(assignment):
    tests = []
    for enc in ENCODERS:
        _register_encoder(tests, enc)
    return tests


def _register_encoder(tests, enc):
    label = LABELS[enc]

    @register(tests, id=f"encoders.{enc}_unet", name=f"{label}: a U-Net, logits per pixel", points=1,
              tag="encoders", calls=CALLS[enc],
              hint="segmentation_models_pytorch.Unet(encoder, encoder_weights=None, classes=3) returns (N, 3, H, W) "
                   "logits and concatenates the encoder's features at every resolution.")
    def _unet(answers):
        check_unet(answers, enc)

    @register(tests, id=f"encoders.{enc}_encoder", name=f"{label}: the encoder computes a {SPEC_NAMES[enc]}",
              points=2, tag="encoders", calls=CALLS[enc],
              hint="ResNet18 and ResNet34 stack basic blocks (two 3x3 convolutions) 2-2-2-2 and 3-4-6-3 times; "
                   "ResNet50 stacks bottleneck blocks (1x1, 3x3, 1x1 widening 4x) 3-4-6-3 times. Pass the "
                   "encoder's name through to the model you build.")
    def _encoder(answers):
        _, verification, _ = verified(answers, enc)
        found = identify_encoder(structure_of(verification, label), RESNETS)
        if found.name == SPEC_NAMES[enc]:
            return
        if found.name is not None:
            raise Failure(f"{label} builds a U-Net whose encoder computes a {found.name} ({found.computes}), not a "
                          f"{SPEC_NAMES[enc]}")
        detail = "; ".join(found.problems) if found.problems else found.computes
        raise Failure(f"{label}'s encoder is not a {SPEC_NAMES[enc]}: it is closest to a {found.closest}, but "
                      f"{detail}")

"""What suites do with a network the sandbox exported: accept its graph (a clear `Failure` when
it cannot be used) and read the verifier's structure report, the same way in every suite."""

from __future__ import annotations

from typing import Any

from grader.suites.base import Answers, Failure
from grader.suites.structure import Structure, from_layout
from grader.verifier import AcceptedGraph, GraphRejected, Verification, VerificationFailed, accept, outputs_agree


def accepted_export(answers: Answers, factory_id: str, export_id: str, label: str) -> tuple[AcceptedGraph, list[Any]]:
    """(accepted graph, the sandbox's own outputs on the probes) of the network `factory_id` built
    and `export_id` exported; `label` is what students call the network."""
    answers.value(factory_id, label)
    exported = answers.value(export_id, f"exporting {label} to ONNX")
    if not isinstance(exported, dict) or not isinstance(exported.get("onnx"), bytes):
        raise Failure(f"exporting {label} to ONNX gave no graph")
    try:
        graph = accept(exported["onnx"])
    except GraphRejected as err:
        raise Failure(f"{label} could not be inspected: {err}")
    outputs = exported.get("outputs")
    return graph, outputs if isinstance(outputs, list) else []


def check_probe_outputs(verification: Verification, outputs: list[Any], probes, label: str, classes: int = 3) -> None:
    """A `Failure` unless the graph, run by the verifier, gives `classes` logits per pixel on every probe and
    agrees with what the student's own model gave on it in the sandbox (`outputs`)."""
    for k, probe in enumerate(probes):
        expected = (probe.shape[0], classes, *probe.shape[2:])
        try:
            ours = verification.probe(k)
        except VerificationFailed as err:
            raise Failure(f"{label} on input {probe.shape}: {err}")
        if ours.shape != expected:
            raise Failure(f"{label} returns {ours.shape} for input {probe.shape}; expected {expected} logits")
        if ours.values is None or k >= len(outputs) or not outputs_agree(ours.values, outputs[k]):
            raise Failure(f"the exported {label} and the model in your code give different outputs on the same "
                          "input: make sure the network computes the same thing every time")


def structure_of(verification: Verification, label: str) -> Structure:
    """The verifier's structure report as a `Structure`, or a `Failure` saying why there is none."""
    try:
        return from_layout(verification.layout())
    except VerificationFailed as err:
        raise Failure(f"{label}: {err}")
    except (ValueError, KeyError, TypeError) as err:
        raise Failure(f"{label} could not be analysed: the grader's verifier answered a malformed report ({err})")

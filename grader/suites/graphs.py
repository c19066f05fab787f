"""What suites do with a network the sandbox exported: accept its graph (a clear `Failure` when
it cannot be used) and read the verifier's structure report, the same way in every suite."""

from __future__ import annotations

from typing import Any

from grader.suites.base import Answers, Failure
from grader.suites.structure import Structure, from_layout
from grader.verifier import AcceptedGraph, GraphRejected, Verification, VerificationFailed, accept


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


def structure_of(verification: Verification, label: str) -> Structure:
    """The verifier's structure report as a `Structure`, or a `Failure` saying why there is none."""
    try:
        return from_layout(verification.layout())
    except VerificationFailed as err:
        raise Failure(f"{label}: {err}")
    except (ValueError, KeyError, TypeError) as err:
        raise Failure(f"{label} could not be analysed: the grader's verifier answered a malformed report ({err})")

"""Submitted ONNX graphs, handled as hostile input: accepted by walking their protobuf in the
grader's process, then checked, run and analysed only in the verifier's own sandboxed process.

Public surface: `accept`, `AcceptedGraph`, `GraphRejected`, `Job`, `LabelSet`, `verify`, `Verifier`,
`VerifierLimits`, `VerifierUsage`, `verifier_usage`, `Verification`, `ProbeOutput`, `VerificationFailed`,
`outputs_agree`.
"""

from grader.verifier.acceptance import AcceptedGraph, GraphRejected, accept
from grader.verifier.job import LabelSet, Job
from grader.verifier.results import ProbeOutput, Verification, VerificationFailed, outputs_agree
from grader.verifier.runner import Verifier, VerifierLimits, verify
from grader.verifier.usage import VerifierUsage, verifier_usage

__all__ = ["accept", "AcceptedGraph", "GraphRejected", "Job", "LabelSet", "verify", "Verifier", "VerifierLimits",
           "VerifierUsage", "verifier_usage", "Verification", "ProbeOutput", "VerificationFailed", "outputs_agree"]

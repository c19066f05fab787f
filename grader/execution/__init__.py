"""Running a submission's code across the trust boundary: stage it, answer calls in the sandbox,
read answers back as data (JSON, `.npy`, ONNX), never as pickles.

Public surface: `stage`, `run_calls`, `Budget`, `Call`, `call`, `Array`, `Rng`, `Ref`,
`CallOutcome`, `SessionReport`, and the `SubmissionError` family.
"""

from grader.execution.calls import (Array, Call, CallOutcome, DataDir, Ref, Rng, StudentException, call,
                                    descend_call, export_call, load_weights_call, names_call,
                                    read_text_call)
from grader.execution.exceptions import NoSubmissionFile, NotebookUnreadable, SubmissionError
from grader.execution.session import Budget, SessionReport, run_calls
from grader.execution.staging import StagedSubmission, stage

__all__ = ["stage", "run_calls", "Budget", "Call", "call", "descend_call", "DataDir", "export_call", "load_weights_call", "names_call", "read_text_call", "Array", "Rng", "Ref", "CallOutcome", "StudentException",
           "SessionReport", "StagedSubmission", "SubmissionError", "NotebookUnreadable", "NoSubmissionFile"]

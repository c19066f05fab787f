"""The size cap on an exported ONNX graph read back from the sandbox.

Everything else about a submitted graph (acceptance, running it, what it computes) lives in
`grader.verifier`: the grader's process only walks the graph's protobuf, and every run of it
happens in the verifier's own sandbox. This module stays a leaf so that reading answers back
(`grader.execution.readback`) needs nothing of the verifier.
"""

MAX_ONNX_BYTES = 400 * 2 ** 20

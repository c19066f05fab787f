"""The size cap on exported graphs is one constant: readback and acceptance use the same one, and
the grader's process keeps no way of running a graph itself."""

import pytest

from grader.execution import onnx_graph, readback
from grader.verifier import GraphRejected, accept, acceptance
from tests.grader.verifier.graphs import make_graphs


def test_readback_and_acceptance_share_the_cap():
    assert readback.MAX_ONNX_BYTES == acceptance.MAX_ONNX_BYTES == onnx_graph.MAX_ONNX_BYTES == 400 * 2 ** 20


def test_the_module_holds_no_runner():
    assert not any(hasattr(onnx_graph, name) for name in ("run_graph", "agrees", "check_graph"))


def test_a_graph_over_the_cap_is_refused_before_it_is_parsed(monkeypatch):
    monkeypatch.setattr(acceptance, "MAX_ONNX_BYTES", 64)
    with pytest.raises(GraphRejected, match="over the 0 MiB cap"):
        accept(make_graphs.plain(5.0) + b"\x00" * 100)

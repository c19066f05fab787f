"""Parsing a submitted graph costs what its bytes say: acceptance parses in a bounded child process,
so a few MiB of empty protobuf messages cost the grader seconds, not gigabytes and minutes."""

import resource
import time

import pytest

from grader.verifier.acceptance import GraphRejected, accept


def _varint(value: int) -> bytes:
    out = b""
    while True:
        low, value = value & 0x7F, value >> 7
        if not value:
            return out + bytes([low])
        out += bytes([low | 0x80])


def _field(tag: int, payload: bytes) -> bytes:
    return bytes([tag]) + _varint(len(payload)) + payload


def attribute_bomb(mib: int) -> bytes:
    """One Relu node carrying millions of empty attributes (2 bytes each): ModelProto.graph.node."""
    node = _field(0x22, b"Relu") + b"\x2a\x00" * (mib * 2 ** 20 // 2)
    return _field(0x3a, _field(0x0a, node))


def node_bomb(mib: int) -> bytes:
    """Millions of empty nodes."""
    return _field(0x3a, b"\x0a\x00" * (mib * 2 ** 20 // 2))


@pytest.mark.parametrize("graph,why", [
    (attribute_bomb(16), "carries 8388608 attributes"),
    (attribute_bomb(96), "not a valid ONNX file"),  # the child runs out of its memory while parsing
    (node_bomb(64), "not a valid ONNX file"),
])
def test_protobuf_bombs_are_refused_in_seconds_without_the_graders_memory(graph, why):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.monotonic()
    with pytest.raises(GraphRejected, match=why):
        accept(graph)
    assert time.monotonic() - start < 35
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 2 * len(graph) / 2 ** 20 + 100  # the bytes themselves, not the parse

"""The parse server: each graph parsed in a grandchild under CPU, memory and wall limits, the
server started once and restarted when gone; nothing the grandchild prints reaches the grader."""

import pytest

from grader.sandbox import Limits
from grader.verifier.parse_server import ParseServer

LIMITS = Limits(wall_seconds=3, cpu_seconds=2, memory_bytes=2 * 2 ** 30, processes=64, output_bytes=4096)


@pytest.fixture
def server():
    made = []

    def make(entry):
        made.append(ParseServer(LIMITS, f"tests.grader.verifier.parse_entries:{entry}"))
        return made[-1]
    yield make
    for s in made:
        s.close()


def test_a_verdict_comes_back_and_the_server_stays(server, tmp_path):
    parse = server("echo")
    assert parse.ask(tmp_path / "a") == {"path": str(tmp_path / "a")}
    first = parse._process.pid
    assert parse.ask(tmp_path / "b") == {"path": str(tmp_path / "b")}
    assert parse._process.pid == first  # one server, a grandchild per graph


def test_time_memory_and_cpu_limits_end_the_grandchild_not_the_server(server, tmp_path):
    assert server("sleeps").ask(tmp_path) == "timeout"
    assert server("allocates").ask(tmp_path) == "limits"
    spinning = server("spins")
    assert spinning.ask(tmp_path) in ("limits", "timeout")
    assert spinning._process.poll() is None  # the server lives on for the next graph


def test_a_killed_server_is_restarted_and_printing_cannot_forge_a_verdict(server, tmp_path):
    parse = server("prints")
    assert parse.ask(tmp_path) == {"ok": True}
    parse._process.kill()
    parse._process.wait()
    assert parse.ask(tmp_path) == {"ok": True}

"""The host's end of the answer channel: only the awaited answer, within its caps, reaches the disk."""

import json
import os
import threading

import pytest

from grader.execution.channel import Answer, AnswerChannel, ChannelError, Closed


def _channel(tmp_path, message_cap=1000, total_cap=5000):
    read_fd, write_fd = os.pipe()
    return AnswerChannel(read_fd, tmp_path, message_cap, total_cap), write_fd


def _send(fd, header, *payloads):
    data = (header if isinstance(header, bytes) else (json.dumps(header) + "\n").encode()) + b"".join(payloads)
    threading.Thread(target=lambda: os.write(fd, data), daemon=True).start()


def test_the_awaited_answer_is_stored_and_the_close_is_seen(tmp_path):
    channel, fd = _channel(tmp_path)
    channel.expect("m.a")
    _send(fd, {"id": "m.a", "files": [["m.a.json", 5], ["m.a.1.npy", 3]]}, b"hello", b"abc")
    message = channel.wait(5)
    assert message == Answer("m.a", ("m.a.json", "m.a.1.npy"))
    assert (tmp_path / "out" / "m.a.json").read_bytes() == b"hello"
    assert (tmp_path / "out" / "m.a.1.npy").read_bytes() == b"abc"
    os.close(fd)
    assert isinstance(channel.wait(5), Closed)
    channel.close()


@pytest.mark.parametrize("header,why", [
    ({"id": "m.other", "files": []}, "while the grader waited for 'm.a'"),
    ({"id": "m.a", "files": [["../../etc/passwd", 3]]}, "does not belong to it"),
    ({"id": "m.a", "files": [["m.b.json", 3]]}, "does not belong to it"),
    ({"id": "m.a", "files": [["m.a.json", 10 ** 9]]}, "over the limit of 1000"),
    ({"id": "m.a", "files": [["m.a.json", -1]]}, "does not follow the protocol"),
    ({"id": "m.a", "files": [["m.a.json", 1.5]]}, "does not follow the protocol"),
    ({"id": "m.a", "files": "m.a.json"}, "does not follow the protocol"),
    (b"[" * 50_000 + b"\n", "not JSON"),
    (b"x" * 70_000, "longer than allowed"),
    (b"\xff\xfe\n", "not JSON"),
])
def test_anything_else_is_a_protocol_violation_and_nothing_is_written(tmp_path, header, why):
    channel, fd = _channel(tmp_path)
    channel.expect("m.a")
    _send(fd, header, b"abc")
    message = channel.wait(5)
    assert isinstance(message, ChannelError) and why in str(message)
    assert list((tmp_path / "out").iterdir()) == []
    os.close(fd)
    channel.close()


def test_answers_together_are_capped(tmp_path):
    channel, fd = _channel(tmp_path, message_cap=1000, total_cap=1500)
    channel.expect("m.a")
    _send(fd, {"id": "m.a", "files": [["m.a.json", 900]]}, b"x" * 900)
    assert isinstance(channel.wait(5), Answer)
    channel.expect("m.b")
    _send(fd, {"id": "m.b", "files": [["m.b.json", 900]]}, b"x" * 900)
    message = channel.wait(5)
    assert isinstance(message, ChannelError) and "together are over the limit of 1500" in str(message)
    os.close(fd)
    channel.close()


def test_a_close_in_the_middle_of_an_answer_is_reported(tmp_path):
    channel, fd = _channel(tmp_path)
    channel.expect("m.a")
    os.write(fd, (json.dumps({"id": "m.a", "files": [["m.a.json", 100]]}) + "\n").encode() + b"short")
    os.close(fd)
    message = channel.wait(5)
    assert isinstance(message, ChannelError) and "closed in the middle of an answer" in str(message)
    channel.close()


def test_nothing_arrives_within_the_timeout(tmp_path):
    channel, fd = _channel(tmp_path)
    channel.expect("m.a")
    assert channel.wait(0.2) is None
    os.close(fd)
    channel.close()

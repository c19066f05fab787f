"""The host's end of the answer channel: a pipe the sandbox writes framed answers into.

Each message is a JSON header line `{"id": ..., "files": [[name, size], ...]}` and then the files'
bytes. Every field is checked and every size capped before a byte is written to the host's disk;
anything else is a protocol violation that ends the sandbox. Only the answer the host is waiting
for is accepted, so a submission cannot fill the host by sending answers nobody asked for.
"""

from __future__ import annotations

import json
import os
import queue
import re
import threading
from dataclasses import dataclass
from pathlib import Path

MAX_HEADER_BYTES = 64 * 1024
MAX_FILES = 256
FILE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,200}$")


class ChannelError(Exception):
    """The sandbox broke the answer protocol (or sent more than allowed); the message says how."""


@dataclass(frozen=True)
class Answer:
    """One call's answer files, now under the host's `folder/out/`."""

    call_id: str
    names: tuple[str, ...]


@dataclass(frozen=True)
class Closed:
    """The sandbox closed its end: it exited, crashed or was killed."""


class AnswerChannel:
    """Reads messages on a thread; `expect(id)` says which answer may come next; `wait` gives it."""

    def __init__(self, read_fd: int, folder: Path, message_cap: int, total_cap: int):
        self.fd, self.folder = read_fd, folder
        self.message_cap, self.total_cap, self.received = message_cap, total_cap, 0
        (folder / "out").mkdir(parents=True, exist_ok=True)
        self._expected: str | None = None
        self._lock = threading.Lock()
        self._messages: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._read_all, daemon=True)
        self._thread.start()

    def expect(self, call_id: str) -> None:
        with self._lock:
            self._expected = call_id

    def wait(self, timeout: float) -> Answer | Closed | ChannelError | None:
        """The next message, `Closed`, a protocol error, or None when `timeout` passes first."""
        try:
            return self._messages.get(timeout=max(0.0, timeout))
        except queue.Empty:
            return None

    def close(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass
        self._thread.join(timeout=5)

    def _read_all(self) -> None:
        buffer = bytearray()
        try:
            while True:
                message = self._read_message(buffer)
                if message is None:
                    self._messages.put(Closed())
                    return
                self._messages.put(message)
        except ChannelError as err:
            self._messages.put(err)
        except OSError:
            self._messages.put(Closed())

    def _fill(self, buffer: bytearray, need: int) -> bool:
        while len(buffer) < need:
            chunk = os.read(self.fd, min(1 << 20, max(need - len(buffer), 65536)))
            if not chunk:
                return False
            buffer += chunk
        return True

    def _read_message(self, buffer: bytearray) -> Answer | None:
        while b"\n" not in buffer:
            if len(buffer) > MAX_HEADER_BYTES:
                raise ChannelError("an answer header is longer than allowed")
            chunk = os.read(self.fd, 65536)
            if not chunk:
                if buffer:
                    raise ChannelError("the channel closed in the middle of an answer")
                return None
            buffer += chunk
        line, _, rest = bytes(buffer).partition(b"\n")
        buffer[:] = rest
        call_id, files = self._parse_header(line)
        for name, size in files:
            if not self._fill(buffer, size):
                raise ChannelError("the channel closed in the middle of an answer")
            self._store(name, bytes(buffer[:size]))
            del buffer[:size]
        return Answer(call_id, tuple(name for name, _ in files))

    def _parse_header(self, line: bytes) -> tuple[str, list[tuple[str, int]]]:
        try:
            header = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as err:
            raise ChannelError(f"an answer header is not JSON ({type(err).__name__})") from err
        if not isinstance(header, dict) or not isinstance(header.get("id"), str) or not isinstance(header.get("files"), list):
            raise ChannelError("an answer header does not follow the protocol")
        call_id, files = header["id"], header["files"]
        with self._lock:
            expected = self._expected
        if call_id != expected:
            raise ChannelError(f"an answer arrived for {call_id[:80]!r} while the grader waited for {expected!r}")
        if len(files) > MAX_FILES:
            raise ChannelError(f"an answer has more than {MAX_FILES} files")
        parsed, total = [], 0
        for item in files:
            if (not isinstance(item, list) or len(item) != 2 or not isinstance(item[0], str)
                    or type(item[1]) is not int or item[1] < 0):
                raise ChannelError("an answer's file list does not follow the protocol")
            name, size = item
            if not FILE_NAME.match(name) or not name.startswith(f"{call_id}."):
                raise ChannelError(f"an answer names a file {name[:80]!r} that does not belong to it")
            total += size
            parsed.append((name, size))
        if total > self.message_cap:
            raise ChannelError(f"an answer of {total} bytes is over the limit of {self.message_cap}")
        if self.received + total > self.total_cap:
            raise ChannelError(f"the answers together are over the limit of {self.total_cap} bytes")
        self.received += total
        return call_id, parsed

    def _store(self, name: str, data: bytes) -> None:
        path = self.folder / "out" / name
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)

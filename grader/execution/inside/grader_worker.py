"""Sandbox entry point: load the submission (a module, or a notebook run by nbclient in its own
kernel), then answer the grader's calls one at a time, in its namespace.

Usage: grader_worker.py IO_DIR ANSWER_FD. The host sends call ids on standard input, one a line,
and waits for each answer on ANSWER_FD: a JSON header line `{"id": ..., "files": [[name, size], ...]}`
followed by the files' bytes. The host's clock times every call; nothing here can change that.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
import tempfile
import time
import traceback
from pathlib import Path

HARNESS = os.path.dirname(os.path.abspath(__file__))
LOAD_ID = "_load"  # the host reads it as grader.execution.readback.LOAD_ID; nothing of grader is importable here
CALL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class Channel:
    """The host's two pipes, moved off fds 0 and 3 so that student code reading stdin cannot take calls."""

    def __init__(self, answer_fd: int):
        self.calls = os.fdopen(os.dup(0), "rb", buffering=0)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        self.answers = os.dup(answer_fd)
        os.close(answer_fd)
        os.set_inheritable(self.answers, False)
        self.folder = Path(tempfile.mkdtemp(prefix="answers-"))

    def next_call(self) -> str | None:
        line = bytearray()
        while not line.endswith(b"\n"):
            byte = self.calls.read(1)
            if not byte:
                return None
            line += byte
        call_id = line.decode("ascii", "replace").strip()
        return call_id if CALL_ID.match(call_id) else None

    def relay(self, call_id: str) -> None:
        """Send `call_id`'s answer files to the host and remove them here."""
        names = sorted(p.name for p in self.folder.iterdir() if p.name.startswith(f"{call_id}."))
        handles = [open(self.folder / name, "rb") for name in names]
        sizes = [os.fstat(h.fileno()).st_size for h in handles]
        header = json.dumps({"id": call_id, "files": [[n, s] for n, s in zip(names, sizes)]}) + "\n"
        self._write(header.encode())
        for name, handle, size in zip(names, handles, sizes):
            sent = 0
            while sent < size:
                chunk = handle.read(min(1 << 20, size - sent)) or b"\0" * min(1 << 20, size - sent)
                self._write(chunk)
                sent += len(chunk)
            handle.close()
            os.unlink(self.folder / name)

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.answers, view):]


def _record_load(channel: Channel, events: list[dict]) -> None:
    (channel.folder / f"{LOAD_ID}.json").write_text(json.dumps({"events": events}))
    channel.relay(LOAD_ID)


def _serve(channel: Channel, answer_one) -> None:
    while (call_id := channel.next_call()) is not None:
        answer_one(call_id)
        channel.relay(call_id)


def _run_module(path: Path, io: Path, channel: Channel, events: list[dict]) -> None:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:  # the module may still have defined some names before failing
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(path)]
        events.append({"kind": "error", "where": f"{path.name}:{frames[-1].lineno}" if frames else path.name,
                       "ename": type(exc).__name__, "evalue": str(exc)[:1000]})
    _record_load(channel, events)
    import grader_harness
    namespace = vars(module)
    _serve(channel, lambda call_id: grader_harness.answer(str(io), call_id, str(channel.folder), namespace))


def _run_notebook(path: Path, io: Path, request: dict, channel: Channel, events: list[dict]) -> None:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=request["cell_timeout"], kernel_name="python3", allow_errors=True,
                            interrupt_on_timeout=True, resources={"metadata": {"path": str(path.parent)}})
    student_cells = list(nb.cells)

    def run_extra(source: str) -> None:
        """Run a cell of ours, appended so that nbclient's bookkeeping keeps the student's cells."""
        nb.cells.append(nbformat.v4.new_code_cell(source))
        try:
            client.execute_cell(nb.cells[-1], len(nb.cells) - 1)
        except DeadKernelError:
            raise SystemExit(3)  # the host sees the channel close in the middle of this call
        nb.cells[-1].outputs = []  # answers travel as files; printed output is not kept

    with client.setup_kernel(cwd=str(path.parent), env=dict(os.environ)):
        run_extra(f"import sys; sys.path.insert(0, {HARNESS!r})")
        for index, cell in enumerate(student_cells):
            if cell.cell_type != "code":
                continue
            if request["skip_train"] and "train" in cell.get("metadata", {}).get("tags", []):
                events.append({"kind": "skipped", "cell": index, "reason": "tagged train; model.pt is present"})
                continue
            try:
                client.execute_cell(cell, index)
            except CellTimeoutError:
                events.append({"kind": "timeout", "cell": index, "seconds": request["cell_timeout"]})
                continue
            except DeadKernelError as exc:
                events.append({"kind": "dead_kernel", "cell": index, "evalue": str(exc)[:500]})
                _record_load(channel, events)
                raise SystemExit(3)
            errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
            for error in errors:
                timed_out = error.get("ename") == "KeyboardInterrupt"  # nbclient interrupted it at the timeout
                events.append({"kind": "timeout" if timed_out else "error", "cell": index,
                               "ename": str(error.get("ename", ""))[:100],
                               "evalue": str(error.get("evalue", ""))[:1000]})
        _record_load(channel, events)
        client.timeout = None  # the host's clock bounds each call from outside
        run_extra("import grader_harness as _gh")
        _serve(channel, lambda call_id: run_extra(
            f"_gh.answer({str(io)!r}, {call_id!r}, {str(channel.folder)!r}, globals())"))


def main() -> int:
    io, channel = Path(sys.argv[1]), Channel(int(sys.argv[2]))
    request = json.loads((io / "request.json").read_text())
    entry = Path.cwd() / request["submission"]["entry"]  # the sandbox starts in the submission's folder
    events = [{"kind": "start", "time": time.time()}]
    sys.path.insert(0, str(entry.parent))
    if request["submission"]["kind"] == "notebook":
        _run_notebook(entry, io, request, channel, events)  # shuts its kernel down on the way out
        return 0
    _run_module(entry, io, channel, events)
    # Every answer is relayed: skip the interpreter's teardown of torch and the student's modules, a
    # second or so of a core per grading; nothing of the student's (atexit) runs after the calls.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())

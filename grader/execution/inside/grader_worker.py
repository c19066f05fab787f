"""Sandbox entry point: load the submission (a module, or a notebook run by nbclient in its own
kernel), then answer the grader's calls in its namespace. Usage: grader_worker.py IO_DIR"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
import traceback
from pathlib import Path

HARNESS = os.path.dirname(os.path.abspath(__file__))


def _record(io: Path, events: list[dict]) -> None:
    tmp = io / "out" / ".load_events.json.tmp"
    tmp.write_text(json.dumps({"events": events}))
    os.replace(tmp, io / "out" / "_load_events.json")


def _run_module(path: Path, io: Path, events: list[dict]) -> None:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:  # the module may still have defined some names before failing
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(path)]
        events.append({"kind": "error", "where": f"{path.name}:{frames[-1].lineno}" if frames else path.name,
                       "ename": type(exc).__name__, "evalue": str(exc)[:1000]})
    _record(io, events)
    import grader_harness
    grader_harness.serve(vars(module), str(io))


def _run_notebook(path: Path, io: Path, request: dict, events: list[dict]) -> None:
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
        client.execute_cell(nb.cells[-1], len(nb.cells) - 1)

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
                _record(io, events)
                raise SystemExit(3)
            errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
            for error in errors:
                timed_out = error.get("ename") == "KeyboardInterrupt"  # nbclient interrupted it at the timeout
                events.append({"kind": "timeout" if timed_out else "error", "cell": index,
                               "ename": error.get("ename", ""), "evalue": str(error.get("evalue", ""))[:1000]})
        _record(io, events)
        client.timeout = None  # the grader's watchdog bounds each call from outside
        run_extra(f"import grader_harness as _gh; _gh.serve(globals(), {str(io)!r})")


def main() -> int:
    io = Path(sys.argv[1])
    request = json.loads((io / "request.json").read_text())
    entry = Path.cwd() / request["submission"]["entry"]  # the sandbox starts in the submission's folder
    events = [{"kind": "start", "time": time.time()}]
    sys.path.insert(0, str(entry.parent))
    if request["submission"]["kind"] == "notebook":
        _run_notebook(entry, io, request, events)
    else:
        _run_module(entry, io, events)
    return 0


if __name__ == "__main__":
    sys.exit(main())

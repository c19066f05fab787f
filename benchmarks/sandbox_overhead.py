"""What the sandbox adds per submission: start-up, kernel and imports, against a bare
`python -c "import torch"` measured in the same run.

    python benchmarks/sandbox_overhead.py [--repeat 5]

Rows: the bare import; the same command in bubblewrap; a module submission (torch imported)
answering one call through the harness; and the same as a notebook run by nbclient in a kernel.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grader.execution import Budget, call, run_calls, stage  # noqa: E402
from grader.sandbox import BubblewrapSandbox, Limits, PlainSandbox, SandboxRequest, probe  # noqa: E402

SOURCE = "import torch\n\ndef pixel_accuracy(p, t):\n    return float((torch.as_tensor(p) == torch.as_tensor(t)).float().mean())\n"


def _median_seconds(run, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _submissions(tmp: Path) -> tuple[Path, Path]:
    import nbformat

    module = tmp / "module" / "submission.py"
    module.parent.mkdir()
    module.write_text(SOURCE)
    notebook = tmp / "notebook" / "submission.ipynb"
    notebook.parent.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(SOURCE)]
    nbformat.write(nb, notebook)
    return module.parent, notebook.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    sandbox = BubblewrapSandbox() if probe() is None else PlainSandbox(announce=False)
    tmp = Path(tempfile.mkdtemp())
    for name in ("scratch", "io", "harness"):
        (tmp / name).mkdir()
    bare = _median_seconds(lambda: subprocess.run([sys.executable, "-c", "import torch"], check=True), args.repeat)
    request = SandboxRequest(["{python}", "-c", "import torch"], tmp / "scratch", tmp / "io", tmp / "harness", Limits())
    boxed = _median_seconds(lambda: sandbox.run(request), args.repeat)
    module, notebook = _submissions(tmp)
    one_call = [call("acc", "pixel_accuracy", [1, 2], [1, 1])]

    def session(folder: Path) -> None:
        scratch = Path(tempfile.mkdtemp(dir=tmp)) / "s"
        report = run_calls(stage(folder, scratch), one_call, sandbox, Budget(load_seconds=120))
        assert report.outcomes["acc"].ok, report.outcomes["acc"]

    rows = [("bare: python -c 'import torch'", bare), (f"{sandbox.name}: same command", boxed),
            ("module submission, one call", _median_seconds(lambda: session(module), args.repeat)),
            ("notebook submission (nbclient kernel), one call", _median_seconds(lambda: session(notebook), args.repeat))]
    print(f"sandbox: {sandbox.name}; median of {args.repeat} runs each")
    print(f"{'what':<52}{'seconds':>9}{'added':>9}{'ratio':>8}")
    for label, seconds in rows:
        print(f"{label:<52}{seconds:>9.2f}{seconds - bare:>+9.2f}{seconds / bare:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

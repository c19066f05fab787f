"""Batch grading throughput: submissions per minute and per-submission overhead for 1 and 2 workers,
a projection for a class of 300, the time of a student's `grader check`, a one-part notebook
grading beside Otter-Grader's `otter run` of a one-question notebook (when Otter is installed), and
where one full grading's time goes (a per-stage table: staging, sandbox start and load, each kind
of call, the checks by tag, and inside them acceptance and each verifier stage).

Kinds of submission, each graded by `run_batch` exactly as `grader batch` does:
  full  the reference solution with the smoke model (`make demo` writes runs/demo/model.pt), graded
        on every test of the default assignment, the held-out set included. Each copy's model.pt
        differs a little (one batch-norm scale), so every grading exports, accepts and verifies a
        graph of its own, as a class's submissions do: no cache can hide work;
  cold  the full batch again with 2 workers and warm starts off (GRADER_WARM=0): every sandbox a
        fresh interpreter that imports torch and smp itself, for the ratio in one run;
  tiny  a two-function module on the three-test mini assignment: what the batch machinery and the
        sandbox cost when the tests themselves cost nothing.
Overhead per submission = wall x workers / submissions - mean time inside grading (its own clock).
First wave: seconds until every worker has returned its first result (a worker's first grading
loads the suite and starts its helpers); steady: submissions per minute after it, from the times
results arrived; the projection for a class of 300 is the first wave plus the rest at that rate.
Otter: `--otter PATH`, else $OTTER, else .venv-otter/bin/otter (`make otter`), else `otter` on PATH.

    python benchmarks/grading_throughput.py [--full 10] [--tiny 20] [--model runs/demo/model.pt]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grader.batch import BatchOptions, run_batch  # noqa: E402
from grader.assignments import load_assignment  # noqa: E402
from grader.gradebook import GRADEBOOK_FILE, Gradebook  # noqa: E402
from grader.reports import write_graded  # noqa: E402
from grader.scoring import GradingPlan, grade, load_plan  # noqa: E402
from tests.fixtures.mini import MINI_ASSIGNMENT, write_class  # noqa: E402
from tests.fixtures.submissions import package_reference  # noqa: E402

DEFAULT = ROOT / "assignments" / "unet_urothelial"
CLASS_SIZE = 300


def measure(folder: Path, plan: GradingPlan, workers: int, scratch: Path, full_marks: bool = False) -> dict:
    """One batch's figures; with `full_marks`, a grading that lost points stops the benchmark (the
    figures of a broken grading would measure the wrong work)."""
    out = scratch / f"out-{folder.name}-{workers}-{os.environ.get('GRADER_WARM', 'warm')}"
    start = time.perf_counter()
    report = run_batch(folder, out, plan, BatchOptions(workers=workers, progress=False))
    wall = time.perf_counter() - start
    with Gradebook(out / GRADEBOOK_FILE) as book:
        runs = book.current_runs()
    inside = [r.result.execution_time for r in runs]
    lost = {f"{r.student}: {t.number}" for r in runs for t in r.result.tests if t.score < t.max_score}
    if report.errors or (full_marks and lost):
        sys.exit(f"the {folder.name} batch did not grade as expected: {sorted(lost)[:5]} {report.errors}")
    n, mean_inside = len(report.graded), statistics.fmean(inside)
    first_wave, last = report.arrivals[workers - 1], report.arrivals[-1]
    steady = 60 * (n - workers) / (last - first_wave) if n > workers and last > first_wave else float("nan")
    return {"workers": workers, "submissions": n, "wall_s": round(wall, 2),
            "per_minute": round(60 * n / wall, 2), "mean_grading_s": round(mean_inside, 2),
            "overhead_per_submission_s": round(wall * workers / n - mean_inside, 2),
            "first_wave_s": round(first_wave, 2), "steady_per_minute": round(steady, 2)}


def projection(row: dict) -> float:
    """Seconds for a class of CLASS_SIZE: the first wave (each worker's first grading, cold process
    included) as measured, then the remaining submissions at the steady rate."""
    return row["first_wave_s"] + 60 * (CLASS_SIZE - row["workers"]) / row["steady_per_minute"]


WITHIN = "  within"  # rows of a grading's timings already counted in the row above them


def stages(warm_up: Path, submission: Path, scratch: Path) -> list[tuple[str, float]]:
    """One full grading of `submission` after one of `warm_up` (so imports and the suite are warm, as
    in a batch worker; a graph of its own, so the verifier's cache is cold), its time by stage, and
    writing its report."""
    grade(GradingPlan(DEFAULT, threads=os.cpu_count()), warm_up)
    start = time.perf_counter()
    result = grade(GradingPlan(DEFAULT, threads=os.cpu_count()), submission)
    wall = time.perf_counter() - start
    began = time.perf_counter()
    write_graded(scratch / "stages", result, load_assignment(DEFAULT))
    report = time.perf_counter() - began
    other = max(0.0, wall - sum(seconds for name, seconds in result.timings if not name.startswith(WITHIN)))
    return [*result.timings, ("other (hashing, seeds, results)", other),
            ("report (results.json and report.html)", report), ("total", wall + report)]


def distinct_copies(reference: Path, model: Path, folder: Path, count: int) -> None:
    """`count` copies of the reference submission under `folder`, each with a model.pt of its own."""
    import torch

    state = torch.load(model, map_location="cpu", weights_only=True)
    scale = next(k for k in state if k.endswith("bn1.weight"))
    folder.mkdir()
    for i in range(count):
        copy = folder / f"student{i:02d}"
        shutil.copytree(reference, copy, ignore=shutil.ignore_patterns("model.pt"))
        torch.save({**state, scale: state[scale] * (1 + 1e-3 * (i + 1))}, copy / "model.pt")


def otter_executable(given: str | None) -> str | None:
    """Otter's command line, where one is installed."""
    for candidate in (given, os.environ.get("OTTER"), str(ROOT / ".venv-otter" / "bin" / "otter"), shutil.which("otter")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


METRICS_SOURCE = ("confusion_matrix", "_ratio", "dice_from_confusion", "iou_from_confusion", "dice_per_class",
                  "iou_per_class", "pixel_accuracy")
OTTER_TEST = """OK_FORMAT = True

test = {"name": "q1", "points": 1, "suites": [{"cases": [{"code": \
    ">>> import numpy as np\\n>>> bool(np.allclose(dice_per_class(np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2]), 3), "
    "[1.0, 2 / 3, 2 / 3]))\\nTrue\\n", "hidden": False, "locked": False}], "scored": True, "setup": "", "teardown": "",
    "type": "doctest"}]}
"""


def metrics_notebook(path: Path) -> Path:
    """A notebook whose one code cell defines the chapter's metrics (the reference's own code)."""
    import inspect

    import nbformat

    import reference.metrics as metrics

    source = "import numpy as np\n\n\n" + "\n\n".join(inspect.getsource(getattr(metrics, name))
                                                       for name in METRICS_SOURCE)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def beside_otter(otter: str, scratch: Path, runs: int = 2) -> dict:
    """Seconds of `otter run` on a one-question notebook and of a `--tag metrics` grading of the same
    notebook here (sandboxed, drawn cases included), best of `runs` each, measured in turn."""
    work = scratch / "otter"
    notebook = metrics_notebook(work / "metrics.ipynb")
    (work / "tests").mkdir()
    (work / "tests" / "q1.py").write_text(OTTER_TEST)
    subprocess.run([otter, "generate"], cwd=work, check=True, capture_output=True)
    ours_nb = metrics_notebook(scratch / "ours" / "unet_urothelial.ipynb")
    plan = GradingPlan(DEFAULT, tags=("metrics",))
    grade(plan, ours_nb)  # the suite loaded once, as the grader's process has it before a grading
    otter_s, ours_s = [], []
    for k in range(runs):
        out = work / f"out{k}"
        out.mkdir()
        start = time.perf_counter()
        done = subprocess.run([otter, "run", "-a", "autograder.zip", "-o", str(out), "--no-logo", str(notebook)],
                              cwd=work, capture_output=True, text=True)
        otter_s.append(time.perf_counter() - start)
        results = json.loads((out / "results.json").read_text()) if (out / "results.json").is_file() else {}
        passed = any(t.get("name") == "q1" and t.get("score") == 1 for t in results.get("tests", []))
        if done.returncode or not passed:
            sys.exit(f"otter run did not grade the notebook: {done.stdout[-2000:]}{done.stderr[-2000:]}")
        start = time.perf_counter()
        result = grade(plan, ours_nb)
        ours_s.append(time.perf_counter() - start)
        if ours_s[-1] == min(ours_s):
            timings = [(name, seconds) for name, seconds in result.timings if seconds >= 0.005]
        if result.score != result.max_score:
            sys.exit(f"the metrics grading of the reference's metrics scored {result.score}/{result.max_score}")
    calls = sum(len(t.calls) for t in load_plan(plan)[1])
    about = subprocess.run([otter, "--version"], capture_output=True, text=True).stdout
    version = next((line.split(":", 1)[1].strip() for line in about.splitlines() if "Otter-Grader version" in line), "?")
    return {"otter_s": round(min(otter_s), 2), "ours_s": round(min(ours_s), 2), "our_calls": calls,
            "otter": f"Otter-Grader {version}", "timings": timings}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", type=int, default=10, help="reference submissions to grade (0: skip)")
    parser.add_argument("--tiny", type=int, default=20, help="tiny submissions to grade")
    parser.add_argument("--model", type=Path, default=ROOT / "runs" / "demo" / "model.pt")
    parser.add_argument("--otter", help="Otter-Grader's `otter` command (default: found as the docstring says)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        write_class(scratch / "tiny", args.tiny)
        for workers in (1, 2):
            rows.append({"kind": "tiny", **measure(scratch / "tiny", GradingPlan(MINI_ASSIGNMENT), workers, scratch)})
        if args.full:
            if not args.model.is_file():
                sys.exit(f"{args.model}: no model; run `make demo` first, or pass --full 0")
            reference = package_reference(scratch / "reference", args.model)
            distinct_copies(reference, args.model, scratch / "full", max(2, args.full))
            for workers in (1, 2):
                rows.append({"kind": "full", **measure(scratch / "full", GradingPlan(DEFAULT), workers, scratch,
                                                         full_marks=True)})
            os.environ["GRADER_WARM"] = "0"  # the same batch with a fresh interpreter per sandbox, for the ratio
            try:
                rows.append({"kind": "cold", **measure(scratch / "full", GradingPlan(DEFAULT), 2, scratch,
                                                         full_marks=True)})
            finally:
                del os.environ["GRADER_WARM"]
            start = time.perf_counter()
            grade(GradingPlan(DEFAULT, hidden=False, allow_unsandboxed=True), package_reference(scratch / "check"))
            check_s = time.perf_counter() - start
            stage_rows = stages(scratch / "full" / "student00", scratch / "full" / "student01", scratch)
        otter = otter_executable(args.otter)
        side = beside_otter(otter, scratch) if otter else None
    print(f"{'kind':<6}{'workers':>8}{'subs':>6}{'wall s':>9}{'subs/min':>10}{'grading s':>11}{'overhead s':>12}"
          f"{'first wave s':>14}{'steady/min':>12}")
    for r in rows:
        print(f"{r['kind']:<6}{r['workers']:>8}{r['submissions']:>6}{r['wall_s']:>9}{r['per_minute']:>10}"
              f"{r['mean_grading_s']:>11}{r['overhead_per_submission_s']:>12}{r['first_wave_s']:>14}"
              f"{r['steady_per_minute']:>12}")
    full = {r["workers"]: r for r in rows if r["kind"] == "full"}
    if full:
        print(f"2 workers vs 1 (full): {full[2]['per_minute'] / full[1]['per_minute']:.2f}x the throughput over the "
              f"whole batch, {full[2]['steady_per_minute'] / full[1]['steady_per_minute']:.2f}x once every worker "
              "has returned its first result")
        cold = next((r for r in rows if r["kind"] == "cold"), None)
        if cold:
            print(f"warm vs cold starts (full, 2 workers): {full[2]['per_minute'] / cold['per_minute']:.2f}x the "
                  f"throughput over the whole batch, {full[2]['steady_per_minute'] / cold['steady_per_minute']:.2f}x "
                  "steady")
        for workers, r in full.items():
            print(f"projection, {CLASS_SIZE} students, {workers} worker(s): {projection(r) / 60:.0f} min (the first "
                  f"wave, then the rest at the steady rate)")
        print(f"grader check of the reference (public tests, no model.pt): {check_s:.1f} s")
        print("\none full grading of the reference, by stage (1 worker, every core, warm process, its own graph;"
              " rows starting 'within' are part of the checks above them):")
        for name, seconds in stage_rows:
            print(f"  {name:<64}{seconds:>8.2f} s")
    if side:
        print(f"\none-part notebook grading ({side['our_calls']} calls, `--tag metrics`, sandboxed): "
              f"{side['ours_s']:.2f} s; {side['otter']} `otter run` of a one-question notebook: {side['otter_s']:.2f} s; "
              f"ours / otter = {side['ours_s'] / side['otter_s']:.2f}; ours by stage (sandbox start and notebook load, "
              "calls, checks):")
        for name, seconds in side["timings"]:
            print(f"  {name:<64}{seconds:>8.2f} s")
    else:
        print("\nOtter-Grader is not installed (`make otter`), so the side-by-side with `otter run` was skipped")
    if args.json:
        args.json.write_text(json.dumps({"batches": rows, "otter": side}, indent=2))


if __name__ == "__main__":
    main()

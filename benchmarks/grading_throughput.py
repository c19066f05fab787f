"""Batch grading throughput: submissions per minute and per-submission overhead for 1 and 2 workers,
a projection for a class of 300, the time of a student's `grader check`, and where one full
grading's time goes (a per-stage table: staging, sandbox start and load, each kind of call, the
checks by tag with the verifier's runs inside them, the report).

Two kinds of submission, each graded by `run_batch` exactly as `grader batch` does:
  full  the reference solution with the smoke model (`make demo` writes runs/demo/model.pt), graded
        on every test of the default assignment, the held-out set included;
  tiny  a two-function module on the three-test mini assignment: what the batch machinery and the
        sandbox cost when the tests themselves cost nothing.
Overhead per submission = wall x workers / submissions - mean time inside grading (its own clock).

    python benchmarks/grading_throughput.py [--full 4] [--tiny 20] [--model runs/demo/model.pt]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
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
from grader.scoring import GradingPlan, grade  # noqa: E402
from tests.fixtures.mini import MINI_ASSIGNMENT, write_class  # noqa: E402
from tests.fixtures.submissions import package_reference  # noqa: E402

DEFAULT = ROOT / "assignments" / "unet_urothelial"
CLASS_SIZE = 300


def measure(folder: Path, plan: GradingPlan, workers: int, scratch: Path) -> dict:
    out = scratch / f"out-{folder.name}-{workers}"
    start = time.perf_counter()
    report = run_batch(folder, out, plan, BatchOptions(workers=workers, progress=False))
    wall = time.perf_counter() - start
    with Gradebook(out / GRADEBOOK_FILE) as book:
        inside = [r.result.execution_time for r in book.current_runs()]
    n, mean_inside = len(report.graded), statistics.fmean(inside)
    return {"workers": workers, "submissions": n, "wall_s": round(wall, 2),
            "per_minute": round(60 * n / wall, 2), "mean_grading_s": round(mean_inside, 2),
            "overhead_per_submission_s": round(wall * workers / n - mean_inside, 2)}


def stages(submission: Path, scratch: Path) -> list[tuple[str, float]]:
    """One full grading of `submission`, its time by stage, and writing its report."""
    start = time.perf_counter()
    result = grade(GradingPlan(DEFAULT, threads=os.cpu_count()), submission)
    wall = time.perf_counter() - start
    began = time.perf_counter()
    write_graded(scratch / "stages", result, load_assignment(DEFAULT))
    report = time.perf_counter() - began
    other = max(0.0, wall - sum(seconds for _, seconds in result.timings))
    return [*result.timings, ("other (suite loading, seeds, ...)", other),
            ("report (results.json and report.html)", report), ("total", wall + report)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", type=int, default=4, help="reference submissions to grade (0: skip)")
    parser.add_argument("--tiny", type=int, default=20, help="tiny submissions to grade")
    parser.add_argument("--model", type=Path, default=ROOT / "runs" / "demo" / "model.pt")
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
            (scratch / "full").mkdir()
            for i in range(args.full):
                os.symlink(reference, scratch / "full" / f"student{i:02d}")
            for workers in (1, 2):
                rows.append({"kind": "full", **measure(scratch / "full", GradingPlan(DEFAULT), workers, scratch)})
            start = time.perf_counter()
            grade(GradingPlan(DEFAULT, hidden=False, allow_unsandboxed=True), package_reference(scratch / "check"))
            check_s = time.perf_counter() - start
            stage_rows = stages(reference, scratch)
    print(f"{'kind':<6}{'workers':>8}{'subs':>6}{'wall s':>9}{'subs/min':>10}{'grading s':>11}{'overhead s':>12}")
    for r in rows:
        print(f"{r['kind']:<6}{r['workers']:>8}{r['submissions']:>6}{r['wall_s']:>9}{r['per_minute']:>10}"
              f"{r['mean_grading_s']:>11}{r['overhead_per_submission_s']:>12}")
    full = {r["workers"]: r for r in rows if r["kind"] == "full"}
    if full:
        ratio = full[2]["per_minute"] / full[1]["per_minute"]
        print(f"2 workers vs 1 (full): {ratio:.2f}x the throughput")
        for workers, r in full.items():
            print(f"projection, {CLASS_SIZE} students, {workers} worker(s): "
                  f"{CLASS_SIZE / r['per_minute']:.0f} min")
        print(f"grader check of the reference (public tests, no model.pt): {check_s:.1f} s")
        print("\none full grading of the reference, by stage (1 worker, every core):")
        for name, seconds in stage_rows:
            print(f"  {name:<48}{seconds:>8.2f} s")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()

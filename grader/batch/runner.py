"""Grading a batch: decide what is missing, grade it on an executor, and record each result as it
arrives. Files are written atomically and the gradebook row last, so a batch stopped at any moment
(Ctrl-C, SIGKILL, power cut) and run again grades exactly what has no row yet."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from tqdm import tqdm

from grader import __version__
from grader.assignments import Assignment, fingerprint
from grader.batch.discover import BatchInputError, Submission, SubmissionHashError, discover, submission_hash
from grader.batch.executors import make_executor
from grader.batch.layout import LOCK_FILE, WORK_DIR, readable
from grader.fileio import remove_tree
from grader.gradebook import GRADEBOOK_FILE, Gradebook, Run, write_exports
from grader.reports import write_graded, write_summary
from grader.scoring.grade import ungraded
from grader.scoring.plan import GradingPlan, grade, load_plan
from grader.scoring.results import GradeResult


@dataclass(frozen=True)
class BatchOptions:
    workers: int = 1
    executor: str = "local"  # local, dask, slurm, pbs
    scheduler: str | None = None  # the Dask scheduler's address, for executor "dask"
    cluster_options: dict = field(default_factory=dict)  # dask-jobqueue settings, for slurm and pbs
    regrade: tuple[str, ...] = ()  # grade these students again (only these, when given)
    only: tuple[str, ...] = ()  # grade only these test ids again, keeping the other tests' scores
    progress: bool = True


@dataclass(frozen=True)
class GradeJob:
    """One submission to grade: what travels to a pool or Dask worker."""

    submission: Submission
    submission_hash: str
    plan: GradingPlan
    work_dir: Path | None = None  # where the grading stages and exchanges files; the system's temp when None


@dataclass
class BatchReport:
    out: Path
    graded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # already graded, unchanged
    errors: dict[str, str] = field(default_factory=dict)  # the grader itself failed; retried next run
    arrivals: list[float] = field(default_factory=list)  # seconds from the first job sent to each result, in order


def grade_job(job: GradeJob) -> GradeResult:
    """Runs on the worker: grade one submission (its student code in that worker's sandbox)."""
    if job.submission.unavailable:
        return ungraded(load_plan(job.plan)[1], job.submission.unavailable)
    return grade(job.plan, job.submission.path, job.work_dir)


def _merge(previous: Run, fresh: GradeResult) -> GradeResult:
    """A selective re-grade: the re-graded tests replace theirs; the others keep their scores."""
    new = {t.number: t for t in fresh.tests}
    old_ids = {t.number for t in previous.result.tests}
    tests = tuple(new.get(t.number, t) for t in previous.result.tests) + tuple(
        t for t in fresh.tests if t.number not in old_ids)
    return replace(fresh, tests=tests, problem=fresh.problem or previous.result.problem)


def _unavailable_hash(reason: str) -> str:
    return "unavailable:" + hashlib.sha256(reason.encode("utf-8", "replace")).hexdigest()


def _hashed(sub: Submission) -> tuple[Submission, str]:
    """The submission and its hash; one that cannot be hashed becomes unavailable, with the reason,
    under a hash of that reason (so that it is not graded again until it changes)."""
    if sub.unavailable:
        return sub, _unavailable_hash(sub.unavailable)
    try:
        digest = submission_hash(sub.path)  # a repository's too: its grading draws its seed from it
    except SubmissionHashError as err:
        sub = replace(sub, unavailable=str(err))
        return sub, _unavailable_hash(sub.unavailable)
    return sub, sub.revision or digest


def _jobs(subs: list[Submission], book: Gradebook, plan: GradingPlan, options: BatchOptions,
          current: str, report: BatchReport, work_dir: Path | None) -> list[GradeJob]:
    jobs = []
    for sub in subs:
        if options.regrade and sub.student not in options.regrade:
            continue
        sub, digest = _hashed(sub)
        latest = book.latest(sub.student)
        unchanged = latest is not None and latest.submission_hash == digest and latest.assignment_fingerprint == current
        if unchanged and not options.regrade and not options.only:
            report.skipped.append(sub.student)
            continue
        selective = bool(options.only) and latest is not None and latest.submission_hash == digest
        jobs.append(GradeJob(sub, digest, replace(plan, only=options.only) if selective else plan, work_dir))
    return jobs


def _record(job: GradeJob, result: GradeResult, book: Gradebook, assignment: Assignment, out: Path,
            current: str) -> None:
    sub = job.submission
    latest = book.latest(sub.student)
    if job.plan.only and latest is not None:
        result = _merge(latest, result)
    write_graded(out / sub.student, result, assignment, sub.identity)
    where = readable(f"{sub.path}@{sub.revision}" if sub.revision else str(sub.path))
    book.record(Run(sub.identity, where, job.submission_hash, assignment.name, assignment.version, current,
                    __version__, result, tuple(job.plan.only)))  # the row that marks it graded, last


@contextlib.contextmanager
def _exclusive(out: Path):
    """One batch at a time per output folder: two would grade the same submissions twice."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / LOCK_FILE, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BatchInputError(f"{out}: another grader batch is writing here; wait for it to finish") from None
        yield


def _remove_stale_temporaries(out: Path) -> None:
    """Temporary files of a batch that was killed before renaming them (never a result). They lie only
    where the batch writes: in `out` and in each student's folder. The submissions under `out` (which
    may nest deep, or hold files of that name) are never walked."""
    for path in [*out.glob(".*.tmp"), *out.glob("*/.*.tmp")]:
        if path.is_file() and not path.is_symlink() and not path.parent.is_symlink():
            path.unlink(missing_ok=True)


def _fresh_work_dir(out: Path, executor: str) -> Path | None:
    """The batch's own scratch folder, `out/.work`, emptied of what a killed batch left there. Gradings
    on a local pool stage there; a cluster's workers keep to their own machine's temporary folder."""
    work = out / WORK_DIR
    remove_tree(work)  # what a killed grading staged may nest deeper than a recursive walk goes
    if executor != "local":
        return None
    work.mkdir(mode=0o700, exist_ok=True)
    return work


def run_batch(folder: Path | list[Submission], out: Path, plan: GradingPlan,
              options: BatchOptions = BatchOptions()) -> BatchReport:
    """Grade what is missing from `out`'s gradebook, then rewrite the exports and the summary.
    `folder` is a batch folder or download, or submissions already found (`fetch_repositories`)."""
    out = Path(out)
    assignment, _ = load_plan(plan)  # a broken assignment or an unknown test id fails before any grading
    if options.only:
        load_plan(replace(plan, only=options.only))
    subs = list(folder) if isinstance(folder, list) else discover(folder, out)
    unknown = set(options.regrade) - {s.student for s in subs}
    if unknown:
        raise BatchInputError(f"--regrade {sorted(unknown)[0]}: no such student in {folder}; students are named "
                              f"like {subs[0].student}")
    report = BatchReport(out)
    current = fingerprint(assignment)
    if plan.threads is None and options.executor == "local":  # workers share this machine's cores
        plan = replace(plan, threads=max(1, (os.cpu_count() or 1) // max(1, options.workers)))
    with _exclusive(out), Gradebook(out / GRADEBOOK_FILE) as book:
        _remove_stale_temporaries(out)
        work_dir = _fresh_work_dir(out, options.executor)
        jobs = _jobs(subs, book, plan, options, current, report, work_dir)
        if jobs:
            executor = make_executor(options.executor, options.workers, options.scheduler, options.cluster_options)
            bar = tqdm(total=len(jobs), unit="submission", desc="grading", file=sys.stderr,
                       disable=not options.progress, dynamic_ncols=True)
            started = time.monotonic()
            try:
                for job, result, error in executor.run(grade_job, jobs):
                    report.arrivals.append(time.monotonic() - started)
                    if error is not None:
                        report.errors[job.submission.student] = f"{type(error).__name__}: {error}"
                    else:
                        _record(job, result, book, assignment, out, current)
                        report.graded.append(job.submission.student)
                    bar.set_postfix_str(job.submission.student[:24])
                    bar.update()
            except BaseException:
                executor.close(cancel=True)
                raise
            else:
                executor.close()
            finally:
                bar.close()
        runs = book.current_runs()
        write_exports(out, runs, book.manual_scores(), assignment)
        write_summary(out, runs, assignment, report.errors)
    return report

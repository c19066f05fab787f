"""Grading many submissions: discovery (folders, Canvas and Moodle downloads, git repositories),
executors (a local process pool, Dask, SLURM/PBS), and the resumable batch runner.

Public surface: `run_batch`, `BatchOptions`, `BatchReport`, `discover`, `Submission`,
`BatchInputError`, `make_executor`, `ExecutorError`.
"""

from grader.batch.discover import BatchInputError, Submission, discover, submission_hash
from grader.batch.executors import EXECUTORS, ExecutorError, jobqueue_cluster, make_executor
from grader.batch.runner import BatchOptions, BatchReport, GradeJob, grade_job, run_batch

__all__ = ["run_batch", "BatchOptions", "BatchReport", "GradeJob", "grade_job", "discover", "Submission",
           "submission_hash", "BatchInputError", "make_executor", "jobqueue_cluster", "ExecutorError", "EXECUTORS"]

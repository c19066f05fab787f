"""Where grading jobs run: a local process pool (the default) or a Dask cluster, which may itself
be started on SLURM or PBS through dask-jobqueue. Either way the coordinating process receives the
results and is the only one that writes them."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, Callable, Iterable, Iterator, Protocol

from grader.errors import UserError

EXECUTORS = ("local", "dask", "slurm", "pbs")


class ExecutorError(UserError, RuntimeError):
    """An executor that cannot start (missing package, unreachable scheduler)."""


class Executor(Protocol):
    def run(self, fn: Callable[[Any], Any], jobs: Iterable[Any]) -> Iterator[tuple[Any, Any, BaseException | None]]:
        """Yield `(job, result, error)` as jobs finish, in any order."""

    def close(self, cancel: bool = False) -> None: ...


class LocalExecutor:
    """A pool of `workers` processes (spawned: no state forked from the coordinator)."""

    def __init__(self, workers: int = 1):
        self._pool = ProcessPoolExecutor(max_workers=max(1, workers), mp_context=multiprocessing.get_context("spawn"))

    def run(self, fn, jobs):
        pending: dict[Future, Any] = {self._pool.submit(fn, job): job for job in jobs}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                job = pending.pop(future)
                error = future.exception()
                yield job, None if error else future.result(), error

    def close(self, cancel: bool = False) -> None:
        if cancel:
            # Running jobs are stopped too: their sandboxes die with their parent (bwrap --die-with-parent).
            for process in list((getattr(self._pool, "_processes", None) or {}).values()):
                process.kill()
        self._pool.shutdown(wait=not cancel, cancel_futures=cancel)


class DaskExecutor:
    """Jobs on a Dask cluster: an existing scheduler's address, or a cluster object this owns."""

    def __init__(self, scheduler: str | None = None, cluster: Any = None):
        try:
            from distributed import Client
        except ImportError as err:
            raise ExecutorError("the Dask executor needs dask.distributed: pip install 'unet-grader[dask]'") from err
        self._cluster = cluster
        try:
            self._client = Client(cluster if cluster is not None else scheduler, timeout="30s")
        except (OSError, TimeoutError) as err:
            raise ExecutorError(f"cannot reach the Dask scheduler at {scheduler}: {err}") from err

    def run(self, fn, jobs):
        from distributed import as_completed

        futures = {}
        for job in jobs:
            futures[self._client.submit(fn, job, pure=False)] = job
        for future in as_completed(futures):
            job = futures.pop(future)
            if future.status == "finished":
                yield job, future.result(), None
            else:
                yield job, None, future.exception()

    def close(self, cancel: bool = False) -> None:
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()


def jobqueue_cluster(kind: str, workers: int, **options: Any) -> Any:
    """A SLURM or PBS cluster from dask-jobqueue, scaled to `workers` jobs. Cores, memory, queue and
    the like come from `options` or, as dask-jobqueue reads them, from ~/.config/dask/jobqueue.yaml."""
    try:
        import dask_jobqueue
    except ImportError as err:
        raise ExecutorError(f"--executor {kind} needs dask-jobqueue: pip install 'unet-grader[dask]'") from err
    cls = {"slurm": dask_jobqueue.SLURMCluster, "pbs": dask_jobqueue.PBSCluster}[kind]
    try:
        cluster = cls(**options)
    except ValueError as err:  # dask-jobqueue names the missing setting (cores, memory)
        raise ExecutorError(f"--executor {kind}: {err}") from err
    cluster.scale(jobs=workers)
    return cluster


def make_executor(kind: str = "local", workers: int = 1, scheduler: str | None = None,
                  cluster_options: dict[str, Any] | None = None) -> Executor:
    if kind == "local":
        return LocalExecutor(workers)
    if kind == "dask":
        if not scheduler:
            raise ExecutorError("--executor dask needs --scheduler ADDRESS (tcp://host:8786)")
        return DaskExecutor(scheduler=scheduler)
    if kind in ("slurm", "pbs"):
        return DaskExecutor(cluster=jobqueue_cluster(kind, workers, **(cluster_options or {})))
    raise ExecutorError(f"unknown executor {kind!r}; choose one of {', '.join(EXECUTORS)}")

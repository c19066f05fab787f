import pytest

from grader.batch import ExecutorError, make_executor
from grader.batch.executors import LocalExecutor


def square(x):
    return x * x


def fail(x):
    raise ValueError(f"no {x}")


def test_the_local_executor_yields_every_job_with_its_result_or_error():
    executor = LocalExecutor(2)
    try:
        assert sorted((job, result) for job, result, _ in executor.run(square, [1, 2, 3])) == [(1, 1), (2, 4), (3, 9)]
        errors = [error for _, _, error in executor.run(fail, [7])]
        assert isinstance(errors[0], ValueError) and "no 7" in str(errors[0])
    finally:
        executor.close()


def test_executor_misuse_is_a_clear_error():
    with pytest.raises(ExecutorError, match="--scheduler"):
        make_executor("dask")
    with pytest.raises(ExecutorError, match="unknown executor"):
        make_executor("spark")


def test_a_slurm_cluster_comes_from_dask_jobqueue(monkeypatch):
    pytest.importorskip("dask_jobqueue")
    from grader.batch import jobqueue_cluster

    cluster = jobqueue_cluster("slurm", 0, cores=2, memory="8GB", processes=1, walltime="01:00:00",
                               job_extra_directives=["--gres=gpu:1"])
    try:
        script = cluster.job_script()
        assert "#SBATCH" in script and "--gres=gpu:1" in script and "distributed.cli.dask_worker" in script
    finally:
        cluster.close()
    with pytest.raises(ExecutorError, match="--executor pbs"):
        jobqueue_cluster("pbs", 0)  # no cores or memory configured

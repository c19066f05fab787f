"""The verifier sandbox: it runs what acceptance let through, and contains what acceptance would
have refused (run here on raw bytes): endless loops time out, bombs meet the memory limit, external
data finds nothing to read, and whatever comes back malformed is a clear failure, never a crash."""

import json
import os
import resource
import signal

import numpy as np
import pytest

from grader.sandbox import ProcessResult
from grader.verifier import Job, LabelSet, VerificationFailed, Verifier, VerifierLimits, accept, verifier_usage
from grader.verifier.results import _stages
from grader.verifier.runner import default_sandbox
from tests.grader.verifier.graphs import make_graphs

PROBE = np.random.default_rng(0).random((2, 3, 32, 32), dtype=np.float32)
SHORT = VerifierLimits(wall_seconds=15)


class Counting:
    """A sandbox that counts its runs."""

    def __init__(self, inner=None):
        self.inner, self.runs = inner or default_sandbox(), 0
        self.name, self.isolated = self.inner.name, self.inner.isolated

    def run(self, request, watchdog=None):
        self.runs += 1
        return self.inner.run(request, watchdog)


def test_an_accepted_graph_runs_once_per_graph_and_job():
    sandbox = Counting()
    verifier = Verifier(sandbox)
    graph = accept(make_graphs.plain(2.0))
    image = np.random.default_rng(1).random((3, 40, 50), dtype=np.float32)
    job = Job(probes=(PROBE,), label_sets=(LabelSet("check", (image,), ("reference", "zeros-center")),))
    first = verifier.verify(graph, job)
    np.testing.assert_allclose(first.probe(0).values, 2 * PROBE)
    labels = first.label_set("check")
    assert [a.shape for a in labels["reference"]] == [(40, 50)] and labels["zeros-center"][0].dtype == np.uint8
    np.testing.assert_array_equal(labels["reference"][0], (2 * image).argmax(0))
    assert verifier.verify(graph, job) is first
    assert sandbox.runs == 1
    verifier.verify(graph, job.with_labels(LabelSet("other", (image,))))
    assert sandbox.runs == 2


def test_an_endless_loop_is_killed_at_the_wall_clock_limit():
    result = Verifier(limits=VerifierLimits(wall_seconds=5)).run(make_graphs.endless_loop(), Job(probes=(PROBE,)))
    assert result.seconds < 30
    with pytest.raises(VerificationFailed, match="could not be run by the grader: it ran longer than the 5 s"):
        result.probe(0)


@pytest.mark.parametrize("make", [make_graphs.expand_bomb, make_graphs.constant_of_shape_bomb,
                                  make_graphs.tile_bomb, make_graphs.enormous_output])
def test_a_memory_bomb_meets_the_memory_limit_and_the_grader_stays_small(make):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    probe = np.random.default_rng(0).random((1, 3, 32, 32), dtype=np.float32)
    result = Verifier(limits=SHORT).run(make(), Job(probes=(probe,), structure_probe=probe))
    for part in (lambda: result.probe(0), result.layout):
        with pytest.raises(VerificationFailed, match="3 GiB of memory"):
            part()
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100 * 1024  # KiB: under 100 MiB more


@pytest.mark.parametrize("where", sorted(make_graphs.ALL_EXTERNAL))
def test_external_data_finds_nothing_to_read_even_past_acceptance(where, tmp_path, monkeypatch):
    secret = np.array([1234.5, 2345.5, 3456.5, 4567.5], np.float32)
    secret.tofile(tmp_path / "secret.bin")
    monkeypatch.chdir(tmp_path)  # the grader's working directory, where the old code resolved it
    result = Verifier(limits=SHORT).run(make_graphs.ALL_EXTERNAL[where]("secret.bin"), Job(probes=(PROBE,)))
    with pytest.raises(VerificationFailed) as failure:
        result.probe(0)
    assert "1234.5" not in str(failure.value)


class Scripted:
    """A sandbox that writes `files` into out/ instead of running anything, then ends as told."""

    name, isolated = "scripted", False

    def __init__(self, files=None, returncode=0, signal_number=None, killed=None):
        self.files, self.returncode, self.signal, self.killed = files or {}, returncode, signal_number, killed

    def run(self, request, watchdog=None):
        out = request.io_dir / "out"
        for name, content in self.files.items():
            if callable(content):
                content(out / name)
            else:
                if isinstance(content, dict):
                    content = {"schema_version": 1, **content}
                (out / name).write_bytes(content if isinstance(content, bytes) else json.dumps(content).encode())
        return ProcessResult(None if self.killed else self.returncode, self.signal, self.killed, "", False, 0, 0.1)


def _probes(**files):
    return Verifier(Scripted(files)).run(make_graphs.plain(), Job(probes=(PROBE,))).probes[0]


def test_malformed_answers_become_clear_failures():
    assert "could not read" in _probes(**{"probes.json": b"{not json"})
    assert "could not read" in _probes(**{"probes.json": {"results": "nope"}})
    assert "could not read" in _probes(**{"probes.json": {"results": [{"shape": [2, 3, 32, 32],
                                                                        "file": "out/../../etc/passwd"}]}})
    wrong = {"results": [{"shape": [2, 3, 32, 32], "file": "out/probe0.npy"}]}
    assert "not float32 (2, 3, 32, 32)" in _probes(**{"probes.json": wrong,
                                                      "probe0.npy": lambda p: np.save(p, np.zeros((2, 3), np.float32))})
    assert "could not read" in _probes(**{"probes.json": wrong,
                                          "probe0.npy": lambda p: np.save(p, np.array([{}]), allow_pickle=True)})
    linked = {"probes.json": lambda p: os.symlink("/etc/passwd", p)}
    assert "could not read" in _probes(**linked)
    assert _probes(**{"probes.json": {"results": [{"error": "onnxruntime could not run it (\x1b[31mred)"}]}}) == \
        "onnxruntime could not run it ( [31mred)"
    assert "layout version 7, not 1" in _probes(**{"probes.json": {"schema_version": 7, "results": []}})


def test_a_run_that_dies_or_hangs_names_why():
    job = Job(probes=(PROBE,))
    died = Verifier(Scripted(signal_number=signal.SIGKILL, returncode=-9)).run(make_graphs.plain(), job)
    with pytest.raises(VerificationFailed, match=r"was killed \(SIGKILL\), most often by a graph that asks for more"):
        died.probe(0)
    hung = Verifier(Scripted(killed="timeout"), VerifierLimits(wall_seconds=7)).run(make_graphs.plain(), job)
    with pytest.raises(VerificationFailed, match="ran longer than the 7 s"):
        hung.probe(0)
    silent = Verifier(Scripted()).run(make_graphs.plain(), job)
    with pytest.raises(VerificationFailed, match="the grader's verifier did not answer"):
        silent.probe(0)


def test_parts_a_run_finished_are_kept_when_a_later_part_kills_it():
    files = {"probes.json": {"results": [{"shape": [2, 3, 32, 32], "file": "out/probe0.npy"}]},
             "probe0.npy": lambda p: np.save(p, PROBE)}
    result = Verifier(Scripted(files, signal_number=signal.SIGKILL, returncode=-9)).run(
        make_graphs.plain(), Job(probes=(PROBE,), structure_probe=PROBE[:1]))
    np.testing.assert_array_equal(result.probe(0).values, PROBE)
    with pytest.raises(VerificationFailed, match="SIGKILL"):
        result.layout()


def test_the_wall_clock_grows_with_the_pixels_to_label():
    image = np.zeros((3, 1000, 1000), np.float32)
    job = Job(label_sets=(LabelSet("big", (image, image), ("reference", "zeros-end")),))
    assert VerifierLimits(wall_seconds=120, seconds_per_megapixel=20).wall_for(job) == 120 + 20 * 4


class Recording(Counting):
    """A counting sandbox that keeps each run's job description."""

    def __init__(self):
        super().__init__()
        self.specs = []

    def run(self, request, watchdog=None):
        self.specs.append(json.loads((request.io_dir / "job.json").read_text()))
        return super().run(request, watchdog)


def test_a_grading_sets_the_threads_and_collects_each_stage():
    sandbox = Recording()
    verifier = Verifier(sandbox)
    image = np.random.default_rng(2).random((3, 40, 50), dtype=np.float32)
    job = Job(probes=(PROBE,), label_sets=(LabelSet("check", (image,)),))
    with verifier_usage(threads=3) as usage:
        graph = accept(make_graphs.plain(4.0))
        verifier.verify(graph, job)
    assert sandbox.specs[-1]["threads"] == 3
    assert {"acceptance (bounded child)", "verifier: probes", "verifier: labels check",
            "verifier: sandbox, process start, reading answers"} <= set(usage.stages)
    assert all(seconds >= 0 for seconds in usage.stages.values())
    verifier.verify(graph, Job(probes=(PROBE,)))  # outside a grading: the limits' own threads, nothing collected
    assert sandbox.specs[-1]["threads"] == VerifierLimits().threads


def test_timings_a_run_writes_are_read_strictly(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "timings.json").write_text(json.dumps({"schema_version": 1, "seconds": {"probes": 0.5, "labels x": -1, "bad\nname": 1,
                                                              "structure and perturbations": "1", "big": 1e9}}))
    assert _stages(tmp_path) == {"probes": 0.5}
    (out / "timings.json").write_text("[1, 2]")
    assert _stages(tmp_path) == {}


def test_outputs_agree_within_a_tolerance_scaled_to_the_outputs_magnitude():
    from grader.verifier import outputs_agree

    rng = np.random.default_rng(0)
    logits = (rng.standard_normal((1, 3, 8, 8)) * 1e3).astype(np.float32)
    logits[0, 0, 0, 0] = 0.01
    rounded = logits.copy()
    rounded[0, 0, 0, 0] += 0.36  # what float32 rounding gave an untrained scSE U-Net near a value of 0
    assert outputs_agree(logits, rounded)
    other = logits.copy()
    other[0, 1, 2, 3] += 0.02 * np.abs(logits[0, :, 2, 3]).max()  # a different network: 2 % of its pixel's largest
    assert not outputs_agree(logits, other)
    # a spike planted in one pixel of both outputs loosens the check for that pixel alone
    spiked, different = logits.copy(), logits * 1.05
    spiked[0, 0, 0, 0] = different[0, 0, 0, 0] = 1e6
    assert not outputs_agree(spiked, different)
    assert not outputs_agree(logits, logits[..., :4]) and not outputs_agree(logits, "logits")
    nan = logits.copy()
    nan[0, 0, 1, 1] = np.nan
    assert outputs_agree(nan, nan.copy()) and not outputs_agree(nan, logits) and not outputs_agree(logits, nan)

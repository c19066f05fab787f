import json

import pytest

from grader import __version__
from grader.cli import main
from grader.sandbox import probe


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_env_names_the_versions_grading_depends_on(capsys):
    assert main(["env"]) == 0
    out = capsys.readouterr().out
    assert "torch" in out and "segmentation_models_pytorch" in out and "sandbox" in out
    assert "cgroup" in out


def test_env_says_which_isolation_is_in_force_and_what_follows_without_it(monkeypatch):
    from grader.sandbox import isolation

    monkeypatch.setattr(isolation, "probe_cgroups", lambda: (None, "cgroups are not writable here"))
    monkeypatch.setattr(isolation.os, "geteuid", lambda: 1000)
    report = isolation.isolation_report()
    assert report["cgroup"].startswith("none (cgroups are not writable here)")
    assert "RLIMIT_NPROC" in report["cgroup"]
    if probe() is None:
        assert "share one process budget" in report["sandbox user"]
        assert report["/tmp"].startswith("tmpfs of")


def test_grade_a_missing_path_is_a_one_line_error(tmp_path, capsys):
    assert main(["grade", str(tmp_path / "nope"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("grader: error:") and "no such file or folder" in err and "Traceback" not in err


def test_grade_refuses_to_run_unsandboxed_unless_told(tmp_path, capsys, monkeypatch):
    (tmp_path / "s.py").write_text("x = 1\n")
    monkeypatch.setattr("grader.sandbox.probe", lambda: "bwrap is not installed")
    assert main(["grade", str(tmp_path / "s.py"), "--out", str(tmp_path / "out"), "--tag", "metrics"]) == 2
    assert "--allow-unsandboxed" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    assert main(["grade", str(tmp_path / "s.py"), "--out", str(tmp_path / "out"), "--tag", "metrics",
                 "--allow-unsandboxed"]) == 0
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["sandbox"].startswith("plain subprocess") and results["score"] == 0


@pytest.mark.skipif(probe() is not None, reason="bubblewrap unavailable")
def test_grade_writes_results_json_and_exits_zero_whatever_the_score(tmp_path, capsys):
    (tmp_path / "s.py").write_text("def pixel_accuracy(p, t):\n    return 0.0\n")
    assert main(["grade", str(tmp_path / "s.py"), "--out", str(tmp_path / "out"), "--tag", "metrics"]) == 0
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["sandbox"] == "bubblewrap" and results["score"] == 0 and len(results["tests"]) == 9
    assert "0 / 10 points" in capsys.readouterr().out

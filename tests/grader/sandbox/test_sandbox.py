import sys
from pathlib import Path

import pytest

from grader.sandbox import (BubblewrapSandbox, Limits, PlainSandbox, SandboxRequest, SandboxUnavailable,
                            make_sandbox, probe)
from grader.sandbox import bubblewrap as bwrap_module

needs_bwrap = pytest.mark.skipif(probe() is not None, reason=f"bubblewrap unavailable: {probe()}")


def _request(tmp_path: Path, code: str, **limits) -> SandboxRequest:
    for name in ("scratch", "io", "harness"):
        (tmp_path / name).mkdir(exist_ok=True)
    return SandboxRequest(["{python}", "-c", code], tmp_path / "scratch", tmp_path / "io", tmp_path / "harness",
                          Limits(**limits))


def test_wall_clock_timeout_kills_the_whole_process_tree(sandbox, tmp_path):
    code = ("import subprocess, sys, time\n"
            "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
            "print('started', flush=True); time.sleep(60)")
    result = sandbox.run(_request(tmp_path, code, wall_seconds=2))
    assert result.killed_reason == "timeout" and result.returncode is None
    assert result.seconds < 10
    assert "started" in result.output


def test_output_is_capped_but_fully_drained(sandbox, tmp_path):
    result = sandbox.run(_request(tmp_path, "import sys\nfor _ in range(4096): sys.stdout.write('y' * 1023 + '\\n')",
                                  output_bytes=10_000))
    assert result.ok and result.output_truncated
    assert result.output_bytes == 4096 * 1024 and len(result.output) == 10_000


def test_environment_is_scrubbed(sandbox, tmp_path, monkeypatch):
    monkeypatch.setenv("GRADER_SECRET_TOKEN", "hunter2")
    result = sandbox.run(_request(tmp_path, "import os; print(sorted(os.environ))"))
    assert "GRADER_SECRET_TOKEN" not in result.output
    assert "HF_HUB_OFFLINE" in result.output


def test_file_size_limit_stops_a_disk_filler(sandbox, tmp_path):
    code = "open('big', 'wb').write(b'0' * (8 * 2**20))"
    result = sandbox.run(_request(tmp_path, code, file_size_bytes=2 ** 20))
    assert not result.ok
    assert (tmp_path / "scratch" / "big").stat().st_size <= 2 ** 20


def test_the_watchdog_can_stop_a_run(sandbox, tmp_path):
    result = sandbox.run(_request(tmp_path, "import time; time.sleep(30)"), watchdog=lambda: "call x timed out")
    assert result.killed_reason == "call x timed out"


@needs_bwrap
def test_bubblewrap_sees_no_network_no_host_files_and_an_unprivileged_user(tmp_path):
    code = ("import os, socket\n"
            "print('uid', os.getuid())\n"
            "print('ifaces', sorted(n for _, n in socket.if_nameindex()))\n"
            f"print('host', os.path.exists({str(Path(__file__))!r}))\n"
            "print('cwd', os.getcwd(), os.access('.', os.W_OK))\n"
            "print('pid', os.getpid())\n")
    result = BubblewrapSandbox().run(_request(tmp_path, code))
    assert result.ok, result.output
    lines = dict(line.split(" ", 1) for line in result.output.strip().splitlines())
    assert lines["uid"] != "0"
    assert lines["ifaces"] == "['lo']"
    assert lines["host"] == "False"
    assert lines["cwd"] == "/sandbox/submission True"
    assert int(lines["pid"]) < 10  # its own PID namespace


def test_without_bwrap_the_fallback_is_refused_unless_allowed(monkeypatch, capsys):
    monkeypatch.setattr("grader.sandbox.probe", lambda: "bwrap is not installed")
    with pytest.raises(SandboxUnavailable, match="apt-get install bubblewrap.*--allow-unsandboxed"):
        make_sandbox()
    sandbox = make_sandbox(allow_unsandboxed=True)
    assert isinstance(sandbox, PlainSandbox) and not sandbox.isolated
    assert "WITHOUT a sandbox" in capsys.readouterr().err


def test_probe_reports_a_missing_bwrap(monkeypatch):
    bwrap_module.probe.cache_clear()
    monkeypatch.setattr(bwrap_module.shutil, "which", lambda name: None)
    try:
        assert bwrap_module.probe() == "bwrap is not installed"
    finally:
        bwrap_module.probe.cache_clear()


def test_gpu_devices_are_bound_only_when_asked(tmp_path, monkeypatch):
    monkeypatch.setattr(bwrap_module.glob, "glob", lambda pattern: ["/dev/nvidia0", "/dev/nvidiactl"])
    plain = bwrap_module.bwrap_argv(_request(tmp_path, "pass"), as_root=True)
    request = _request(tmp_path, "pass")
    gpu = bwrap_module.bwrap_argv(SandboxRequest(request.command, request.scratch, request.io_dir,
                                                 request.harness_dir, request.limits, gpu=True), as_root=True)
    assert "/dev/nvidia0" not in plain
    assert gpu[gpu.index("/dev/nvidia0") - 1] == "--dev-bind"
    assert sys.executable in gpu

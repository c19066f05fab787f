import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from grader.sandbox import (BubblewrapSandbox, Limits, PlainSandbox, SandboxRequest, SandboxUnavailable,
                            make_sandbox, probe)
from grader.sandbox import bubblewrap as bwrap_module
from grader.sandbox.cgroups import probe_cgroups

needs_bwrap = pytest.mark.skipif(probe() is not None, reason=f"bubblewrap unavailable: {probe()}")


def _request(tmp_path: Path, code: str, **limits) -> SandboxRequest:
    for name in ("scratch", "io", "harness"):
        (tmp_path / name).mkdir(parents=True, exist_ok=True)
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
    code = ("import os, signal\nsignal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
            "try:\n    open('big', 'wb').write(b'0' * (8 * 2**20))\nexcept OSError as err:\n    print('refused', err.errno)\n"
            "print('size', os.path.getsize('big'))")
    result = sandbox.run(_request(tmp_path, code, file_size_bytes=2 ** 20))
    assert "refused" in result.output
    assert int(result.output.split("size ")[1]) <= 2 ** 20


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
    plain = bwrap_module.bwrap_argv(_request(tmp_path, "pass"), uid=1800000000)
    request = _request(tmp_path, "pass")
    gpu = bwrap_module.bwrap_argv(SandboxRequest(request.command, request.scratch, request.io_dir,
                                                 request.harness_dir, request.limits, gpu=True), uid=1800000000)
    assert "/dev/nvidia0" not in plain
    assert gpu[gpu.index("/dev/nvidia0") - 1] == "--dev-bind"
    assert sys.executable in gpu


@needs_bwrap
@pytest.mark.parametrize("folder", ["/tmp", "."])
def test_scratch_and_tmp_are_sized_tmpfs_and_the_host_copy_is_untouched(tmp_path, folder):
    (tmp_path / "scratch").mkdir()
    (tmp_path / "scratch" / "given.txt").write_text("the student's file")
    code = (f"import os\ntotal = 0\ntry:\n    with open(os.path.join({folder!r}, 'fill'), 'wb') as f:\n"
            "        for _ in range(64):\n            f.write(b'0' * 2**20); f.flush(); total += 1\n"
            "except OSError as err:\n    print('full', err.errno)\nprint('written', total)\n"
            "print('given', open('given.txt').read())\nopen('given.txt', 'w').write('changed')")
    result = BubblewrapSandbox().run(_request(tmp_path, code, tmp_bytes=8 * 2 ** 20, scratch_bytes=8 * 2 ** 20))
    assert "full 28" in result.output, result.output  # ENOSPC
    assert int(result.output.split("written ")[1].split()[0]) <= 8
    assert "given the student's file" in result.output
    assert (tmp_path / "scratch" / "given.txt").read_text() == "the student's file"
    assert not (tmp_path / "scratch" / "fill").exists()


@needs_bwrap
def test_a_submission_larger_than_its_scratch_space_is_told_so(tmp_path):
    (tmp_path / "scratch").mkdir()
    (tmp_path / "scratch" / "model.pt").write_bytes(b"0" * 3 * 2 ** 20)
    result = BubblewrapSandbox().run(_request(tmp_path, "print('ran')", scratch_bytes=2 ** 20))
    assert result.returncode == bwrap_module.NO_ROOM
    assert "does not fit in the sandbox's 1 MiB of scratch space" in result.output


@needs_bwrap
@pytest.mark.skipif(os.geteuid() != 0, reason="uid slots need the grader to run as root")
def test_sandboxes_running_at_once_have_users_of_their_own(tmp_path):
    code = "import os, time; print('uid', os.getuid()); time.sleep(1.5)"
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda k: BubblewrapSandbox().run(_request(tmp_path / str(k), code)), range(2)))
    uids = {r.output.split("uid ")[1].split()[0] for r in results}
    assert len(uids) == 2 and "0" not in uids and "65534" not in uids


@needs_bwrap
@pytest.mark.skipif(probe_cgroups()[0] is None, reason=f"no cgroups here: {probe_cgroups()[1]}")
def test_a_cgroup_counts_tmpfs_pages_against_the_memory_limit(tmp_path):
    code = ("with open('/tmp/fill', 'wb') as f:\n    for i in range(400):\n"
            "        f.write(b'1' * 2**20); f.flush()\nprint('wrote it all')")
    result = BubblewrapSandbox().run(_request(tmp_path, code, memory_bytes=256 * 2 ** 20, tmp_bytes=2 ** 30))
    assert "wrote it all" not in result.output
    assert result.memory_exceeded


@needs_bwrap
@pytest.mark.skipif(os.geteuid() != 0, reason="per-run users and cgroups need the grader to run as root")
def test_a_fork_bomb_does_not_take_a_neighbours_processes(tmp_path):
    bomb = ("import os, time\nkids = 0\nwhile kids < 10000:\n    try:\n        if os.fork() == 0:\n"
            "            time.sleep(20); os._exit(0)\n        kids += 1\n    except OSError:\n        break\n"
            "print('forked', kids, flush=True); time.sleep(8)")
    neighbour = ("import time, subprocess, sys\ntime.sleep(3)\n"
                 "print(subprocess.run([sys.executable, '-c', 'print(6 * 7)'], capture_output=True, text=True).stdout)")
    with ThreadPoolExecutor(2) as pool:
        bombed = pool.submit(BubblewrapSandbox().run, _request(tmp_path / "bomb", bomb, processes=64, wall_seconds=20))
        time.sleep(0.5)
        calm = pool.submit(BubblewrapSandbox().run, _request(tmp_path / "calm", neighbour, processes=64))
        assert "42" in calm.result().output, calm.result().output
        assert "forked" in bombed.result().output


def test_without_cgroups_a_run_is_still_bounded_by_its_rlimits(sandbox, tmp_path, monkeypatch):
    import grader.sandbox.base as base

    monkeypatch.setattr(base, "probe_cgroups", lambda: (None, "cgroups are not writable here"))
    code = "try:\n    x = bytearray(2 * 2**30)\n    print('allocated')\nexcept MemoryError:\n    print('refused')"
    result = sandbox.run(_request(tmp_path, code, memory_bytes=512 * 2 ** 20))
    assert "refused" in result.output and not result.memory_exceeded


@needs_bwrap
@pytest.mark.skipif(probe_cgroups()[0] is None or probe_cgroups()[0].cpu_parent is None,
                    reason="no cpu cgroup controller here")
def test_each_run_weighs_the_same_on_the_cpu_however_many_processes_it_starts(tmp_path):
    """A run's processes sit in a cpu group of their own: sixteen busy processes of one submission
    share one run's weight instead of taking sixteen shares from a classmate."""
    layout = probe_cgroups()[0]
    seen = []

    def look():
        for group in layout.cpu_parent.glob("run-*"):
            procs = (group / "cgroup.procs").read_text().split()
            if procs:
                seen.append(((group / "cpu.shares").read_text().strip() if layout.version == 1 else
                             (group / "cpu.weight").read_text().strip(), len(procs)))
        return None

    code = "import os, time\nfor _ in range(4):\n    if os.fork() == 0:\n        time.sleep(2); os._exit(0)\ntime.sleep(2)"
    BubblewrapSandbox().run(_request(tmp_path, code), watchdog=look)
    assert seen and max(count for _, count in seen) >= 5
    assert {weight for weight, _ in seen} == {"1024" if layout.version == 1 else "100"}

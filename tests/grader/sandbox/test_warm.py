"""Warm runs: forked from a server that imported the libraries, yet as isolated as a cold sandbox,
from the server and from each other."""

import dataclasses
import os
import signal
import textwrap
from pathlib import Path

import pytest

from grader.sandbox import BubblewrapSandbox, Limits, SandboxRequest, warm
from grader.sandbox.identity import UID_BASE

pytestmark = pytest.mark.skipif(warm.probe() is not None, reason=f"no warm runs here: {warm.probe()}")
PRELOAD = ("wave",)  # a module nothing else imports: its presence at start says the run was warm


def _request(spool: Path, code: str, name: str = "run", **limits) -> SandboxRequest:
    harness, scratch, io = spool / "harness", spool / f"{name}-scratch", spool / f"{name}-io"
    for folder in (harness, scratch, io, io / "out"):
        folder.mkdir(parents=True, exist_ok=True)
    (harness / f"{name}.py").write_text(textwrap.dedent(code))
    (scratch / "answer.txt").write_text("42")
    return SandboxRequest(["{python}", "{harness}/" + f"{name}.py", "{io}"], scratch, io, harness, Limits(**limits),
                          writable_io=("out",), preload=PRELOAD, spool=spool)


@pytest.fixture
def spool(tmp_path):
    yield tmp_path
    warm.close_all()


def _tmp_entries_of_python() -> set[str]:
    """What /tmp shows a run before it writes there: the parents of a Python installed under /tmp."""
    from grader.sandbox import bubblewrap

    return {Path(d).relative_to("/tmp").parts[0] for d in bubblewrap._python_dirs() if d.startswith("/tmp/")}


def _values(output: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in output.splitlines() if "=" in line)


def test_a_warm_run_sees_what_a_cold_one_sees(spool):
    code = """
        import os, sys
        print(f"warm={'wave' in sys.modules}")
        print(f"argv={sys.argv[1:]}")
        print(f"cwd={os.getcwd()}")
        print(f"files={sorted(os.listdir('.'))}")
        print(f"answer={open('answer.txt').read()}")
        print(f"path0={sys.path[0]}")
        print(f"env={sorted(os.environ)}")
        print(f"uid={os.getuid()}")
        print(f"host={os.uname().nodename}")
        sys.exit(5)
    """
    sandbox = BubblewrapSandbox()
    warm_result = sandbox.run(_request(spool, code))
    cold_result = sandbox.run(dataclasses.replace(_request(spool, code, name="cold"), preload=()))
    got, expected = _values(warm_result.output), _values(cold_result.output)
    assert got["warm"] == "True" and expected["warm"] == "False"
    assert warm_result.returncode == cold_result.returncode == 5
    for key in ("argv", "cwd", "files", "answer", "path0", "host"):
        assert got[key] == expected[key], key
    assert set(eval(got["env"])) <= set(eval(expected["env"])) | {"PWD", "OLDPWD"}
    if os.geteuid() == 0:  # a uid slot of the run's own, as a cold run gets
        assert int(got["uid"]) >= UID_BASE
    else:  # the grader's own uid, in a user namespace
        assert int(got["uid"]) == os.geteuid()


def test_a_warm_run_has_no_privilege_and_no_way_out(spool):
    code = """
        import ctypes, os, socket
        status = dict(line.split(':', 1) for line in open('/proc/self/status').read().splitlines())
        for key in ('CapEff', 'CapPrm', 'CapBnd', 'CapAmb', 'CapInh', 'NoNewPrivs', 'Seccomp'):
            print(f"{key}={status[key].strip()}")
        libc = ctypes.CDLL(None, use_errno=True)
        print(f"unshare={libc.unshare(0x00020000)}")
        print(f"spool={os.listdir('/sandbox/spool')}")
        print(f"pids={sorted(int(p) for p in os.listdir('/proc') if p.isdigit())}")
        print(f"fds={sorted(int(f) for f in os.listdir('/proc/self/fd'))}")
        print(f"interfaces={sorted(name for _, name in socket.if_nameindex())}")
        print(f"pts={sorted(os.listdir('/dev/pts'))}")
        for target in ('/x', '/usr/x', '/dev/x', '/sandbox/io/x', '/sandbox/source/x', '/sandbox/zygote/x',
                       '/sandbox/io/out/x', '/tmp/x', 'x'):
            try:
                open(target, 'w').close()
                print(f"write {target}=yes")
            except OSError:
                print(f"write {target}=no")
    """
    got = _values(BubblewrapSandbox().run(_request(spool, code)).output)
    assert all(int(got[key], 16) == 0 for key in ("CapEff", "CapPrm", "CapBnd", "CapAmb", "CapInh"))
    assert got["NoNewPrivs"] == "1" and got["Seccomp"] == "2"
    assert got["unshare"] == "-1"
    assert got["spool"] == "[]"  # the other gradings' folders are not there
    assert got["pids"] == "[1, 2]"  # nothing of the server, nor of another run
    assert got["fds"] == "[0, 1, 2, 3]"  # stdin, output, and the listing's own
    assert got["interfaces"] == "['lo']"
    assert got["pts"] == "['ptmx']"  # a terminal instance of its own
    writable = {key.split(" ", 1)[1] for key, value in got.items() if key.startswith("write") and value == "yes"}
    assert writable == {"/sandbox/io/out/x", "/tmp/x", "x"}


def test_nothing_of_one_run_reaches_the_next(spool):
    leave = """
        import os, subprocess, sys, time
        open('/tmp/left', 'w').write('secret')
        if os.fork() == 0:
            os.setsid()
            subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)  # warm-leftover-marker'])
            os._exit(0)
        time.sleep(0.5)
        print('done=1')
    """
    look = """
        import os
        print(f"tmp={os.listdir('/tmp')}")
        print(f"pids={sorted(int(p) for p in os.listdir('/proc') if p.isdigit())}")
    """
    sandbox = BubblewrapSandbox()
    assert "done=1" in sandbox.run(_request(spool, leave, name="a")).output
    got = _values(sandbox.run(_request(spool, look, name="b")).output)
    assert set(eval(got["tmp"])) == _tmp_entries_of_python() and got["pids"] == "[1, 2]"
    leftovers = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if b"warm-leftover-marker" in Path(f"/proc/{pid}/cmdline").read_bytes():
                leftovers.append(pid)
        except OSError:
            pass
    assert leftovers == []


def test_a_timeout_kills_the_run_and_what_it_started(spool):
    code = """
        import subprocess, sys, time
        subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])
        print('started', flush=True)
        time.sleep(60)
    """
    result = BubblewrapSandbox().run(_request(spool, code, wall_seconds=3))
    assert result.killed_reason == "timeout" and result.returncode is None
    assert "started" in result.output and result.seconds < 10


def test_a_crash_reads_as_it_does_cold(spool):
    result = BubblewrapSandbox().run(_request(spool, "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)"))
    assert result.returncode == 128 + signal.SIGSEGV  # as bubblewrap's init reports it


def test_a_server_that_cannot_build_runs_falls_back_on_a_cold_sandbox(spool, monkeypatch):
    monkeypatch.setattr(warm, "CAPABILITIES", ())  # no namespaces can be made: every run is refused
    code = "import sys\nprint(f\"warm={'wave' in sys.modules}\")"
    sandbox = BubblewrapSandbox()
    for _ in range(2):
        result = sandbox.run(_request(spool, code))
        assert result.ok and "warm=False" in result.output


def test_a_dead_server_is_started_again(spool):
    code = "import sys\nprint(f\"warm={'wave' in sys.modules}\")"
    sandbox = BubblewrapSandbox()
    assert "warm=True" in sandbox.run(_request(spool, code)).output
    for server in list(warm._servers.values()):
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait()
    assert "warm=True" in sandbox.run(_request(spool, code)).output


def test_warm_starts_can_be_turned_off(spool, monkeypatch):
    monkeypatch.setenv("GRADER_WARM", "0")
    result = BubblewrapSandbox().run(_request(spool, "import sys\nprint(f\"warm={'wave' in sys.modules}\")"))
    assert "warm=False" in result.output


def test_each_run_draws_its_own_random_numbers(spool):
    code = "import random\nprint(f'draw={random.random()}')"
    sandbox = BubblewrapSandbox()
    draws = {_values(sandbox.run(_request(spool, code, name=f"r{i}")).output)["draw"] for i in range(3)}
    assert len(draws) == 3


def test_signals_to_pid_1_neither_stop_it_nor_change_what_the_host_reads(spool):
    code = """
        import os, signal, time
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGQUIT, signal.SIGCHLD):
            try:
                os.kill(1, sig)
            except OSError as err:
                print('refused', sig, err.errno)
        time.sleep(0.5)
        print('alive=1', flush=True)
        raise SystemExit(4)
    """
    result = BubblewrapSandbox().run(_request(spool, code))
    assert "alive=1" in result.output and result.returncode == 4


def test_a_submission_that_ships_a_library_the_server_imported_runs_cold(spool):
    request = _request(spool, "import sys\nprint(f\"warm={'wave' in sys.modules}\")\nimport wave\nprint(wave.MINE)")
    (request.scratch / "wave.py").write_text("MINE = 'the submission s own'")
    result = BubblewrapSandbox().run(request)
    assert result.ok and "warm=False" in result.output and "the submission s own" in result.output
    assert warm.importable_names(request.scratch) == {"wave"}  # answer.txt is no module


@pytest.mark.parametrize("path", ["sitecustomize.py", "lib/vendored/deep/wave.py", "lib/wheels.zip"])
def test_anything_a_fresh_interpreter_would_import_from_the_submission_runs_cold(spool, path):
    request = _request(spool, "import sys\nprint(f\"warm={'wave' in sys.modules}\")")
    (request.scratch / path).parent.mkdir(parents=True, exist_ok=True)
    (request.scratch / path).write_text("")
    result = BubblewrapSandbox().run(request)
    assert result.ok and "warm=False" in result.output


def test_the_libraries_the_server_mapped_do_not_count_against_a_warm_runs_memory(spool):
    code = "import resource\nprint(f'limit={resource.getrlimit(resource.RLIMIT_AS)[0]}')"
    request = dataclasses.replace(_request(spool, code, memory_bytes=2 * 2 ** 30), preload=("wave", "numpy"))
    got = int(_values(BubblewrapSandbox().run(request).output)["limit"])
    server = next(iter(warm._servers.values()))
    assert server.extra_address_space > 10 * 2 ** 20  # numpy's mappings, after the first library
    assert got == 2 * 2 ** 30 + server.extra_address_space


def test_a_python_installed_under_tmp_stays_visible_under_the_runs_fresh_tmp(spool, monkeypatch):
    from grader.sandbox import bubblewrap

    environment = spool / "venv-under-tmp"  # a clone in /tmp, its .venv bound read-only into /tmp
    environment.mkdir()
    (environment / "marker.txt").write_text("the environment")
    python_dirs, expected_tmp = bubblewrap._python_dirs(), _tmp_entries_of_python()
    monkeypatch.setattr(bubblewrap, "_python_dirs", lambda: [*python_dirs, str(environment)])
    code = f"""
        import os, sys
        print(f"warm={{'wave' in sys.modules}}")
        print(f"marker={{open({str(environment / 'marker.txt')!r}).read()}}")
        print(f"tmp={{sorted(os.listdir('/tmp'))}}")
        try:
            open({str(environment / 'x')!r}, 'w')
            print('wrote=yes')
        except OSError:
            print('wrote=no')
    """
    got = _values(BubblewrapSandbox().run(_request(spool, code)).output)
    assert got["warm"] == "True" and got["marker"] == "the environment" and got["wrote"] == "no"
    assert set(eval(got["tmp"])) == expected_tmp | {environment.relative_to("/tmp").parts[0]}

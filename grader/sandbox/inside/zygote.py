"""The warm start's fork server. Runs inside bubblewrap, mounted read-only at `/sandbox/zygote`.

It imports public libraries once (torch, smp: seconds of a core), then for each request from the
host forks a run that gets namespaces of its own (mount, PID, IPC, UTS, network), fresh tmpfs
scratch space and /tmp, the request's folders bound in, everything else read-only; its PID 1 forks
the run's process, which drops to the run's user, no capabilities, no new privileges and the seccomp
filter, and only then starts the request's script as `python SCRIPT ARGS...` would. Nothing of a
run can reach this process or a later run: it cannot see it (PID namespace), share a writable mount
with it, or signal it.

Usage: zygote.py CONTROL_FD PRELOAD_JSON. Protocol on CONTROL_FD (SOCK_SEQPACKET, the host's): one
JSON message per run with file descriptors [stdin, output, report, passed...]; the run speaks to
the host over `report` alone. Nothing of `grader` is importable here.
"""

from __future__ import annotations

import ctypes
import importlib
import json
import os
import random
import runpy
import shutil
import signal
import socket
import struct
import sys
import traceback

libc = ctypes.CDLL(None, use_errno=True)

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWPID, CLONE_NEWNET = 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = (
    1, 2, 4, 8, 32, 4096, 16384, 1 << 18)
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_SET_SECCOMP, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT = 1, 22, 24, 38, 47
PR_SET_KEEPCAPS, PR_CAP_AMBIENT_CLEAR_ALL, SECCOMP_MODE_FILTER = 8, 4, 2
SYS_CAPSET = 126  # x86-64
CAPABILITY_VERSION_3 = 0x20080522
MOUNT_FLAGS = {"ro": MS_RDONLY, "nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC, "noatime": 1024,
               "nodiratime": 2048, "relatime": 1 << 21}  # a user namespace may not change the ones it found
PROC_READ_ONLY = ("sys", "sysrq-trigger", "irq", "bus")  # as bubblewrap's --proc leaves them
SANDBOX = "/sandbox"
SPOOL = "/sandbox/spool"
NO_ROOM = 97  # as bubblewrap.NO_ROOM
KILLED = 128 + signal.SIGKILL  # how a run whose PID 1 broke reads to the host
CATCHABLE = set(range(1, signal.NSIG)) - {signal.SIGKILL, signal.SIGSTOP}


class Refused(Exception):
    """A step of building a run failed: the host falls back on a cold sandbox."""


def _call(result: int, what: str) -> None:
    if result != 0:
        number = ctypes.get_errno()
        raise Refused(f"{what}: {os.strerror(number)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    encode = lambda s: None if s is None else s.encode()  # noqa: E731
    _call(libc.mount(encode(source), encode(target), encode(fstype), ctypes.c_ulong(flags), encode(data)),
          f"mount {target}")


def _prctl(option: int, arg: int, what: str) -> None:
    _call(libc.prctl(option, ctypes.c_ulong(arg), 0, 0, 0), what)


def _mounts() -> list[tuple[str, int]]:
    """(mount point, flags to keep) of every mount this process sees, parents first."""
    found = []
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            fields = line.split()
            point = fields[4].encode().decode("unicode_escape")
            flags = sum(MOUNT_FLAGS.get(option, 0) for option in fields[5].split(","))
            found.append((point, flags))
    return found


def _build_mounts(spec: dict) -> None:
    """The run's own view: fresh /proc, /tmp and scratch, its folders bound, everything else read-only."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    for name in PROC_READ_ONLY:
        path = f"/proc/{name}"
        if os.path.exists(path):
            _mount(path, path, None, MS_BIND | MS_REC)
            _mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
    _call(libc.sethostname(b"sandbox", 7), "sethostname")
    _loopback_up()
    for point, flags in _mounts():  # nothing a run could write is shared with the server or a later run
        if point == "/proc" or point.startswith("/proc/") or point == SPOOL or point.startswith(SPOOL + "/"):
            continue
        _mount(None, point, None, MS_REMOUNT | MS_BIND | MS_RDONLY | flags)
    _fresh_tmpfs("/tmp", f"size={spec['tmp_bytes']},mode=1777")
    _mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=620")
    _mount("tmpfs", spec["submission"], "tmpfs", MS_NOSUID | MS_NODEV, f"size={spec['scratch_bytes']},mode=1777")
    for source, target, writable in spec["binds"]:
        source = os.path.join(SPOOL, source)
        _mount(source, target, None, MS_BIND | MS_REC)
        _mount(None, target, None, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV | (0 if writable else MS_RDONLY))
    if libc.umount2(SPOOL.encode(), MNT_DETACH) != 0:  # locked in a user namespace: hidden under an empty tmpfs
        _mount("tmpfs", SPOOL, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, "size=4k,mode=0555")


def _fresh_tmpfs(point: str, options: str) -> None:
    """An empty tmpfs at `point`, with the read-only mounts that sat under it (a virtual environment
    in /tmp, say) bound back in place, as bubblewrap layers them in a cold sandbox."""
    inside = [(p, flags) for p, flags in _mounts() if p.startswith(point + "/")]
    tops = [(p, flags) for p, flags in inside if not any(p.startswith(q + "/") for q, _ in inside)]
    held = [(p, flags, os.open(p, os.O_PATH | os.O_DIRECTORY)) for p, flags in tops]
    _mount("tmpfs", point, "tmpfs", MS_NOSUID | MS_NODEV, options)
    for path, flags, fd in held:
        os.makedirs(path, mode=0o755, exist_ok=True)
        _mount(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC)
        _mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | flags)
        os.close(fd)


def _loopback_up() -> None:
    """The run's network namespace has its own loopback (a notebook's kernel talks over it) and nothing else."""
    import fcntl

    SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14s", b"lo", 0, b"")
        flags = struct.unpack("16sH", fcntl.ioctl(sock, SIOCGIFFLAGS, request)[:18])[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH14s", b"lo", flags | IFF_UP, b""))


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


class _Filter(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def _drop_bounding_set() -> None:
    last = int(open("/proc/sys/kernel/cap_last_cap").read())
    for cap in range(last + 1):
        _prctl(PR_CAPBSET_DROP, cap, "drop the bounding set")
    _call(libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "clear ambient capabilities")


def _clear_capabilities() -> None:
    header, data = _CapHeader(CAPABILITY_VERSION_3, 0), (_CapData * 2)()
    _call(libc.syscall(SYS_CAPSET, ctypes.byref(header), ctypes.byref(data)), "capset")


def _drop_privileges(uid: int | None, program: bytes) -> None:
    """The run's user (when the server is root), no capabilities in any set, no new privileges, the filter.
    The bounding set is already empty (PID 1 dropped it)."""
    if uid is not None:
        _prctl(PR_SET_KEEPCAPS, 0, "keepcaps")
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    _clear_capabilities()
    if uid is not None and (os.getuid(), os.geteuid(), os.getgid()) != (uid, uid, uid):
        raise Refused("the run's user was not taken")
    with open("/proc/self/status") as handle:
        caps = [line.split()[1] for line in handle if line.startswith(("CapEff", "CapPrm", "CapBnd", "CapAmb", "CapInh"))]
    if any(int(value, 16) for value in caps):
        raise Refused("capabilities were left")
    _prctl(PR_SET_NO_NEW_PRIVS, 1, "no_new_privs")
    if program:
        buffer = ctypes.create_string_buffer(program, len(program))
        prog = _Filter(len(program) // 8, ctypes.cast(buffer, ctypes.c_void_p))
        _call(libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0), "seccomp")


def _apply_rlimits(pairs: list[list[int]]) -> None:
    import resource

    for kind, value in pairs:
        _, hard = resource.getrlimit(kind)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(kind, (value, value))


def _place_fds(stdin: int, output: int, passed: list[int], targets: list[int]) -> None:
    """stdin, stdout and stderr, and each passed descriptor at the number the host gave it; nothing else."""
    import fcntl

    floor = max([2, *targets]) + 1  # every copy above every target, so no dup2 below overwrites one
    moved = [fcntl.fcntl(fd, fcntl.F_DUPFD, floor) for fd in [stdin, output, *passed]]
    keep = {0, 1, 2, *targets}
    os.dup2(moved[0], 0)
    os.dup2(moved[1], 1)
    os.dup2(moved[1], 2)
    for fd, target in zip(moved[2:], targets):
        os.dup2(fd, target)
    for fd in os.listdir("/proc/self/fd"):
        number = int(fd)
        if number not in keep:
            try:
                os.close(number)
            except OSError:
                pass
    for target in targets:
        os.set_inheritable(target, True)


def _copy_in(source: str, target: str, scratch_bytes: int) -> None:
    """The read-only submission copied into the sized tmpfs scratch, links kept as links."""
    try:
        for name in os.listdir(source):
            path = os.path.join(source, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.copytree(path, os.path.join(target, name), symlinks=True)
            else:
                shutil.copy2(path, os.path.join(target, name), follow_symlinks=False)
    except OSError:
        print(f"the submission does not fit in the sandbox's {scratch_bytes // 2 ** 20} MiB of scratch space",
              file=sys.stderr)
        os._exit(NO_ROOM)


def _work(spec: dict, base_path: list[str]) -> None:
    """The run's script, in this process, as `python SCRIPT ARGS...` with the request's environment."""
    os.environ.clear()
    os.environ.update(spec["env"])
    _copy_in(spec["source"], spec["submission"], spec["scratch_bytes"])
    os.chdir(spec["submission"])
    script = spec["argv"][1]
    extra = [p for p in spec["env"].get("PYTHONPATH", "").split(":") if p]
    sys.path[:] = [os.path.dirname(script), *extra, *base_path]
    sys.path_importer_cache.clear()
    importlib.invalidate_caches()
    sys.argv = list(spec["argv"][1:])
    random.seed()  # a cold interpreter's generators differ from run to run; forks of one server would not
    numpy, torch = sys.modules.get("numpy"), sys.modules.get("torch")
    if numpy is not None:
        numpy.random.seed()
    if torch is not None:
        torch.seed()
    code = 0
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
        if stop.code is not None and not isinstance(stop.code, int):
            print(stop.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
        code = 1
    try:
        import atexit
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code & 0xFF)


def _init(spec: dict, fds: list[int], base_path: list[str]) -> None:
    """PID 1 of the run's namespace: build its view, fork the run's process, then keep no capability
    and reap until that process ends. It stays root when the server is: a run's process (its own uid)
    can then neither signal nor trace it."""
    stdin, output, report_fd, *passed = fds
    report = socket.socket(fileno=report_fd)
    # Every signal a run could send PID 1 waits blocked; the run's process unblocks them, as a fresh
    # interpreter has them.
    signal.pthread_sigmask(signal.SIG_BLOCK, CATCHABLE)
    try:
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL, "pdeathsig")
        _build_mounts(spec)
        _drop_bounding_set()
    except (Refused, OSError) as err:
        report.send(json.dumps({"refused": str(err)}).encode())
        os._exit(0)
    worker = os.fork()
    if worker == 0:
        try:
            _become_the_run(spec, report, stdin, output, passed, base_path)
        finally:
            os._exit(KILLED)
    report.close()
    for fd in [stdin, output, *passed]:
        os.close(fd)
    _clear_capabilities()
    while True:
        pid, status = os.waitpid(-1, 0)
        if pid == worker:
            code = os.waitstatus_to_exitcode(status)
            os._exit(128 - code if code < 0 else code)


def _become_the_run(spec: dict, report: socket.socket, stdin: int, output: int, passed: list[int],
                    base_path: list[str]) -> None:
    """Drop every privilege, hand this PID to the host (in the report's credentials), wait for the go
    (the host has put it in its cgroup), then run the script."""
    try:
        _drop_privileges(spec["uid"], bytes.fromhex(spec["seccomp"]))
        _apply_rlimits(spec["rlimits"])
    except (Refused, OSError) as err:
        report.send(json.dumps({"refused": str(err)}).encode())
        os._exit(0)
    report.send(b'{"ready": true}')
    if report.recv(64) != b"go":
        os._exit(0)
    report.close()
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    _place_fds(stdin, output, passed, spec["pass_fds"])
    _work(spec, base_path)


def _run(spec: dict, fds: list[int], base_path: list[str]) -> None:
    """The forked child: new namespaces, then PID 1 in them; reports the run's exit to the host."""
    report = socket.socket(fileno=os.dup(fds[2]))
    try:
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL, "pdeathsig")
        _call(libc.unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET), "unshare")
        init = os.fork()
        if init == 0:
            try:
                report.close()
                _init(spec, fds, base_path)
            finally:
                os._exit(KILLED)  # never back into the server's code: the run reads as killed
        for fd in fds:
            os.close(fd)
        _, status = os.waitpid(init, 0)
        report.send(json.dumps({"exit": os.waitstatus_to_exitcode(status)}).encode())
    except BaseException as err:  # noqa: BLE001 - reported to the host, never raised into the server loop
        try:
            report.send(json.dumps({"refused": f"{type(err).__name__}: {err}"}).encode())
        except OSError:
            pass
    os._exit(0)


def _address_space() -> int:
    with open("/proc/self/status") as handle:
        return next(int(line.split()[1]) * 1024 for line in handle if line.startswith("VmSize:"))


def _preload(names: list[str]) -> tuple[list[str], int]:
    """Import `names`; those that imported, and the address space mapped after the first of them (the
    library every run imports), which the host leaves out of a run's address-space limit."""
    loaded, after_first = [], 0
    for name in names:
        try:
            importlib.import_module(name)
            loaded.append(name)
        except Exception:  # noqa: BLE001 - a library that is missing or broken is simply not warm
            pass
        after_first = after_first or _address_space()
    return loaded, _address_space() - after_first


def main() -> int:
    control = socket.socket(fileno=int(sys.argv[1]))
    base_path = [p for p in sys.path[1:] if not p.startswith(SANDBOX + "/")]
    loaded, extra_address_space = _preload(json.loads(sys.argv[2]))
    sys.stdout.flush()
    sys.stderr.flush()
    modules = sorted({name.split(".")[0] for name in sys.modules})  # what a submission can no longer shadow
    control.send(json.dumps({"ready": True, "loaded": loaded, "modules": modules,
                             "extra_address_space": extra_address_space}).encode())
    while True:
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            pass
        message, fds, _, _ = socket.recv_fds(control, 1 << 20, 64)
        if not message:
            return 0
        try:
            spec = json.loads(message)
        except ValueError:
            for fd in fds:
                os.close(fd)
            continue
        if len(fds) != 3 + len(spec.get("pass_fds", [])):
            for fd in fds:
                os.close(fd)
            continue
        if os.fork() == 0:
            control.close()
            _run(spec, fds, base_path)
        for fd in fds:
            os.close(fd)


if __name__ == "__main__":
    sys.exit(main())

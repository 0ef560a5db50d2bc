"""In-container execution supervisor (PID 1 of every code-interpreter container).

Why it exists: `docker exec` costs ~70 ms per execution, so the warm pool keeps one long-lived
process per container and talks to it over the attached stdin/stdout. It runs each request in a
fresh session with rlimits, enforces the timeout and the output cap by killing the whole process
group, then kills every other process left in the container, so nothing outlives its execution.
The host reads resource facts from the cgroup and the mounts; this process only reports what it
alone can see (exit status, output, timings).

The measurer is kept apart from the measured (see docs/sandbox-threat-model.md):
- the supervisor runs as uid 0 with only CAP_SETUID, CAP_SETGID and CAP_KILL; the code under
  test runs as uid 1000 with none, so it cannot open /proc/1/fd/*, ptrace, or signal this
  process; its rlimits (file size, open files, core) are set on it here;
- the supervisor is not dumpable, ignores every catchable signal, and sends its own stderr to
  /dev/null (nothing it writes reaches the host's logs);
- every request carries an id that its reply repeats, so the host refuses any other line.

Protocol: one JSON object per line in, one per line out, on stdout only.
  {"id": N, "op": "exec", "argv": [...], "payload": "...", "timeout": 5.0, "output_limit": 65536}
      payload (optional) is given to the program on fd 3 (an in-memory file), so code and file
      contents of any size never travel in argv
  {"id": N, "op": "reset"}     wipe /work, /tmp, /dev/shm, /dev/mqueue and SysV IPC, kill strays,
                               then check the slate is clean ("clean": false means replace me)
  {"id": N, "op": "ping"}
Standard library only; runs as `python3 -S`.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import select
import signal
import stat
import sys
import time
from typing import Any

SANDBOX_UID = SANDBOX_GID = 1000
WORK_DIRS = ("/work", "/tmp", "/dev/shm", "/dev/mqueue")
PAYLOAD_FD = 3
RESET_LIMIT_S = 20.0
CHILD_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": "/work",
    "LANG": "C.UTF-8",
    "PYTHONUNBUFFERED": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
    "MPLBACKEND": "Agg",
}
_IGNORED = (
    "SIGINT",
    "SIGTERM",
    "SIGHUP",
    "SIGQUIT",
    "SIGUSR1",
    "SIGUSR2",
    "SIGPIPE",
    "SIGALRM",
    "SIGTSTP",
    "SIGTTIN",
    "SIGTTOU",
    "SIGXFSZ",
    "SIGXCPU",
    "SIGVTALRM",
    "SIGPROF",
)
_LIBC = ctypes.CDLL(None, use_errno=True)
PR_SET_DUMPABLE = 4
IPC_RMID = 0
_OUT = sys.stdout


def reply(payload: dict[str, object]) -> None:
    _OUT.write(json.dumps(payload) + "\n")
    _OUT.flush()


def harden() -> None:
    """Make this process unreachable for the code it runs (beyond the uid split)."""
    _LIBC.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    for name in _IGNORED:
        sig = getattr(signal, name, None)
        if sig is not None:
            signal.signal(sig, signal.SIG_IGN)
    devnull = os.open("/dev/null", os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    sys.stderr = open(os.devnull, "w")  # for the life of the process


def reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def others() -> list[int]:
    me = os.getpid()
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != me]


def kill_strays() -> int:
    """Kill every process in the container but this one; returns how many there were."""
    killed = 0
    for _ in range(50):
        pids = others()
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.005)
        reap()
    reap()
    return killed


def drop_privileges() -> None:
    os.setgroups([])
    os.setgid(SANDBOX_GID)
    os.setuid(SANDBOX_UID)
    if os.getuid() != SANDBOX_UID or os.geteuid() != SANDBOX_UID:
        raise OSError("could not drop privileges")


def child_setup(limits: dict[str, int]) -> None:
    os.setsid()
    try:
        with open("/proc/self/oom_score_adj", "w") as handle:
            handle.write("1000")  # the code, not the supervisor, is the OOM killer's victim
    except OSError:
        pass
    for name, value in limits.items():
        kind = getattr(resource, name, None)
        if kind is not None:
            try:
                resource.setrlimit(kind, (value, value))
            except (ValueError, OSError):
                pass
    for name in _IGNORED:
        sig = getattr(signal, name, None)
        if sig is not None:
            signal.signal(sig, signal.SIG_DFL)
    drop_privileges()


def _payload_fd(payload: str | None) -> int | None:
    if payload is None:
        return None
    fd = os.memfd_create("payload", 0)
    data = payload.encode("utf-8", "surrogatepass")
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def run(request: dict[str, Any]) -> dict[str, object]:
    argv = [str(a) for a in request["argv"]]
    timeout = float(request.get("timeout", 5.0))
    limit = int(request.get("output_limit", 65536))
    limits = request.get("rlimits", {})
    payload = _payload_fd(request.get("payload"))
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(out_r)
            os.close(err_r)
            os.dup2(out_w, 1)
            os.dup2(err_w, 2)
            os.close(out_w)
            os.close(err_w)
            devnull = os.open("/dev/null", os.O_RDONLY)
            os.dup2(devnull, 0)
            os.close(devnull)
            if payload is not None:
                os.dup2(payload, PAYLOAD_FD)
                if payload != PAYLOAD_FD:
                    os.close(payload)
            os.closerange(PAYLOAD_FD + 1, 1024)
            os.chdir("/work")
            child_setup({k: int(v) for k, v in limits.items()})
            os.execve(argv[0], argv, CHILD_ENV)
        except BaseException as exc:
            os.write(2, f"sandbox: cannot start {argv[0]}: {exc}\n".encode())
        os._exit(127)
    os.close(out_w)
    os.close(err_w)
    if payload is not None:
        os.close(payload)
    buffers = {out_r: bytearray(), err_r: bytearray()}
    read_bytes = 0
    open_fds = [out_r, err_r]
    timed_out = capped = False
    status: int | None = None
    deadline = started + timeout
    exited_at: float | None = None

    def drain(wait: float) -> None:
        nonlocal read_bytes, capped
        ready, _, _ = select.select(open_fds, [], [], wait)
        for fd in ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                open_fds.remove(fd)
                continue
            read_bytes += len(chunk)
            room = limit + 1 - len(buffers[out_r]) - len(buffers[err_r])
            if room > 0:
                buffers[fd].extend(chunk[:room])
            if read_bytes > limit:
                capped = True

    while True:
        now = time.monotonic()
        if now >= deadline:
            timed_out = status is None
            break
        if open_fds:
            drain(min(deadline - now, 0.05))
            if capped:
                break
        if status is None:
            done, raw = os.waitpid(pid, os.WNOHANG)
            if done:
                status, exited_at = raw, time.monotonic()
        if status is not None:
            # The child is gone; a background process may still hold the pipes. Give it a
            # moment (its output counts against the cap), then it is a stray.
            if not open_fds or time.monotonic() - (exited_at or 0) > 0.05:
                break
        elif not open_fds:
            time.sleep(0.002)
    wall = time.monotonic() - started
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if status is None:
        _, status = os.waitpid(pid, 0)
    strays = kill_strays()
    for fd in (out_r, err_r):
        os.close(fd)
    exit_code = os.waitstatus_to_exitcode(status)
    half = limit // 2
    stdout = bytes(buffers[out_r])
    stderr = bytes(buffers[err_r])
    return {
        "exit_code": exit_code,
        "signal": -exit_code if exit_code < 0 else None,
        "stdout": stdout[: max(half, limit - len(stderr))].decode("utf-8", "replace"),
        "stderr": stderr[: max(half, limit - len(stdout))].decode("utf-8", "replace"),
        "output_bytes": read_bytes,
        "output_capped": capped,
        "timed_out": timed_out,
        "wall_s": wall,
        "strays_killed": strays,
    }


# -- reset: a clean slate, checked ------------------------------------------------------------


def _remove_tree(root: str, deadline: float) -> None:
    """Empty ``root`` as its owner: fix permissions, hoist nested directories into the root so
    no path ever gets long (deep trees), and delete. Runs as the sandbox user."""
    try:
        os.chmod(root, 0o1777 if root in ("/tmp", "/dev/shm") else 0o755)
    except OSError:
        pass
    try:
        top = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    counter = 0
    try:
        while time.monotonic() < deadline:
            names = os.listdir(top)
            if not names:
                return
            for name in names:
                try:
                    info = os.stat(name, dir_fd=top, follow_symlinks=False)
                except OSError:
                    continue
                if not stat.S_ISDIR(info.st_mode):
                    try:
                        os.unlink(name, dir_fd=top)
                    except OSError:
                        pass
                    continue
                try:
                    os.chmod(name, 0o700, dir_fd=top, follow_symlinks=False)
                    sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=top)
                except (OSError, NotImplementedError):
                    continue
                try:
                    for inner in os.listdir(sub):
                        if time.monotonic() >= deadline:
                            break
                        try:
                            inner_info = os.stat(inner, dir_fd=sub, follow_symlinks=False)
                            if stat.S_ISDIR(inner_info.st_mode):
                                counter += 1
                                hoisted = f".reset-{counter}"
                                os.rename(inner, hoisted, src_dir_fd=sub, dst_dir_fd=top)
                            else:
                                os.unlink(inner, dir_fd=sub)
                        except OSError:
                            pass
                finally:
                    os.close(sub)
                try:
                    os.rmdir(name, dir_fd=top)
                except OSError:
                    pass
    finally:
        os.close(top)


def _remove_ipc() -> None:
    """Remove SysV shared memory, message queues and semaphore sets (as their owner)."""
    for ident in _ipc_ids("shm"):
        _LIBC.shmctl(ident, IPC_RMID, None)
    for ident in _ipc_ids("msg"):
        _LIBC.msgctl(ident, IPC_RMID, None)
    for ident in _ipc_ids("sem"):
        _LIBC.semctl(ident, 0, IPC_RMID)


def _ipc_ids(kind: str) -> list[int]:
    try:
        with open(f"/proc/sysvipc/{kind}") as handle:
            lines = handle.read().splitlines()[1:]
    except OSError:
        return []
    ids = []
    for line in lines:
        fields = line.split()
        if len(fields) > 1 and fields[1].isdigit():
            ids.append(int(fields[1]))
    return ids


def _reset_root(root: str) -> None:
    """Extended attributes and times of a mount's root are a channel between episodes too."""
    try:
        for name in os.listxattr(root):
            try:
                os.removexattr(root, name)
            except OSError:
                pass
        os.utime(root, (0, 0))
    except OSError:
        pass


def _cleaner() -> None:
    """The wipe, as the sandbox user (it owns everything the code could have made)."""
    drop_privileges()
    deadline = time.monotonic() + RESET_LIMIT_S - 2
    for root in WORK_DIRS:
        _remove_tree(root, deadline)
        _reset_root(root)
    _remove_ipc()


def leftovers() -> list[str]:
    """What is not as a fresh container has it (empty means a clean slate)."""
    left = []
    for root in WORK_DIRS:
        try:
            names = os.listdir(root)
        except OSError as exc:
            left.append(f"{root}: unreadable ({exc.strerror})")
            continue
        if names:
            left.append(f"{root}: {len(names)} entries left")
    try:
        info = os.stat("/work")
        if info.st_uid != SANDBOX_UID or stat.S_IMODE(info.st_mode) != 0o755:
            left.append(f"/work: owner {info.st_uid} mode {stat.S_IMODE(info.st_mode):o}")
    except OSError as exc:
        left.append(f"/work: {exc.strerror}")
    for root in ("/work", "/tmp"):
        try:
            if os.listxattr(root):
                left.append(f"{root}: extended attributes left")
        except OSError:
            pass
    for kind in ("shm", "msg", "sem"):
        if _ipc_ids(kind):
            left.append(f"SysV {kind} objects left")
    if others():
        left.append(f"{len(others())} processes left")
    return left


def reset() -> dict[str, object]:
    strays = kill_strays()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            _cleaner()
        except BaseException:
            code = 1
        os._exit(code)
    deadline = time.monotonic() + RESET_LIMIT_S
    while time.monotonic() < deadline:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.002)
    strays += kill_strays()
    left = leftovers()
    return {"reset": True, "clean": not left, "left": left[:20], "strays_killed": strays}


def main() -> None:
    harden()
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    reply({"ready": True, "pid": os.getpid(), "uid": os.getuid()})
    for line in sys.stdin:
        request: dict[str, Any] = {}
        try:
            request = json.loads(line)
            op = request.get("op")
            if op == "exec":
                answer = run(request)
            elif op == "reset":
                answer = reset()
            elif op == "ping":
                answer = {"pong": True}
            else:
                answer = {"error": f"unknown op {op!r}"}
        except Exception as exc:
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        reply({"id": request.get("id") if isinstance(request, dict) else None, **answer})


if __name__ == "__main__":
    main()

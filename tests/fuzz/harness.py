"""Run a :class:`~.case.Case` the way a user would, but in-process for speed: ``archsim.cli.main(argv)`` in a
forked child (archsim is imported once, in the parent), with the sandbox as its working directory, stdout and
stderr captured at the file-descriptor level, a memory cap, and a wall-clock limit (a child past it is killed
and the case is a hang). An exception that escapes ``main`` is printed as Python would print it (a raw
traceback), since that is what the ``archsim`` script would show.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

# archsim and everything a command imports, loaded once before the children are forked
import archsim.api  # noqa: F401
import archsim.cli
import archsim.sweep.runner  # noqa: F401
import archsim.system.builder  # noqa: F401
import archsim.workload.cli_trace  # noqa: F401
import archsim.workload.trace_stats  # noqa: F401

from . import corpus
from .case import Case

MEMORY_LIMIT = 4 << 30
"""Address-space cap of a child (bytes): a runaway allocation is a MemoryError, not a machine out of memory."""

CAPTURE = 64 << 10
"""Most bytes of stdout / stderr kept."""


@dataclass
class RunResult:
    """What a case did: exit status (None: killed after the time limit), stdout, stderr, the wall time, the
    files under ``out/`` afterwards, and the sandbox path (to read result files before the next case)."""

    rc: int | None
    signal: int | None
    stdout: str
    stderr: str
    wall_s: float
    hung: bool
    out_files: list[str] = field(default_factory=list)
    sandbox: Path | None = None
    crash_log: str = ""
    dry_run: bool = False


class Sandbox:
    """A scratch directory mirroring ``hwconfigs/``, ``workloads/`` and ``examples/`` (links to the shipped
    files), plus ``traces/``, ``npz/``, ``out/`` and ``tmp/`` (the child's TMPDIR: crash logs land there)."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="archsim-fuzz-"))
        self.root.mkdir(parents=True, exist_ok=True)
        for d in corpus.SANDBOX_DIRS:
            (self.root / d).mkdir(exist_ok=True)
            for f in (corpus.REPO / d).iterdir():
                link = self.root / d / f.name
                if not link.is_symlink():
                    link.symlink_to(f)
        for d in ("traces", "npz", "out", "tmp"):
            (self.root / d).mkdir(exist_ok=True)

    def reset(self) -> None:
        """Remove what the last case wrote (the links stay)."""
        for d in corpus.SANDBOX_DIRS:
            for f in (self.root / d).iterdir():
                if not f.is_symlink():
                    _remove(f)
        for d in ("traces", "npz", "out", "tmp"):
            _remove(self.root / d)
            (self.root / d).mkdir()
        for f in self.root.iterdir():  # anything a command wrote to its working directory
            if f.name not in (*corpus.SANDBOX_DIRS, "traces", "npz", "out", "tmp", "stdout.txt", "stderr.txt"):
                _remove(f)

    def write(self, case: Case) -> None:
        for dest, seed in case.copies.items():
            shutil.copytree(corpus.seed_dir(seed), self.root / dest)
        for rel, data in case.files.items():
            p = self.root / rel
            if rel.endswith("/"):
                _remove(p)
                p.mkdir(parents=True, exist_ok=True)
            elif data is None:
                _remove(p)
            else:
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_bytes(data)

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def _remove(p: Path) -> None:
    if p.is_symlink() or p.is_file():
        p.unlink()
    elif p.is_dir():
        shutil.rmtree(p, ignore_errors=True)


def _sweep_points(spec: str) -> int:
    """How many points a sweep spec expands to (0 when it does not load: the command reports that)."""
    from archsim.sweep.spec import expand_points, load_sweep

    try:
        return len(expand_points(load_sweep(spec)))
    except Exception:  # noqa: BLE001 - the real command reports it
        return 0


def _child(case: Case, sandbox: Path) -> None:
    """In the forked child: set up, run ``archsim.cli.main``, exit with its status. Never returns."""
    rc = 1
    try:
        os.setsid()
        os.chdir(sandbox)
        for fd, name in ((1, "stdout.txt"), (2, "stderr.txt")):
            f = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(f, fd)
            os.close(f)
        # fresh streams on fds 1 and 2, as a new interpreter has (pytest's capture replaces sys.stdout/stderr)
        sys.stdout = sys.__stdout__ = open(1, "w", encoding="utf-8", closefd=False)
        sys.stderr = sys.__stderr__ = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False)
        import resource
        import warnings

        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.environ["TMPDIR"] = str(sandbox / "tmp")
        tempfile.tempdir = str(sandbox / "tmp")
        # warnings as a fresh interpreter shows them (pytest, when it runs the short campaign, swallows them)
        warnings.resetwarnings()
        for cat in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
            warnings.simplefilter("ignore", cat)
        warnings.showwarning = getattr(warnings, "_showwarning_orig", warnings.showwarning)
        argv = list(case.argv)
        if case.max_points is not None and argv[:1] == ["sweep"] and "--dry-run" not in argv:
            if _sweep_points(argv[1]) > case.max_points:
                argv = ["sweep", argv[1], "--dry-run"]
                (sandbox / "tmp" / ".dry-run").touch()
        try:
            rc = archsim.cli.main(argv)
            rc = 0 if rc is None else rc
        except SystemExit as e:
            code = e.code
            if code is None:
                rc = 0
            elif isinstance(code, int):
                rc = code
            else:
                print(code, file=sys.stderr)
                rc = 1
        except BaseException:
            import traceback

            traceback.print_exc()
            rc = 1
    except BaseException:  # noqa: BLE001 - the harness itself failed; still exit
        try:
            import traceback

            traceback.print_exc()
        except BaseException:  # noqa: BLE001
            pass
        rc = 99
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:  # noqa: BLE001
            pass
        os._exit(int(rc) & 0xFF)


def run_case(case: Case, sandbox: Sandbox, timeout: float = 30.0) -> RunResult:
    """Write the case into ``sandbox`` (after clearing it), run it in a forked child, and collect the result.
    The result files stay in the sandbox until the next :func:`run_case` (the classifier reads them)."""
    sandbox.reset()
    sandbox.write(case)
    sys.stdout.flush()
    sys.stderr.flush()
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        _child(case, sandbox.root)
    hung = not _wait_exit(pid, t0 + timeout)
    if hung:
        for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
            try:
                target()
            except (ProcessLookupError, PermissionError):
                pass
    _, status = os.waitpid(pid, 0)
    wall = time.perf_counter() - t0
    rc = os.waitstatus_to_exitcode(status)
    sig = -rc if rc < 0 else None
    root = sandbox.root
    out_files = sorted(str(p.relative_to(root)) for p in (root / "out").rglob("*"))
    stderr = _read(root / "stderr.txt")
    crash = ""
    marker = "full traceback in "
    if marker in stderr:
        log = stderr.split(marker, 1)[1].split(")")[0].strip()
        crash = _read(Path(log))
    return RunResult(rc=None if hung else (rc if sig is None else None), signal=None if hung else sig,
                     stdout=_read(root / "stdout.txt"), stderr=stderr, wall_s=round(wall, 3), hung=hung,
                     out_files=out_files, sandbox=root, crash_log=crash,
                     dry_run=(root / "tmp" / ".dry-run").exists())


def _wait_exit(pid: int, deadline: float) -> bool:
    """Wait until child ``pid`` exits (True) or ``deadline`` (perf_counter) passes (False); not reaped."""
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        fd = None
    if fd is not None:
        import select

        try:
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.perf_counter()))
            return bool(ready)
        finally:
            os.close(fd)
    delay = 0.002
    while time.perf_counter() < deadline:
        if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
            return True
        time.sleep(delay)
        delay = min(delay * 1.5, 0.05)
    return False


def _read(p: Path) -> str:
    try:
        with open(p, "rb") as f:
            return f.read(CAPTURE).decode("utf-8", "replace")
    except OSError:
        return ""

"""Executors: where the points run. Serial (in this process), local processes (a ProcessPoolExecutor started
with forkserver or spawn, never fork), any ``concurrent.futures.Executor`` you pass, or a Dask cluster
(``distributed.Client``). Each runs :func:`archsim.sweep.worker.run_point` on plain-dict tasks; the runner
writes every result itself, so the workers need no access to the sweep directory (they do need the
hwconfig, workload and trace files at the same paths)."""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import uuid
from collections.abc import Iterable
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from archsim.config import InputError
from archsim.sweep.worker import run_point

__all__ = ["Backend", "ExecutorLost", "make_backend", "prestart"]


class ExecutorLost(RuntimeError):
    """The executor went away in the middle of a sweep (the Dask scheduler stopped, or the connection to it was
    lost). Points recorded so far are kept; running the sweep again resumes it."""


class Backend:
    """A uniform face over the executors: ``submit``, ``wait`` for the first done, ``result``, ``close``."""

    name = "serial"
    slots = 1  # tasks kept in flight

    def submit(self, task: dict[str, Any], attempt: int) -> Any:
        fut: cf.Future = cf.Future()
        fut.set_result(run_point(task))
        return fut

    def wait(self, futures: Iterable[Any]) -> set[Any]:
        done, _ = cf.wait(list(futures), return_when=cf.FIRST_COMPLETED)
        return done

    def result(self, fut: Any) -> dict[str, Any]:
        """The worker's record; a crashed worker becomes a failed (internal) record."""
        try:
            return fut.result()
        except BrokenProcessPool as exc:
            self.broken()
            return _crashed(f"worker process died: {exc}")
        except cf.CancelledError:
            return _crashed("cancelled")
        except Exception as exc:  # e.g. distributed.KilledWorker
            return _crashed(f"{type(exc).__name__}: {exc}")

    def broken(self) -> None:
        pass

    def cancel(self, futures: Iterable[Any]) -> None:
        for f in futures:
            f.cancel()

    def close(self, cancel: bool) -> None:
        pass

    def describe(self) -> str:
        return self.name


def _crashed(message: str) -> dict[str, Any]:
    return {"status": "failed", "error": message.replace("\n", "; "), "error_kind": "internal",
            "summary": None, "config_hash": None}


def _mp_context():
    methods = multiprocessing.get_all_start_methods()
    if "forkserver" in methods:
        ctx = multiprocessing.get_context("forkserver")
        # the forkserver imports what a point needs once; the workers it forks start warm
        ctx.set_forkserver_preload(["archsim.sweep.preload"])
        return ctx
    return multiprocessing.get_context("spawn")


def prestart(jobs: int | None = None, dask: Any = None, executor: Any = None) -> None:
    """For local processes (``jobs`` other than None or 1, no ``dask`` or ``executor``): start the forkserver
    now, in the background, so that its imports (:mod:`archsim.sweep.preload`, about half a second) overlap
    the runner's keying of the points instead of delaying the first point. Does nothing otherwise."""
    if executor is not None or dask is not None or jobs is None or jobs == 1 or jobs < 0:
        return
    if _mp_context().get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()


class PoolBackend(Backend):
    """A ``concurrent.futures`` executor: our own process pool (``jobs`` processes), or one passed in."""

    def __init__(self, jobs: int | None = None, executor: cf.Executor | None = None) -> None:
        self.own = executor is None
        self.jobs = jobs or 1
        self.executor = executor if executor is not None else self._new_pool()
        workers = getattr(self.executor, "_max_workers", None) or self.jobs
        self.slots = max(2, 2 * int(workers))
        self.name = f"{self.jobs} processes" if self.own else type(self.executor).__name__
        self._broken = False

    def _new_pool(self) -> cf.ProcessPoolExecutor:
        return cf.ProcessPoolExecutor(max_workers=self.jobs, mp_context=_mp_context())

    def submit(self, task: dict[str, Any], attempt: int) -> Any:
        if self._broken and self.own:
            self.executor.shutdown(wait=False, cancel_futures=True)
            self.executor = self._new_pool()
            self._broken = False
        return self.executor.submit(run_point, task)

    def broken(self) -> None:
        self._broken = True

    def close(self, cancel: bool) -> None:
        if not self.own:
            return
        if cancel:
            # interrupted: the points in flight are given up, so stop their processes rather than wait for
            # them (a hung point would otherwise keep the interpreter from exiting)
            processes = list((getattr(self.executor, "_processes", None) or {}).values())
            self.executor.shutdown(wait=False, cancel_futures=True)
            for proc in processes:
                if proc.is_alive():
                    proc.terminate()
        else:
            self.executor.shutdown(wait=True)


class DaskBackend(Backend):
    """A ``distributed.Client``: connected to ``tcp://HOST:PORT``, a ``LocalCluster`` started for ``local``,
    or a client passed in (left open)."""

    def __init__(self, target: Any, jobs: int | None = None) -> None:
        try:
            import distributed
        except ImportError as exc:  # pragma: no cover - distributed is a dependency
            raise InputError(f"--dask needs the 'distributed' package: {exc}") from None
        self.distributed = distributed
        self.cluster = None
        self.own_client = True
        if isinstance(target, distributed.Client):
            self.client = target
            self.own_client = False
        elif target == "local":
            import logging

            self.cluster = distributed.LocalCluster(n_workers=jobs or 2, threads_per_worker=1, processes=True,
                                                    dashboard_address=None, silence_logs=logging.ERROR)
            self.client = distributed.Client(self.cluster)
        elif isinstance(target, str):
            try:
                self.client = distributed.Client(target, timeout=30)
            except (OSError, TimeoutError, ValueError) as exc:
                raise InputError(f"--dask {target}: cannot connect to the scheduler: {exc}") from None
        else:
            raise InputError(f"--dask: expected an address, 'local' or a distributed.Client, got {target!r}")
        nthreads = sum(self.client.nthreads().values()) or 1
        self.slots = max(2, 2 * nthreads)
        self.name = f"dask {self.client.scheduler.address} ({nthreads} threads)"
        self.run_id = uuid.uuid4().hex[:8]

    def _lost(self, exc: BaseException | None = None) -> ExecutorLost:
        why = f" ({type(exc).__name__})" if exc is not None else ""
        return ExecutorLost(f"lost the connection to the Dask scheduler {self.client.scheduler.address}{why}")

    def submit(self, task: dict[str, Any], attempt: int) -> Any:
        key = f"archsim-point-{self.run_id}-{task['key'][:16]}-{attempt}"
        if self.client.status not in ("running", "newly-created"):
            raise self._lost()
        return self.client.submit(run_point, task, key=key, pure=False)

    def wait(self, futures: Iterable[Any]) -> set[Any]:
        futures = list(futures)
        try:
            done, _ = self.distributed.wait(futures, return_when="FIRST_COMPLETED")
        except cf.CancelledError as exc:
            # FuturesCancelledError: the client lost its scheduler (the futures are gone with it), or a task was
            # cancelled at the scheduler (its point fails as an internal error, and is retried)
            cancelled = {f for f in futures if f.status == "cancelled"}
            if self.client.status != "running" or not cancelled:
                raise self._lost(exc) from None
            return cancelled
        return set(done)

    def close(self, cancel: bool) -> None:
        try:
            if self.own_client:
                self.client.close()
            if self.cluster is not None:
                self.cluster.close()
        except (OSError, TimeoutError, cf.CancelledError):  # pragma: no cover - the scheduler already went away
            pass

    def cancel(self, futures: Iterable[Any]) -> None:
        futures = list(futures)
        if futures and self.client.status == "running":
            try:
                self.client.cancel(futures)
            except (OSError, TimeoutError, cf.CancelledError):  # pragma: no cover - lost the scheduler meanwhile
                pass


def make_backend(jobs: int | None = None, dask: Any = None, executor: Any = None) -> Backend:
    """The backend for ``jobs`` (None or 1: serial; 0: one process per CPU; N: N processes), ``dask`` (an
    address, ``"local"`` -- a LocalCluster of ``jobs`` or 2 workers -- or a Client) or ``executor`` (a
    ``concurrent.futures.Executor`` or a ``distributed.Client``)."""
    if executor is not None:
        if isinstance(executor, cf.Executor):
            return PoolBackend(executor=executor)
        if type(executor).__name__ == "Client":
            return DaskBackend(executor)
        raise InputError(f"executor: expected a concurrent.futures.Executor or a distributed.Client, "
                         f"got {type(executor).__name__}")
    if jobs is not None and jobs < 0:
        raise InputError(f"-j: must be >= 0, got {jobs}")
    if dask is not None:
        return DaskBackend(dask, jobs or None)
    if jobs is None or jobs == 1:
        return Backend()
    return PoolBackend(jobs=jobs or os.cpu_count() or 1)

"""Solver runs that Ctrl-C and SIGTERM can stop within a fraction of a second.

Python runs signal handlers in the main thread only, and only between bytecodes: while
the main thread is inside HiGHS (C++) or waiting on the CBC process, a Ctrl-C waits
until the solver returns, up to the whole time limit. :func:`call_interruptibly` runs
the solver call on a worker thread instead and lets the main thread wait in short
slices, so the handler runs at once; its exception (``KeyboardInterrupt``) then asks
the solver to stop (``cancel``), waits briefly for it, and propagates.

All calls share one daemon worker thread: HiGHS keeps its task scheduler per thread,
so every HiGHS run happening on the same thread keeps that scheduler valid.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

POLL_S = 0.05
"""How long the main thread waits at a time [s]; signal handlers run in between."""
CANCEL_GRACE_S = 1.0
"""How long an interrupted call may take to stop after ``cancel`` [s]."""


class _Job:
    def __init__(self, call: Callable[[], Any]) -> None:
        self.call = call
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.value = self.call()
        except BaseException as exc:  # handed to the waiting thread
            self.error = exc
        finally:
            self.done.set()


_jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
_worker: list[threading.Thread] = []
_running: list[_Job] = []
_start_lock = threading.Lock()


def _serve() -> None:
    while True:
        job = _jobs.get()
        _running.append(job)
        try:
            job.run()
        finally:
            _running.remove(job)


def _ensure_worker() -> None:
    with _start_lock:
        if not _worker or not _worker[0].is_alive():
            thread = threading.Thread(target=_serve, name="siteopt-solver", daemon=True)
            thread.start()
            _worker[:] = [thread]


def busy() -> bool:
    """True while a solver call is still running on the worker (e.g. one abandoned after
    an interrupt because it did not stop within CANCEL_GRACE_S)."""
    return any(not job.done.is_set() for job in list(_running))


def call_interruptibly(call: Callable[[], T], cancel: Callable[[], None]) -> T:
    """``call()`` on the solver thread, the calling (main) thread waiting in POLL_S slices.

    Parameters
    ----------
    call : callable
        The solver run; its return value or exception is passed on.
    cancel : callable
        Asks ``call`` to stop early (``Highs.cancelSolve``, killing the CBC process);
        called from this thread when an exception (Ctrl-C, SIGTERM) interrupts the wait.

    Off the main thread no signal handler can run, so ``call`` runs right there.
    """
    if threading.current_thread() is not threading.main_thread():
        return call()
    _ensure_worker()
    job = _Job(call)
    _jobs.put(job)
    try:
        while not job.done.wait(POLL_S):
            pass
    except BaseException:
        cancel()
        job.done.wait(CANCEL_GRACE_S)
        raise
    if job.error is not None:
        raise job.error
    return job.value

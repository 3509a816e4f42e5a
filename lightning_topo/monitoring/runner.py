"""Running the monitor's jobs off the training loop: worker processes, or inline for debugging.

``JobRunner(num_workers=0)`` runs jobs in threads of the calling process (one per core; gudhi releases the GIL),
for the monitor's synchronous mode, where the training loop waits for them.  With
``num_workers > 0`` jobs go to worker processes started afresh with ``python -m
lightning_topo.monitoring.worker`` (spawn semantics: nothing is forked from a process that may have started
CUDA), which import only what a job needs (numpy, scipy, gudhi; not the training script, not torch), take one
job at a time over a pipe and leave when their pipe closes.  They run in their own session, so a Ctrl-C in the
terminal reaches the trainer alone, which then closes the runner; :meth:`JobRunner.close` terminates them, and
so does interpreter exit at the latest.  A worker that dies fails the job it held, nothing else; the next job
starts a new one.

Shutdown is bounded: a cancelling close sends the workers SIGTERM and SIGKILL to those still there after
:data:`STOP_GRACE` seconds, waits for none of its locks, pipes or threads (the reader threads are daemons, no
job is written to a pipe while the runner's lock is held), and finishes its work even when a second Ctrl-C
interrupts it.  The synchronous mode's threads are the exception: a running job cannot be stopped inside gudhi,
and the interpreter waits for it at exit (a daemon thread inside gudhi's native code aborts the interpreter
instead), so a cancelled synchronous job still costs the rest of its own run.

Example:
    >>> runner = JobRunner(num_workers=0)
    >>> runner.submit(sum, [1, 2, 3]).result()
    6
    >>> runner.close()
"""

from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, InvalidStateError, ThreadPoolExecutor
from typing import Any, BinaryIO

__all__ = ["STOP_GRACE", "JobRunner", "WorkerDied", "read_frame", "write_frame"]

_HEADER = struct.Struct(">Q")
#: A worker's jobs are single-threaded (gudhi, scipy.sparse); thread pools of their own would only fight training's.
_ONE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
#: Workers run at a lower CPU priority than the trainer, so on a busy CPU training gets the cores first.
WORKER_NICENESS = 10
#: Seconds a cancelled worker gets to end after SIGTERM before it is killed (and again after SIGKILL, at most).
STOP_GRACE = 3.0


class WorkerDied(RuntimeError):
    """The worker process running a job ended before answering (killed, crashed in native code)."""


def write_frame(stream: BinaryIO, payload: Any) -> None:
    """Send one pickled object, length first."""
    data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def read_frame(stream: BinaryIO) -> Any:
    """Receive one object sent by :func:`write_frame`; ``EOFError`` when the other side has gone."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError
    size = _HEADER.unpack(header)[0]
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return pickle.loads(data)


def _stop(processes: list[subprocess.Popen], stopped: threading.Event | None = None) -> None:
    """Terminate the live ones, kill those still there after :data:`STOP_GRACE` s; returns within ``2 * STOP_GRACE``.

    Also the runner's finalizer (``stopped``: its closed flag, so no reader thread starts a new worker meanwhile).
    A ``KeyboardInterrupt`` during the waits still ends with every process sent SIGKILL.
    """
    if stopped is not None:
        stopped.set()
    live = [p for p in list(processes) if p.poll() is None]
    try:
        for process in live:
            _signal(process, "terminate")
        _wait_all(live, STOP_GRACE)
    finally:
        for process in live:
            if process.poll() is None:
                _signal(process, "kill")
    _wait_all(live, STOP_GRACE)


def _signal(process: subprocess.Popen, how: str) -> None:
    try:
        getattr(process, how)()
    except OSError:  # pragma: no cover - it ended in between
        pass


def _wait_all(processes: list[subprocess.Popen], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    for process in processes:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass


def _fail(future: Future, error: BaseException) -> None:
    """Finish a future with ``error`` unless it is finished already (another thread may finish it meanwhile)."""
    try:
        if not future.done():
            future.set_exception(error)
    except InvalidStateError:
        pass


class _Worker:
    """One worker process and the thread that reads its answers."""

    def __init__(self, runner: JobRunner) -> None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p), **_ONE_THREAD)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "lightning_topo.monitoring.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            start_new_session=True,  # the terminal's Ctrl-C goes to the trainer, which closes us
        )
        self.current: Future | None = None
        self._runner = runner
        self._reader = threading.Thread(target=self._read, name="betti-worker-reader", daemon=True)
        self._reader.start()

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def send(self, future: Future, job: tuple) -> None:
        self.current = future
        try:
            write_frame(self.process.stdin, job)
        except (BrokenPipeError, OSError, ValueError) as error:  # ValueError: its pipe closed by a closing runner
            if self.current is future:
                self.current = None
            _fail(future, WorkerDied(f"could not send a job to the Betti worker: {error}"))

    def _read(self) -> None:
        while True:
            try:
                ok, value = read_frame(self.process.stdout)
            except Exception:
                break
            future, self.current = self.current, None
            if future is not None:
                try:
                    future.set_result(value) if ok else future.set_exception(RuntimeError(value))
                except InvalidStateError:  # cancelled by a closing runner meanwhile
                    pass
            self._runner._dispatch()
        try:  # the worker is gone: its answer pipe is ours to close (left to the garbage collector, a ResourceWarning)
            self.process.stdout.close()
        except OSError:  # pragma: no cover - nothing left to flush on a reader
            pass
        future, self.current = self.current, None
        if future is not None and not future.done():
            try:
                code = self.process.wait(timeout=2 * STOP_GRACE)
            except subprocess.TimeoutExpired:  # pragma: no cover - its answer pipe closed, it did not end
                code = "still running"
            _fail(future, WorkerDied(f"the Betti worker process {self.process.pid} ended (exit code {code})"))
        self._runner._dispatch()

    def close(self) -> None:
        try:
            self.process.stdin.close()
        except (OSError, ValueError):  # a broken pipe's buffered bytes cannot be flushed
            pass


class JobRunner:
    """Submit functions to worker processes (``num_workers > 0``) or to threads of this process (``0``).

    A job is ``fn(*args, **kwargs)`` with picklable, importable ``fn`` and arguments; its result comes back as a
    ``concurrent.futures.Future``.  Jobs run in submission order as workers come free.
    """

    def __init__(self, num_workers: int = 1) -> None:
        if not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f"num_workers must be a non-negative integer (0: synchronous), got {num_workers!r}")
        self.num_workers = num_workers
        self._workers: list[_Worker] = []
        self._queue: deque[tuple[Future, tuple]] = deque()
        self._lock = threading.RLock()
        self._stopped = threading.Event()  # closed: no new job, no new worker
        self._threads: ThreadPoolExecutor | None = None
        self._processes: list[subprocess.Popen] = []
        self._finalizer = weakref.finalize(self, _stop, self._processes, self._stopped)

    @property
    def _closed(self) -> bool:
        return self._stopped.is_set()

    @property
    def synchronous(self) -> bool:
        return self.num_workers == 0

    @property
    def pids(self) -> list[int]:
        """Process ids of the live workers (empty in synchronous mode)."""
        return [w.process.pid for w in self._workers if w.alive]

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future:
        """A future of ``fn(*args, **kwargs)``; failures (a dead worker too) surface as its exception."""
        if self.synchronous:  # threads of this process: gudhi releases the GIL, so jobs still run side by side
            if self._threads is None:
                self._threads = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="betti")
            return self._threads.submit(fn, *args, **kwargs)
        future: Future = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("this JobRunner is closed")
            self._queue.append((future, (fn, args, kwargs)))
        self._dispatch()
        return future

    def _dispatch(self) -> None:
        """Hand queued jobs to idle workers (starting workers up to ``num_workers``); the pipes are written to
        after the lock is released, so that a worker slow to read never holds up :meth:`close` or another thread."""
        sends: list[tuple[_Worker, Future, tuple]] = []
        with self._lock:
            if self._closed:
                return
            self._workers = [w for w in self._workers if w.alive or w.current is not None]
            while self._queue:
                idle = next((w for w in self._workers if w.alive and w.current is None), None)
                if idle is None and len(self._workers) < self.num_workers:
                    idle = _Worker(self)
                    self._workers.append(idle)
                    self._processes[:] = [p for p in self._processes if p.poll() is None] + [idle.process]
                if idle is None:
                    break
                future, job = self._queue.popleft()
                if future.set_running_or_notify_cancel():
                    idle.current = future  # taken: the next idle worker is another one
                    sends.append((idle, future, job))
        for worker, future, job in sends:
            worker.send(future, job)

    def close(self, cancel: bool = True) -> None:
        """Stop the workers: ``cancel`` drops queued and running jobs at once, else lets them finish first.

        A cancelling close returns within ``2 * STOP_GRACE`` seconds (plus the time to signal the workers), and
        a ``KeyboardInterrupt`` raised during a non-cancelling one's wait leaves the runner for a cancelling
        close (the callback's ``on_exception``) to finish.
        """
        threads = self._threads
        if threads is not None:  # dropped only once shut down: an interrupted wait leaves it to the next close
            threads.shutdown(wait=not cancel, cancel_futures=cancel)
            self._threads = None
        if not cancel:
            for future in [f for f, _ in list(self._queue)] + [w.current for w in list(self._workers) if w.current]:
                try:
                    future.exception()
                except CancelledError:
                    pass
        locked = self._lock.acquire(timeout=STOP_GRACE)  # a reader thread inside a worker's start, at most
        try:
            self._stopped.set()
            queued, self._queue = list(self._queue), deque()
            workers, self._workers = list(self._workers), []
        finally:
            if locked:
                self._lock.release()
        try:
            for future, _ in queued:
                future.cancel()
            if cancel:
                _stop(self._processes)  # every worker this runner started, not only those it still lists
            for worker in workers:
                worker.close()
            if not cancel:
                _wait_all([w.process for w in workers], 10)  # they leave once their pipe is closed
                _stop([w.process for w in workers])
        finally:
            for worker in workers:
                current = worker.current
                if current is not None and not current.cancel():
                    _fail(current, CancelledError())

"""The monitor's worker process: ``python -m lightning_topo.monitoring.worker``.

It reads jobs ``(fn, args, kwargs)`` from stdin, one at a time, runs them and writes ``(True, result)`` or
``(False, "ErrorType: message")`` to stdout (frames of :mod:`lightning_topo.monitoring.runner`), and leaves when
stdin closes, which is also what happens when its trainer's process ends.  It ignores Ctrl-C (the trainer
decides when it stops), runs single-threaded at a lower CPU priority than the trainer (``nice`` 10), so that on a
CPU without spare cores training is served first.  Importing this module loads no torch and no Lightning.
"""

from __future__ import annotations

import os
import signal
import sys


def serve() -> None:
    from lightning_topo.monitoring.runner import WORKER_NICENESS, read_frame, write_frame  # torch-free

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:  # yield the CPU to training: on a machine without spare cores it gets them first
        os.nice(WORKER_NICENESS)
    except (AttributeError, OSError):  # pragma: no cover - Windows, or a refused priority change
        pass
    requests, answers = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # a job that prints must not corrupt the answer stream
    while True:
        try:
            job = read_frame(requests)
        except EOFError:
            return
        except Exception as error:  # a job that cannot be unpickled here (a function this process cannot import)
            job, failure = None, f"{type(error).__name__} while reading the job: {error}"
        try:
            if job is None:
                raise RuntimeError(failure)
            fn, args, kwargs = job
            answer = (True, fn(*args, **kwargs))
        except Exception as error:
            answer = (False, f"{type(error).__name__}: {error}")
        try:
            write_frame(answers, answer)
        except BrokenPipeError:
            return


if __name__ == "__main__":
    serve()

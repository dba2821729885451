"""Workers that do not outlive their supervisor.

``cdrapi serve --workers N`` is uvicorn's supervisor process and N worker processes that
share its listening socket. When only the supervisor was killed (``kill -9``), the workers
went on serving and holding the port: a restart failed with ``Address already in use``,
and nothing would replace a worker that died. So each worker, at startup, asks the kernel
for SIGTERM when its parent dies (Linux ``prctl(PR_SET_PDEATHSIG)``), and a thread checks
``getppid()`` every second as well (other systems, or a kernel that refused). SIGTERM is
uvicorn's graceful shutdown: requests in flight are answered, then the worker exits.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time

__all__ = ["watch_supervisor"]

_PR_SET_PDEATHSIG = 1


def _stop() -> None:
    os.kill(os.getpid(), signal.SIGTERM)


def _ask_kernel() -> bool:
    """Have the kernel send SIGTERM to this process when its parent thread exits."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _watch(parent: int, interval: float) -> None:
    while os.getppid() == parent:
        time.sleep(interval)
    _stop()


def watch_supervisor(interval: float = 1.0) -> None:
    """In a worker process: stop (SIGTERM to itself) when the supervisor is gone.

    Does nothing in a process that multiprocessing did not start (``--workers 1`` runs the
    server in uvicorn's own process, and tests run the app in theirs).
    """
    parent = multiprocessing.parent_process()
    if parent is None or parent.pid is None:
        return
    _ask_kernel()
    if os.getppid() != parent.pid:  # it died before the kernel was asked
        _stop()
        return
    threading.Thread(
        target=_watch, args=(parent.pid, interval), name="cdrapi-supervisor", daemon=True
    ).start()

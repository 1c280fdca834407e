"""Tie an actor process's life to its parent's.

Thespian runs every actor in its own process; when a parent actor's process dies (killed,
crashed), its children are re-parented to init and keep running: a market-data connection
would go on reconnecting and delivering next to the replacement the supervisor starts, and
would outlive even ``ActorSystem.shutdown()`` (seen here). On Linux the kernel can kill the
child when its parent dies (``PR_SET_PDEATHSIG``); the restarted parent then starts clean.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def tie_to_parent() -> bool:
    """Ask the kernel to SIGKILL this process when its parent dies; False where unsupported.

    SIGKILL rather than SIGTERM: the process is already orphaned, nothing it could still do
    is useful, and the kernel closes its sockets either way.
    """
    if not sys.platform.startswith("linux"):
        return False
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    if os.getppid() != parent:  # the parent died before the request took effect
        os.kill(os.getpid(), signal.SIGKILL)
    return True

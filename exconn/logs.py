"""loguru set-up for each actor process.

Thespian's own logging goes through a logging actor (about 1 ms a record on the TCP base), so
every exconn process configures loguru itself and Thespian is told to forward only warnings.
"""

from __future__ import annotations

import os
import sys

from loguru import logger

_configured_pid: int | None = None

THESPIAN_LOG_DEFS = {
    "version": 1,
    "formatters": {"plain": {"format": "%(asctime)s thespian %(levelname)s %(message)s"}},
    "handlers": {
        "stderr": {"class": "logging.StreamHandler", "level": "WARNING", "formatter": "plain"}
    },
    "root": {"handlers": ["stderr"], "level": "WARNING"},
}

FORMAT = (
    "{time:YYYY-MM-DDTHH:mm:ss.SSS}Z {level: <7} {extra[component]} pid={process} {message} {extra}"
)


def configure(level: str = "INFO") -> None:
    """Idempotent per process (actor processes are forked, so re-check the pid)."""
    global _configured_pid
    pid = os.getpid()
    if _configured_pid == pid:
        return
    logger.remove()
    logger.configure(extra={"component": "exconn"})
    logger.add(sys.stderr, level=level, format=FORMAT, backtrace=False, diagnose=False)
    _configured_pid = pid

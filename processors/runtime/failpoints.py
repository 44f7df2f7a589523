"""Named points where a crash test kills the process: ``SPOC_FAILPOINT=<name>`` makes the process
SIGKILL itself when it reaches that point, so that a test knows the kill landed mid-work, exactly
there, rather than somewhere during start-up.  Unset (always, outside tests), a point costs one
comparison."""

from __future__ import annotations

import os
import signal

FAILPOINT_ENV = "SPOC_FAILPOINT"
_ARMED = os.environ.get(FAILPOINT_ENV)


def failpoint(name: str) -> None:
    """SIGKILL this process here if the test armed ``name``."""
    if name == _ARMED:
        os.kill(os.getpid(), signal.SIGKILL)

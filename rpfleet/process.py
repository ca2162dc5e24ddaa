"""Child processes that never outlive their parent (Linux), stopped gently then firmly."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
from typing import Any, Sequence

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: even a kill -9 of the parent
    # must not leave a broker or an agent behind.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(args: Sequence[str], **kwargs: Any) -> subprocess.Popen:
    """Start ``args`` in its own process group; SIGTERM reaches it if we die."""
    return subprocess.Popen(
        list(args), preexec_fn=_die_with_parent, start_new_session=True, **kwargs
    )


def stop(process: subprocess.Popen, timeout: float = 10) -> int:
    """SIGTERM the child's process group, SIGKILL it after ``timeout``; returns its exit code."""
    if process.poll() is None:
        _signal_group(process, signal.SIGTERM)
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
    return process.wait()


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass

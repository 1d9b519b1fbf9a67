"""Child processes that never outlive the process that started them."""

import ctypes
import signal
import subprocess
import sys
from typing import Any

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    if sys.platform == "linux":
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def child_process_options() -> dict[str, Any]:
    """Own process group (the parent decides the stop order on Ctrl-C), and SIGTERM
    from the kernel if the parent dies without stopping it."""
    return {"start_new_session": True, "preexec_fn": _die_with_parent}


def stop_process(process: subprocess.Popen[bytes], grace_seconds: float = 15.0) -> None:
    """SIGTERM, then SIGKILL after the grace period."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(grace_seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()

"""Child processes of the local stack: is it serving yet, and stopping it for good."""

from __future__ import annotations

import subprocess
import urllib.error
import urllib.request


def answers(url: str) -> bool:
    """Any HTTP answer (even an error status) means the server is up."""
    try:
        with urllib.request.urlopen(url, timeout=0.5):  # noqa: S310 - local http only
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 10 s; waits so that nothing is left behind."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()

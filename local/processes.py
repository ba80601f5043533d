"""The local stack's child processes: one supervisor (`Child`) for every server it runs, the
free ports they listen on, and how to tell that one is serving."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Protocol

ROOT = Path(__file__).resolve().parent.parent
STOP_TIMEOUT_SECONDS = 10.0


class StartupError(RuntimeError):
    """A part of the stack could not be started (the message says which and why)."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def answers(url: str) -> bool:
    """Any HTTP answer (even an error status) means the server is up."""
    try:
        with urllib.request.urlopen(url, timeout=0.5):  # noqa: S310 - local http only
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False


def listening(host: str, port: int) -> Callable[[], bool]:
    """A readiness check: the port accepts connections."""

    def check() -> bool:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return True
        except OSError:
            return False

    return check


def python_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment for a Python child: the repository importable, output
    unbuffered, and `extra` on top."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


class Server(Protocol):
    """A server this stack can start: where it answers, and how it stops."""

    @property
    def endpoint(self) -> str: ...

    def stop(self) -> None: ...


@contextlib.contextmanager
def endpoint(variable: str, start: Callable[[], Server]) -> Iterator[str]:
    """The endpoint of a server to use: the one named by the environment variable `variable`
    when it is set (a server shared with other runs), otherwise one `start()`ed here and
    stopped on exit. The one place that decides between the two."""
    existing = os.environ.get(variable)
    if existing:
        yield existing
        return
    server = start()
    try:
        yield server.endpoint
    finally:
        server.stop()


class Child:
    """A server run as a child process: started, awaited until `ready()` says it serves, and
    stopped for good (SIGTERM, then SIGKILL), whatever state it is in.

    Its output goes to `log` when given, else to a temporary file (never a pipe: nobody reads
    a pipe while the server runs, and a full one would block it); the end of it is quoted
    when the server fails to start."""

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        ready: Callable[[], bool],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path = ROOT,
        log: Path | None = None,
        new_session: bool = False,
        timeout: float = 60.0,
    ) -> None:
        self.name = name
        self.command = list(command)
        self.ready = ready
        self.env = dict(env) if env is not None else python_env()
        self.cwd = cwd
        self.log_path = log
        self.new_session = new_session
        self.timeout = timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.started_in: float | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def start(self) -> Child:
        began = time.monotonic()
        if self.log_path is not None:
            self._log = self.log_path.open("ab")
        else:
            self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            self.command,
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=self.new_session,
        )
        while time.monotonic() - began < self.timeout:
            code = self.process.poll()
            if code is not None:
                output = self.output()
                self.stop()
                raise StartupError(f"{self.name} exited with {code}: {output}")
            if self.ready():
                self.started_in = time.monotonic() - began
                return self
            time.sleep(0.05)
        output = self.output()
        self.stop()
        raise StartupError(f"{self.name} did not answer within {self.timeout} s: {output}")

    def output(self, characters: int = 4000) -> str:
        """The end of what the child wrote."""
        if self.log_path is not None:
            text = self.log_path.read_bytes() if self.log_path.exists() else b""
        elif self._log is not None:
            self._log.seek(0)
            text = self._log.read()
        else:
            return ""
        return text.decode(errors="replace")[-characters:]

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS, sig: int = signal.SIGTERM) -> int | None:
        """`sig`, then SIGKILL after `timeout`; waits, so that nothing is left behind. The
        exit code (None when it was not running, or had to be killed)."""
        code = None
        if self.process is not None:
            self.process.send_signal(sig)
            try:
                code = self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            if self.new_session:
                # Its own process group: whatever of it is left goes with it.
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.process.pid, signal.SIGKILL)
            self.process = None
        if self._log is not None:
            with contextlib.suppress(OSError):
                self._log.close()
            self._log = None
        return code


class Supervised:
    """A server this stack runs as a `Child`: how long it took to answer, and its stop."""

    child: Child | None = None

    @property
    def started_in(self) -> float | None:
        return self.child.started_in if self.child is not None else None

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop()
            self.child = None

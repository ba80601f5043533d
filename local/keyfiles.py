"""The local stack's secrets on disk (the token issuer's key, the Stripe webhook and cursor
signing secrets): created once in the data folder, readable by their owner only."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable
from pathlib import Path

PRIVATE = 0o600


def read_or_create(path: Path, make: Callable[[], str]) -> str:
    """The text of `path`, first written with `make()` when it does not exist. The file is
    created with mode 0600 (never world-readable, not even for an instant) and renamed into
    place whole; one left with a looser mode by an older version is narrowed to 0600."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(make())
        partial.replace(path)
    elif stat.S_IMODE(path.stat().st_mode) & ~PRIVATE:
        with contextlib.suppress(PermissionError):
            path.chmod(PRIVATE)
    return path.read_text(encoding="utf-8")

"""Identifiers: prefixed, time-ordered ULIDs (`int_01J...`), so keys sort by creation time."""

from __future__ import annotations

import os
import re
import time
from typing import TypeGuard

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# api.md, Input limits: an id in a path or a cursor has the form the system issues, a prefix and
# at most 64 characters in all. ULIDs are Crockford base32; lower case and `_` are allowed as
# well, for ids given by hand (seeds, fixtures: `int_demo_1`). Anything else is refused before
# it is made into a key (DynamoDB's key limits, a sort key outside a query's range).
MAX_ID_LENGTH = 64
ISSUED_PREFIXES = frozenset({"int", "quo", "ch", "usr"})
_ISSUED = re.compile(r"(?P<prefix>[a-z]+)_[0-9A-Za-z_]+")


# An account id as tokens carry it (api.md, Input limits: the whole pattern). Matched with
# `fullmatch`: `$` would also match before a trailing newline, and `acc_1\n` would be a tenant
# of its own.
ACCOUNT_ID_PATTERN = r"acc_[0-9A-Za-z_]{1,64}"
_ACCOUNT_ID = re.compile(ACCOUNT_ID_PATTERN)


def is_account_id(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and _ACCOUNT_ID.fullmatch(value) is not None


def ulid(timestamp_ms: int | None = None) -> str:
    """A 26-character ULID: 48 bits of milliseconds then 80 random bits, Crockford base32."""
    ms = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
    value = (ms << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        value, index = divmod(value, 32)
        chars.append(_CROCKFORD[index])
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    return f"{prefix}_{ulid()}"


def is_issued(value: object, prefix: str | None = None) -> bool:
    """Whether `value` has the form of an id this system issues, with `prefix` (`int`, `quo`,
    `ch`, `usr`; any of them when None): the whole string, nothing around it, not even a
    newline."""
    if prefix is not None and prefix not in ISSUED_PREFIXES:
        raise ValueError(f"no id is issued with the prefix {prefix!r}")
    if not isinstance(value, str) or len(value) > MAX_ID_LENGTH:
        return False
    found = _ISSUED.fullmatch(value)
    if found is None:
        return False
    return found.group("prefix") == prefix if prefix else found.group("prefix") in ISSUED_PREFIXES

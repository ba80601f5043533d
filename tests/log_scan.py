"""Scans what the code logged during the test run for secrets and personal data."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

PATTERNS = {
    # A digit run of a card's length on its own: not inside an id like `evt_1795...` nor a
    # UUID like `48231998-4101-4522-9b2e-...` (dash-joined on either side).
    "card number": re.compile(r"(?<![\w.-])(?:\d[ -]?){13,19}(?![\w-])"),
    "email address": re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"),
    "Stripe secret key": re.compile(r"\b[sr]k_(?:test|live)_[A-Za-z0-9]{6,}"),
    "webhook signing secret": re.compile(r"\bwhsec_[A-Za-z0-9_]{4,}"),
    "bearer token": re.compile(
        r"(?i)bearer\s+[A-Za-z0-9._~+/-]{16,}|eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}"
    ),
}


def _luhn(digits: str) -> bool:
    total, parity = 0, len(digits) % 2
    for index, char in enumerate(digits):
        value = int(char)
        if index % 2 == parity:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def findings(lines: Iterable[str]) -> list[tuple[str, str]]:
    found = []
    for line in lines:
        for kind, pattern in PATTERNS.items():
            for match in pattern.finditer(line):
                text = match.group(0)
                if kind == "card number":
                    digits = re.sub(r"\D", "", text)
                    # Card numbers start 2-6 (Mastercard 2-series to Discover); a millisecond
                    # timestamp has 13 digits and starts with 1.
                    if not 14 <= len(digits) <= 19 or digits[0] not in "23456" or not _luhn(digits):
                        continue
                found.append((kind, line[:300]))
    return found


class Collector(logging.Handler):
    """Keeps every formatted record emitted during the session."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:
            self.lines.append(str(record.msg))

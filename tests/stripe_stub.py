"""A stub Stripe on a free port for what localstripe cannot do (billing portal sessions, 429 and
5xx answers): scripted answers, every request recorded."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, str]


@dataclass
class StubStripe:
    """Answers `(method, path)` with the scripted `(status, body)` answers in turn, repeating the
    last one, and records every request it received."""

    api_base: str = ""
    answers: dict[tuple[str, str], list[tuple[int, dict[str, Any]]]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)

    def answer(self, method: str, path: str, *answers: tuple[int, dict[str, Any]]) -> None:
        self.answers[(method, path)] = list(answers)

    def to(self, method: str, path: str) -> list[Received]:
        return [r for r in self.received if (r.method, r.path) == (method, path)]

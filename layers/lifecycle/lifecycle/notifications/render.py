"""Emails rendered with Jinja2 from the layer's templates: HTML with autoescape on, and in both
forms every value flattened to one line, so that no value from the data (an integration's name,
say) can become markup, a forged line of text, or a header.

Jinja2 never evaluates what a value holds (`{{ 7*7 }}` in a name stays those characters);
escaping makes it text in HTML; `_one_line` keeps it on its own line in the text and subject.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lifecycle.notifications.messages import KINDS, Kind
from lifecycle.rules.calendar import parse_instant
from lifecycle.rules.money import format_amount

SUBJECT_MAX = 200
VALUE_MAX = 500


@dataclass(frozen=True, slots=True)
class Email:
    subject: str
    text: str
    html: str
    tag: str  # the template's name: what kind of email it is


def _one_line(value: Any) -> Any:
    """A value of the data for the plain text: control characters (line breaks among them) as
    spaces, at most VALUE_MAX characters. Markup-safe values (the templates' own) pass."""
    if value is None:
        return ""
    if not isinstance(value, str) or hasattr(value, "__html__"):
        return value
    flat = "".join(" " if unicodedata.category(c)[0] == "C" else c for c in value)
    flat = re.sub(r" {2,}", " ", flat).strip()
    return flat if len(flat) <= VALUE_MAX else flat[: VALUE_MAX - 1] + "…"


def _money(amount: Any, currency: Any = "usd") -> str:
    """Cents as an amount with its currency: `49.00 USD`."""
    try:
        cents = int(amount)
    except (TypeError, ValueError):
        return ""
    return format_amount(cents, str(currency or "usd")[:3])


def _instant(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    try:
        return parse_instant(str(value))
    except ValueError:
        return None


def _day(value: Any) -> str:
    """`21 December 2026 (UTC)`."""
    moment = _instant(value)
    return f"{moment:%d %B %Y} (UTC)" if moment else ""


def _time(value: Any) -> str:
    """`21 December 2026, 10:00 UTC`."""
    moment = _instant(value)
    return f"{moment:%d %B %Y, %H:%M} UTC" if moment else ""


def _environment(html: bool) -> Any:
    from jinja2 import Environment, PackageLoader, StrictUndefined  # noqa: PLC0415 - lazy

    environment = Environment(
        loader=PackageLoader("lifecycle.notifications", "templates"),
        # The text form is not HTML: it escapes nothing, and `_one_line` keeps every value of
        # the data on its line instead.
        autoescape=html,  # noqa: S701
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        # Every value on one line in both forms (in HTML a line break is harmless, but the same
        # rule everywhere is simpler to trust).
        finalize=_one_line,
    )
    environment.filters.update(money=_money, day=_day, time=_time)
    return environment


@functools.cache
def _environments() -> tuple[Any, Any]:
    """(text, html), built on first use (importing Jinja2 is part of the notifier's cold start,
    nobody else's)."""
    return _environment(html=False), _environment(html=True)


def render(detail_type: str, context: Mapping[str, Any]) -> Email:
    """The email for an event of `detail_type` (a key of `KINDS`), from `context`."""
    kind: Kind = KINDS[detail_type]
    text_env, html_env = _environments()
    subject = _one_line(text_env.from_string(kind.subject).render(context))[:SUBJECT_MAX]
    return Email(
        subject=subject,
        text=text_env.get_template(f"{kind.template}.txt").render(context),
        html=html_env.get_template(f"{kind.template}.html").render(context),
        tag=kind.template,
    )

"""Request bodies as api.md's "Input limits" accept them: `application/json` only, at most 32
levels of nesting, no `NaN` or `Infinity`, no number outside IEEE double range, and text that is
Unicode (no lone surrogate such as `"\\ud800"`).

Settings are stored and read back verbatim, so only what survives a round trip may be accepted:
Python's `json` reads `NaN`, `Infinity` and `1e400` (as infinity), which would be written back
as something else, a lone surrogate is stored but can never be written out as UTF-8 again, and
the parser recurses once per level of nesting.
"""

from __future__ import annotations

import json
import math
import re
import sys
from typing import Any

MAX_DEPTH = 32
JSON_MEDIA_TYPE = "application/json"
# What is not a bracket: a JSON string (escapes and all, or up to the end when it never closes,
# so that no text is scanned twice), or a run of other characters. What is left is the skeleton.
_NOT_BRACKETS = re.compile(r'"[^"\\]*(?:\\[\s\S]?[^"\\]*)*(?:"|\Z)|[^\[\]{}"]+')
_EMPTY_PAIRS = re.compile(r"\[\]|\{\}")
_TOO_MANY_OPENINGS = re.compile(r"[\[{]{" + str(MAX_DEPTH + 1) + "}")
_LARGEST = sys.float_info.max
# A `\uD800`-`\uDFFF` escape: a surrogate, which must come in a high-low pair to be text.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class MalformedJson(json.JSONDecodeError):
    """A body that is JSON to Python's parser but outside what the API accepts. A subclass of
    `JSONDecodeError`, so that every parser of a body answers it as `malformed_json`."""


def is_json_media_type(content_type: str | None) -> bool:
    """`application/json` in any case, with or without parameters (`; charset=utf-8`)."""
    if content_type is None:
        return False
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == JSON_MEDIA_TYPE


def loads(text: str | bytes | bytearray) -> Any:
    """The JSON document in `text`, or `json.JSONDecodeError` (`MalformedJson` for the limits)."""
    if not isinstance(text, str):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as error:
            raise MalformedJson("the body is not UTF-8", "", 0) from error
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise MalformedJson("the body is not Unicode text", "", 0) from error
    if _deeper_than_limit(text):
        # Refused before parsing: the parser recurses once per level, and a few thousand levels
        # exhaust a thread's stack.
        raise MalformedJson(f"nested deeper than {MAX_DEPTH} levels", "", 0)
    try:
        document = json.loads(
            text, parse_constant=_no_constant, parse_float=_finite_float, parse_int=_double_int
        )
    except json.JSONDecodeError:
        raise
    except ValueError as error:  # int() of more than 4300 digits
        raise MalformedJson(str(error)[:100], "", 0) from error
    if _SURROGATE_ESCAPE.search(text):
        # Rare: look at the strings themselves only when an escape may have made a lone one.
        try:
            json.dumps(document, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as error:
            raise MalformedJson("a string holds a lone surrogate", "", 0) from error
    return document


def _deeper_than_limit(text: str) -> bool:
    """Whether the brackets of `text` nest deeper than MAX_DEPTH, outside strings, in linear
    time at C speed: each pass of `_EMPTY_PAIRS` removes the innermost level. An unbalanced
    skeleton is left for the parser to refuse."""
    skeleton = _NOT_BRACKETS.sub("", text)
    for _ in range(MAX_DEPTH):
        if _TOO_MANY_OPENINGS.search(skeleton):
            return True
        reduced = _EMPTY_PAIRS.sub("", skeleton)
        if reduced == skeleton:
            return False
        skeleton = reduced
    return _EMPTY_PAIRS.search(skeleton) is not None


def _no_constant(name: str) -> Any:
    raise MalformedJson(f"{name} is not a JSON number", name, 0)


def _finite_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise MalformedJson(f"{literal[:40]} is outside the range of a double", literal, 0)
    return value


def _double_int(literal: str) -> int:
    value = int(literal)  # more than 4300 digits: ValueError, answered by `loads`
    if abs(value) > _LARGEST:
        raise MalformedJson(f"{literal[:40]}... is outside the range of a double", literal, 0)
    return value

"""Field mappings: a domain dataclass and its stored form (a DynamoDB item, or a JSON document
kept in one) declared as one `Field` a line, written by `encode` and read by `decode`.

A mapping says, per field, where it is stored, how its value is stored (`Codec`) and what a
stored form without it reads as. The codecs of JSON documents are here; those of DynamoDB
attribute values are in `lifecycle.store.items`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, Final

from lifecycle.rules.calendar import format_instant, parse_instant


@dataclass(frozen=True, slots=True)
class Codec:
    """How one value is stored: `dump` gives the stored form, `load` the value back."""

    dump: Callable[[Any], Any]
    load: Callable[[Any], Any]


REQUIRED: Final[Any] = object()


@dataclass(frozen=True, slots=True)
class Field:
    """One field of a dataclass in its stored form.

    `key` is the stored name when it is not the field's. A stored form without the field reads
    as `default` (a new `default_factory()` for a mutable one); with neither it must be there.
    A `sparse` field is left out while its value is empty (None, "") and reads as None when
    absent. A `derived` field is a property: written for the readers of the table, never read
    back."""

    name: str
    codec: Codec
    key: str = ""
    default: Any = REQUIRED
    default_factory: Callable[[], Any] | None = None
    sparse: bool = False
    derived: bool = False

    @property
    def stored(self) -> str:
        return self.key or self.name

    def absent(self) -> Any:
        if self.default_factory is not None:
            return self.default_factory()
        if self.sparse:
            return None
        if self.default is REQUIRED:
            raise KeyError(self.stored)
        return self.default


Fields = tuple[Field, ...]


def encode(source: object, fields: Iterable[Field]) -> dict[str, Any]:
    """The stored form of `source`'s fields, in the order of the mapping."""
    stored: dict[str, Any] = {}
    for field in fields:
        value = getattr(source, field.name)
        if field.sparse and not value:
            continue
        stored[field.stored] = field.codec.dump(value)
    return stored


def decode(stored: Mapping[str, Any], fields: Iterable[Field]) -> dict[str, Any]:
    """The keyword arguments of the dataclass that `stored` holds."""
    return {
        field.name: field.codec.load(stored[field.stored])
        if field.stored in stored
        else field.absent()
        for field in fields
        if not field.derived
    }


def _same(value: Any) -> Any:
    return value


def _instant(value: Any) -> datetime:
    return parse_instant(str(value))


# Values of JSON documents.
TEXT = Codec(_same, str)
WHOLE = Codec(_same, int)
MOMENT = Codec(format_instant, _instant)


def nullable(codec: Codec) -> Codec:
    """`codec`, with None kept as JSON null."""
    return Codec(
        lambda value: None if value is None else codec.dump(value),
        lambda value: None if value is None else codec.load(value),
    )


def choice(kind: type[Enum]) -> Codec:
    """A member of `kind` as its value."""
    return Codec(lambda member: member.value, kind)


def record(kind: Callable[..., Any], fields: Fields) -> Codec:
    """A dataclass as a JSON object of its `fields`."""
    return Codec(lambda value: encode(value, fields), lambda value: kind(**decode(value, fields)))


def sequence(codec: Codec) -> Codec:
    """A tuple as a JSON array (null or no array reads as an empty tuple)."""
    return Codec(
        lambda values: [codec.dump(value) for value in values],
        lambda values: tuple(codec.load(value) for value in values or ()),
    )

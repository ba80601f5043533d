"""Read template.yaml, the one definition of tables, functions and routes, with CloudFormation's
tags, and evaluate its parameter-driven values (conditions, `!If`) as CloudFormation would."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"


class _CloudFormationLoader(yaml.SafeLoader):
    """A safe loader that reads `!Ref X` as `{"Ref": "X"}`, `!GetAtt A.B` as
    `{"Fn::GetAtt": ["A", "B"]}` and every other `!Fn` tag as `{"Fn::Fn": value}`."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        return {"Fn::GetAtt": value.split(".", 1)}
    return {f"Fn::{suffix}": value}


_CloudFormationLoader.add_multi_constructor("!", _intrinsic)


def load(path: Path = TEMPLATE) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        document = yaml.load(handle, Loader=_CloudFormationLoader)  # noqa: S506 - safe subclass
    if not isinstance(document, dict):
        raise ValueError(f"{path} is not a template")
    return document


@functools.cache
def template() -> dict[str, Any]:
    return load()


def resources(resource_type: str, document: dict[str, Any] | None = None) -> dict[str, Any]:
    """Logical id -> resource, for every resource of `resource_type`."""
    document = document if document is not None else template()
    return {
        logical_id: resource
        for logical_id, resource in document.get("Resources", {}).items()
        if resource.get("Type") == resource_type
    }


class _NoValue:
    """`!Ref AWS::NoValue`: the property (or list item) is left out."""

    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE: Any = _NoValue()


def parameter_values(
    overrides: Mapping[str, Any] | None = None, document: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Each parameter's value: `overrides`, else its Default (None when it has none)."""
    document = document if document is not None else template()
    values = {
        name: declared.get("Default") for name, declared in document.get("Parameters", {}).items()
    }
    return values | dict(overrides or {})


def evaluate(
    value: Any,
    overrides: Mapping[str, Any] | None = None,
    document: dict[str, Any] | None = None,
) -> Any:
    """`value` as deployed with these parameter values (the defaults unless overridden): a `Ref`
    to a parameter, `Fn::If` on the template's Conditions, and the condition and rule functions
    (`Fn::Equals`, `Fn::Not`, `Fn::And`, `Fn::Or`, `Fn::Contains`, `Condition`). A property or
    list item that comes to `AWS::NoValue` is dropped; the value itself may be `NO_VALUE`.
    Anything resolved only at deploy time (a resource's `Ref`, `Fn::GetAtt`, `Fn::Sub`) is
    returned as it is."""
    document = document if document is not None else template()
    parameters = parameter_values(overrides, document)
    conditions = document.get("Conditions", {})

    def condition(name: str) -> bool:
        return bool(walk(conditions[name]))

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [item for item in (walk(item) for item in node) if item is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, argument),) = node.items()
            if key == "Ref" and argument == "AWS::NoValue":
                return NO_VALUE
            if key == "Ref" and argument in parameters:
                return parameters[argument]
            if key == "Condition" and isinstance(argument, str):
                return condition(argument)
            if key == "Fn::If":
                name, when_true, when_false = argument
                return walk(when_true if condition(name) else when_false)
            if key == "Fn::Equals":
                left, right = walk(argument)
                return _text(left) == _text(right)
            if key == "Fn::Not":
                (operand,) = walk(argument)
                return not operand
            if key == "Fn::And":
                return all(walk(argument))
            if key == "Fn::Or":
                return any(walk(argument))
            if key == "Fn::Contains":
                options, candidate = walk(argument)
                return _text(candidate) in {_text(option) for option in options}
        walked = {key: walk(item) for key, item in node.items()}
        return {key: item for key, item in walked.items() if item is not NO_VALUE}

    return walk(value)


def _text(value: Any) -> str:
    """A value as CloudFormation compares it: parameters are strings, YAML booleans lower case."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# ---------------------------------------------------------------- functions and routes


def folder_of(properties: Mapping[str, Any]) -> str:
    """A function's folder under functions/ (its `CodeUri`)."""
    return str(properties["CodeUri"]).rstrip("/").split("/")[-1]


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str  # template form: /v1/integrations/{id}/freeze
    function: str  # logical id
    folder: str  # functions/<folder>/app.py
    pattern: re.Pattern[str]

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if method != self.method:
            return None
        found = self.pattern.fullmatch(path)
        return found.groupdict() if found else None


def _pattern(path: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", path)
    regex = "".join(
        f"(?P<{part[1:-1]}>[^/]+)" if part.startswith("{") else re.escape(part) for part in parts
    )
    return re.compile(regex)


@functools.cache
def routes() -> tuple[Route, ...]:
    found = []
    for logical_id, resource in resources("AWS::Serverless::Function").items():
        properties = resource["Properties"]
        folder = folder_of(properties)
        for event in (properties.get("Events") or {}).values():
            if event["Type"] != "HttpApi":
                continue
            method, path = event["Properties"]["Method"].upper(), event["Properties"]["Path"]
            found.append(Route(method, path, logical_id, folder, _pattern(path)))
    # Literal segments win over parameters (API Gateway's most-specific match).
    found.sort(key=lambda r: (r.path.count("{"), -len(r.path)))
    return tuple(found)


def route_table() -> dict[tuple[str, str], str]:
    """(METHOD, /path/{id}) -> function folder."""
    return {(r.method, r.path): r.folder for r in routes()}


def find_route(method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    for route in routes():
        params = route.match(method, path)
        if params is not None:
            return route, params
    return None


@dataclass(frozen=True, slots=True)
class Function:
    """One AWS::Serverless::Function of template.yaml, as the local stack runs it."""

    logical_id: str
    folder: str
    timeout: float
    properties: Mapping[str, Any]


@functools.cache
def functions() -> dict[str, Function]:
    """Logical id -> function, in template order (the timeout falls back to Globals)."""
    default_timeout = template().get("Globals", {}).get("Function", {}).get("Timeout", 3)
    found = {}
    for logical_id, resource in resources("AWS::Serverless::Function").items():
        properties = resource["Properties"]
        found[logical_id] = Function(
            logical_id=logical_id,
            folder=folder_of(properties),
            timeout=float(properties.get("Timeout", default_timeout)),
            properties=properties,
        )
    return found

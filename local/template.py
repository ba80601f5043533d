"""Read template.yaml, the one definition of tables and routes, with CloudFormation's tags."""

from __future__ import annotations

import functools
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

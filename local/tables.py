"""Create the DynamoDB tables declared in template.yaml (DynamoDB Local, tests, `make dev`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from local.template import resources

# Properties of AWS::DynamoDB::Table that CreateTable takes as they are.
_COPIED = ("AttributeDefinitions", "KeySchema", "BillingMode", "StreamSpecification")


def table_definitions(document: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Logical id -> CreateTable arguments (without TableName), read from the template."""
    definitions = {}
    for logical_id, resource in resources("AWS::DynamoDB::Table", document).items():
        properties = resource.get("Properties", {})
        arguments = {key: properties[key] for key in _COPIED if key in properties}
        if "StreamSpecification" in arguments:
            arguments["StreamSpecification"] = {
                "StreamEnabled": True,
                "StreamViewType": arguments["StreamSpecification"]["StreamViewType"],
            }
        indexes = [
            {key: index[key] for key in ("IndexName", "KeySchema", "Projection")}
            for index in properties.get("GlobalSecondaryIndexes", [])
        ]
        if indexes:
            arguments["GlobalSecondaryIndexes"] = indexes
        ttl = properties.get("TimeToLiveSpecification")
        definitions[logical_id] = {"create": arguments, "ttl": ttl}
    return definitions


def create_tables(client: Any, names: Mapping[str, str]) -> None:
    """Create each table of the template under the name `names[logical_id]`; wait until active.

    An existing table of that name is left as it is (data under `.local/` survives restarts).
    """
    definitions = table_definitions()
    missing = set(names) - set(definitions)
    if missing:
        raise KeyError(f"not tables of template.yaml: {sorted(missing)}")
    existing = set(_table_names(client))
    for logical_id, table_name in names.items():
        if table_name in existing:
            _add_missing_indexes(client, table_name, definitions[logical_id]["create"])
            continue
        definition = definitions[logical_id]
        client.create_table(TableName=table_name, **definition["create"])
        client.get_waiter("table_exists").wait(
            TableName=table_name, WaiterConfig={"Delay": 0.05, "MaxAttempts": 200}
        )
        ttl = definition["ttl"]
        if ttl and ttl.get("Enabled") is True:
            client.update_time_to_live(
                TableName=table_name,
                TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
            )


def _add_missing_indexes(client: Any, table_name: str, create: Mapping[str, Any]) -> None:
    """A table kept from an older template (`.local/`) gets the indexes added since, as a
    CloudFormation update would add them."""
    table = client.describe_table(TableName=table_name)["Table"]
    present = {index["IndexName"] for index in table.get("GlobalSecondaryIndexes", [])}
    for index in create.get("GlobalSecondaryIndexes", []):
        if index["IndexName"] in present:
            continue
        names = {key["AttributeName"] for key in index["KeySchema"]}
        client.update_table(
            TableName=table_name,
            AttributeDefinitions=[
                a for a in create["AttributeDefinitions"] if a["AttributeName"] in names
            ],
            GlobalSecondaryIndexUpdates=[{"Create": dict(index)}],
        )


def _table_names(client: Any) -> list[str]:
    names: list[str] = []
    arguments: dict[str, Any] = {}
    while True:
        response = client.list_tables(**arguments)
        names.extend(response.get("TableNames", []))
        if "LastEvaluatedTableName" not in response:
            return names
        arguments["ExclusiveStartTableName"] = response["LastEvaluatedTableName"]

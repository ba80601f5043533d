"""What the tests read of a table beside the store's own reads: the outbox, every item."""

from __future__ import annotations

from typing import Any

from lifecycle.store import items, keys
from lifecycle.store.repository import Store


def outbox_events(store: Store, account_id: str) -> list[dict[str, Any]]:
    """The account's outbox events still kept, in key order: `{"detail-type", "detail"}`."""
    query: dict[str, Any] = {
        "TableName": store.table_name,
        "KeyConditionExpression": "PK = :pk AND begins_with(SK, :prefix)",
        "ExpressionAttributeValues": {
            ":pk": items.s(keys.account_pk(account_id)),
            ":prefix": items.s(keys.OUTBOX_PREFIX),
        },
        "ConsistentRead": True,
    }
    found: list[dict[str, Any]] = []
    while True:
        page = store.client.query(**query)
        found += [
            {"detail-type": items.req_s(item, "detail_type"), "detail": items.event_detail(item)}
            for item in page["Items"]
        ]
        if "LastEvaluatedKey" not in page:
            return found
        query["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def table_items(store: Store) -> list[dict[str, Any]]:
    """Every item of the store's table, in key order: compared before and after a request that
    must change nothing."""
    found: list[dict[str, Any]] = []
    query: dict[str, Any] = {"TableName": store.table_name, "ConsistentRead": True}
    while True:
        page = store.client.scan(**query)
        found.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return sorted(found, key=lambda item: (item["PK"]["S"], item["SK"]["S"]))
        query["ExclusiveStartKey"] = page["LastEvaluatedKey"]

"""One table's low level: the client, reads, conditional writes, and what every part shares.

`Table` is the base of `lifecycle.store.repository.Store`: the parts of the store (users, the
ledger, decisions, the due index, markers) build their keys with `lifecycle.store.keys` and
their attributes with `lifecycle.store.items`, and write through `_transact` here, where a failed
condition becomes a domain `Conflict`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from lifecycle import aws
from lifecycle.rules.errors import Conflict
from lifecycle.rules.model import DomainEvent, HistoryEntry
from lifecycle.store import items, keys
from lifecycle.store.items import Item

OUTBOX_RETENTION = timedelta(days=7)
TRANSACTION_LIMIT = 100
ACCOUNT_SUBJECT = "account"
CHANGED = "This changed while your request was being handled. Reload and try again."
# A transaction's action -> the single-item write that does the same (operation, method).
_SINGLE_WRITES: Mapping[str, tuple[str, str]] = {
    "Put": ("PutItem", "put_item"),
    "Update": ("UpdateItem", "update_item"),
    "Delete": ("DeleteItem", "delete_item"),
}


@dataclass(frozen=True, slots=True)
class Expect:
    """What a write requires of an account (`subject` "account") or one of its integrations
    (`subject` its id): a version, a status, or both (a DynamoDB ConditionCheck)."""

    subject: str
    version: int | None = None
    status: str | None = None


@dataclass(slots=True)
class ReadCounter:
    """Round trips and items read, for tests and the benchmark (not for production logic)."""

    calls: int = 0
    items_read: int = 0
    by_operation: dict[str, int] = field(default_factory=dict)

    def record(self, operation: str, read: int = 0) -> None:
        self.calls += 1
        self.items_read += read
        self.by_operation[operation] = self.by_operation.get(operation, 0) + 1


def condition_failed(conflict: Conflict, index: int) -> bool:
    """Whether the transaction's action `index` failed its condition (not a concurrent
    transaction on the same item, which is worth a retry)."""
    reasons = conflict.extra.get("reasons", ())
    return index < len(reasons) and reasons[index] == "ConditionalCheckFailed"


@functools.cache
def default_client() -> Any:
    """The DynamoDB client, built on first use (never at import time).

    boto3 honours `AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL` itself (DynamoDB Local).
    """
    return aws.client("dynamodb")


class Table:
    """Reads and conditional writes of one table. `client` is a boto3 DynamoDB client (lazy by
    default)."""

    def __init__(self, table_name: str, client: Any | None = None) -> None:
        self.table_name = table_name
        self._client = client
        self.counter = ReadCounter()

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = default_client()
        return self._client

    # ---- reads ------------------------------------------------------------------------

    def _get(self, key: Item) -> Item | None:
        response = self.client.get_item(TableName=self.table_name, Key=key, ConsistentRead=True)
        item: Item | None = response.get("Item")
        self.counter.record("GetItem", 1 if item else 0)
        return item

    def _query_prefix(self, pk: str, prefix: str, *, keys_only: bool = False) -> Iterator[Item]:
        query: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :prefix)",
            "ExpressionAttributeValues": {":pk": items.s(pk), ":prefix": items.s(prefix)},
        }
        if keys_only:
            query["ProjectionExpression"] = "PK, SK"
        yield from self._query_all(query)

    def _query_all(self, query: dict[str, Any]) -> Iterator[Item]:
        """Every item of a query, page after page."""
        while True:
            response = self.client.query(**query)
            self.counter.record("Query", response.get("ScannedCount", 0))
            yield from response["Items"]
            last = response.get("LastEvaluatedKey")
            if not last:
                return
            query["ExclusiveStartKey"] = last

    def _batch_get(self, keys_: Sequence[Item], **options: Any) -> Iterator[Item]:
        """Items by key, strongly consistent, 100 keys per BatchGetItem (its limit), the
        unprocessed ones asked again."""
        for start in range(0, len(keys_), 100):
            request: dict[str, Any] = {
                self.table_name: {
                    "Keys": list(keys_[start : start + 100]),
                    "ConsistentRead": True,
                    **options,
                }
            }
            while request:
                response = self.client.batch_get_item(RequestItems=request)
                got = response["Responses"].get(self.table_name, [])
                self.counter.record("BatchGetItem", len(got))
                yield from got
                request = response.get("UnprocessedKeys") or {}

    def _batch_write(self, requests: Sequence[dict[str, Any]]) -> None:
        """BatchWriteItem requests (puts or deletes), 25 at a time, unprocessed ones retried."""
        for start in range(0, len(requests), 25):
            pending: dict[str, Any] = {self.table_name: list(requests[start : start + 25])}
            while pending:
                response = self.client.batch_write_item(RequestItems=pending)
                self.counter.record("BatchWriteItem")
                pending = response.get("UnprocessedItems") or {}

    # ---- the actions of a transaction ---------------------------------------------------

    def _put(
        self,
        item: Item,
        condition: str | None = None,
        values: Mapping[str, Any] | None = None,
        names: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        put: dict[str, Any] = {"TableName": self.table_name, "Item": item}
        if condition:
            put["ConditionExpression"] = condition
        if values:
            put["ExpressionAttributeValues"] = dict(values)
        if names:
            put["ExpressionAttributeNames"] = dict(names)
        return {"Put": put}

    def _check(self, account_id: str, expect: Expect) -> dict[str, Any]:
        """A ConditionCheck that an account or integration is still at a version or status."""
        pk = keys.account_pk(account_id)
        sk = (
            keys.ACCOUNT_SK
            if expect.subject == ACCOUNT_SUBJECT
            else keys.integration_sk(expect.subject)
        )
        conditions, values = [], {}
        if expect.version is not None:
            conditions.append("version = :version")
            values[":version"] = items.n(expect.version)
        if expect.status is not None:
            conditions.append("#status = :status")
            values[":status"] = items.s(expect.status)
        check: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": keys.key(pk, sk),
            "ConditionExpression": " AND ".join(conditions) or "attribute_exists(PK)",
        }
        if values:
            check["ExpressionAttributeValues"] = values
        if expect.status is not None:
            check["ExpressionAttributeNames"] = {"#status": "status"}
        return {"ConditionCheck": check}

    def _line_puts(
        self, pk: str, lines: Sequence[tuple[str, HistoryEntry]]
    ) -> list[dict[str, Any]]:
        """History or activity lines under their sort keys, each written only if absent."""
        return [
            self._put(
                {**keys.key(pk, sk), **items.history_attributes(line)}, "attribute_not_exists(PK)"
            )
            for sk, line in lines
        ]

    def _activity_puts(
        self, pk: str, unique: str, lines: Sequence[HistoryEntry]
    ) -> list[dict[str, Any]]:
        return self._line_puts(
            pk,
            [
                (keys.activity_sk(line.at, f"{unique}.{index:02d}"), line)
                for index, line in enumerate(lines)
            ],
        )

    def _event_actions(
        self, pk: str, subject: str, events: Sequence[DomainEvent]
    ) -> list[dict[str, Any]]:
        actions = []
        for index, event in enumerate(events):
            # Deterministic: one event per state change and index, never written twice.
            event_id = f"{subject}:{index}"
            expires = int((event.at + OUTBOX_RETENTION).timestamp())
            item = {
                **keys.key(pk, keys.outbox_sk(event_id)),
                **items.event_attributes(event, event_id, expires),
            }
            actions.append(self._put(item, "attribute_not_exists(PK)"))
        return actions

    # ---- writes -------------------------------------------------------------------------

    def _transact(self, actions: list[dict[str, Any]]) -> None:
        """Apply `actions` all or none; a failed condition is a Conflict.

        One action is sent as the single-item write it is (PutItem, UpdateItem, DeleteItem
        with the same condition): as atomic and as conditional, at half the write capacity of
        a transaction and one write instead of a transaction's two phases.
        """
        from botocore.exceptions import ClientError  # noqa: PLC0415 - loaded with the client

        if len(actions) == 1 and next(iter(actions[0])) in _SINGLE_WRITES:
            self._write_one(actions[0])
            return
        try:
            self.client.transact_write_items(TransactItems=actions)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code")
            if code == "TransactionCanceledException":
                reasons = [
                    r.get("Code", "None") for r in error.response.get("CancellationReasons", [])
                ]
                failed = tuple(
                    index
                    for index, reason in enumerate(reasons)
                    if reason in ("ConditionalCheckFailed", "TransactionConflict")
                )
                if failed:
                    raise Conflict(CHANGED, failed=failed, reasons=tuple(reasons)) from error
            raise
        finally:
            self.counter.record("TransactWriteItems")

    def _write_one(self, action: dict[str, Any]) -> None:
        from botocore.exceptions import ClientError  # noqa: PLC0415 - loaded with the client

        ((kind, parameters),) = action.items()
        operation, method = _SINGLE_WRITES[kind]
        try:
            getattr(self.client, method)(**parameters)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code")
            if code in ("ConditionalCheckFailedException", "TransactionConflictException"):
                raise Conflict(CHANGED, failed=(0,)) from error
            raise
        finally:
            self.counter.record(operation)

    def _update_once(
        self,
        key: Item,
        update: str,
        condition: str,
        values: Item,
        refusals: tuple[str, ...] = ("ConditionalCheckFailedException",),
    ) -> bool:
        """One conditional UpdateItem outside a transaction; False when DynamoDB answered one of
        `refusals` (its condition failed)."""
        from botocore.exceptions import ClientError  # noqa: PLC0415 - loaded with the client

        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=key,
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in refusals:
                return False
            raise
        finally:
            self.counter.record("UpdateItem")
        return True

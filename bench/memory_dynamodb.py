"""An in-memory DynamoDB client: the calls `lifecycle.store.repository.Store` makes, with their
conditions, so that the simulation runs the real store (every key and conditional write of it)
over memory instead of a fork of its logic. Capacity units are counted per partition as
DynamoDB bills them (1 KB a write unit, 4 KB a read unit, strongly consistent reads whole
units, transactions twice, a write to an index once more per index entry it moves).

Only what the sweep and the worker use is served: GetItem, BatchGetItem, Query on the table or
a global secondary index (`=`, `<`, `BETWEEN`, `begins_with`), PutItem, UpdateItem (`SET a = :v`),
DeleteItem, BatchWriteItem, TransactWriteItems (Put, Update, Delete, ConditionCheck), and the
condition expressions the store writes (`attribute_(not_)exists`, `=`, `AND`).
"""

from __future__ import annotations

import bisect
import math
import re
import threading
from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import Any

from botocore.exceptions import ClientError

Item = dict[str, Any]
INDEXES = {"DueIndex": ("GSI1PK", "GSI1SK"), "LedgerIndex": ("PK", "GSI2SK")}


def _value(attribute: Mapping[str, Any]) -> Any:
    ((_kind, value),) = attribute.items()
    return value


def _size(item: Mapping[str, Any]) -> int:
    """DynamoDB's item size: attribute names plus values (strings and numbers approximated by
    their text; nested documents by their text)."""
    total = 0
    for name, attribute in item.items():
        total += len(name)
        ((_kind, value),) = attribute.items()
        total += len(value) if isinstance(value, str) else len(str(value))
    return total


class Units:
    """Capacity units consumed, by partition (`table:PK` or `index:hash`), and in total."""

    def __init__(self) -> None:
        self.write: dict[str, float] = defaultdict(float)
        self.read: dict[str, float] = defaultdict(float)

    def add_write(self, partition: str, units: float) -> None:
        self.write[partition] += units

    def add_read(self, partition: str, units: float) -> None:
        self.read[partition] += units

    def reset(self) -> None:
        self.write.clear()
        self.read.clear()


_COMPARE = re.compile(r"^(#?\w+) = (:\w+)$")


class MemoryDynamoDB:
    """One table in memory (any table name), with the template's two indexes."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], Item] = {}
        # partition key -> sorted sort keys (the table and each index)
        self._table_keys: dict[str, list[str]] = defaultdict(list)
        self._index_keys: dict[str, dict[str, list[tuple[str, str, str]]]] = {
            name: defaultdict(list) for name in INDEXES
        }
        self.units = Units()
        self.calls: dict[str, int] = defaultdict(int)
        self._lock = threading.RLock()

    # ---- the store's calls ------------------------------------------------------------

    def get_item(self, *, TableName: str, Key: Item, ConsistentRead: bool = False, **_: Any) -> Any:
        self.calls["GetItem"] += 1
        item = self.items.get(self._k(Key))
        self._read(Key, item, ConsistentRead)
        return {"Item": dict(item)} if item else {}

    def batch_get_item(self, *, RequestItems: Mapping[str, Any], **_: Any) -> Any:
        self.calls["BatchGetItem"] += 1
        ((table, request),) = RequestItems.items()
        found = []
        for key in request["Keys"]:
            item = self.items.get(self._k(key))
            self._read(key, item, request.get("ConsistentRead", False))
            if item:
                found.append(dict(item))
        return {"Responses": {table: found}, "UnprocessedKeys": {}}

    def query(self, **query: Any) -> Any:
        self.calls["Query"] += 1
        values = query["ExpressionAttributeValues"]
        index = query.get("IndexName")
        hash_name, range_name = INDEXES[index] if index else ("PK", "SK")
        condition = query["KeyConditionExpression"]
        hash_value = _value(values[":pk"])
        low, high = self._range(condition, range_name, values)
        forward = query.get("ScanIndexForward", True)
        limit = query.get("Limit") or math.inf
        start = query.get("ExclusiveStartKey")
        with self._lock:
            entries: list[tuple[str, str, str]]
            if index:
                entries = [
                    e for e in self._index_keys[index][hash_value] if low(e[0]) and high(e[0])
                ]
            else:
                entries = [
                    (k, hash_value, k) for k in self._table_keys[hash_value] if low(k) and high(k)
                ]
            if not forward:
                entries.reverse()
            if start is not None:
                marker = (_value(start[range_name]), _value(start["PK"]), _value(start["SK"]))
                entries = [e for e in entries if (e > marker if forward else e < marker)]
            page = entries[: int(limit)] if limit != math.inf else entries
            result = []
            for _range_value, pk, sk in page:
                item = self.items[(pk, sk)]
                if index:
                    result.append(
                        {
                            "PK": item["PK"],
                            "SK": item["SK"],
                            hash_name: item[hash_name],
                            range_name: item[range_name],
                        }
                    )
                else:
                    result.append(dict(item))
        size = sum(_size(i) for i in result)
        consistent = query.get("ConsistentRead", False) and not index
        units = math.ceil(max(size, 1) / 4096) * (1 if consistent else 0.5)
        self.units.add_read(f"{index or 'table'}:{hash_value}", units)
        response: dict[str, Any] = {
            "Items": result,
            "Count": len(result),
            "ScannedCount": len(result),
        }
        if page and len(page) == limit:
            last = self.items[(page[-1][1], page[-1][2])]
            response["LastEvaluatedKey"] = {
                "PK": last["PK"],
                "SK": last["SK"],
                **({hash_name: last[hash_name], range_name: last[range_name]} if index else {}),
            }
        return response

    def put_item(self, **put: Any) -> Any:
        return self._write_item("Put", put)

    def update_item(self, **update: Any) -> Any:
        return self._write_item("Update", update)

    def delete_item(self, **delete: Any) -> Any:
        return self._write_item("Delete", delete)

    def batch_write_item(self, *, RequestItems: Mapping[str, Any], **_: Any) -> Any:
        self.calls["BatchWriteItem"] += 1
        ((_table, requests),) = RequestItems.items()
        with self._lock:
            for request in requests:
                if "PutRequest" in request:
                    self._apply_put({"Item": request["PutRequest"]["Item"]}, transactional=False)
                else:
                    key = request["DeleteRequest"]["Key"]
                    self._apply_delete(key, self.items.get(self._k(key)), transactional=False)
        return {"UnprocessedItems": {}}

    def transact_write_items(self, *, TransactItems: list[Mapping[str, Any]], **_: Any) -> Any:
        self.calls["TransactWriteItems"] += 1
        with self._lock:
            reasons = []
            for action in TransactItems:
                ((kind, body),) = action.items()
                try:
                    self._check(body, self._current(kind, body), kind)
                    reasons.append({"Code": "None"})
                except ClientError:
                    reasons.append({"Code": "ConditionalCheckFailed"})
            if any(r["Code"] != "None" for r in reasons):
                raise ClientError(
                    {
                        "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
                        "CancellationReasons": reasons,
                    },
                    "TransactWriteItems",
                )
            for action in TransactItems:
                ((kind, body),) = action.items()
                if kind in {"Put", "Update", "Delete"}:
                    self._apply(kind, body, transactional=True)
                else:  # ConditionCheck: a read unit, twice
                    self.units.add_read(f"table:{_value(body['Key']['PK'])}", 2)
        return {}

    # ---- what the simulation asks of it ---------------------------------------------------

    def earliest(self, hash_prefix: str) -> str | None:
        """The smallest DueIndex sort key under the partitions whose name starts with
        `hash_prefix` (the local scheduler's look at the index, without its sixteen queries)."""
        found = [
            entries[0][0]
            for name, entries in self._index_keys["DueIndex"].items()
            if entries and name.startswith(hash_prefix)
        ]
        return min(found) if found else None

    # ---- inside -------------------------------------------------------------------------

    @staticmethod
    def _k(key: Mapping[str, Any]) -> tuple[str, str]:
        return _value(key["PK"]), _value(key["SK"])

    def _read(self, key: Mapping[str, Any], item: Item | None, consistent: bool) -> None:
        units = math.ceil(max(_size(item) if item else 1, 1) / 4096) * (1 if consistent else 0.5)
        self.units.add_read(f"table:{_value(key['PK'])}", units)

    def _check(self, body: Mapping[str, Any], current: Item | None, operation: str) -> None:
        expression = body.get("ConditionExpression")
        if not expression:
            return
        names = body.get("ExpressionAttributeNames") or {}
        values = body.get("ExpressionAttributeValues") or {}
        for clause in expression.split(" AND "):
            if not self._holds(clause.strip(), current, names, values):
                raise ClientError(
                    {"Error": {"Code": "ConditionalCheckFailedException", "Message": clause}},
                    operation,
                )

    @staticmethod
    def _holds(
        clause: str, current: Item | None, names: Mapping[str, str], values: Mapping[str, Any]
    ) -> bool:
        if clause.startswith("attribute_not_exists("):
            name = clause[len("attribute_not_exists(") : -1]
            return current is None or names.get(name, name) not in current
        if clause.startswith("attribute_exists("):
            name = clause[len("attribute_exists(") : -1]
            return current is not None and names.get(name, name) in current
        found = _COMPARE.match(clause)
        if found is None:
            raise ValueError(f"condition not served in memory: {clause!r}")
        name, placeholder = found.groups()
        name = names.get(name, name)
        return current is not None and name in current and current[name] == values[placeholder]

    def _write_units(self, pk: str, before: Item | None, after: Item | None, factor: int) -> None:
        size = max(_size(before) if before else 0, _size(after) if after else 0)
        self.units.add_write(f"table:{pk}", math.ceil(max(size, 1) / 1024) * factor)
        for index, (hash_name, range_name) in INDEXES.items():
            old = (before or {}).get(hash_name), (before or {}).get(range_name)
            new = (after or {}).get(hash_name), (after or {}).get(range_name)
            had, has = old[1] is not None, new[1] is not None
            if old == new and (index == "DueIndex" or index == "LedgerIndex"):
                continue  # KEYS_ONLY: nothing projected changed
            for present, key in ((had, old), (has, new)):
                if present and key[0] is not None:
                    self.units.add_write(f"{index}:{_value(key[0])}", 1 * factor)

    def _index(self, item: Item | None, add: bool) -> None:
        if item is None:
            return
        pk, sk = _value(item["PK"]), _value(item["SK"])
        for index, (hash_name, range_name) in INDEXES.items():
            if hash_name in item and range_name in item:
                entries = self._index_keys[index][_value(item[hash_name])]
                entry = (_value(item[range_name]), pk, sk)
                if add:
                    bisect.insort(entries, entry)
                else:
                    position = bisect.bisect_left(entries, entry)
                    if position < len(entries) and entries[position] == entry:
                        del entries[position]

    def _store(self, key: tuple[str, str], before: Item | None, after: Item | None) -> None:
        self._index(before, add=False)
        table = self._table_keys[key[0]]
        if before is None and after is not None:
            bisect.insort(table, key[1])
        elif before is not None and after is None:
            del table[bisect.bisect_left(table, key[1])]
        if after is None:
            self.items.pop(key, None)
        else:
            self.items[key] = after
        self._index(after, add=True)

    def _write_item(self, kind: str, body: Mapping[str, Any]) -> Any:
        """PutItem, UpdateItem or DeleteItem (`kind` Put, Update or Delete): the condition,
        then the write."""
        operation = f"{kind}Item"
        self.calls[operation] += 1
        with self._lock:
            self._check(body, self._current(kind, body), operation)
            self._apply(kind, body, transactional=False)
        return {}

    def _current(self, kind: str, body: Mapping[str, Any]) -> Item | None:
        """The item a write of `kind` (Put, Update, Delete, ConditionCheck) names, if any."""
        return self.items.get(self._k(body["Item"] if kind == "Put" else body["Key"]))

    def _apply(self, kind: str, body: Mapping[str, Any], *, transactional: bool) -> None:
        """A Put, Update or Delete whose condition held."""
        if kind == "Put":
            self._apply_put(body, transactional=transactional)
        elif kind == "Update":
            self._apply_update(body, self._current(kind, body), transactional=transactional)
        else:
            self._apply_delete(body["Key"], self._current(kind, body), transactional=transactional)

    def _apply_put(self, body: Mapping[str, Any], *, transactional: bool) -> None:
        item = dict(body["Item"])
        key = self._k(item)
        before = self.items.get(key)
        self._write_units(key[0], before, item, 2 if transactional else 1)
        self._store(key, before, item)

    def _apply_update(
        self, body: Mapping[str, Any], current: Item | None, *, transactional: bool
    ) -> None:
        expression = body["UpdateExpression"]
        values = body.get("ExpressionAttributeValues") or {}
        names = body.get("ExpressionAttributeNames") or {}
        assert expression.startswith("SET "), expression
        after = dict(current or {**body["Key"]})
        for assignment in expression[4:].split(","):
            name, _, placeholder = assignment.strip().partition(" = ")
            after[names.get(name, name)] = values[placeholder]
        key = self._k(body["Key"])
        self._write_units(key[0], current, after, 2 if transactional else 1)
        self._store(key, current, after)

    def _apply_delete(
        self, key_item: Mapping[str, Any], current: Item | None, *, transactional: bool
    ) -> None:
        key = self._k(key_item)
        if current is None:
            self.units.add_write(f"table:{key[0]}", 2 if transactional else 1)
            return
        self._write_units(key[0], current, None, 2 if transactional else 1)
        self._store(key, current, None)

    @staticmethod
    def _range(
        condition: str, range_name: str, values: Mapping[str, Any]
    ) -> tuple[Callable[[str], bool], Callable[[str], bool]]:
        """The sort-key part of a key condition, as two bounds."""

        def anything(_: str) -> bool:
            return True

        if " AND " not in condition:
            return anything, anything
        part = condition.split(" AND ", 1)[1].strip()
        if part.startswith("begins_with("):
            prefix = _value(values[part.split(",")[1].strip(" )")])
            return (lambda v: v.startswith(prefix)), anything
        if " BETWEEN " in part:
            low = _value(values[part.split(" BETWEEN ")[1].split(" AND ")[0].strip()])
            high = _value(values[part.split(" AND ")[-1].strip()])
            return (lambda v: v >= low), (lambda v: v <= high)
        _name, operator, placeholder = part.split()
        bound = _value(values[placeholder])
        if operator == "<":
            return anything, (lambda v: v < bound)
        if operator == "=":
            return (lambda v: v == bound), anything
        raise ValueError(f"key condition not served in memory: {condition!r}")

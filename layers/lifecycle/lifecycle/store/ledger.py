"""The store's ledger: lines keyed by the thing they bought, their revisions, receipt numbers.

A ledger line is keyed by the thing it bought (its ledger key): the line is its own guard, so
the write before the provider is called is one conditional PutItem (`attribute_not_exists`),
and a second attempt at the same thing finds the line with one GetItem. A line refunded and
bought again moves to `CHARGE#superseded:{id}` as the new line takes the key (one transaction,
conditional on the old line being still there as read). The ledger index (GSI `LedgerIndex`,
KEYS_ONLY, `GSI2SK` = the line's time-ordered id) lists an account's lines newest first and
finds a line by its id alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from lifecycle.rules.errors import Conflict
from lifecycle.rules.ledger import ChargeRecord
from lifecycle.rules.model import DomainEvent, HistoryEntry
from lifecycle.rules.renewal import DueKind
from lifecycle.store import items, keys
from lifecycle.store.items import Item
from lifecycle.store.table import CHANGED, Expect, Table


class GuardTaken(Conflict):
    """The thing bought already has a ledger line (another request, or an earlier attempt)."""


class SubjectChanged(Conflict):
    """The account or integration is no longer as expected (the quote is stale)."""


def line_sk(record: ChargeRecord) -> str:
    if record.superseded_by:
        return keys.superseded_charge_sk(record.id)
    return keys.charge_sk(record.ledger_key)


class Ledger(Table):
    """Ledger lines and the receipt counter."""

    def begin_charge(self, record: ChargeRecord, expect: Sequence[Expect] = ()) -> None:
        """Write a pending ledger line *before* the provider is called. The line is keyed by
        the thing bought, so it is its own guard: it exists once, and a second attempt at the
        same change raises `GuardTaken` (the caller reconciles with the line that exists
        instead of charging again). Alone (a renewal, a create) it is one conditional PutItem;
        with `expect` (the subject must still be as the quote saw it, else `SubjectChanged`)
        or a request pointer, one transaction."""
        self._begin(
            [self._put(self._charge_item(record), "attribute_not_exists(PK)")], record, expect
        )

    def retry_charge(self, before: ChargeRecord, after: ChargeRecord) -> None:
        """A new attempt on a failed line (maybe for another quote), conditionally on the
        revision read: one taker wins."""
        self._transact([self.charge_write(before, after), *self._ref_puts(after)])

    def charge_by_ref(self, account_id: str, request_ref: str) -> ChargeRecord | None:
        """The ledger line a request (a quote) paid or is paying through, if any."""
        ref = self._get(keys.key(keys.account_pk(account_id), keys.charge_ref_sk(request_ref)))
        if ref is None:
            return None
        return self.get_charge(
            account_id, items.req_s(ref, "charge_id"), items.get_s(ref, "ledger_key")
        )

    def _ref_puts(self, record: ChargeRecord) -> list[dict[str, Any]]:
        """A pointer from the request (a quote id) to its line, when the request is not the
        ledger key itself: a retry of a paid quote finds what became of it."""
        if not record.request_ref or record.request_ref == record.ledger_key:
            return []
        pointer = {
            **keys.key(keys.account_pk(record.account_id), keys.charge_ref_sk(record.request_ref)),
            "type": items.s("charge_ref"),
            "charge_id": items.s(record.id),
            "ledger_key": items.s(record.ledger_key),
        }
        return [self._put(pointer)]

    def supersede_charge(
        self, previous: ChargeRecord, record: ChargeRecord, expect: Sequence[Expect] = ()
    ) -> None:
        """A new line for a change whose last line was refunded: the new line takes the ledger
        key, conditionally on the old line being still there as read (one taker wins), and the
        old line is kept under its own id."""
        kept = replace(previous, superseded_by=record.id, revision=previous.revision + 1)
        taken = self._put(
            self._charge_item(record),
            "id = :previous AND revision = :revision",
            {":previous": items.s(previous.id), ":revision": items.n(previous.revision)},
        )
        self._begin(
            [taken, self._put(self._charge_item(kept), "attribute_not_exists(PK)")],
            record,
            expect,
        )

    def _begin(
        self, actions: list[dict[str, Any]], record: ChargeRecord, expect: Sequence[Expect]
    ) -> None:
        actions = [*actions, *self._ref_puts(record)]
        checks = [self._check(record.account_id, e) for e in expect]
        try:
            self._transact([*actions, *checks])
        except Conflict as conflict:
            failed = conflict.extra.get("failed", ())
            if any(index >= len(actions) for index in failed):
                raise SubjectChanged(CHANGED) from conflict
            raise GuardTaken(CHANGED) from conflict

    def _charge_item(self, record: ChargeRecord) -> Item:
        pk = keys.account_pk(record.account_id)
        item = {
            **keys.key(pk, line_sk(record)),
            **items.charge_attributes(record),
            # The ledger index: the account's lines by time-ordered id (never changes).
            "GSI2SK": items.s(record.id),
        }
        if record.unsettled:
            # In the reconciler's part of the due index while money may be taken and not yet
            # applied or refunded (gone from it once the line is settled: the index is sparse).
            item.update(keys.due_attributes(DueKind.SETTLEMENT, record.id, record.updated_at))
        return item

    def charge_by_key(self, account_id: str, ledger_key: str) -> ChargeRecord | None:
        """The line that holds the thing bought (one GetItem: the line is its own guard)."""
        item = self._get(keys.key(keys.account_pk(account_id), keys.charge_sk(ledger_key)))
        return items.charge_from(item) if item else None

    def get_charge(
        self, account_id: str, charge_id: str, ledger_key: str | None = None
    ) -> ChargeRecord | None:
        """The ledger line `charge_id`, strongly consistent: at its ledger key when that is
        known (one GetItem), else where a replaced line is kept, else found by its id in the
        ledger index (a line just written may take a moment to show there)."""
        pk = keys.account_pk(account_id)
        if ledger_key is not None:
            current = self.charge_by_key(account_id, ledger_key)
            if current is not None and current.id == charge_id:
                return current
        kept = self._get(keys.key(pk, keys.superseded_charge_sk(charge_id)))
        if kept is not None:
            return items.charge_from(kept)
        response = self.client.query(
            TableName=self.table_name,
            IndexName=keys.LEDGER_INDEX,
            KeyConditionExpression="PK = :pk AND GSI2SK = :id",
            ExpressionAttributeValues={":pk": items.s(pk), ":id": items.s(charge_id)},
        )
        self.counter.record("Query", response.get("ScannedCount", 0))
        for found in response["Items"]:
            item = self._get({"PK": found["PK"], "SK": found["SK"]})
            if item is not None and items.req_s(item, "id") == charge_id:
                return items.charge_from(item)
        return None

    def reload_charge(self, line: ChargeRecord) -> ChargeRecord | None:
        """The line as stored now (after a lost race on it)."""
        return self.get_charge(
            line.account_id, line.id, None if line.superseded_by else line.ledger_key
        )

    def charge_write(self, before: ChargeRecord, after: ChargeRecord) -> dict[str, Any]:
        """The conditional write of a ledger line's new state, for `commit(extra=...)`: it
        applies only if the line is still the one read, at the revision it was read at (the
        key may hold a newer line for the same thing meanwhile: never overwritten)."""
        after = replace(after, revision=before.revision + 1)
        return self._put(
            self._charge_item(after),
            "id = :id AND revision = :revision",
            {":id": items.s(before.id), ":revision": items.n(before.revision)},
        )

    def save_charge(self, before: ChargeRecord, after: ChargeRecord) -> None:
        self._transact([self.charge_write(before, after)])

    def ledger_effects(
        self,
        line: ChargeRecord,
        name: str,
        *,
        history: Sequence[tuple[str, HistoryEntry]] = (),
        activity: HistoryEntry | None = None,
        events: Sequence[DomainEvent] = (),
    ) -> list[dict[str, Any]]:
        """What a ledger fact writes besides the line (history lines of its integrations, one
        account activity line, outbox events), each once per (line, `name`): deterministic keys
        written only if absent, for `commit(extra=...)` beside the line's conditional write."""
        pk = keys.account_pk(line.account_id)
        unique = f"{line.id}.{name}"
        lines = [
            (keys.history_sk(integration_id, entry.at, unique), entry)
            for integration_id, entry in history
        ]
        if activity is not None:
            lines.append((keys.activity_sk(activity.at, unique), activity))
        actions = self._line_puts(pk, lines)
        actions.extend(self._event_actions(pk, f"{line.id}:{name}", events))
        return actions

    def list_charges(
        self, account_id: str, *, limit: int = 50, after: str | None = None
    ) -> tuple[list[ChargeRecord], str | None]:
        """The account's ledger, newest first (charge ids are time-ordered), after the charge
        `after` when given; with the id the next page starts after (None: no more).

        The ledger index gives the page's keys in order (ids below `after`: no start key to
        forge); the lines themselves are then read consistently, in one BatchGetItem."""
        pk = keys.account_pk(account_id)
        condition = "PK = :pk" + (" AND GSI2SK < :after" if after is not None else "")
        values = {":pk": items.s(pk)}
        if after is not None:
            values[":after"] = items.s(after)
        response = self.client.query(
            TableName=self.table_name,
            IndexName=keys.LEDGER_INDEX,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=values,
            ScanIndexForward=False,
            Limit=limit,
        )
        self.counter.record("Query", response.get("ScannedCount", 0))
        wanted = [{"PK": found["PK"], "SK": found["SK"]} for found in response["Items"]]
        lines = {line_sk(line): line for line in self._charges(wanted)}
        records = [lines[k["SK"]["S"]] for k in wanted if k["SK"]["S"] in lines]
        last = response.get("LastEvaluatedKey")
        return records, (last["GSI2SK"]["S"] if last else None)

    def _charges(self, wanted: Sequence[Item]) -> list[ChargeRecord]:
        """Ledger lines by key, strongly consistent (BatchGetItem takes 100 keys at a time)."""
        return [items.charge_from(item) for item in self._batch_get(wanted)]

    # ---- receipts --------------------------------------------------------------------------

    def receipts_issued(self, account_id: str) -> int:
        """How many receipt numbers the account has issued (its counter, read consistently)."""
        item = self._get(keys.key(keys.account_pk(account_id), keys.RECEIPTS_SK))
        return items.receipts_issued_from(item)

    def receipt_write(self, account_id: str, issued: int) -> dict[str, Any]:
        """The counter moved from `issued` to `issued + 1`, for `commit(extra=...)` beside the
        ledger line that takes the number: two charges racing for one number cannot both
        commit (the loser re-reads and takes the next one), so numbers have no gap."""
        item = {
            **keys.key(keys.account_pk(account_id), keys.RECEIPTS_SK),
            "type": items.s("receipt_counter"),
            "issued": items.n(issued + 1),
        }
        if issued == 0:
            return self._put(item, "attribute_not_exists(PK)")
        return self._put(item, "issued = :issued", {":issued": items.n(issued)})

"""The store's due index: what each sweep must look at, the sweeps' leases, reminders.

The due index (GSI `DueIndex`, KEYS_ONLY) is sparse and write-sharded: an item carries
`GSI1PK = DUE#{kind}#{shard}` and `GSI1SK = {due at}#{subject}` only while a sweep has something
to do with it, so a sweep reads what is due and nothing else. A sweep that hands an entry to
the worker leases it: its position moves to the end of the lease (one conditional UpdateItem on
the position read), so no other run sends it while it is in flight; the worker's decision
rewrites the item, and with it the position.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from lifecycle.rules.calendar import format_instant, parse_instant
from lifecycle.rules.errors import Conflict
from lifecycle.rules.model import DomainEvent, Integration
from lifecycle.rules.renewal import DueKind
from lifecycle.store import items, keys
from lifecycle.store.table import Expect, Table

# A reminder marker outlives the period it is for (an un-cancel and a new cancel in the same
# period find it).
REMINDED_RETENTION = timedelta(days=35)
# Leases a sweep takes side by side: one batch of messages (SendMessageBatch's 10).
LEASE_THREADS = 10


class Reminded(NamedTuple):
    """What became of a deletion reminder: `sent` (its event is in the outbox), or `already`
    (one was sent for this period before: an un-cancel and a new cancel)."""

    sent: bool


@dataclass(frozen=True, slots=True)
class DueKey:
    """An item a sweep must look at, as the index showed it (re-read it before acting): the
    integration (or, for the reconciler, the charge) it is about, and where it sits in the
    index, `due_at` and the item's own sort key `sk`, which a lease is conditioned on."""

    account_id: str
    integration_id: str
    due_at: str
    sk: str = ""

    @property
    def subject(self) -> str:
        return self.integration_id

    @property
    def position(self) -> str:
        return keys.due_position(self.due_at, self.integration_id)


class Due(Table):
    """The sweeps' reads and leases of the due index."""

    def earliest_due(self, kind: DueKind) -> datetime | None:
        """The earliest entry of `kind` in the index (one query of one entry per shard, the
        shards read side by side); None when nothing of that kind is in it."""
        found = [
            moment
            for moment in self._shard_pool.map(
                lambda shard: self._first_due(kind, shard), range(keys.DUE_SHARDS)
            )
            if moment is not None
        ]
        return min(found) if found else None

    def _first_due(self, kind: DueKind, shard: int) -> datetime | None:
        response = self.client.query(
            TableName=self.table_name,
            IndexName=keys.DUE_INDEX,
            KeyConditionExpression="GSI1PK = :pk",
            ExpressionAttributeValues={":pk": items.s(keys.due_partition(kind, shard))},
            Limit=1,
            ScanIndexForward=True,
        )
        self.counter.record("Query", response.get("ScannedCount", 0))
        found: list[dict[str, Any]] = response.get("Items") or []
        if not found:
            return None
        due_at, _ = keys.parse_due_position(found[0]["GSI1SK"]["S"])
        return parse_instant(due_at)

    @functools.cached_property
    def _shard_pool(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(max_workers=keys.DUE_SHARDS, thread_name_prefix="due-index")

    def remind(self, integration: Integration, event: DomainEvent) -> Reminded:
        """Send an integration's deletion reminder once per cancelled period: its event in the
        outbox and a marker for the period (written only if absent), the due entry removed, in
        one transaction conditioned on the integration being as read. Raises `Conflict` when
        the integration changed meanwhile."""
        pk = keys.account_pk(integration.account_id)
        end = integration.current_period_end
        expires = int((end + REMINDED_RETENTION).timestamp())
        check = self._check(
            integration.account_id,
            Expect(integration.id, version=integration.version, status="cancel_pending"),
        )
        marker = self._put(
            {
                **keys.key(pk, keys.reminded_sk(integration.id, end)),
                "type": items.s("reminded"),
                "at": items.t(event.at),
                "expires_at": items.n(expires),
            },
            "attribute_not_exists(PK)",
        )
        done = {
            "Delete": {
                "TableName": self.table_name,
                "Key": keys.key(pk, keys.reminder_sk(integration.id)),
            }
        }
        events = self._event_actions(
            pk, f"{integration.id}:reminder:{format_instant(end)}", [event]
        )
        try:
            self._transact([check, marker, *events, done])
        except Conflict as conflict:
            # The period's marker is there (its event too): reminded before, nothing to send.
            if 1 in conflict.extra.get("failed", ()) and 0 not in conflict.extra.get("failed", ()):
                self.drop_reminder(integration.account_id, integration.id, None)
                return Reminded(sent=False)
            raise
        return Reminded(sent=True)

    def drop_reminder(self, account_id: str, integration_id: str, due_at: str | None) -> None:
        """Remove a reminder's due entry that has nothing left to send (the integration is
        gone, taken back, or reminded already); with `due_at`, only while it is still that
        entry (a new cancel may have written another)."""
        delete: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": keys.key(keys.account_pk(account_id), keys.reminder_sk(integration_id)),
        }
        if due_at is not None:
            delete["ConditionExpression"] = "GSI1SK = :entry"
            delete["ExpressionAttributeValues"] = {
                ":entry": items.s(keys.due_position(due_at, integration_id))
            }
        try:
            self._transact([{"Delete": delete}])
        except Conflict:
            return  # rewritten meanwhile: the new entry stands

    def due(self, kind: DueKind, now: datetime, *, page_size: int = 500) -> Iterator[DueKey]:
        """Every item due for `kind` at `now`, shard by shard, from the sparse index.

        Reads only index entries that are due: work grows with what is due, not the table.
        """
        for page in self.due_pages(kind, now, page_size=page_size):
            yield from page

    def due_pages(
        self, kind: DueKind, now: datetime, *, page_size: int = 500, first_shard: int = 0
    ) -> Iterator[list[DueKey]]:
        """The same, a page (one query, at most `page_size` entries) at a time, the shards in
        turn from `first_shard`: a sweep can stop between two pages, and overlapping sweeps
        that start at different shards mostly lease different entries."""
        bound = keys.due_bound(now)
        for turn in range(keys.DUE_SHARDS):
            shard = (first_shard + turn) % keys.DUE_SHARDS
            query: dict[str, Any] = {
                "TableName": self.table_name,
                "IndexName": keys.DUE_INDEX,
                "KeyConditionExpression": "GSI1PK = :pk AND GSI1SK < :bound",
                "ExpressionAttributeValues": {
                    ":pk": items.s(keys.due_partition(kind, shard)),
                    ":bound": items.s(bound),
                },
                "Limit": page_size,
            }
            while True:
                response = self.client.query(**query)
                self.counter.record("Query", response.get("ScannedCount", 0))
                page = []
                for item in response["Items"]:
                    due_at, subject = keys.parse_due_position(item["GSI1SK"]["S"])
                    page.append(
                        DueKey(
                            account_id=keys.account_of(item["PK"]["S"]),
                            integration_id=subject,
                            due_at=due_at,
                            sk=item["SK"]["S"],
                        )
                    )
                if page:
                    yield page
                last = response.get("LastEvaluatedKey")
                if not last:
                    break
                query["ExclusiveStartKey"] = last

    def unsettled(self, now: datetime, *, page_size: int = 500) -> Iterator[tuple[str, str, str]]:
        """(account id, charge id, ledger key) of every ledger line that may hold money not yet
        applied or refunded, last written at or before `now` (the reconciler's share of the
        index)."""
        for key in self.due(DueKind.SETTLEMENT, now, page_size=page_size):
            yield key.account_id, key.integration_id, keys.ledger_key_of(key.sk)

    def lease(self, key: DueKey, until: datetime) -> DueKey | None:
        """Move a due entry to `until`, conditionally on it still being where the index showed
        it: the sweep that wins hands it to the worker, and no other run sees it due until the
        lease ends (or the worker's decision rewrites the item). None: someone else moved it
        first (another sweep, the worker, a change of the item), or it is gone.

        An UpdateItem of the position alone: the item's version is untouched, so a user's
        change racing the lease is never refused for it."""
        leased = replace(key, due_at=format_instant(until))
        moved = self._update_once(
            keys.key(keys.account_pk(key.account_id), key.sk),
            "SET GSI1SK = :leased",
            "GSI1SK = :read",
            {":leased": items.s(leased.position), ":read": items.s(key.position)},
            refusals=("ConditionalCheckFailedException", "TransactionConflictException"),
        )
        return leased if moved else None

    def lease_all(self, keys: Sequence[DueKey], until: datetime) -> list[DueKey]:
        """`lease` for each key, side by side (a batch of the sweep's: as many threads as
        keys, at most 10); the leases won, in the order given."""
        if len(keys) <= 1:
            won = [self.lease(key, until) for key in keys]
        else:
            won = list(self._lease_pool.map(lambda key: self.lease(key, until), keys))
        return [key for key in won if key is not None]

    def release(self, leased: DueKey, to: DueKey) -> bool:
        """Give a lease back (a message the queue refused): the entry returns to its position
        `to`, conditionally on still being at the leased one."""
        return self.lease(leased, parse_instant(to.due_at)) is not None

    @functools.cached_property
    def _lease_pool(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(max_workers=LEASE_THREADS, thread_name_prefix="lease")

    # ---- low level ----------------------------------------------------------------------

"""The store's decisions: a state change as one transaction, a deletion's purge, bulk loads.

Every state change is one `TransactWriteItems`: the new state conditioned on the version it was
read at, its history lines and its outbox events, and when relevant the account and a ledger
line (`extra`). A lost race is a domain `Conflict`, never an overwrite.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lifecycle.rules.calendar import format_instant
from lifecycle.rules.errors import Conflict
from lifecycle.rules.model import AccountDecision, Decision, HistoryEntry, Integration
from lifecycle.rules.renewal import DueKind, due_entry, reminder_at
from lifecycle.store import items, keys
from lifecycle.store.items import Item
from lifecycle.store.table import TRANSACTION_LIMIT, Expect, Table


class Decisions(Table):
    """Decisions of the rules, written."""

    def commit(
        self,
        decision: Decision | None = None,
        *,
        account: AccountDecision | None = None,
        settings: Mapping[str, Any] | None = None,
        extra: Sequence[Mapping[str, Any]] = (),
        expect: Sequence[tuple[str, Expect]] = (),
    ) -> None:
        """Apply decisions atomically: one TransactWriteItems, each state conditioned on the
        version it was decided from, and each (account id, `Expect`) still holding. Raises
        `Conflict` when anything changed in between."""
        actions: list[dict[str, Any]] = []
        if decision is not None and not decision.noop:
            actions.extend(self._decision_actions(decision, settings))
        elif decision is not None and settings is not None:
            raise ValueError("settings are written with the decision that replaces them")
        if account is not None:
            actions.extend(self._account_actions(account))
            for integration_decision in account.integrations:
                actions.extend(self._decision_actions(integration_decision, None))
        actions.extend(dict(action) for action in extra)
        actions.extend(self._check(account_id, e) for account_id, e in expect)
        if not actions:
            return
        if len(actions) > TRANSACTION_LIMIT:
            raise ValueError(f"{len(actions)} writes exceed one transaction ({TRANSACTION_LIMIT})")
        self._transact(actions)

    def _decision_actions(
        self, decision: Decision, settings: Mapping[str, Any] | None
    ) -> list[dict[str, Any]]:
        subject = decision.after or decision.before
        assert subject is not None
        pk = keys.account_pk(subject.account_id)
        actions: list[dict[str, Any]] = []
        if decision.after is None:
            assert decision.before is not None
            actions.append(
                {
                    "Delete": {
                        "TableName": self.table_name,
                        "Key": keys.key(pk, keys.integration_sk(subject.id)),
                        "ConditionExpression": "version = :expected",
                        "ExpressionAttributeValues": {
                            ":expected": items.n(decision.before.version)
                        },
                    }
                }
            )
            actions.append(
                {
                    "Delete": {
                        "TableName": self.table_name,
                        "Key": keys.key(pk, keys.settings_sk(subject.id)),
                    }
                }
            )
            # A marker in the deletion sweep's part of the due index: the integration's history
            # lines (too many for this transaction) are purged after it, even after a crash.
            deleted_at = (
                decision.tombstone.deleted_at if decision.tombstone else subject.current_period_end
            )
            actions.append(
                self._put(
                    {
                        **keys.key(pk, keys.purge_sk(subject.id)),
                        "type": items.s("purge"),
                        **keys.due_attributes(DueKind.DELETION, subject.id, deleted_at),
                    }
                )
            )
        else:
            item = self._integration_item(decision.after)
            if decision.before is None:
                actions.append(self._put(item, "attribute_not_exists(PK)"))
            else:
                actions.append(
                    self._put(
                        item, "version = :expected", {":expected": items.n(decision.before.version)}
                    )
                )
            reminder = self._reminder_due(decision)
            if reminder is not None:
                actions.append(reminder)
            if settings is not None:
                actions.append(
                    self._put(
                        {
                            **keys.key(pk, keys.settings_sk(subject.id)),
                            "type": items.s("settings"),
                            "document": items.j(dict(settings)),
                            "version": items.n(decision.after.version),
                        }
                    )
                )
        version = decision.after.version if decision.after else subject.version + 1
        seq = f"{version:010d}"
        actions += self._line_puts(
            pk,
            [
                (keys.history_sk(subject.id, entry_line.at, f"{seq}.{index:02d}"), entry_line)
                for index, entry_line in enumerate(decision.history)
            ],
        )
        if decision.tombstone is not None:
            tomb = decision.tombstone
            line = HistoryEntry(
                at=tomb.deleted_at,
                type="integration_deleted",
                actor=decision.history[0].actor if decision.history else "system",
                details={
                    "integration_id": tomb.integration_id,
                    "name": tomb.name,
                    "cancelled_at": format_instant(tomb.cancelled_at)
                    if tomb.cancelled_at
                    else None,
                    "deleted_at": format_instant(tomb.deleted_at),
                    "reason": tomb.reason,
                },
            )
            actions += self._line_puts(
                pk, [(keys.activity_sk(tomb.deleted_at, tomb.integration_id), line)]
            )
        actions.extend(self._event_actions(pk, f"{subject.id}:{version}", decision.events))
        return actions

    def _reminder_due(self, decision: Decision) -> dict[str, Any] | None:
        """An integration that becomes cancel_pending gets a deletion reminder in the reminder
        part of the due index (an item of its own: the integration's index entry is its
        deletion). Whether one was sent for this period already is the sweep's question."""
        after, before = decision.after, decision.before
        due = reminder_at(after) if after is not None else None
        if after is None or due is None:
            return None
        if before is not None and reminder_at(before) is not None:
            return None  # cancel_pending before too: the item is there
        return self._put(
            {
                **keys.key(keys.account_pk(after.account_id), keys.reminder_sk(after.id)),
                "type": items.s("reminder_due"),
                "integration_id": items.s(after.id),
                "period_end": items.t(after.current_period_end),
                **keys.due_attributes(DueKind.REMINDER, after.id, due),
            }
        )

    def _account_actions(self, decision: AccountDecision) -> list[dict[str, Any]]:
        if decision.noop:
            return []
        pk = keys.account_pk(decision.after.id)
        item = {**keys.key(pk, keys.ACCOUNT_SK), **items.account_attributes(decision.after)}
        actions = [
            self._put(item, "version = :expected", {":expected": items.n(decision.before.version)})
        ]
        seq = f"{decision.after.version:010d}"
        actions += self._line_puts(
            pk,
            [
                (keys.activity_sk(line.at, f"{decision.after.id}.{seq}.{index:02d}"), line)
                for index, line in enumerate(decision.activity)
            ],
        )
        actions.extend(
            self._event_actions(
                pk, f"{decision.after.id}:{decision.after.version}", decision.events
            )
        )
        return actions

    def load_integrations(self, integrations: Sequence[Integration]) -> None:
        """Bulk-load integrations as they are, without history or events (demo seeds,
        benchmarks, migrations): BatchWriteItem, 25 at a time, unprocessed items retried."""
        self._batch_write(
            [{"PutRequest": {"Item": self._integration_item(i)}} for i in integrations]
        )

    def _integration_item(self, integration: Integration) -> Item:
        item = {
            **keys.key(
                keys.account_pk(integration.account_id), keys.integration_sk(integration.id)
            ),
            **items.integration_attributes(integration),
        }
        entry = due_entry(integration)
        if entry is not None:
            item.update(keys.due_attributes(entry.kind, integration.id, entry.at))
        return item

    # ---- quotes ------------------------------------------------------------------------

    def purge_history(self, account_id: str, integration_id: str) -> int:
        """Remove a deleted integration's history lines, then its purge marker. Refuses while
        the integration exists (history is only ever removed with it)."""
        pk = keys.account_pk(account_id)
        if self._get(keys.key(pk, keys.integration_sk(integration_id))) is not None:
            raise Conflict("The integration exists: its history is kept.")
        doomed = [
            {"PK": item["PK"], "SK": item["SK"]}
            for item in self._query_prefix(pk, keys.history_prefix(integration_id), keys_only=True)
        ]
        doomed.append(keys.key(pk, keys.purge_sk(integration_id)))
        self._batch_write([{"DeleteRequest": {"Key": key}} for key in doomed])
        return len(doomed) - 1

    # ---- Stripe webhook events ------------------------------------------------------------

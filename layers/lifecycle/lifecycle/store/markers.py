"""The store's markers: each (event, recipient) emailed once, each Stripe event processed once,
each outbox row published once, a payment event's history line written once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from lifecycle.rules.errors import Conflict
from lifecycle.rules.model import HistoryEntry
from lifecycle.store import items, keys
from lifecycle.store.table import Table

WEBHOOK_EVENT_RETENTION = timedelta(days=35)
# An email's sent marker outlives every redelivery (Lambda retries for 6 hours, a dead-letter
# redrive within the DLQ's 14 days).
EMAIL_RETENTION = timedelta(days=35)


@dataclass(frozen=True, slots=True)
class EmailClaim:
    """The marker of one email (an event, a recipient): `claimed` by a sender until
    `lease_until` (wall-clock epoch seconds), or `sent`."""

    state: str
    token: str
    lease_until: int


class Markers(Table):
    """Once-only markers."""

    # ---- emails: at most one per (event, recipient) ---------------------------------------

    def claim_email(
        self,
        account_id: str,
        event_id: str,
        user_id: str,
        *,
        token: str,
        now: int,
        lease_until: int,
        expires_at: int,
    ) -> bool:
        """Claim the sending of one email: the marker written if absent, or taken over when
        its sender's lease ran out without sending (it crashed). False when it is sent, or
        claimed by a sender whose lease still runs."""
        item = {
            **keys.key(keys.account_pk(account_id), keys.email_sk(event_id, user_id)),
            "type": items.s("email"),
            "state": items.s("claimed"),
            "token": items.s(token),
            "lease_until": items.n(lease_until),
            "expires_at": items.n(expires_at),
        }
        try:
            self._transact(
                [
                    self._put(
                        item,
                        "attribute_not_exists(PK) OR (#state = :claimed AND lease_until < :now)",
                        {":claimed": items.s("claimed"), ":now": items.n(now)},
                        {"#state": "state"},
                    )
                ]
            )
        except Conflict:
            return False
        return True

    def email_claim(self, account_id: str, event_id: str, user_id: str) -> EmailClaim | None:
        item = self._get(keys.key(keys.account_pk(account_id), keys.email_sk(event_id, user_id)))
        if item is None:
            return None
        return EmailClaim(
            state=items.req_s(item, "state"),
            token=items.get_s(item, "token") or "",
            lease_until=items.get_n(item, "lease_until"),
        )

    def mark_email_sent(
        self,
        account_id: str,
        event_id: str,
        user_id: str,
        *,
        token: str,
        message_id: str,
        at: datetime,
    ) -> bool:
        """The email went out: its marker `sent` for good (False when the claim was lost)."""
        return self._update_claim(
            account_id,
            event_id,
            user_id,
            token,
            "SET #state = :sent, message_id = :message, sent_at = :at REMOVE lease_until",
            {":sent": items.s("sent"), ":message": items.s(message_id), ":at": items.t(at)},
        )

    def release_email(self, account_id: str, event_id: str, user_id: str, *, token: str) -> None:
        """SES refused or failed: the claim is removed so that a retry can send."""
        try:
            self._transact(
                [
                    {
                        "Delete": {
                            "TableName": self.table_name,
                            "Key": keys.key(
                                keys.account_pk(account_id), keys.email_sk(event_id, user_id)
                            ),
                            "ConditionExpression": "#token = :token AND #state = :claimed",
                            "ExpressionAttributeNames": {"#token": "token", "#state": "state"},
                            "ExpressionAttributeValues": {
                                ":token": items.s(token),
                                ":claimed": items.s("claimed"),
                            },
                        }
                    }
                ]
            )
        except Conflict:
            return  # taken over meanwhile: the other sender owns it

    def _update_claim(
        self,
        account_id: str,
        event_id: str,
        user_id: str,
        token: str,
        expression: str,
        values: dict[str, Any],
    ) -> bool:
        update = {
            "Update": {
                "TableName": self.table_name,
                "Key": keys.key(keys.account_pk(account_id), keys.email_sk(event_id, user_id)),
                "UpdateExpression": expression,
                "ConditionExpression": "#token = :token",
                "ExpressionAttributeNames": {"#token": "token", "#state": "state"},
                "ExpressionAttributeValues": {**values, ":token": items.s(token)},
            }
        }
        try:
            self._transact([update])
        except Conflict:
            return False
        return True

    def mark_published(self, account_id: str, event_id: str, at: datetime) -> bool:
        """Record that an outbox event went out; False when it already had (a redelivery)."""
        return self._update_once(
            keys.key(keys.account_pk(account_id), keys.outbox_sk(event_id)),
            "SET published_at = :at",
            "attribute_exists(PK) AND attribute_not_exists(published_at)",
            {":at": items.t(at)},
        )

    def published_among(self, events: Sequence[tuple[str, str]]) -> set[str]:
        """Which of these outbox rows, (account id, event id), are marked published: strongly
        consistent reads, 100 keys per BatchGetItem (its limit)."""
        wanted = [
            keys.key(keys.account_pk(account), keys.outbox_sk(event)) for account, event in events
        ]
        return {
            keys.event_id_of(item["SK"]["S"])
            for item in self._batch_get(wanted, ProjectionExpression="SK, published_at")
            if "published_at" in item
        }

    def unpublished_outbox(self, before: datetime) -> list[dict[str, Any]]:
        """The outbox rows not marked published and written before `before`, in DynamoDB JSON
        (a stream record's `NewImage`), each account's in the order they were written. A scan:
        the outbox has no index of its own, and this runs only after an incident (the runbook's
        republish; rows expire after 7 days)."""
        rows: list[dict[str, Any]] = []
        scan: dict[str, Any] = {
            "TableName": self.table_name,
            "FilterExpression": "begins_with(SK, :outbox) AND attribute_not_exists(published_at)",
            "ExpressionAttributeValues": {":outbox": items.s(keys.OUTBOX_PREFIX)},
            "ConsistentRead": True,
        }
        for page in self.client.get_paginator("scan").paginate(**scan):
            rows += [row for row in page["Items"] if items.req_t(row, "at") < before]
        # Per account, in the order they happened (the sort key breaks ties, as the stream would).
        rows.sort(key=lambda row: (row["PK"]["S"], items.req_t(row, "at"), row["SK"]["S"]))
        return rows

    def webhook_event_seen(self, event_id: str) -> bool:
        return self._get(keys.stripe_event_key(event_id)) is not None

    def record_webhook_event(self, event_id: str, event_type: str, at: datetime) -> bool:
        """Remember a processed Stripe event for 35 days (Stripe resends for up to 30); False
        when it was already recorded."""
        item = {
            **keys.stripe_event_key(event_id),
            "type": items.s("stripe_event"),
            "event_type": items.s(event_type),
            "processed_at": items.t(at),
            "expires_at": items.n(int((at + WEBHOOK_EVENT_RETENTION).timestamp())),
        }
        try:
            self._transact([self._put(item, "attribute_not_exists(PK)")])
        except Conflict:
            return False
        return True

    def add_history(
        self, account_id: str, integration_id: str, entry: HistoryEntry, unique: str
    ) -> None:
        """One history line outside a state change (a payment event), written once per `unique`."""
        pk = keys.account_pk(account_id)
        try:
            self._transact(
                self._line_puts(pk, [(keys.history_sk(integration_id, entry.at, unique), entry)])
            )
        except Conflict:
            return

"""The store's reads of an account's partition: the account, its integrations (one or a page),
their history, the account's activity, quotes; and the two account writes outside a decision."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NamedTuple

from lifecycle.rules.model import Account, HistoryEntry, Integration, Status
from lifecycle.rules.quotes import Quote
from lifecycle.store import items, keys
from lifecycle.store.items import Item
from lifecycle.store.table import Table

QUOTE_RETENTION = timedelta(days=1)


class Loaded(NamedTuple):
    account: Account | None
    integration: Integration | None
    settings: dict[str, Any] | None
    quote: Quote | None
    # How many receipt numbers the account has issued (its counter), when asked for: a hint
    # for the settle transaction that takes the next one, saving a round trip (the counter's
    # write is conditional on it, so a stale hint is a retried race, never a wrong number).
    receipts_issued: int | None = None


@dataclass(frozen=True, slots=True)
class Page:
    account: Account | None
    integrations: tuple[Integration, ...]
    # The id the next page starts after (None: this was the last page). Ids, not keys: the
    # caller never names a sort key (lifecycle.usecases.cursors makes the API's cursors from it).
    last_id: str | None


class Accounts(Table):
    """Accounts, integrations and quotes."""

    def get_account(self, account_id: str) -> Account | None:
        item = self._get(keys.key(keys.account_pk(account_id), keys.ACCOUNT_SK))
        return items.account_from(item) if item else None

    def create_account(self, account: Account) -> None:
        """Put a new account; an existing one with that id is a Conflict, never overwritten."""
        item = {
            **keys.key(keys.account_pk(account.id), keys.ACCOUNT_SK),
            **items.account_attributes(account),
        }
        self._transact([self._put(item, "attribute_not_exists(PK)")])

    def set_customer(self, account_id: str, customer_id: str) -> bool:
        """Record the account's Stripe customer once: False when the account has one already
        (a concurrent request won; read it back) or does not exist. The version moves on, so
        a write decided from the account as it was before fails instead of dropping it."""
        return self._update_once(
            keys.key(keys.account_pk(account_id), keys.ACCOUNT_SK),
            "SET stripe_customer_id = :customer, version = version + :one",
            "attribute_exists(PK) AND attribute_not_exists(stripe_customer_id)",
            {":customer": items.s(customer_id), ":one": items.n(1)},
        )

    def get_integration(self, account_id: str, integration_id: str) -> Integration | None:
        """Strongly consistent read of one integration of `account_id` (None when absent)."""
        item = self._get(keys.key(keys.account_pk(account_id), keys.integration_sk(integration_id)))
        return items.integration_from(item) if item else None

    def load(
        self,
        account_id: str,
        integration_id: str | None = None,
        quote_id: str | None = None,
        *,
        receipts: bool = False,
    ) -> Loaded:
        """The account, one of its integrations with its settings, and a quote, in one round
        trip (a strongly consistent BatchGetItem). Absent items are None. `receipts`: the
        account's receipt counter too (`Loaded.receipts_issued`), for a payment about to settle."""
        pk = keys.account_pk(account_id)
        wanted = [keys.key(pk, keys.ACCOUNT_SK)]
        if receipts:
            wanted.append(keys.key(pk, keys.RECEIPTS_SK))
        if integration_id is not None:
            wanted += [
                keys.key(pk, keys.integration_sk(integration_id)),
                keys.key(pk, keys.settings_sk(integration_id)),
            ]
        if quote_id is not None:
            wanted.append(keys.key(pk, keys.quote_sk(quote_id)))
        found: dict[str, Item] = {item["SK"]["S"]: item for item in self._batch_get(wanted)}
        account_item = found.get(keys.ACCOUNT_SK)
        quote_item = found.get(keys.quote_sk(quote_id)) if quote_id else None
        integration_item = (
            found.get(keys.integration_sk(integration_id)) if integration_id else None
        )
        settings_item = found.get(keys.settings_sk(integration_id)) if integration_id else None
        return Loaded(
            account=items.account_from(account_item) if account_item else None,
            integration=items.integration_from(integration_item) if integration_item else None,
            settings=((items.get_j(settings_item, "document") if settings_item else None) or {})
            if integration_item
            else None,
            quote=items.quote_from(quote_item) if quote_item else None,
            receipts_issued=items.receipts_issued_from(found.get(keys.RECEIPTS_SK))
            if receipts
            else None,
        )

    def list_integrations(
        self,
        account_id: str,
        *,
        limit: int = 50,
        after: str | None = None,
        status: Status | None = None,
    ) -> Page:
        """One page of the account's integrations, oldest first (ids are time-ordered), after
        the integration `after` when given.

        The first page also reads the account item (it sorts just before the integrations):
        one query. A later page reads the account with a GetItem beside its query.
        """
        pk = keys.account_pk(account_id)
        values: dict[str, Any] = {
            ":pk": items.s(pk),
            ":low": items.s(keys.ACCOUNT_SK if after is None else keys.INTEGRATION_PREFIX),
            ":high": items.s(keys.INTEGRATION_PREFIX + "\uffff"),
        }
        query: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "PK = :pk AND SK BETWEEN :low AND :high",
            "ExpressionAttributeValues": values,
            "ConsistentRead": True,
            # One more than asked for on the first page: the account item comes first.
            "Limit": limit + (1 if after is None else 0),
        }
        if status is not None:
            query["FilterExpression"] = "#status = :status OR #type = :account"
            query["ExpressionAttributeNames"] = {"#status": "status", "#type": "type"}
            values[":status"] = items.s(status.value)
            values[":account"] = items.s("account")
        if after is not None:
            query["ExclusiveStartKey"] = keys.key(pk, keys.integration_sk(after))
        account: Account | None = None
        found: list[Integration] = []
        while True:
            response = self.client.query(**query)
            self.counter.record("Query", response.get("ScannedCount", 0))
            for item in response["Items"]:
                if item["SK"]["S"] == keys.ACCOUNT_SK:
                    account = items.account_from(item)
                else:
                    found.append(items.integration_from(item))
            last = response.get("LastEvaluatedKey")
            if not last or len(found) >= limit:
                break
            # A status filter can leave a page short: read on until it is full.
            query["ExclusiveStartKey"] = last
            query["Limit"] = limit - len(found)
        if len(found) > limit:
            found = found[:limit]
            last = keys.key(pk, keys.integration_sk(found[-1].id))
        last_id = None
        if last and last["SK"]["S"] != keys.ACCOUNT_SK:
            last_id = keys.integration_of(last["SK"]["S"])
        if after is not None:
            account = self.get_account(account_id)
        return Page(account=account, integrations=tuple(found), last_id=last_id)

    def all_integrations(self, account_id: str) -> list[Integration]:
        """Every integration of the account (account-level actions need the whole set)."""
        result: list[Integration] = []
        after = None
        while True:
            page = self.list_integrations(account_id, limit=100, after=after)
            result.extend(page.integrations)
            after = page.last_id
            if after is None:
                return result

    def history(self, account_id: str, integration_id: str) -> list[HistoryEntry]:
        """The integration's history, oldest first."""
        return [
            items.history_from(item)
            for item in self._query_prefix(
                keys.account_pk(account_id), keys.history_prefix(integration_id)
            )
        ]

    def activity(self, account_id: str) -> list[HistoryEntry]:
        """The account's activity (tombstones of deleted integrations included), oldest first."""
        return [
            items.history_from(item)
            for item in self._query_prefix(keys.account_pk(account_id), keys.ACTIVITY_PREFIX)
        ]

    def put_quote(self, quote: Quote) -> None:
        expires = int((quote.expires_at + QUOTE_RETENTION).timestamp())
        item = {
            **keys.key(keys.account_pk(quote.account_id), keys.quote_sk(quote.id)),
            **items.quote_attributes(quote, expires),
        }
        self._transact([self._put(item, "attribute_not_exists(PK)")])

    def get_quote(self, account_id: str, quote_id: str) -> Quote | None:
        item = self._get(keys.key(keys.account_pk(account_id), keys.quote_sk(quote_id)))
        return items.quote_from(item) if item else None

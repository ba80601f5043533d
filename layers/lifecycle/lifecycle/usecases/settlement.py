"""The account side of an integration leaving the billable set (one definition for the API and
the sweeps)."""

from __future__ import annotations

from datetime import datetime

from lifecycle.rules.account import settle
from lifecycle.rules.model import Account, AccountDecision, AccountStatus, Actor, Decision
from lifecycle.usecases.services import Services


def account_settlement(
    services: Services, account: Account, decision: Decision, now: datetime, actor: Actor
) -> AccountDecision | None:
    """A cancelling account whose last billable integration stops becomes disabled, in the same
    transaction as the stop (the account's version serialises concurrent stops)."""
    before, after = decision.before, decision.after
    if account.status is not AccountStatus.CANCEL_PENDING or before is None or not before.billable:
        return None
    if after is not None and after.billable:
        return None
    others = [
        i for i in services.store.all_integrations(account.id) if i.id != before.id and i.billable
    ]
    return settle(account, len(others), now, actor)

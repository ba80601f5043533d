"""The recipients port: who gets an account's emails. ONE function, `recipients`, is what the
notifier calls; the account's users come from the users directory's table rows
(`lifecycle.usecases.users.recipients`)."""

from __future__ import annotations

from typing import NamedTuple

from lifecycle.usecases import users
from lifecycle.usecases.services import Services


class Recipient(NamedTuple):
    user_id: str
    email: str


def recipients(services: Services, account_id: str, billing_only: bool) -> list[Recipient]:
    """The account's users (with billing access only, when `billing_only`), each once, in a
    stable order (by user id); removed users never."""
    found = {
        user_id: Recipient(user_id, email)
        for user_id, email in users.recipients(services, account_id, billing_only)
    }
    return [found[user_id] for user_id in sorted(found)]


def domain_of(email: str) -> str:
    """What of an address may be logged: its domain (never the address)."""
    return email.rpartition("@")[2][:100] or "unknown"

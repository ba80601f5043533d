"""The recipients port: who gets an account's emails. ONE function, `recipients`, is what the
notifier calls; everything else here is the stand-in behind it.

The users directory arrives with the users issue (Cognito, `lifecycle.usecases.users`). Until
then the port reads the account's contacts from the table (`CONTACT#` items: the local stack
writes one for `POST /_local/accounts {"email"}`, and `POST /_local/accounts/{id}/users` adds
more). Switching is one change, here:

    def recipients(services, account_id, billing_only):
        from lifecycle.usecases import users
        return [Recipient(u, e) for u, e in users.recipients(services, account_id, billing_only)]
"""

from __future__ import annotations

from typing import NamedTuple

from lifecycle.usecases.services import Services


class Recipient(NamedTuple):
    user_id: str
    email: str


def recipients(services: Services, account_id: str, billing_only: bool) -> list[Recipient]:
    """The account's users (with billing access only, when `billing_only`), each once, in a
    stable order (by user id)."""
    found = {
        contact.user_id: Recipient(contact.user_id, contact.email)
        for contact in services.store.contacts(account_id)
        if contact.billing_access or not billing_only
    }
    return [found[user_id] for user_id in sorted(found)]


def domain_of(email: str) -> str:
    """What of an address may be logged: its domain (never the address)."""
    return email.rpartition("@")[2][:100] or "unknown"

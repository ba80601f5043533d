"""Who is calling, as the use cases see it: an account, a user, and whether they have billing
access (read from the token's claims by `lifecycle.http.caller`)."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

from lifecycle.rules.errors import BillingAccessRequired
from lifecycle.rules.model import Actor, user

# Set when an answer was produced with billing access: a stored answer is replayed only to a
# caller who has it still (api.md, idempotency).
billing_used: ContextVar[bool] = ContextVar("billing_used", default=False)


@dataclass(frozen=True, slots=True)
class Caller:
    account_id: str
    user_id: str
    billing_access: bool

    @property
    def actor(self) -> Actor:
        return user(self.user_id)

    def require_billing(self) -> None:
        if not self.billing_access:
            raise BillingAccessRequired(
                "This action moves money or changes the subscription: ask a user with billing"
                " access."
            )
        billing_used.set(True)

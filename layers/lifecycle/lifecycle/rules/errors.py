"""Domain errors: each has a stable `code`; the HTTP layer maps codes to statuses in one place."""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    """A refusal the caller can act on. `detail` says what to do; `extra` adds problem members."""

    code: ClassVar[str] = "domain_error"
    title: ClassVar[str] = "Request refused"
    retryable: ClassVar[bool] = False

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class BadRequest(DomainError):
    code = "bad_request"
    title = "Bad request"


class ValidationFailed(DomainError):
    code = "validation_error"
    title = "Validation failed"


class Unauthorized(DomainError):
    code = "unauthorized"
    title = "Unauthorized"


class InvalidCursor(DomainError):
    """A list cursor this API did not issue for the caller's account and that list."""

    code = "invalid_cursor"
    title = "Invalid cursor"


class NotFound(DomainError):
    code = "not_found"
    title = "Not found"


class BillingAccessRequired(DomainError):
    code = "billing_access_required"
    title = "Billing access required"


class InvalidTransition(DomainError):
    code = "invalid_transition"
    title = "Action not allowed in this state"


class AccountNotActive(DomainError):
    code = "account_not_active"
    title = "Account not active"


class QuoteRequired(DomainError):
    code = "quote_required"
    title = "Quote required"


class QuoteExpired(DomainError):
    code = "quote_expired"
    title = "Quote expired"


class QuoteStale(DomainError):
    code = "quote_stale"
    title = "Quote stale"


class Conflict(DomainError):
    code = "conflict"
    title = "Concurrent change"
    retryable = True


class PaymentFailed(DomainError):
    code = "payment_failed"
    title = "Payment failed"


class PaymentPending(DomainError):
    """The payment provider did not answer in time; nothing was applied, a retry is safe."""

    code = "payment_pending"
    title = "Payment not confirmed yet"
    retryable = True


class LastBillingUser(DomainError):
    """The change would leave the account without a user with billing access."""

    code = "last_billing_user"
    title = "Last billing user"


class UserExists(DomainError):
    """The email address is a user already: of this account, or of another (never said which)."""

    code = "user_exists"
    title = "User exists"


class TooLarge(DomainError):
    code = "too_large"
    title = "Request too large"

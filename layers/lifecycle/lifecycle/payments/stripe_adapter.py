"""Stripe behind the payments port: off-session PaymentIntents, reconciliation, refunds, the
customer's payment method (Checkout, the portal). Stripe's webhooks are checked in
`lifecycle.payments.stripe_webhooks`.

`stripe` and the Powertools parameters utility are imported inside the functions that use them:
importing `stripe` costs more than 100 ms, and most functions never talk to Stripe.
"""

from __future__ import annotations

import functools
import logging
import os
import random
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from lifecycle.payments.port import (
    CustomerState,
    PaymentOutcome,
    PaymentRequest,
    PaymentResult,
    PaymentsUnavailable,
    RefundRequest,
    RefundResult,
    SetupRequest,
    SetupResult,
)
from lifecycle.settings import secure_parameter

if TYPE_CHECKING:
    from stripe import PaymentIntent, Refund, StripeClient, StripeError
    from stripe.params import (
        CustomerCreateParams,
        CustomerUpdateParams,
        PaymentIntentCreateParams,
        PaymentIntentListParams,
    )
    from stripe.params.checkout import SessionCreateParams

# The API version stripe 16.1.0 was generated for; webhook endpoints must be set to the same.
STRIPE_API_VERSION = "2026-10-28.endive"
CONNECT_TIMEOUT_SECONDS = 2.0
READ_TIMEOUT_SECONDS = 8.0
# The SDK retries connection errors, 409 and 5xx itself, with the request's idempotency key.
# One retry: two tries of up to 10 s keep a call's worst case (`worst_case_call_seconds`) under
# the HTTP API's 30 s with a cold start to spare; a third would not (34.3 s). An outcome still
# unknown is safe: the ledger line stays pending and is reconciled.
MAX_NETWORK_RETRIES = 1
# The SDK does not retry 429; these retries sleep at most 0.4 + 0.8 + 1.6 = 2.8 s in all.
RATE_LIMIT_RETRIES = 3
RATE_LIMIT_FIRST_DELAY_SECONDS = 0.4
FAILURE_MESSAGE_MAX_LENGTH = 200
LIST_PAGE_SIZE = 100

logger = logging.getLogger(__name__)


class StripePayments:
    """The `Payments` port on Stripe. The key is `api_key`, else env `STRIPE_SECRET_KEY` (local),
    else the SSM SecureString named by env `STRIPE_SECRET_KEY_PARAM` (cached five minutes).
    Env `STRIPE_API_BASE` (or `api_base`) points the client at localstripe."""

    def __init__(self, api_key: str | None = None, *, api_base: str | None = None) -> None:
        self._api_key = api_key
        self._api_base = api_base or os.environ.get("STRIPE_API_BASE") or None
        self._client: StripeClient | None = None
        self._client_key: str | None = None

    def charge(self, request: PaymentRequest) -> PaymentResult:
        import stripe  # noqa: PLC0415 - lazy on purpose (module docstring)

        customer_id = request.customer_id
        if not customer_id:
            return _NO_CARD
        client = self._stripe()
        try:
            payment_method = _default_payment_method(client, customer_id)
            if payment_method is None:
                return _NO_CARD
            params: PaymentIntentCreateParams = {
                "amount": request.amount,
                "currency": request.currency,
                "customer": customer_id,
                "payment_method": payment_method,
                "off_session": True,
                "confirm": True,
                "description": request.description,
                "metadata": dict(request.metadata),
            }
            intent = _with_backoff(
                functools.partial(
                    client.v1.payment_intents.create,
                    params=params,
                    options={"idempotency_key": request.idempotency_key},
                )
            )
        except stripe.CardError as error:
            return _declined(error)
        except stripe.StripeError as error:
            if not _is_unavailable(error):
                raise
            # Stripe may or may not have charged: the caller records PENDING and reconciles
            # with `find` later, and never charges this again under a new key.
            logger.warning(
                "Stripe charge outcome unknown",
                extra={"error": type(error).__name__, "stripe_request_id": error.request_id},
            )
            return PaymentResult(PaymentOutcome.PENDING)
        return _result(intent)

    def find(self, *, customer_id: str, charge_id: str) -> PaymentResult | None:
        """Lists the customer's PaymentIntents rather than searching them: search is eventually
        consistent (up to a minute behind, more during incidents) and localstripe has none."""
        import stripe  # noqa: PLC0415 - lazy on purpose (module docstring)

        if not customer_id:
            return None  # without a customer nothing can have been charged
        client = self._stripe()
        found: list[PaymentResult] = []
        params: PaymentIntentListParams = {"customer": customer_id, "limit": LIST_PAGE_SIZE}
        try:
            while True:
                page = _with_backoff(functools.partial(client.v1.payment_intents.list, params))
                found += [
                    _result(intent)
                    for intent in page.data
                    if _metadata(intent, "charge_id") == charge_id
                ]
                if not page.has_more or not page.data:
                    break
                params = {**params, "starting_after": page.data[-1].id}
        except stripe.StripeError as error:
            if _is_unavailable(error):
                raise PaymentsUnavailable(type(error).__name__) from error
            raise
        if not found:
            return None
        # Normally one; a retry made after Stripe forgot the idempotency key (24 h) can leave
        # two. Money taken wins over money in flight, which wins over a decline.
        return min(found, key=lambda result: _RECONCILE_ORDER[result.outcome])

    def payment_metadata(self, payment_intent_id: str) -> Mapping[str, str] | None:
        import stripe  # noqa: PLC0415 - lazy on purpose (module docstring)

        client = self._stripe()
        try:
            intent = _with_backoff(
                functools.partial(client.v1.payment_intents.retrieve, payment_intent_id)
            )
        except stripe.InvalidRequestError:
            return None  # not a PaymentIntent of this account
        except stripe.StripeError as error:
            if _is_unavailable(error):
                raise PaymentsUnavailable(type(error).__name__) from error
            raise
        keys = ("account_id", "charge_id", "ledger_key", "integration_ids", "kind")
        found = {key: value for key in keys if (value := _metadata(intent, key)) is not None}
        return found or None

    def refund(self, request: RefundRequest) -> RefundResult:
        """Refund a PaymentIntent through the Refunds API, keyed so that a retry within Stripe's
        24 hours is the same refund; the caller's ledger covers the rest (`find_refund`)."""
        import stripe  # noqa: PLC0415 - lazy on purpose (module docstring)

        client = self._stripe()
        try:
            refund = _with_backoff(
                functools.partial(
                    client.v1.refunds.create,
                    params={
                        "payment_intent": request.payment_intent_id,
                        "amount": request.amount,
                        "metadata": dict(request.metadata),
                    },
                    options={"idempotency_key": request.idempotency_key},
                )
            )
        except stripe.InvalidRequestError:
            # Already refunded in full (by us before a crash, or at Stripe): say which refund.
            found = self.find_refund(payment_intent_id=request.payment_intent_id)
            return found if found is not None else RefundResult(PaymentOutcome.FAILED)
        except stripe.StripeError as error:
            if _is_unavailable(error):
                raise PaymentsUnavailable(type(error).__name__) from error
            raise
        return _refund_result(refund)

    def find_refund(self, *, payment_intent_id: str) -> RefundResult | None:
        import stripe  # noqa: PLC0415 - lazy on purpose (module docstring)

        client = self._stripe()
        try:
            page = _with_backoff(
                functools.partial(
                    client.v1.refunds.list,
                    params={"payment_intent": payment_intent_id, "limit": LIST_PAGE_SIZE},
                )
            )
        except stripe.StripeError as error:
            if _is_unavailable(error):
                raise PaymentsUnavailable(type(error).__name__) from error
            raise
        found = [_refund_result(refund) for refund in page.data]
        kept = [result for result in found if result.outcome is not PaymentOutcome.FAILED]
        return kept[0] if kept else None

    def billing_portal_url(self, *, customer_id: str, return_url: str) -> str:
        import stripe  # noqa: PLC0415 - lazy on purpose (module docstring)

        if not customer_id:
            raise ValueError("a billing portal session needs a Stripe customer")
        client = self._stripe()
        try:
            session = _with_backoff(
                functools.partial(
                    client.v1.billing_portal.sessions.create,
                    params={"customer": customer_id, "return_url": return_url},
                )
            )
        except stripe.StripeError as error:
            if _is_unavailable(error):
                raise PaymentsUnavailable(type(error).__name__) from error
            raise
        return session.url

    def create_customer(self, *, account_id: str, idempotency_key: str) -> str:
        params: CustomerCreateParams = {
            "metadata": {"account_id": account_id},
            "description": f"Account {account_id}",
        }
        customer = self._call(
            lambda client: client.v1.customers.create(
                params=params, options={"idempotency_key": idempotency_key}
            )
        )
        return customer.id

    def setup_session_url(self, request: SetupRequest) -> str:
        """A Checkout Session in setup mode for the customer: Checkout attaches the card it
        collects to the customer (not as the default: the webhook makes it that). Setup mode
        with dynamic payment methods needs the currency. The account id is on the session and
        its SetupIntent, to check the webhook against, never to look the account up by."""
        account_id = request.account_id
        params: SessionCreateParams = {
            "mode": "setup",
            "customer": request.customer_id,
            "currency": request.currency,
            "client_reference_id": account_id,
            "metadata": {"account_id": account_id},
            "setup_intent_data": {"metadata": {"account_id": account_id}},
            "success_url": request.success_url,
            "cancel_url": request.cancel_url,
        }
        session = self._call(lambda client: client.v1.checkout.sessions.create(params=params))
        if not session.url:
            raise PaymentsUnavailable("the Checkout Session has no URL")
        return session.url

    def setup_result(self, setup_intent_id: str) -> SetupResult | None:
        import stripe  # noqa: PLC0415 - lazy on purpose (module docstring)

        try:
            intent = self._call(lambda client: client.v1.setup_intents.retrieve(setup_intent_id))
        except stripe.InvalidRequestError:
            return None
        return SetupResult(
            setup_intent_id=intent.id,
            status=intent.status,
            customer_id=_id_of(intent.customer),
            payment_method=_id_of(intent.payment_method),
        )

    def set_default_payment_method(self, *, customer_id: str, payment_method_id: str) -> None:
        params: CustomerUpdateParams = {
            "invoice_settings": {"default_payment_method": payment_method_id}
        }
        self._call(lambda client: client.v1.customers.update(customer_id, params))

    def customer_state(self, customer_id: str) -> CustomerState | None:
        import stripe  # noqa: PLC0415 - lazy on purpose (module docstring)

        try:
            customer = self._call(lambda client: client.v1.customers.retrieve(customer_id))
        except stripe.InvalidRequestError:
            return None
        if "deleted" in customer and customer.deleted:
            return CustomerState(customer_id, None, None, deleted=True)
        metadata = customer.metadata if "metadata" in customer else None
        account_id = metadata["account_id"] if metadata and "account_id" in metadata else None
        settings = customer.invoice_settings if "invoice_settings" in customer else None
        default = settings.default_payment_method if settings is not None else None
        return CustomerState(
            customer_id=customer.id,
            account_id=str(account_id) if account_id else None,
            default_payment_method=_id_of(default),
        )

    def _call[T](self, call: Callable[[StripeClient], T]) -> T:
        """`call` with the client, retried on 429; Stripe unreachable or failing is
        PaymentsUnavailable (the caller answers 503, Stripe's webhook retries)."""
        import stripe  # noqa: PLC0415 - lazy on purpose (module docstring)

        client = self._stripe()
        try:
            return _with_backoff(functools.partial(call, client))
        except stripe.StripeError as error:
            if _is_unavailable(error):
                raise PaymentsUnavailable(type(error).__name__) from error
            raise

    def _stripe(self) -> StripeClient:
        """One client per key; rebuilt when the key in Parameter Store changes (rotation)."""
        key = self._secret_key()
        if self._client is None or key != self._client_key:
            import stripe  # noqa: PLC0415 - lazy on purpose (module docstring)

            self._client = stripe.StripeClient(
                key,
                stripe_version=STRIPE_API_VERSION,
                base_addresses={"api": self._api_base} if self._api_base else None,
                max_network_retries=MAX_NETWORK_RETRIES,
                http_client=stripe.RequestsClient(
                    timeout=(CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS)
                ),
            )
            self._client_key = key
        return self._client

    def _secret_key(self) -> str:
        if self._api_key:
            return self._api_key
        local = os.environ.get("STRIPE_SECRET_KEY")
        if local:
            return local
        name = os.environ.get("STRIPE_SECRET_KEY_PARAM")
        if not name:
            raise RuntimeError("no Stripe key: set STRIPE_SECRET_KEY_PARAM (or STRIPE_SECRET_KEY)")
        return secure_parameter(name)


def worst_case_call_seconds() -> float:
    """The longest one Stripe call can take here: every try of the SDK waits out its connect and
    read timeouts, the SDK sleeps its longest backoff between them, and before the last one
    `_with_backoff` has slept through its 429 retries (answered at once: a slow answer is a
    timeout). The functions that call Stripe have a timeout above it (template.yaml; checked by
    tests/unit/test_template_operations.py)."""
    from stripe._http_client import HTTPClient  # noqa: PLC0415 - lazy on purpose (module docstring)

    tries = 1 + MAX_NETWORK_RETRIES
    first, most = float(HTTPClient.INITIAL_DELAY), float(HTTPClient.MAX_DELAY)
    sdk_sleeps = sum(max(first, min(first * 2.0 ** (n - 1), most)) for n in range(1, tries))
    rate_limit_sleeps = sum(
        RATE_LIMIT_FIRST_DELAY_SECONDS * 2.0**n for n in range(RATE_LIMIT_RETRIES)
    )
    return tries * (CONNECT_TIMEOUT_SECONDS + READ_TIMEOUT_SECONDS) + sdk_sleeps + rate_limit_sleeps


_NO_CARD = PaymentResult(
    PaymentOutcome.FAILED,
    failure_message="The customer has no card on file.",
    failure_code="no_payment_method",
)
_RECONCILE_ORDER = {
    PaymentOutcome.SUCCEEDED: 0,
    PaymentOutcome.PENDING: 1,
    PaymentOutcome.FAILED: 2,
}
_NEEDS_THE_CUSTOMER = {
    "requires_action": (
        "The payment needs the customer to authenticate.",
        "authentication_required",
    ),
    "requires_payment_method": ("The payment method was declined.", "card_declined"),
    "requires_confirmation": ("The payment was not confirmed.", "not_confirmed"),
    "canceled": ("The payment was canceled.", "canceled"),
}


def _default_payment_method(client: StripeClient, customer_id: str) -> str | None:
    """The customer's default payment method, else their first card; None when they have none."""
    customer = _with_backoff(functools.partial(client.v1.customers.retrieve, customer_id))
    if "deleted" in customer and customer.deleted:
        return None
    settings = customer.invoice_settings if "invoice_settings" in customer else None
    default = settings.default_payment_method if settings is not None else None
    if isinstance(default, str):
        if default:
            return default
    elif default is not None:
        return default.id  # expanded PaymentMethod
    cards = _with_backoff(
        functools.partial(
            client.v1.payment_methods.list,
            params={"customer": customer_id, "type": "card", "limit": 1},
        )
    )
    return cards.data[0].id if cards.data else None


def _result(intent: PaymentIntent) -> PaymentResult:
    status = intent.status
    if status == "succeeded":
        return PaymentResult(PaymentOutcome.SUCCEEDED, intent.id)
    if status in _NEEDS_THE_CUSTOMER:
        message, code = _NEEDS_THE_CUSTOMER[status]
        error = intent.last_payment_error
        if error is not None:
            message = error.message or message
            code = error.code or code
        return PaymentResult(PaymentOutcome.FAILED, intent.id, _short(message), code)
    # `processing` (and anything newer): Stripe has not decided yet; its webhook will tell.
    return PaymentResult(PaymentOutcome.PENDING, intent.id)


def _refund_result(refund: Refund) -> RefundResult:
    status = refund.status or "pending"
    if status == "succeeded":
        outcome = PaymentOutcome.SUCCEEDED
    elif status in ("failed", "canceled"):
        outcome = PaymentOutcome.FAILED
    else:  # pending, requires_action: accepted, on its way back
        outcome = PaymentOutcome.PENDING
    return RefundResult(outcome, refund.id, refund.amount)


def _declined(error: StripeError) -> PaymentResult:
    """A card error: declined, expired, or needs authentication the customer is not here for.
    Stripe's message for these is meant for the cardholder and never holds card data."""
    details = error.error
    intent = details.payment_intent if details is not None else None
    return PaymentResult(
        PaymentOutcome.FAILED,
        intent.id if intent is not None else None,
        _short(error.user_message or "The card was declined."),
        error.code or "card_declined",
    )


def _is_unavailable(error: StripeError) -> bool:
    """Stripe could not be reached, was too busy, or failed: the outcome is unknown."""
    import stripe  # noqa: PLC0415 - lazy on purpose (module docstring)

    if isinstance(error, stripe.RateLimitError | stripe.APIConnectionError):
        return True
    # 409: the same idempotency key is still being processed by a concurrent request.
    status = error.http_status
    return isinstance(error, stripe.APIError) and (status is None or status == 409 or status >= 500)


def _with_backoff[T](call: Callable[[], T]) -> T:
    """`call`, retried on 429 with exponential backoff and jitter, then left to the caller."""
    import stripe  # noqa: PLC0415 - lazy on purpose (module docstring)

    delay = RATE_LIMIT_FIRST_DELAY_SECONDS
    for _ in range(RATE_LIMIT_RETRIES):
        try:
            return call()
        except stripe.RateLimitError:
            time.sleep(random.uniform(delay / 2, delay))  # noqa: S311 - jitter, not a secret
            delay *= 2
    return call()


def _id_of(value: Any) -> str | None:
    """An id from a field that is an id or an expanded object (or empty)."""
    if isinstance(value, str):
        return value or None
    found = getattr(value, "id", None)
    return found if isinstance(found, str) and found else None


def _metadata(intent: PaymentIntent, key: str) -> str | None:
    metadata = intent.metadata if "metadata" in intent else None
    return metadata[key] if metadata is not None and key in metadata else None


def _short(message: str) -> str:
    return message if len(message) <= FAILURE_MESSAGE_MAX_LENGTH else message[:197] + "..."

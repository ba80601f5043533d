"""A `Stripe-Signature` header computed by hand, the way Stripe signs a webhook delivery."""

import hashlib
import hmac
import time


def stripe_signature(body: bytes, secret: str, at: int | None = None) -> str:
    """`t=<at>,v1=<HMAC-SHA256 of "<at>.<body>" under secret>`; `at` defaults to now."""
    at = int(time.time()) if at is None else at
    digest = hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={at},v1={digest}"

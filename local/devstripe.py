"""localstripe as `make dev` runs it: `local.localstripe`'s server (its patches, Stripe's
idempotency keys, data in a file), with webhooks sent `--webhook-delay` seconds after the request
instead of localstripe's fixed second.

The business clock waits for the webhooks of each schedule slot before running the next one
(Stripe delivers them within seconds, long before the next slot 15 minutes later): at a second a
slot, a month of integrations renewed at different times would take minutes. The order is kept:
localstripe still answers the request first, and the function URL runs the webhook only once the
invocation that charged is over (the stack runs one invocation at a time).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Coroutine
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from local.localstripe import serve

DEFAULT_DELAY_SECONDS = 0.05


def shorten_webhook_delay(delay: float) -> None:
    """localstripe's webhook sender sleeps one second before posting: make that `delay`."""
    from localstripe import webhooks  # type: ignore[import-untyped]  # noqa: PLC0415

    def sleep(seconds: float, result: Any = None) -> Coroutine[Any, Any, Any]:
        return asyncio.sleep(min(seconds, delay), result)

    # Only the webhook sender sleeps in that module; the rest of asyncio is untouched.
    webhooks.asyncio = SimpleNamespace(sleep=sleep, ensure_future=asyncio.ensure_future)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-file", type=Path, default=None)
    parser.add_argument("--webhook-delay", type=float, default=DEFAULT_DELAY_SECONDS)
    args = parser.parse_args(argv)
    shorten_webhook_delay(args.webhook_delay)
    serve(args.port, args.data_file, verbose=False, idempotency_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`make dev`: the whole system locally, in the foreground, until Ctrl-C or SIGTERM.

Starts `local.stack.Stack` (configured by the environment: `API_PORT`, `WEBHOOK_PORT`,
`DYNAMODB_PORT`, `STRIPE_PORT`, `LOCAL_DATA_DIR`, `AWS_ENDPOINT_URL_DYNAMODB`, `STRIPE_API_BASE`,
`LOCAL_SEED`), prints the URLs and a token, and stops every child on the first signal.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import traceback
from types import FrameType

from local.seed import DEMO_ACCOUNT
from local.stack import Config, Stack, StartupError

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


class _Stop(BaseException):
    """Raised in the main thread by the first SIGINT or SIGTERM (a BaseException, so that no
    `except Exception` on the way swallows it)."""


def main() -> int:
    signals = {"first": True}

    def request_stop(signum: int, frame: FrameType | None) -> None:
        # Later signals are ignored: the first one's clean-up must run to its end.
        if signals["first"]:
            signals["first"] = False
            raise _Stop

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    _stop_with_parent()
    config = Config.from_env()
    stack = Stack(config)
    print(f"Starting the local stack (data in {config.data_dir})...", flush=True)
    try:
        stack.start()
        _banner(stack)
        threading.Event().wait()
    except _Stop:
        pass
    except StartupError as error:
        print(f"The local stack could not start: {error}", file=sys.stderr, flush=True)
        return 1
    except Exception:
        traceback.print_exc()
        print("The local stack could not start (see above).", file=sys.stderr, flush=True)
        return 1
    finally:
        stack.say("Stopping...")
        stack.stop()
        print("Stopped.", flush=True)
    return 0


def _stop_with_parent() -> None:
    """Ask Linux for a SIGTERM when the parent (`make`) dies: a `kill` of make alone would
    otherwise leave the stack and its children running."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent is already gone
        os.kill(os.getpid(), signal.SIGTERM)


def _banner(stack: Stack) -> None:
    config = stack.config
    token, _ = stack.issuer.mint(DEMO_ACCOUNT, billing_access=True)
    api = config.api_url
    took = ", ".join(f"{part} {seconds:.1f} s" for part, seconds in stack.timings.items())
    lines = [
        f"Local stack ready in {stack.started_in:.1f} s ({took})"
        + (", demo seeded" if stack.seeded_demo else ""),
        "",
        f"  Dashboard           {api}/  (New account, or pick a user: member or billing)",
        f"  API                 {api}/v1/...",
        f"  Swagger UI          {api}/docs",
        f"  Local routes        {api}/_local/signup, /_local/tokens, /_local/clock, ...",
        f"  Stripe webhook URL  {config.webhook_url}",
        f"  DynamoDB            {stack.dynamodb_endpoint}{_storage(stack)}",
        f"  Stripe (localstripe) {stack.stripe_api_base}",
        f"  SQS, EventBridge, Cognito user pool  {stack.moto_endpoint} (moto)",
        f"  Business clock      {stack.clock.now().isoformat().replace('+00:00', 'Z')}",
        "",
        f"Token for {DEMO_ACCOUNT} (billing access, 12 h):",
        f"  export TOKEN={token}",
        f'  curl -s {api}/v1/integrations -H "Authorization: Bearer $TOKEN"',
        "",
        "Ctrl-C stops everything.",
    ]
    stack.say("\n".join(lines))


def _storage(stack: Stack) -> str:
    """Where DynamoDB Local keeps its data, and whether it syncs it."""
    server = stack.dynamodb_server
    if server is None or server.data_dir is None:
        return ""
    syncs = server.no_fsync() is None
    return f" (data in {server.data_dir}{'' if syncs else ', without fsync: eatmydata'})"


if __name__ == "__main__":
    sys.exit(main())

"""moto's server as `make dev` runs it (SQS, EventBridge and the Cognito user pool), with two
patches.

Speed: moto 5.2.5 checks the retention period of every message it hands out by computing all of
the queue's attributes, counting every message in the queue three times over: receiving ten
messages from a queue of n costs 30 n clock reads, and a renewal sweep enqueues one message per
integration due. The check here reads the queue's retention period directly, with the same
outcome.

Persistence: moto keeps everything in memory, and the user pool is the one part of the stack
that must outlive a restart of `make dev` (the accounts in DynamoDB Local name their users by
the pool's usernames). With `--cognito-data-file`, the pools are loaded from that file at start
and written back at most every half second after a cognito-idp request changed them (pickled,
as localstripe's data is; the pool's RSA key through its PEM form).
"""

from __future__ import annotations

import argparse
import copyreg
import io
import pickle
import sys
import threading
from pathlib import Path
from typing import Any

FLUSH_PERIOD_SECONDS = 0.5


def read_retention_directly() -> None:
    from moto.core.utils import unix_time  # noqa: PLC0415
    from moto.sqs.models import SQSBackend  # noqa: PLC0415

    def is_message_valid_based_on_retention_period(
        self: Any, queue_name: str, message: Any
    ) -> bool:
        retention = int(self.get_queue(queue_name).message_retention_period)
        return bool(retention + message.sent_timestamp / 1000 > unix_time())

    SQSBackend.is_message_valid_based_on_retention_period = (  # type: ignore[method-assign]
        is_message_valid_based_on_retention_period
    )


def _load_private_key(pem: bytes) -> Any:
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415

    return serialization.load_pem_private_key(pem, None)


def _reduce_private_key(key: Any) -> tuple[Any, tuple[bytes]]:
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415

    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return _load_private_key, (pem,)


def _pools() -> dict[tuple[str, str], Any]:
    from moto.cognitoidp.models import cognitoidp_backends  # noqa: PLC0415

    return {
        (account, region): backend.user_pools
        for account, regions in list(cognitoidp_backends.items())
        for region, backend in list(regions.items())
        if backend.user_pools
    }


def dump_pools(pools: dict[tuple[str, str], Any]) -> bytes:
    # The key's concrete class (the Rust binding's): a dispatch table names classes exactly.
    from cryptography.hazmat.bindings._rust import openssl  # noqa: PLC0415

    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = {
        **copyreg.dispatch_table,
        openssl.rsa.RSAPrivateKey: _reduce_private_key,
    }
    pickler.dump(pools)
    return buffer.getvalue()


def persist_cognito(path: Path) -> None:
    """Load the pools from `path`, and write them back after cognito-idp requests."""
    from moto.cognitoidp.models import cognitoidp_backends  # noqa: PLC0415
    from moto.cognitoidp.responses import CognitoIdpResponse  # noqa: PLC0415

    lock = threading.RLock()
    changed = threading.Event()
    if path.exists():
        with path.open("rb") as file:
            for (account, region), pools in pickle.load(file).items():  # noqa: S301 - ours
                cognitoidp_backends[account][region].user_pools = pools

    original = CognitoIdpResponse.call_action

    def call_action(self: Any) -> Any:
        with lock:
            try:
                return original(self)
            finally:
                changed.set()

    CognitoIdpResponse.call_action = call_action  # type: ignore[method-assign]

    def flush() -> None:
        while True:
            changed.wait()
            changed.clear()
            with lock:
                data = dump_pools(_pools())
            partial = path.with_suffix(path.suffix + ".partial")
            partial.write_bytes(data)
            partial.replace(path)
            threading.Event().wait(FLUSH_PERIOD_SECONDS)

    threading.Thread(target=flush, name="cognito-flush", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    from moto import server  # noqa: PLC0415

    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--cognito-data-file", type=Path, default=None)
    ours, rest = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    read_retention_directly()
    if ours.cognito_data_file is not None:
        persist_cognito(ours.cognito_data_file)
    server.main(rest)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""moto's server as `make dev` runs it (SQS and EventBridge), with one patch for speed.

moto 5.2.5 checks the retention period of every message it hands out by computing all of the
queue's attributes, counting every message in the queue three times over: receiving ten
messages from a queue of n costs 30 n clock reads, and a renewal sweep enqueues one message per
integration due. The check here reads the queue's retention period directly, with the same
outcome.
"""

from __future__ import annotations

import sys
from typing import Any


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


def main(argv: list[str] | None = None) -> int:
    from moto import server  # noqa: PLC0415

    read_retention_directly()
    server.main(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())

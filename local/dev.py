"""`make dev`: run the local stack in the foreground until Ctrl-C or SIGTERM.

For now: DynamoDB Local with data under `.local/ddb` and the tables of template.yaml. The
gateway, localstripe and the business clock join it as their issues land.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

import boto3

from local.dynamodb_local import DynamoDBLocal
from local.tables import create_tables
from local.template import ROOT

DATA = Path(os.environ.get("LOCAL_DATA_DIR", ROOT / ".local"))
TABLES = {"IntegrationsTable": "integrations", "IdempotencyTable": "idempotency"}


def main() -> int:
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    server = None
    endpoint = os.environ.get("AWS_ENDPOINT_URL_DYNAMODB")
    if not endpoint:
        port = int(os.environ.get("DYNAMODB_PORT", "8000"))
        server = DynamoDBLocal(port=port, data_dir=DATA / "ddb").start()
        endpoint = server.endpoint
        print(f"DynamoDB Local answered in {server.started_in:.1f} s", flush=True)
    try:
        client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")
        create_tables(client, TABLES)
        print(f"DynamoDB   {endpoint}  tables: {', '.join(TABLES.values())}", flush=True)
        print("Ctrl-C stops everything.", flush=True)
        stop.wait()
    finally:
        if server is not None:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

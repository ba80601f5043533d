"""The event publisher: outbox rows of DynamoDB Local to an EventBridge bus (moto), each once;
and the runbook's republish of the rows it never sent (ops/redrive.py, the EventsDLQ redrive).

DynamoDB is the real DynamoDB Local (its client is built by the session fixture, and moto lets
requests to a local endpoint through); only EventBridge and the SQS queue a rule on the bus
delivers to are moto's, so what reached the bus is read back from the queue.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from functions.event_publisher.app import lambda_handler
from lifecycle.clock import FixedClock
from lifecycle.observability import metrics
from lifecycle.payments.fake import FakePayments
from lifecycle.rules.calendar import format_instant, utc
from lifecycle.rules.catalog import DEFAULT_CATALOG
from lifecycle.rules.integration import Action, Command, NewIntegration, create, decide
from lifecycle.rules.model import AccountStatus, user
from lifecycle.settings import settings
from lifecycle.store.repository import Store
from lifecycle.usecases import publishing
from lifecycle.usecases.services import Services, use_services
from local.events import LambdaContext
from ops.redrive import republish_outbox
from tests.factories import CATALOG, T0, account

pytestmark = pytest.mark.integration

ALICE = user("alice")
PUBLISHED_AT = utc(2026, 11, 23, 9, 31)
STREAM_ARN = (
    "arn:aws:dynamodb:us-east-1:123456789012:table/integrations/stream/2026-11-01T00:00:00.000"
)
SAMPLE = Path(__file__).parents[2] / "events" / "dynamodb" / "outbox-insert.json"
_sequence = itertools.count(100_000_000_000_000_000_000)


# ---- EventBridge (moto), observed through an SQS queue a rule on the bus delivers to ----------


@dataclass
class Bus:
    """The moto bus; `put_events` goes through here so the calls can be counted."""

    client: Any
    sqs: Any
    queue_url: str
    calls: list[list[dict[str, Any]]] = field(default_factory=list)

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append(list(Entries))
        response: dict[str, Any] = self.client.put_events(Entries=Entries)
        return response

    def received(self) -> list[dict[str, Any]]:
        """Every event the rule delivered since the last look, in order."""
        events = []
        while True:
            messages = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10
            ).get("Messages", [])
            if not messages:
                return events
            for message in messages:
                events.append(json.loads(message["Body"]))
                self.sqs.delete_message(
                    QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"]
                )


@dataclass
class RejectingBus:
    """EventBridge answering `ErrorCode` for the entries at `reject` (0-based, counted over
    every entry sent) and passing the others to the moto bus, as a partial PutEvents failure."""

    bus: Bus
    reject: set[int]
    sent: int = 0

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.bus.calls.append(list(Entries))
        results = []
        for entry in Entries:
            if self.sent in self.reject:
                results.append({"ErrorCode": "InternalFailure", "ErrorMessage": "try again"})
            else:
                results.extend(self.bus.client.put_events(Entries=[entry])["Entries"])
            self.sent += 1
        failed = sum(1 for r in results if "ErrorCode" in r)
        return {"FailedEntryCount": failed, "Entries": results}


@dataclass
class ThrottledBus:
    """EventBridge refusing the whole PutEvents call number `call` (1-based) with throttling."""

    bus: Bus
    call: int

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.bus.calls.append(list(Entries))
        if len(self.bus.calls) == self.call:
            raise ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}},
                "PutEvents",
            )
        response: dict[str, Any] = self.bus.client.put_events(Entries=Entries)
        return response


@pytest.fixture
def bus(store: Store) -> Iterator[Bus]:
    """A moto bus named like the function's; the DynamoDB Local store was built before."""
    with mock_aws():
        events = boto3.client("events", region_name="us-east-1")
        sqs = boto3.client("sqs", region_name="us-east-1")
        name = settings().event_bus_name
        events.create_event_bus(Name=name)
        queue_url = sqs.create_queue(QueueName="sync-engine")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        events.put_rule(
            Name="sync-engine",
            EventBusName=name,
            EventPattern=json.dumps({"source": [publishing.SOURCE]}),
        )
        events.put_targets(
            Rule="sync-engine", EventBusName=name, Targets=[{"Id": "queue", "Arn": queue_arn}]
        )
        yield Bus(client=events, sqs=sqs, queue_url=queue_url)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(PUBLISHED_AT)


@pytest.fixture
def handler(
    store: Store, bus: Bus, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    """The Lambda handler with the test store and clock, sending through `bus`."""
    # The template sets POWERTOOLS_METRICS_NAMESPACE; Powertools read it when `metrics` was
    # built, at import, before any fixture could set it.
    monkeypatch.setattr(metrics.provider, "namespace", "Integrations")
    monkeypatch.setattr(publishing, "default_client", lambda: bus)
    use_services(
        Services(store=store, payments=FakePayments(), clock=clock, catalog=DEFAULT_CATALOG)
    )
    yield lambda event: lambda_handler(event, LambdaContext("event-publisher"))
    use_services(None)


# ---- outbox rows and their stream records --------------------------------------------------


def created(store: Store, integration_id: str, at=T0):
    decision = create(
        integration_id,
        account("acc_1"),
        NewIntegration("Acme Supply to Shopify", "acme-supply", "shopify", "standard"),
        at,
        ALICE,
        CATALOG,
    )
    store.commit(decision)
    return decision.after


def outbox_item(dynamodb_client, store: Store, event_id: str, account_id: str = "acc_1"):
    return dynamodb_client.get_item(
        TableName=store.table_name,
        Key={"PK": {"S": f"ACCOUNT#{account_id}"}, "SK": {"S": f"OUTBOX#{event_id}"}},
        ConsistentRead=True,
    )["Item"]


def stream_record(image: dict[str, Any], event_name: str = "INSERT") -> dict[str, Any]:
    """A record as Lambda delivers it from a NEW_IMAGE stream."""
    change: dict[str, Any] = {
        "ApproximateCreationDateTime": 1795341600,
        "Keys": {"PK": image["PK"], "SK": image["SK"]},
        "SequenceNumber": str(next(_sequence)),
        "SizeBytes": len(json.dumps(image)),
        "StreamViewType": "NEW_IMAGE",
    }
    if event_name != "REMOVE":  # a NEW_IMAGE stream has no image of a deleted item
        change["NewImage"] = image
    record: dict[str, Any] = {
        "eventID": uuid.uuid4().hex,
        "eventName": event_name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": change,
        "eventSourceARN": STREAM_ARN,
    }
    if event_name == "REMOVE":  # TTL expiry
        record["userIdentity"] = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    return record


def created_outbox(dynamodb_client, store: Store, count: int) -> list[dict[str, Any]]:
    """`count` integrations created in order; the stream records of their IntegrationCreated."""
    records = []
    for n in range(count):
        created(store, f"int_{n:02d}", T0 + timedelta(minutes=n))
        records.append(stream_record(outbox_item(dynamodb_client, store, f"int_{n:02d}:1:0")))
    return records


def published_at(
    dynamodb_client, store: Store, event_id: str, account_id: str = "acc_1"
) -> str | None:
    item = outbox_item(dynamodb_client, store, event_id, account_id)
    return item.get("published_at", {}).get("S")


def failures(response: dict[str, Any]) -> list[str]:
    return [f["itemIdentifier"] for f in response["batchItemFailures"]]


def sequence(record: dict[str, Any]) -> str:
    return str(record["dynamodb"]["SequenceNumber"])


# ---- behaviour -------------------------------------------------------------------------------


def test_a_committed_freeze_is_published_once_as_freeze_scheduled(
    store, dynamodb_client, bus, handler
):
    # Given an integration frozen by the rules and committed with its outbox row
    subject = created(store, "int_1")
    freeze = decide(
        subject,
        Command(Action.FREEZE, ALICE),
        utc(2026, 11, 23, 9, 30),
        account_status=AccountStatus.ACTIVE,
        catalog=CATALOG,
    )
    store.commit(freeze)
    item = outbox_item(dynamodb_client, store, "int_1:2:0")
    assert item["detail_type"] == {"S": "FreezeScheduled"}

    # When its stream record reaches the handler
    response = handler({"Records": [stream_record(item)]})

    # Then exactly one event is on the bus, and the row is marked published
    assert response == {"batchItemFailures": []}
    received = bus.received()
    assert len(received) == 1
    event = received[0]
    assert event["source"] == "integrations.lifecycle"
    assert event["detail-type"] == "FreezeScheduled"
    assert event["detail"] == {
        "event_id": "int_1:2:0",
        "account_id": "acc_1",
        "integration_id": "int_1",
        "sync_enabled": True,
        "at": "2026-11-23T09:30:00Z",
        "effective_at": "2026-12-21T10:00:00Z",
    }
    assert event["time"] == "2026-11-23T09:30:00Z"
    assert published_at(dynamodb_client, store, "int_1:2:0") == format_instant(PUBLISHED_AT)
    assert len(bus.calls) == 1


def test_a_batch_delivered_twice_publishes_each_event_once(store, dynamodb_client, bus, handler):
    # Given three new outbox rows
    batch = {"Records": created_outbox(dynamodb_client, store, 3)}

    # When Lambda delivers the same batch twice (a retry after a timeout, say)
    first = handler(batch)
    second = handler(batch)

    # Then the first delivery sends all three and the second sends nothing at all
    assert failures(first) == failures(second) == []
    assert [e["detail"]["event_id"] for e in bus.received()] == [
        "int_00:1:0",
        "int_01:1:0",
        "int_02:1:0",
    ]
    assert len(bus.calls) == 1


def test_25_records_go_out_in_3_put_events_calls_in_stream_order(
    store, dynamodb_client, bus, handler
):
    records = created_outbox(dynamodb_client, store, 25)

    response = handler({"Records": records})

    assert failures(response) == []
    assert [len(call) for call in bus.calls] == [10, 10, 5]
    expected = [f"int_{n:02d}:1:0" for n in range(25)]
    sent = [json.loads(e["Detail"])["event_id"] for call in bus.calls for e in call]
    assert sent == expected
    assert [e["detail"]["event_id"] for e in bus.received()] == expected
    assert all(published_at(dynamodb_client, store, event_id) for event_id in expected)


def test_a_rejected_entry_fails_its_record_and_every_later_one(
    store, dynamodb_client, bus, handler, monkeypatch
):
    # Given 25 records, EventBridge rejecting the 14th entry (the 4th of the second call)
    records = created_outbox(dynamodb_client, store, 25)
    monkeypatch.setattr(publishing, "default_client", lambda: RejectingBus(bus, reject={13}))

    response = handler({"Records": records})

    # Then the rejected record and every later one are reported, the earlier ones are out
    assert failures(response) == [sequence(r) for r in records[13:]]
    assert [len(call) for call in bus.calls] == [10, 10]  # nothing after the failed call
    assert all(published_at(dynamodb_client, store, f"int_{n:02d}:1:0") for n in range(13))
    assert published_at(dynamodb_client, store, "int_13:1:0") is None
    # The entries EventBridge accepted after the rejected one in that call are on the bus:
    # they are marked so that the retry does not send them a second time.
    assert all(published_at(dynamodb_client, store, f"int_{n:02d}:1:0") for n in range(14, 20))
    assert [e["detail"]["event_id"] for e in bus.received()] == [
        f"int_{n:02d}:1:0" for n in (*range(13), *range(14, 20))
    ]

    # When Lambda retries from the first failed sequence number, EventBridge accepting again
    monkeypatch.setattr(publishing, "default_client", lambda: bus)
    retry = handler({"Records": records[13:]})

    # Then what was missing goes out, and nothing twice
    assert failures(retry) == []
    assert [e["detail"]["event_id"] for e in bus.received()] == [
        f"int_{n:02d}:1:0" for n in (13, *range(20, 25))
    ]


def test_a_throttled_put_events_call_fails_its_records_and_every_later_one(
    store, dynamodb_client, bus, handler, monkeypatch
):
    records = created_outbox(dynamodb_client, store, 25)
    monkeypatch.setattr(publishing, "default_client", lambda: ThrottledBus(bus, call=2))

    response = handler({"Records": records})

    assert failures(response) == [sequence(r) for r in records[10:]]
    assert [len(call) for call in bus.calls] == [10, 10]
    assert [e["detail"]["event_id"] for e in bus.received()] == [
        f"int_{n:02d}:1:0" for n in range(10)
    ]
    assert published_at(dynamodb_client, store, "int_10:1:0") is None


def test_non_outbox_records_and_ttl_removals_are_ignored_not_failed(
    store, dynamodb_client, bus, handler
):
    # Given, around one outbox row: the integration's own row, a history line, the MODIFY of
    # the `published_at` mark of another outbox row, and the TTL removal of an old one
    created(store, "int_1")
    integration = dynamodb_client.get_item(
        TableName=store.table_name,
        Key={"PK": {"S": "ACCOUNT#acc_1"}, "SK": {"S": "ACCOUNT#INTEGRATION#int_1"}},
    )["Item"]
    outbox = outbox_item(dynamodb_client, store, "int_1:1:0")
    marked = {**outbox, "published_at": {"S": "2026-11-21T10:00:01Z"}}
    history = {"PK": outbox["PK"], "SK": {"S": "HISTORY#int_1#2026-11-21T10:00:00Z#1"}}
    old = {"PK": outbox["PK"], "SK": {"S": "OUTBOX#int_0:1:0"}}
    records = [
        stream_record(integration),
        stream_record(history),
        stream_record(outbox),
        stream_record(marked, "MODIFY"),
        stream_record(old, "REMOVE"),
    ]

    response = handler({"Records": records})

    assert failures(response) == []
    assert [e["detail"]["event_id"] for e in bus.received()] == ["int_1:1:0"]


def test_an_unreadable_outbox_record_fails_with_every_later_one(
    store, dynamodb_client, bus, handler
):
    records = created_outbox(dynamodb_client, store, 3)
    del records[1]["dynamodb"]["NewImage"]["detail_type"]

    response = handler({"Records": records})

    assert failures(response) == [sequence(r) for r in records[1:]]
    assert [e["detail"]["event_id"] for e in bus.received()] == ["int_00:1:0"]


def test_the_sample_event_publishes_its_two_outbox_rows_and_ignores_the_modify(
    store, dynamodb_client, bus, handler
):
    event = json.loads(SAMPLE.read_text())
    for record in event["Records"]:
        if record["eventName"] == "INSERT":
            dynamodb_client.put_item(
                TableName=store.table_name, Item=record["dynamodb"]["NewImage"]
            )

    response = handler(event)

    assert failures(response) == []
    assert [(e["detail-type"], e["detail"]["sync_enabled"]) for e in bus.received()] == [
        ("FreezeScheduled", True),
        ("IntegrationFrozen", False),
    ]
    assert published_at(dynamodb_client, store, "int_7Hq2:2:0", account_id="acc_42")
    assert published_at(dynamodb_client, store, "int_7Hq2:3:0", account_id="acc_42")


def test_a_lost_mark_does_not_fail_an_event_eventbridge_accepted(
    store, dynamodb_client, bus, handler, monkeypatch
):
    records = created_outbox(dynamodb_client, store, 2)

    def throttled(*args: object) -> bool:
        raise ClientError(
            {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}},
            "UpdateItem",
        )

    monkeypatch.setattr(store, "mark_published", throttled)

    response = handler({"Records": records})

    # Reporting them would make Lambda send both again for certain
    assert failures(response) == []
    assert len(bus.received()) == 2


def test_put_events_chunks_stay_under_the_request_size_limit():
    big = "x" * (100 * 1024)
    pending = [
        publishing.Outbound(n, "acc_1", f"e{n}", {}, size)
        for n, size in enumerate([len(big), len(big), 10, len(big), 5, 5])
    ]

    chunks = list(publishing.put_events_chunks(pending))

    assert [[o.position for o in chunk] for chunk in chunks] == [[0, 1, 2], [3, 4, 5]]
    assert all(sum(o.size for o in c) <= publishing.MAX_REQUEST_BYTES for c in chunks)


# ---- DynamoDB Local's own stream -------------------------------------------------------------


def lambda_shaped(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """A GetRecords record as Lambda would deliver it: Lambda adds `eventSourceARN` and writes
    `ApproximateCreationDateTime` as epoch seconds (boto3 parses it into a datetime)."""
    change = dict(record["dynamodb"])
    change["ApproximateCreationDateTime"] = int(change["ApproximateCreationDateTime"].timestamp())
    return {**record, "dynamodb": change, "eventSourceARN": stream_arn}


def read_stream(dynamodb_endpoint: str, dynamodb_client, table_name: str) -> list[dict[str, Any]]:
    streams = boto3.client("dynamodbstreams", endpoint_url=dynamodb_endpoint)
    arn = dynamodb_client.describe_table(TableName=table_name)["Table"]["LatestStreamArn"]
    records = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            page = streams.get_records(ShardIterator=iterator)
            records.extend(lambda_shaped(r, arn) for r in page["Records"])
            if not page["Records"]:
                break
            iterator = page.get("NextShardIterator")
    return records


def test_records_read_from_dynamodb_local_stream_publish_the_outbox_in_order(
    store, dynamodb_client, dynamodb_endpoint, table_names, handler, bus
):
    # Given a creation and a freeze committed: the stream holds every row they wrote
    subject = created(store, "int_1")
    store.commit(
        decide(
            subject,
            Command(Action.FREEZE, ALICE),
            utc(2026, 11, 23, 9, 30),
            account_status=AccountStatus.ACTIVE,
            catalog=CATALOG,
        )
    )
    records = read_stream(dynamodb_endpoint, dynamodb_client, table_names["IntegrationsTable"])
    assert {r["eventName"] for r in records} == {"INSERT", "MODIFY"}

    # When the whole stream, unfiltered, reaches the handler
    response = handler({"Records": records})

    # Then only the two outbox rows are published, in the order they were committed
    assert failures(response) == []
    assert [e["detail-type"] for e in bus.received()] == ["IntegrationCreated", "FreezeScheduled"]

    # And the marks it wrote come back on the stream as MODIFY records, which publish nothing
    again = read_stream(dynamodb_endpoint, dynamodb_client, table_names["IntegrationsTable"])
    marks = [r for r in again[len(records) :] if r["eventName"] == "MODIFY"]
    assert len(marks) == 2
    assert failures(handler({"Records": again})) == []
    assert bus.received() == []


# ---- the runbook's EventsDLQ redrive (ops/redrive.py) -----------------------------------------
# The dead-lettered stream pointers expire with the stream (24 hours): the outbox rows not
# marked published are sent again from the table, through the code above, in order, once.


def test_rows_the_publisher_never_sent_are_republished_in_order_once(
    store, dynamodb_client, bus, handler, clock
):
    # Given three creations: the first published as usual, the next two's stream records
    # dead-lettered (never sent), and one written a minute ago that the publisher may be on
    for n in range(3):
        created(store, f"int_{n:02d}", T0 + timedelta(minutes=n))
    assert handler({"Records": [stream_record(outbox_item(dynamodb_client, store, "int_00:1:0"))]})
    assert len(bus.received()) == 1
    created(store, "int_young", PUBLISHED_AT - timedelta(minutes=1))

    # When the runbook's republish runs
    result = republish_outbox(
        dynamodb_client, store.table_name, settings().event_bus_name, bus, clock
    )

    # Then the two unsent rows are on the bus in the order they were written, and marked
    assert (result.found, result.published, result.left) == (2, 2, 0)
    assert [e["detail"]["event_id"] for e in bus.received()] == ["int_01:1:0", "int_02:1:0"]
    for event_id in ("int_01:1:0", "int_02:1:0"):
        assert published_at(dynamodb_client, store, event_id) is not None
    assert published_at(dynamodb_client, store, "int_young:1:0") is None

    # And a second run finds nothing left to send
    again = republish_outbox(
        dynamodb_client, store.table_name, settings().event_bus_name, bus, clock
    )
    assert (again.found, again.published) == (0, 0)
    assert bus.received() == []


def test_a_dry_run_counts_and_sends_nothing(store, dynamodb_client, bus, clock):
    created(store, "int_01", T0)

    result = republish_outbox(
        dynamodb_client, store.table_name, settings().event_bus_name, bus, clock, dry_run=True
    )

    assert (result.found, result.published, result.left) == (1, 0, 1)
    assert bus.received() == []
    assert published_at(dynamodb_client, store, "int_01:1:0") is None

"""What AWS wires between the functions, run in-process by the local stack.

- the renewal worker's SQS event source (batches, `ReportBatchItemFailures`): `QueueSource`
  receives from the queue (moto), invokes the worker and deletes what it handled;
- the publisher's DynamoDB stream event source with its `FilterCriteria`: `StreamSource` reads
  the table's stream (DynamoDB Local) from a checkpoint, filters, invokes the publisher;
- a consumer of the domain event bus: `EventLog`, a rule on the bus (moto) to a queue, drained
  in order into a file;
- Stripe's webhook deliveries: `WebhookDeliveries` knows the events localstripe will send and
  those the function URL got.

Batch sizes, filters, retries and queue attributes are read from template.yaml.
"""

from __future__ import annotations

import base64
import json
import sys
import threading
import time
import traceback
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from local.events import ACCOUNT_ID, REGION, sqs_record
from local.gateway import Invoke
from local.runtime import concurrency_limits
from local.template import Function, evaluate, functions, resources

# A stream's shards are listed again after this long (or when one closes), not at every read.
SHARDS_MAX_AGE_SECONDS = 10.0

# ---------------------------------------------------------------- template look-ups


@dataclass(frozen=True, slots=True)
class EventSource:
    """An SQS or DynamoDB event of a function in template.yaml."""

    function: Function
    source: str  # logical id of the queue or table
    properties: Mapping[str, Any]


def event_sources(event_type: str) -> list[EventSource]:
    """Every `event_type` (`SQS`, `DynamoDB`) event source of every function."""
    found = []
    for function in functions().values():
        for event in (function.properties.get("Events") or {}).values():
            if event["Type"] != event_type:
                continue
            properties = event["Properties"]
            # RenewalsEnabled, the incident switch, at its default.
            if evaluate(properties.get("Enabled", True)) in (False, "false"):
                continue
            reference = properties.get("Queue") or properties.get("Stream")
            found.append(EventSource(function, _get_att_target(reference), properties))
    return found


def _get_att_target(reference: Any) -> str:
    if isinstance(reference, dict) and "Fn::GetAtt" in reference:
        return str(reference["Fn::GetAtt"][0])
    raise ValueError(f"expected !GetAtt <resource>.<attribute>, got {reference!r}")


def create_queues(sqs: Any, logical_ids: Iterable[str]) -> dict[str, tuple[str, str]]:
    """Create the `AWS::SQS::Queue`s of the template (and their dead-letter queues) with the
    template's attributes; logical id -> (url, arn)."""
    declared = resources("AWS::SQS::Queue")
    created: dict[str, tuple[str, str]] = {}

    def create(logical_id: str) -> tuple[str, str]:
        if logical_id in created:
            return created[logical_id]
        properties = declared[logical_id].get("Properties", {})
        attributes: dict[str, str] = {}
        for name in ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds"):
            if name in properties:
                attributes[name] = str(properties[name])
        redrive = properties.get("RedrivePolicy")
        if redrive:
            _, dead_letter_arn = create(_get_att_target(redrive["deadLetterTargetArn"]))
            attributes["RedrivePolicy"] = json.dumps(
                {
                    "deadLetterTargetArn": dead_letter_arn,
                    "maxReceiveCount": int(redrive["maxReceiveCount"]),
                }
            )
        url = sqs.create_queue(QueueName=logical_id, Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        created[logical_id] = (url, arn)
        return created[logical_id]

    for logical_id in logical_ids:
        create(logical_id)
    return created


# ---------------------------------------------------------------- SQS -> worker


def delete_messages(sqs: Any, url: str, messages: Sequence[Mapping[str, Any]]) -> None:
    """Delete received messages (at most 10, one receive's worth) in one call; none: no call."""
    if messages:
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                for index, message in enumerate(messages)
            ],
        )


def rule_queue(
    events: Any,
    sqs: Any,
    bus_name: str,
    *,
    rule: str,
    queue: str,
    pattern: Mapping[str, Any],
    target_id: str,
) -> str:
    """A rule on the bus (moto) whose target is a new queue; the queue's URL."""
    url: str = sqs.create_queue(QueueName=queue)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(
        Name=rule, EventBusName=bus_name, EventPattern=json.dumps(pattern), State="ENABLED"
    )
    # The event as EventBridge delivers it (`<aws.events.event.json>`): moto's default
    # transformer rebuilds it from ten JSONPath expressions, parsed anew for every event.
    target = {
        "Id": target_id,
        "Arn": arn,
        "InputTransformer": {
            "InputPathsMap": {"id": "$.id"},
            "InputTemplate": "<aws.events.event.json>",
        },
    }
    events.put_targets(Rule=rule, EventBusName=bus_name, Targets=[target])
    return url


def received_events(sqs: Any, url: str) -> Iterator[list[dict[str, Any]]]:
    """The events a rule's queue holds, a receive's worth (at most 10) at a time, until it is
    empty. A batch's messages are deleted once the caller asks for the next batch (an error
    while it handles them leaves them on the queue)."""
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages")
        if not messages:
            return
        events = [json.loads(message["Body"]) for message in messages]
        for event in events:
            event.pop("ingestion-time", None)  # moto's own
        yield events
        delete_messages(sqs, url, messages)


class QueueSource:
    """An SQS event source (the renewal worker's): batches of the template's BatchSize,
    handled messages deleted, the ones the worker reports failed left to come back after their
    visibility timeout (and to the dead-letter queue after maxReceiveCount), as on AWS."""

    def __init__(self, sqs: Any, url: str, arn: str, source: EventSource, invoke: Invoke) -> None:
        self.sqs = sqs
        self.invoke = invoke
        self.url = url
        self.arn = arn
        self.function = source.function.logical_id
        self.batch_size = int(source.properties.get("BatchSize", 10))
        # Lambda's poller runs up to MaximumConcurrency batches at once (the local runtime
        # gives the function as many execution environments).
        limit = concurrency_limits().get(self.function, 1)
        self.concurrency = max(1, limit)

    def drain(self) -> int:
        """Hand every visible message to the worker, batch by batch, up to `concurrency`
        batches at once, until none is left; the number of messages handled."""
        first = self._receive()
        if not first:
            return 0
        if self.concurrency == 1:
            return self._drain_from(first)
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="sqs-poller") as pool:
            pollers = [pool.submit(self._drain_from, first)]
            pollers += [pool.submit(self._drain_from, None) for _ in range(self.concurrency - 1)]
            return sum(poller.result() for poller in pollers)

    def _drain_from(self, messages: list[dict[str, Any]] | None) -> int:
        """One poller: `messages` (when given), then batch after batch until the queue is empty."""
        handled = 0
        while True:
            if messages is None:
                messages = self._receive()
            if not messages:
                return handled
            done = self._invoke(messages)
            delete_messages(self.sqs, self.url, done)
            handled += len(done)
            messages = None

    def _receive(self) -> list[dict[str, Any]]:
        # One poll per batch, as Lambda's poller: up to BatchSize (SQS gives at most 10).
        response = self.sqs.receive_message(
            QueueUrl=self.url,
            MaxNumberOfMessages=min(10, self.batch_size),
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages: list[dict[str, Any]] = response.get("Messages") or []
        return messages

    def _invoke(self, messages: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """The messages the worker handled (all but those in `batchItemFailures`)."""
        event = {"Records": [self._record(message) for message in messages]}
        try:
            result = self.invoke(self.function, event)
        except Exception:
            traceback.print_exc()
            return []
        failures = (result or {}).get("batchItemFailures") or [] if isinstance(result, dict) else []
        failed = {str(item.get("itemIdentifier")) for item in failures}
        return [message for message in messages if message["MessageId"] not in failed]

    def _record(self, message: Mapping[str, Any]) -> dict[str, Any]:
        """One record of Lambda's SQS event."""
        return sqs_record(
            message["MessageId"],
            message["ReceiptHandle"],
            message["Body"],
            self.arn,
            attributes=message.get("Attributes"),
            message_attributes={
                name: {
                    "stringValue": value.get("StringValue"),
                    "binaryValue": value.get("BinaryValue"),
                    "stringListValues": [],
                    "binaryListValues": [],
                    "dataType": value.get("DataType", "String"),
                }
                for name, value in (message.get("MessageAttributes") or {}).items()
            },
            md5_of_body=message.get("MD5OfBody", ""),
        )


# ---------------------------------------------------------------- stream -> publisher


def pattern_matches(pattern: Mapping[str, Any], data: Mapping[str, Any]) -> bool:
    """An event pattern of Lambda's FilterCriteria (the EventBridge syntax): literal values and
    `prefix`, `exists` and `anything-but` matchers, nested objects."""
    for key, expected in pattern.items():
        present = key in data
        value = data.get(key)
        if isinstance(expected, Mapping):
            if not isinstance(value, Mapping) or not pattern_matches(expected, value):
                return False
            continue
        if not any(_value_matches(option, present, value) for option in expected):
            return False
    return True


def _value_matches(option: Any, present: bool, value: Any) -> bool:
    if not isinstance(option, Mapping):
        return present and value == option
    if "prefix" in option:
        return present and isinstance(value, str) and value.startswith(option["prefix"])
    if "exists" in option:
        return present is bool(option["exists"])
    if "anything-but" in option:
        excluded = option["anything-but"]
        excluded = excluded if isinstance(excluded, list) else [excluded]
        return present and value not in excluded
    raise ValueError(f"unsupported filter matcher {option!r}")


class StreamSource:
    """A DynamoDB stream event source (the publisher's): the table's stream read from a checkpoint
    kept in `checkpoint_file`, records kept by the template's FilterCriteria handed over in
    batches of its BatchSize, a batch item failure retried from that record (at most
    MaximumRetryAttempts times, then skipped as the on-failure destination would take it)."""

    def __init__(
        self,
        dynamodb: Any,
        streams: Any,
        table_name: str,
        source: EventSource,
        checkpoint_file: Path,
        invoke: Invoke,
    ) -> None:
        self.streams = streams
        self.invoke = invoke
        self.function = source.function.logical_id
        self.batch_size = int(source.properties.get("BatchSize", 100))
        self.max_retries = int(source.properties.get("MaximumRetryAttempts", 10))
        self.patterns = [
            json.loads(item["Pattern"])
            for item in (source.properties.get("FilterCriteria") or {}).get("Filters", [])
        ]
        self.arn = dynamodb.describe_table(TableName=table_name)["Table"]["LatestStreamArn"]
        self.checkpoint_file = checkpoint_file
        self.checkpoint = self._load_checkpoint()
        self._iterators: dict[str, str] = {}
        self._described: list[dict[str, Any]] = []
        self._described_at = 0.0
        self._attempts: dict[str, int] = {}
        self._lock = threading.Lock()

    def pump(self) -> int:
        """Read everything new on the stream and hand it to the publisher; the number of records
        handed over. Returns once the stream is read to its end (or a batch failed)."""
        with self._lock:
            handed = 0
            for shard in self._shards():
                handed += self._read_shard(shard)
            return handed

    def _shards(self) -> list[dict[str, Any]]:
        if time.monotonic() - self._described_at > SHARDS_MAX_AGE_SECONDS:
            self._described = self._describe()
            self._described_at = time.monotonic()
        shards = self._described
        done = set(self.checkpoint["done"])
        known = {shard["ShardId"] for shard in shards}
        # A child shard is read once its parent is read to its end (stream order).
        return [
            shard
            for shard in shards
            if shard["ShardId"] not in done
            and (shard.get("ParentShardId") not in known or shard.get("ParentShardId") in done)
        ]

    def _describe(self) -> list[dict[str, Any]]:
        shards: list[dict[str, Any]] = []
        arguments: dict[str, Any] = {"StreamArn": self.arn}
        while True:
            description = self.streams.describe_stream(**arguments)["StreamDescription"]
            shards += description.get("Shards", [])
            last = description.get("LastEvaluatedShardId")
            if not last:
                return shards
            arguments["ExclusiveStartShardId"] = last

    def _read_shard(self, shard: Mapping[str, Any]) -> int:
        shard_id = shard["ShardId"]
        handed = 0
        iterator = self._iterator(shard_id)
        while iterator:
            try:
                response = self.streams.get_records(ShardIterator=iterator, Limit=1000)
            except self.streams.exceptions.ExpiredIteratorException:
                self._iterators.pop(shard_id, None)
                iterator = self._iterator(shard_id)
                continue
            records = response.get("Records") or []
            next_iterator = response.get("NextShardIterator")
            for start in range(0, len(records), self.batch_size):
                batch = records[start : start + self.batch_size]
                count, complete = self._deliver(shard_id, batch)
                handed += count
                if not complete:
                    # Read again from the checkpoint on the next pump.
                    self._iterators.pop(shard_id, None)
                    return handed
            if next_iterator is None:
                self._described_at = 0.0  # a shard closed: its children are to be found
                self.checkpoint["done"].append(shard_id)
                self._save_checkpoint()
                self._iterators.pop(shard_id, None)
                return handed
            self._iterators[shard_id] = next_iterator
            if not records:
                return handed
            iterator = next_iterator
        return handed

    def _iterator(self, shard_id: str) -> str:
        if shard_id in self._iterators:
            return self._iterators[shard_id]
        after = self.checkpoint["after"].get(shard_id)
        arguments: dict[str, Any] = {"StreamArn": self.arn, "ShardId": shard_id}
        if after:
            arguments |= {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": after}
        else:
            arguments["ShardIteratorType"] = "TRIM_HORIZON"
        iterator: str = self.streams.get_shard_iterator(**arguments)["ShardIterator"]
        return iterator

    def _deliver(self, shard_id: str, batch: Sequence[dict[str, Any]]) -> tuple[int, bool]:
        """Hand the batch's matching records to the publisher; (records handed, whether the
        whole batch is done). The checkpoint moves past every record done."""
        records = [self._record(record) for record in batch]
        kept = [record for record in records if self._kept(record)]
        failed_at: str | None = None
        if kept:
            failed_at = self._invoke(kept)
        for record in records:
            sequence = record["dynamodb"]["SequenceNumber"]
            if sequence == failed_at:
                attempts = self._attempts.get(sequence, 0) + 1
                self._attempts[sequence] = attempts
                if attempts <= self.max_retries:
                    self._save_checkpoint()
                    return len(kept), False
                print(
                    f"stream record {sequence} failed {attempts} times: skipped",
                    file=sys.stderr,
                    flush=True,
                )
            self.checkpoint["after"][shard_id] = sequence
        self._save_checkpoint()
        return len(kept), True

    def _invoke(self, records: list[dict[str, Any]]) -> str | None:
        """The sequence number of the first record the publisher failed, or None."""
        try:
            result = self.invoke(self.function, {"Records": records})
        except Exception:
            traceback.print_exc()
            return str(records[0]["dynamodb"]["SequenceNumber"])
        failures = result.get("batchItemFailures") or [] if isinstance(result, dict) else []
        failed = [str(item.get("itemIdentifier")) for item in failures]
        sequences = [str(record["dynamodb"]["SequenceNumber"]) for record in records]
        positions = [sequences.index(item) for item in failed if item in sequences]
        return sequences[min(positions)] if positions else None

    def _kept(self, record: Mapping[str, Any]) -> bool:
        return not self.patterns or any(pattern_matches(p, record) for p in self.patterns)

    def _record(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """A stream record as Lambda hands it over (numbers for dates, the stream's ARN)."""
        dynamodb = dict(record["dynamodb"])
        created = dynamodb.get("ApproximateCreationDateTime")
        if isinstance(created, datetime):
            dynamodb["ApproximateCreationDateTime"] = created.timestamp()
        return {
            "eventID": record.get("eventID"),
            "eventName": record.get("eventName"),
            "eventVersion": record.get("eventVersion", "1.1"),
            "eventSource": "aws:dynamodb",
            "awsRegion": REGION,
            "dynamodb": dynamodb,
            "eventSourceARN": self.arn,
        }

    def _load_checkpoint(self) -> dict[str, Any]:
        if self.checkpoint_file.exists():
            saved = json.loads(self.checkpoint_file.read_text(encoding="utf-8"))
            if saved.get("stream") == self.arn:
                return {"stream": self.arn, "after": saved["after"], "done": saved["done"]}
        return {"stream": self.arn, "after": {}, "done": []}

    def _save_checkpoint(self) -> None:
        partial = self.checkpoint_file.with_suffix(".partial")
        partial.write_text(json.dumps(self.checkpoint), encoding="utf-8")
        partial.replace(self.checkpoint_file)


# ---------------------------------------------------------------- the bus, observed


class EventLog:
    """The domain events published on the bus, oldest first: a rule on the bus sends every
    event to a queue, drained in order into `log_file` (kept across restarts)."""

    RULE = "local-event-log"

    def __init__(self, events: Any, sqs: Any, bus_name: str, log_file: Path) -> None:
        self.sqs = sqs
        self.log_file = log_file
        self.url = rule_queue(
            events,
            sqs,
            bus_name,
            rule=self.RULE,
            queue="LocalEventLog",
            pattern={"account": [ACCOUNT_ID]},
            target_id="log",
        )
        self._lock = threading.Lock()
        self._items: list[dict[str, Any]] = []
        if log_file.exists():
            with log_file.open(encoding="utf-8") as handle:
                self._items = [json.loads(line) for line in handle if line.strip()]

    def collect(self) -> int:
        """Move what reached the queue into the log; the number of events added."""
        with self._lock:
            added = 0
            for events in received_events(self.sqs, self.url):
                with self.log_file.open("a", encoding="utf-8") as handle:
                    for event in events:
                        handle.write(json.dumps(event, separators=(",", ":")) + "\n")
                self._items += events
                added += len(events)
            return added

    def items(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._items)


# ---------------------------------------------------------------- Stripe's webhooks


class WebhookDeliveries:
    """Which of localstripe's events are still on their way to the function URL.

    localstripe sends each event once, about a second after the request that caused it. An
    event is pending from its creation (listed with `GET /v1/events`) until the function URL
    has answered it (`delivered`), or until `timeout` seconds have gone by (given up: a
    delivery that failed is not retried by localstripe).
    """

    def __init__(self, api_base: str, secret_key: str, types: Sequence[str]) -> None:
        self.api_base = api_base
        self.secret_key = secret_key
        self.types = frozenset(types)
        self.horizon = int(time.time())
        self._delivered: set[str] = set()
        self._given_up: set[str] = set()
        self._changed = threading.Condition()

    def answered(self, event: dict[str, Any], status: int) -> None:
        """Called by the function URL after each invocation: a Stripe event was delivered.

        A 4xx is a refusal before anything was read (no valid signature, not an event): that
        body may come from anyone and claim any id, so it marks nothing. Any other answer came
        after the signature was verified, and localstripe does not send that event again. The
        body is whatever was posted, not necessarily a JSON object."""
        if 400 <= status < 500:
            return
        body = event.get("body") or ""
        try:
            if event.get("isBase64Encoded"):
                body = base64.b64decode(body).decode()
            delivered = json.loads(body)
        except (ValueError, RecursionError):  # binascii.Error and UnicodeDecodeError included
            return
        event_id = delivered.get("id") if isinstance(delivered, dict) else None
        if isinstance(event_id, str):
            self.delivered(event_id)

    def delivered(self, event_id: str) -> None:
        with self._changed:
            self._delivered.add(event_id)
            self._changed.notify_all()

    def wait(self, timeout: float = 15.0) -> int:
        """Wait until every event sent so far has been answered; the number waited for."""
        began = time.monotonic()
        listed_at = int(time.time())
        pending = self._pending()
        waited = len(pending)
        with self._changed:
            while pending - self._delivered:
                left = timeout - (time.monotonic() - began)
                if left <= 0:
                    missing = sorted(pending - self._delivered)
                    print(
                        f"webhooks never delivered (given up): {', '.join(missing)}",
                        file=sys.stderr,
                        flush=True,
                    )
                    self._given_up |= set(missing)
                    break
                self._changed.wait(min(left, 0.05))
        # Events are dated to the second: the next look starts a little before this one.
        self.horizon = max(self.horizon, listed_at - 2)
        return waited

    def _pending(self) -> set[str]:
        found: set[str] = set()
        params: dict[str, Any] = {"created[gte]": str(self.horizon), "limit": "100"}
        while True:
            page = self._get("/v1/events", params)
            data = page.get("data") or []
            found |= {
                event["id"]
                for event in data
                if event.get("type") in self.types and event["id"] not in self._given_up
            }
            if not page.get("has_more") or not data:
                return found - self._delivered
            params["starting_after"] = data[-1]["id"]

    def _get(self, path: str, params: Mapping[str, str]) -> dict[str, Any]:
        request = urllib.request.Request(  # noqa: S310 - the local fake only
            f"{self.api_base}{path}?{urllib.parse.urlencode(params)}",
            headers={"Authorization": f"Bearer {self.secret_key}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            page: dict[str, Any] = json.load(response)
            return page


# ---------------------------------------------------------------- bus -> rule targets


@dataclass(frozen=True, slots=True)
class RuleTarget:
    """An `EventBridgeRule` event of a function in template.yaml, with the function's
    asynchronous invocation settings (`EventInvokeConfig`)."""

    function: Function
    name: str  # the event's logical name
    pattern: Mapping[str, Any]
    retries: int  # Lambda's retries of a failed asynchronous invocation
    on_failure: str | None  # logical id of the OnFailure destination queue


def rule_targets() -> list[RuleTarget]:
    """Every function invoked by a rule on the bus."""
    found = []
    for function in functions().values():
        config = function.properties.get("EventInvokeConfig") or {}
        destination = ((config.get("DestinationConfig") or {}).get("OnFailure") or {}).get(
            "Destination"
        )
        for name, event in (function.properties.get("Events") or {}).items():
            if event["Type"] != "EventBridgeRule":
                continue
            found.append(
                RuleTarget(
                    function=function,
                    name=name,
                    pattern=event["Properties"]["Pattern"],
                    retries=int(config.get("MaximumRetryAttempts", 2)),
                    on_failure=_get_att_target(destination) if destination else None,
                )
            )
    return found


class RuleSource:
    """A rule on the bus (moto) whose target is a function, invoked as Lambda invokes one
    asynchronously: each event on its own, several at once (the function's concurrency), a
    failed one retried `retries` times, then recorded in the OnFailure queue the way Lambda
    records it (`requestPayload`, `responsePayload`, `condition: RetriesExhausted`).

    Lambda waits a minute and then two before its retries; here they follow at once: the
    business clock does not move while an advance settles."""

    def __init__(
        self,
        events: Any,
        sqs: Any,
        bus_name: str,
        target: RuleTarget,
        dead_letter_url: str | None,
        invoke: Invoke,
    ) -> None:
        self.sqs = sqs
        self.target = target
        self.function = target.function.logical_id
        self.dead_letter_url = dead_letter_url
        self.invoke = invoke
        rule = f"local-{self.function}-{target.name}"
        self.url = rule_queue(
            events,
            sqs,
            bus_name,
            rule=rule,
            queue=rule,
            pattern=target.pattern,
            target_id="function",
        )
        limit = concurrency_limits().get(self.function, 0)
        self.concurrency = max(1, limit or 2)
        self.invocations = 0
        self.failed = 0

    def drain(self) -> int:
        """Invoke the function for every event the rule matched so far; the number handled."""
        handled = 0
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="rule") as pool:
            for events in received_events(self.sqs, self.url):
                list(pool.map(self._invoke_async, events))
                handled += len(events)
        return handled

    def _invoke_async(self, event: dict[str, Any]) -> None:
        error: dict[str, Any] = {}
        for _ in range(1 + self.target.retries):
            self.invocations += 1
            try:
                self.invoke(self.function, event)
            except Exception as failure:
                error = {"errorType": type(failure).__name__, "errorMessage": str(failure)[:500]}
                continue
            return
        self.failed += 1
        if self.dead_letter_url is None:
            print(f"{self.function}: an event failed; no OnFailure queue", file=sys.stderr)
            return
        record = {
            "version": "1.0",
            "timestamp": datetime.now().astimezone().isoformat(),
            "requestContext": {
                "requestId": event.get("id"),
                "functionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{self.function}",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": 1 + self.target.retries,
            },
            "requestPayload": event,
            "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
            "responsePayload": error,
        }
        self.sqs.send_message(QueueUrl=self.dead_letter_url, MessageBody=json.dumps(record))

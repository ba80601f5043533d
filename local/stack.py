"""The whole system on local parts, in one process (shared/spec/local.md): what `make dev` runs.

| part | here |
| --- | --- |
| DynamoDB | DynamoDB Local (data in `<data>/ddb`), tables from template.yaml |
| Stripe | localstripe (`<data>/stripe.pickle`), webhooks sent to the function URL |
| SQS queue, EventBridge bus, user pool | moto's server, in a process of its own, on a free port |
| API Gateway + JWT authorizer, function URL | `local.server` on `API_PORT`, `WEBHOOK_PORT` |
| EventBridge Scheduler | `local.clock`: the business clock (`<data>/clock.json`) |
| event sources (SQS, stream, rules on the bus) | `local.sources` |
| SES | moto's SES v2 behind `local.ses.EmailCapture` (`<data>/emails.jsonl`) |

The user pool is template.yaml's, in moto's cognito-idp (`local.userpool`), kept across
restarts in `<data>/cognito.pickle`. Every function runs through its real `lambda_handler` in
execution environments of its own (`local.runtime`: processes, as many at once as the template
allows the function), with the business clock, localstripe and the tables injected through
`lifecycle.usecases.services.use_services`. An existing DynamoDB (`AWS_ENDPOINT_URL_DYNAMODB`)
or Stripe (`STRIPE_API_BASE`) is used instead of starting one.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TextIO

from local import processes
from local.auth import Issuer
from local.clock import (
    Advance,
    BusinessClock,
    Schedule,
    Scheduler,
    scheduled_event,
    schedules,
)
from local.dynamodb_local import DynamoDBLocal, free_port
from local.keyfiles import read_or_create
from local.localstripe import SECRET_KEY
from local.runtime import Environments
from local.template import ROOT

Card = Literal["ok", "declined"]
# What the webhook endpoint is subscribed to (api.md, Stripe webhook: the handled types).
WEBHOOK_EVENTS = (
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "charge.refunded",
    "charge.dispute.created",
    "checkout.session.completed",
    "customer.updated",
    "payment_method.detached",
)
# How long the card route waits for Stripe's webhooks to reach the account.
CARD_TIMEOUT_SECONDS = 30.0
BACKGROUND_PERIOD_SECONDS = 0.5


def _boto_config() -> Any:
    from botocore.config import Config as BotoConfig  # noqa: PLC0415

    return BotoConfig(retries={"mode": "standard", "max_attempts": 3}, max_pool_connections=32)


class StartupError(RuntimeError):
    """A part of the stack could not be started (the message says which and why)."""


@dataclass(frozen=True, slots=True)
class Config:
    """Where everything runs; `from_env` reads the variables of the README."""

    data_dir: Path
    api_port: int = 3000
    webhook_port: int = 3001
    dynamodb_port: int = 8000
    stripe_port: int = 8420
    moto_port: int = 0  # a free one
    host: str = "127.0.0.1"
    dynamodb_endpoint: str | None = None  # an existing DynamoDB: none started
    stripe_api_base: str | None = None  # an existing (local) Stripe: none started
    table_name: str = "integrations"
    idempotency_table_name: str = "idempotency"
    bus_name: str = "integrations-local"
    seed: bool = True
    # Whether the functions invoked by rules on the bus (the notifier) run (`LOCAL_RULES=0`:
    # not; `make bench-month` measures what they add).
    rules: bool = True

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Config:
        env = dict(os.environ if env is None else env)
        return cls(
            data_dir=Path(env.get("LOCAL_DATA_DIR") or ROOT / ".local").resolve(),
            api_port=int(env.get("API_PORT") or 3000),
            webhook_port=int(env.get("WEBHOOK_PORT") or 3001),
            dynamodb_port=int(env.get("DYNAMODB_PORT") or 8000),
            stripe_port=int(env.get("STRIPE_PORT") or 8420),
            moto_port=int(env.get("MOTO_PORT") or 0),
            dynamodb_endpoint=env.get("AWS_ENDPOINT_URL_DYNAMODB")
            or env.get("AWS_ENDPOINT_URL")
            or None,
            stripe_api_base=env.get("STRIPE_API_BASE") or None,
            table_name=env.get("TABLE_NAME") or "integrations",
            idempotency_table_name=env.get("IDEMPOTENCY_TABLE_NAME") or "idempotency",
            bus_name=env.get("EVENT_BUS_NAME") or "integrations-local",
            seed=(env.get("LOCAL_SEED") or "1") not in ("0", "false", "no"),
            rules=(env.get("LOCAL_RULES") or "1") not in ("0", "false", "no"),
        )

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.api_port}"

    @property
    def webhook_url(self) -> str:
        return f"http://{self.host}:{self.webhook_port}/"


class Child:
    """A server the stack runs as a child process, ready once its port accepts connections."""

    def __init__(self, name: str, command: list[str], host: str, port: int) -> None:
        self.name = name
        self.command = command
        self.host = host
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 60.0) -> str:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
        self.process = subprocess.Popen(
            self.command,
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,  # both log every request
            stderr=subprocess.DEVNULL,
        )
        began = time.monotonic()
        while time.monotonic() - began < timeout:
            if self.process.poll() is not None:
                raise StartupError(f"{self.name} exited with {self.process.returncode}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection((self.host, self.port), timeout=0.2),
            ):
                return self.endpoint
            time.sleep(0.05)
        self.stop()
        raise StartupError(f"{self.name} did not listen on port {self.port} in {timeout} s")

    def stop(self) -> None:
        if self.process is None:
            return
        processes.stop(self.process)
        self.process = None


@dataclass
class _Parts:
    """What `start` brought up, for `stop` to take down (any of it may be missing)."""

    dynamodb: DynamoDBLocal | None = None
    stripe: Child | None = None
    moto: Child | None = None  # in a process of its own: here it would share the GIL
    servers: list[Any] = field(default_factory=list)
    background: threading.Thread | None = None
    runtime: Environments | None = None


class Stack:
    """The local stack: `start()`, then serve until `stop()`."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.data = config.data_dir
        self.ready = False
        self.started_in: float | None = None
        self.seeded_demo = False
        self._parts = _Parts()
        self._stopping = threading.Event()
        # Held while the stack moves work along (a clock advance, the background pump): one
        # mover at a time, re-entrant so that a slot's run can settle inside an advance.
        self._work = threading.RLock()
        self._startup_pool: ThreadPoolExecutor | None = None
        self._charges_seen = 0
        self._charges_made = 0  # by the functions, in their environments (`_charged`)
        self._charge_lock = threading.Lock()
        self.timings: dict[str, float] = {}  # seconds each part took to start
        self._boto = _boto_config()
        self.console: TextIO = sys.stdout
        self._function_log: TextIO | None = None

    # ---------------------------------------------------------------- start and stop

    def start(self) -> None:
        began = time.monotonic()
        self._check_ports()
        self.data.mkdir(parents=True, exist_ok=True)
        self._capture_function_output()
        self.clock = BusinessClock(self.data / "clock.json")
        self.issuer = Issuer(self.data / "issuer-key.json")
        self.webhook_secret = read_or_create(
            self.data / "stripe-webhook-secret", lambda: f"whsec_local_{secrets.token_hex(16)}"
        ).strip()
        # The key of the API's list cursors (lifecycle.http.cursors): never in the code.
        self.cursor_secret = read_or_create(
            self.data / "cursor-secret", lambda: secrets.token_urlsafe(32)
        ).strip()
        self._set_environment()
        pool = self._startup_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="start")
        dynamodb = pool.submit(self._timed, "dynamodb", self._start_dynamodb)
        stripe = pool.submit(self._timed, "localstripe", self._start_stripe)
        moto = pool.submit(self._timed, "moto", self._start_moto)
        self.dynamodb_endpoint = _result(dynamodb, "DynamoDB")
        self.stripe_api_base = _result(stripe, "Stripe")
        self.moto_endpoint = _result(moto, "moto (SQS, EventBridge)")
        self._set_endpoints()
        self._timed("wiring", self._wire)
        # After the wiring: the environments get this process's variables as they are when
        # they start (the queue URLs are set by the wiring).
        self._start_runtime()
        self._serve()
        self._register_webhook()
        self._parts.background = threading.Thread(
            target=self._background, name="event-sources", daemon=True
        )
        self._parts.background.start()
        self.settle()
        if self.config.seed:
            from local.seed import seed_demo  # noqa: PLC0415 - needs the environment set

            self.seeded_demo = self._timed("seed", lambda: seed_demo(self))
            self.settle()
        self.started_in = time.monotonic() - began
        self.ready = True
        threading.Thread(target=self._warm, name="warm", daemon=True).start()

    def _timed[T](self, part: str, start: Callable[[], T]) -> T:
        began = time.monotonic()
        try:
            return start()
        finally:
            self.timings[part] = time.monotonic() - began

    def _check_ports(self) -> None:
        """Fail at once, before starting anything, when a port to listen on is taken."""
        config = self.config
        wanted = {"API_PORT": config.api_port, "WEBHOOK_PORT": config.webhook_port}
        if not config.dynamodb_endpoint:
            wanted["DYNAMODB_PORT"] = config.dynamodb_port
        if not config.stripe_api_base:
            wanted["STRIPE_PORT"] = config.stripe_port
        for variable, port in wanted.items():
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind((config.host, port))
                except OSError as error:
                    raise StartupError(
                        f"port {port} is taken ({error.strerror}): set {variable} to another"
                    ) from error

    def say(self, line: str) -> None:
        """A line for the developer's console (what the functions print goes to the log)."""
        print(line, file=self.console, flush=True)

    def _capture_function_output(self) -> None:
        """What the functions print (Powertools' logs and metrics) goes to `functions.log`, as
        it would go to CloudWatch Logs; the console keeps the stack's own lines."""
        self.console = sys.stdout
        self._function_log = (self.data / "functions.log").open("a", encoding="utf-8", buffering=1)
        sys.stdout = self._function_log
        # Powertools warns on every invocation that records no metric.
        warnings.filterwarnings("ignore", message="No application metrics to publish")

    def stop(self) -> None:
        """Stop every part that was started (whatever state `start` reached)."""
        self.ready = False
        self._stopping.set()
        if self._startup_pool is not None:
            self._startup_pool.shutdown(wait=True, cancel_futures=True)
        parts = self._parts
        for server in parts.servers:
            with contextlib.suppress(Exception):
                server.stop()
        if parts.background is not None:
            parts.background.join(timeout=10)
        if parts.runtime is not None:
            from local.gateway import use_runtime  # noqa: PLC0415

            use_runtime(None)
            parts.runtime.stop()
        for process in (parts.moto, parts.stripe, parts.dynamodb):
            if process is not None:
                with contextlib.suppress(Exception):
                    process.stop()
        if self._function_log is not None:
            sys.stdout = self.console
            self._function_log.close()
            self._function_log = None

    def _start_dynamodb(self) -> str:
        if self.config.dynamodb_endpoint:
            return self.config.dynamodb_endpoint
        server = DynamoDBLocal(port=self.config.dynamodb_port, data_dir=self.data / "ddb")
        self._parts.dynamodb = server
        try:
            server.start()
        except Exception as error:
            raise StartupError(
                f"DynamoDB Local did not start on port {self.config.dynamodb_port}"
                f" (DYNAMODB_PORT): {error}"
            ) from error
        return server.endpoint

    @property
    def dynamodb_server(self) -> DynamoDBLocal | None:
        """The DynamoDB Local this stack started (None when it uses an existing endpoint)."""
        return self._parts.dynamodb

    def _start_stripe(self) -> str:
        if self.config.stripe_api_base:
            return self.config.stripe_api_base
        port = self.config.stripe_port
        command = [sys.executable, "-m", "local.devstripe", "--port", str(port)]
        command += ["--data-file", str(self.data / "stripe.pickle")]
        server = self._parts.stripe = Child("localstripe", command, "127.0.0.1", port)
        try:
            server.start()
        except StartupError as error:
            raise StartupError(f"{error} (port {port}: STRIPE_PORT)") from error
        self._await_stripe(server.endpoint)
        return server.endpoint

    @staticmethod
    def _await_stripe(api_base: str, timeout: float = 30.0) -> None:
        """localstripe listens before it serves: wait for a real answer."""
        began = time.monotonic()
        while True:
            try:
                _get(f"{api_base}/v1/customers?limit=1")
                return
            except OSError:
                if time.monotonic() - began > timeout:
                    raise StartupError(f"localstripe did not answer in {timeout} s") from None
                time.sleep(0.05)

    def _start_moto(self) -> str:
        port = self.config.moto_port or free_port()
        command = [sys.executable, "-m", "local.devmoto", "-H", self.config.host, "-p", str(port)]
        command += ["--cognito-data-file", str(self.data / "cognito.pickle")]
        server = self._parts.moto = Child("moto's server", command, self.config.host, port)
        endpoint = server.start()
        self._wire_moto(endpoint)
        return endpoint

    def _start_ses(self, moto_endpoint: str) -> None:
        """The SES capture in front of moto's SES v2, on a free port, with the sender verified."""
        from local.server import serve  # noqa: PLC0415
        from local.ses import EmailCapture  # noqa: PLC0415
        from local.template import parameter_values  # noqa: PLC0415

        self.emails_capture = EmailCapture(
            moto_endpoint, self.data / "emails.jsonl", self.clock.now
        )
        self.email_sender = str(parameter_values()["EmailSender"])
        self.emails_capture.verify_sender(self.email_sender)
        port = free_port()
        self._parts.servers.append(serve(self.config.host, port, self.emails_capture.app))
        self.ses_endpoint = f"http://{self.config.host}:{port}"

    def _start_runtime(self) -> None:
        """Every function in execution environments of its own (`local.runtime`), each
        started by the first invocation that needs it (its cold start)."""
        from local.gateway import use_runtime  # noqa: PLC0415
        from local.runtime import Environments, concurrency_limits  # noqa: PLC0415

        assert self._function_log is not None
        self._parts.runtime = Environments(
            self.clock.now,
            limits=concurrency_limits(),
            on_charges=self._charged,
            log_path=self._function_log.name,
        )
        use_runtime(self._parts.runtime)

    def _warm(self) -> None:
        """Once ready: one environment of every function not started yet, one at a time in the
        background, so that a developer's first request to a function pays no cold start."""
        from local.gateway import functions  # noqa: PLC0415

        runtime = self._parts.runtime
        for logical_id in functions():
            if runtime is None or self._stopping.is_set():
                return
            try:
                runtime.warm(logical_id)
            except Exception as error:  # the first invocation will say it again, in context
                self.say(f"could not start an environment of {logical_id}: {error}")

    def _charged(self, count: int) -> None:
        with self._charge_lock:
            self._charges_made += count

    def _set_environment(self) -> None:
        """What template.yaml's Globals give the functions, and the local settings. Set before
        any function module is imported: Powertools reads its variables at import."""
        from local.template import template  # noqa: PLC0415

        env = os.environ
        for name, value in (template()["Globals"]["Function"]["Environment"]["Variables"]).items():
            if isinstance(value, str):
                env.setdefault(name, value)
        env.update(
            {
                "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_REGION": "us-east-1",
                # Nothing local checks credentials; these keep any real ones out of reach.
                "AWS_ACCESS_KEY_ID": "local",
                "AWS_SECRET_ACCESS_KEY": "local",
                "TABLE_NAME": self.config.table_name,
                "IDEMPOTENCY_TABLE_NAME": self.config.idempotency_table_name,
                "EVENT_BUS_NAME": self.config.bus_name,
                "STRIPE_SECRET_KEY": SECRET_KEY,
                "STRIPE_WEBHOOK_SECRETS": self.webhook_secret,
                "CURSOR_SECRETS": self.cursor_secret,
                "ENVIRONMENT": "local",
            }
        )
        env.pop("AWS_SESSION_TOKEN", None)
        env.pop("AWS_PROFILE", None)
        # localstripe has no rate limit; the deployed budget would only slow renewals down.
        env.setdefault("STRIPE_RATE_PER_SECOND", "1000")
        env.setdefault("POWERTOOLS_TRACE_DISABLED", "true")

    def _set_endpoints(self) -> None:
        """Every client to the local parts (boto3 reads these when a client is built)."""
        os.environ.update(
            {
                "AWS_ENDPOINT_URL_DYNAMODB": self.dynamodb_endpoint,
                "AWS_ENDPOINT_URL_DYNAMODB_STREAMS": self.dynamodb_endpoint,
                "AWS_ENDPOINT_URL_SQS": self.moto_endpoint,
                # botocore names the variable after the service id, "EventBridge";
                # _EVENTS is set as well for code that reads it itself.
                "AWS_ENDPOINT_URL_EVENTBRIDGE": self.moto_endpoint,
                "AWS_ENDPOINT_URL_EVENTS": self.moto_endpoint,
                # botocore's name for cognito-idp (its service id, "Cognito Identity Provider").
                "AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER": self.moto_endpoint,
                # The users function's (template: !Ref AccountUserPool); the trigger reads the
                # pool from its event, as on AWS.
                "USER_POOL_ID": self.pool.pool_id,
                "STRIPE_API_BASE": self.stripe_api_base,
                # The notifier's SES v2 client: the capture in front of moto.
                "AWS_ENDPOINT_URL_SESV2": self.ses_endpoint,
                "EMAIL_SENDER": self.email_sender,
                # The emails' links: the dashboard this stack serves.
                "DASHBOARD_URL": f"{self.config.api_url}/",
            }
        )

    def _wire_moto(self, endpoint: str) -> None:
        """The queues (the renewal queue, its dead-letter queue) and the bus, as the template
        declares them; run as soon as moto listens, while Java still boots."""
        import boto3  # noqa: PLC0415

        from local.gateway import functions  # noqa: PLC0415
        from local.sources import (  # noqa: PLC0415
            EventLog,
            QueueSource,
            RuleSource,
            create_queues,
            event_sources,
            rule_targets,
        )
        from local.template import resources  # noqa: PLC0415

        sqs = boto3.client("sqs", endpoint_url=endpoint, config=self._boto)
        events = boto3.client("events", endpoint_url=endpoint, config=self._boto)
        sources = event_sources("SQS")
        # Every queue a function reads (event source) or is given (a `!Ref` in its variables).
        referenced = {
            name: value["Ref"]
            for function in functions().values()
            for name, value in (
                function.properties.get("Environment", {}).get("Variables", {}).items()
            )
            if isinstance(value, dict) and value.get("Ref") in resources("AWS::SQS::Queue")
        }
        targets = rule_targets() if self.config.rules else []
        failures = [t.on_failure for t in targets if t.on_failure]
        queues = create_queues(sqs, [*(s.source for s in sources), *referenced.values(), *failures])
        self.queue_variables = {name: queues[queue][0] for name, queue in referenced.items()}
        self.queues = [QueueSource(sqs, *queues[source.source], source) for source in sources]
        events.create_event_bus(Name=self.config.bus_name)
        self.event_log = EventLog(events, sqs, self.config.bus_name, self.data / "events.jsonl")
        # Functions invoked by rules on the bus (the notifier), failures to their OnFailure queue.
        self.rules = [
            RuleSource(
                events,
                sqs,
                self.config.bus_name,
                target,
                queues[target.on_failure][0] if target.on_failure else None,
            )
            for target in targets
        ]
        self.dead_letters = {name: queues[name][0] for name in failures}
        self._sqs = sqs
        # The user pool of template.yaml, as moto keeps it across restarts.
        from local import userpool  # noqa: PLC0415

        self.cognito = boto3.client("cognito-idp", endpoint_url=endpoint, config=self._boto)
        self.pool = userpool.wire(self.cognito)
        self._start_ses(endpoint)

    def _wire(self) -> None:
        """Tables, their streams, the services the functions get, the scheduler."""
        import boto3  # noqa: PLC0415

        from lifecycle.store.repository import Store  # noqa: PLC0415
        from local.sources import StreamSource, WebhookDeliveries, event_sources  # noqa: PLC0415
        from local.tables import create_tables  # noqa: PLC0415

        self.dynamodb = boto3.client("dynamodb", config=self._boto)
        tables = {
            "IntegrationsTable": self.config.table_name,
            "IdempotencyTable": self.config.idempotency_table_name,
        }
        create_tables(self.dynamodb, tables)
        self.store = Store(self.config.table_name, client=self.dynamodb)
        # RENEWAL_QUEUE_URL: the functions' environments are started after this.
        os.environ.update(self.queue_variables)
        streams = boto3.client("dynamodbstreams", config=self._boto)
        self.streams = [
            StreamSource(
                self.dynamodb,
                streams,
                tables[source.source],
                source,
                self.data / f"stream-{source.function.logical_id}.json",
            )
            for source in event_sources("DynamoDB")
        ]
        self.webhooks = WebhookDeliveries(self.stripe_api_base, SECRET_KEY, WEBHOOK_EVENTS)
        self.scheduler = Scheduler(self.clock, schedules(), self.store.earliest_due, self._fire)

    def _serve(self) -> None:
        from local.server import api_app, serve, webhook_app  # noqa: PLC0415

        for port, app, what in (
            (self.config.api_port, api_app(self), "API_PORT"),
            (self.config.webhook_port, webhook_app(self), "WEBHOOK_PORT"),
        ):
            try:
                self._parts.servers.append(serve(self.config.host, port, app))
            except OSError as error:
                raise StartupError(f"cannot listen on port {port} ({what}): {error}") from error

    def _register_webhook(self) -> None:
        from local.localstripe import register_webhook  # noqa: PLC0415

        # A name per port: stacks sharing one localstripe each get their own deliveries.
        register_webhook(
            self.stripe_api_base,
            f"local-{self.config.webhook_port}",
            self.config.webhook_url,
            self.webhook_secret,
            WEBHOOK_EVENTS,
        )

    # ---------------------------------------------------------------- moving work along

    def _background(self) -> None:
        """What AWS does at any time: read the stream, the queue and the bus's log."""
        last_error = ""
        while not self._stopping.wait(BACKGROUND_PERIOD_SECONDS):
            if not self._work.acquire(blocking=False):
                continue
            try:
                self._drain_queues()
                self._pump_streams()
                self._drain_rules()
                self.event_log.collect()
                last_error = ""
            except Exception as error:
                # Said once, not twice a second, while a part is down.
                if not self._stopping.is_set() and repr(error) != last_error:
                    last_error = repr(error)
                    traceback.print_exc()
            finally:
                self._work.release()

    def settle(self) -> None:
        """Run what is in flight until nothing is: the renewal queue, the stream to the bus and
        Stripe's webhooks (awaited after any charge). The bus's log is read when asked for
        (`events`) or when idle: reading it is watching, not processing."""
        with self._work:
            while True:
                work = self._drain_queues()
                work += self._pump_streams()
                work += self._drain_rules()
                with self._charge_lock:
                    charges = self._charges_made
                if charges != self._charges_seen:
                    self._charges_seen = charges
                    work += self.webhooks.wait()
                if not work:
                    break

    def _drain_queues(self) -> int:
        return sum(queue.drain() for queue in self.queues)

    def _pump_streams(self) -> int:
        return sum(stream.pump() for stream in self.streams)

    def _drain_rules(self) -> int:
        return sum(rule.drain() for rule in self.rules)

    def _fire(self, schedule: Schedule, at: datetime) -> Any:
        """Run one schedule slot to the end: the function, then whatever it set in motion."""
        from local.gateway import invoke  # noqa: PLC0415

        try:
            result = invoke(schedule.function, scheduled_event(schedule, at))
        except Exception as error:
            traceback.print_exc()
            result = {"errorType": type(error).__name__, "errorMessage": str(error)}
        self.settle()
        return result

    def advance(self, target: datetime) -> Advance:
        """Move the business clock to `target`, running every slot on the way (ValueError when
        `target` is in the clock's past)."""
        with self._work:
            self.settle()
            advance = self.scheduler.advance_to(target)
            self.settle()
        for name, reason in advance.stalled.items():
            self.say(f"schedule {name} stalled: {reason}")
        return advance

    def events(self) -> list[dict[str, Any]]:
        """The domain events published so far, oldest first."""
        with self._work:
            self._pump_streams()
            self.event_log.collect()
        return self.event_log.items()

    def emails(self) -> list[dict[str, Any]]:
        """The emails sent so far (what reached the SES capture), oldest first."""
        with self._work:
            self._pump_streams()
            self._drain_rules()
        return [
            {
                "to": item["to"],
                "subject": item["subject"],
                "text": item["text"],
                "html": item["html"],
                "sent_at": item["sent_at"],
                "event_id": item["event_id"],
            }
            for item in self.emails_capture.items()
        ]

    def dead_lettered(self, queue: str) -> list[dict[str, Any]]:
        """The records in an OnFailure (dead-letter) queue of the template, read and left there."""
        url = self.dead_letters[queue]
        found = (
            self._sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0
            ).get("Messages")
            or []
        )
        return [json.loads(message["Body"]) for message in found]

    def webhook_answered(self, event: dict[str, Any], status: int) -> None:
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
            self.webhooks.delivered(event_id)

    # ---------------------------------------------------------------- accounts

    @functools.cached_property
    def services(self) -> Any:
        """The use cases' services in this process (the card route's customer, `/_local/accounts`
        with a chosen id): the stack's table, localstripe, the business clock, the user pool."""
        from lifecycle.directory.cognito import CognitoDirectory  # noqa: PLC0415
        from lifecycle.payments.stripe_adapter import StripePayments  # noqa: PLC0415
        from lifecycle.settings import settings  # noqa: PLC0415
        from lifecycle.usecases.services import Services  # noqa: PLC0415

        return Services(
            store=self.store,
            payments=StripePayments(SECRET_KEY, api_base=self.stripe_api_base),
            clock=self.clock,
            catalog=settings().catalog,
            directory=CognitoDirectory(self.pool.pool_id, client=self.cognito),
        )

    def sign_up(self, email: str, account_id: str | None = None) -> SignedUp:
        """A sign-up as Cognito confirms it: the user in the pool, confirmed, then the real
        post-confirmation handler run with Cognito's event (with `account_id`, the sign-up use
        case itself, in this process: Cognito's event cannot choose an account id). Raises
        `Conflict` for an address that is a user already, or an account id that is taken."""
        from lifecycle.rules.errors import Conflict  # noqa: PLC0415
        from lifecycle.usecases.signup import sign_up  # noqa: PLC0415
        from local import userpool  # noqa: PLC0415
        from local.gateway import invoke  # noqa: PLC0415

        if account_id is not None and self.store.get_account(account_id) is not None:
            raise Conflict(f"Account {account_id!r} already exists.")
        try:
            username = userpool.sign_up(self.cognito, self.pool, email)
        except self.cognito.exceptions.UsernameExistsException:
            raise Conflict("This email address is a user already.") from None
        if account_id is None:
            event = userpool.confirmation_event(self.cognito, self.pool, username)
            invoke(userpool.trigger_function(), event)
        else:
            sign_up(self.services, username, email, account_id=account_id)
        found = self.store.login(username)
        if found is None:
            raise RuntimeError("the post-confirmation trigger opened no account")
        account, user_id = found
        token, _ = self.token_for_user(user_id) or ("", {})
        return SignedUp(account_id=account, user_id=user_id, token=token)

    def token_for_user(
        self, user_id: str, expires_in: int | None = None
    ) -> tuple[str, dict[str, Any]] | None:
        """A token with the claims Cognito would issue the user now: its account and groups
        from the user pool. None for an unknown or removed user, or one who cannot sign in."""
        from lifecycle.rules.users import UserStatus  # noqa: PLC0415
        from local import userpool  # noqa: PLC0415
        from local.auth import DEFAULT_TTL_SECONDS  # noqa: PLC0415

        account_id = self.store.user_account(user_id)
        user = self.store.get_user(account_id, user_id) if account_id else None
        if user is None or user.status is UserStatus.REMOVED:
            return None
        found = userpool.identity(self.cognito, self.pool, user.username)
        if found is None or not found.enabled or not found.account_id:
            return None
        return self.issuer.mint(
            found.account_id,
            user_id=found.username,
            groups=found.groups,
            email=found.email,
            expires_in=expires_in or DEFAULT_TTL_SECONDS,
        )

    def create_account(self, account_id: str | None, email: str | None, card: Card) -> NewAccount:
        """An account made the one way there is: a sign-up, then a card added through Stripe
        Checkout (`swap_card`). Conflict when the id or the address is taken."""
        address = email or f"owner-{secrets.token_hex(6)}@example.com"
        signed_up = self.sign_up(address, account_id)
        self.swap_card(signed_up.account_id, card)
        account = self.store.get_account(signed_up.account_id)
        assert account is not None
        return NewAccount(
            account_id=account.id,
            stripe_customer_id=account.stripe_customer_id or "",
            user_id=signed_up.user_id,
            token=signed_up.token,
        )

    def swap_card(self, account_id: str, card: Card) -> bool:
        """Make `card` the account's default card the way production does: a billing user's
        `POST /v1/account/payment-method` (the Stripe customer made on first need), the
        Checkout stand-in's "add a test card" or "add a declining card", then Stripe's signed
        webhooks handled by the real webhook function. False when there is no such account."""
        account = self.store.get_account(account_id)
        if account is None:
            return False
        before = account.payment_method_id
        token, _ = self.issuer.mint(account_id, billing_access=True)
        session = _api(
            self.config.api_url,
            "POST",
            "/v1/account/payment-method",
            {"return_url": f"{self.config.api_url}/#/account"},
            token,
        )
        _complete_checkout(str(session["url"]), card)
        began = time.monotonic()
        while time.monotonic() - began < CARD_TIMEOUT_SECONDS:
            self.webhooks.wait()
            now = self.store.get_account(account_id)
            if now is not None and now.has_payment_method and now.payment_method_id != before:
                return True
            time.sleep(0.05)
        raise RuntimeError(f"Stripe's webhooks did not set the card of {account_id}")

    # ---------------------------------------------------------------- health

    def health(self) -> dict[str, str]:
        """Each part's state: `ok`, or what is wrong."""
        checks: dict[str, Callable[[], object]] = {
            "dynamodb": lambda: self.dynamodb.describe_table(TableName=self.config.table_name),
            "stripe": lambda: _get(f"{self.stripe_api_base}/v1/customers?limit=1"),
            "moto": lambda: self._sqs.get_queue_attributes(
                QueueUrl=self.event_log.url, AttributeNames=["QueueArn"]
            ),
        }
        parts = {}
        for name, check in checks.items():
            try:
                check()
                parts[name] = "ok"
            except Exception as error:
                parts[name] = f"{type(error).__name__}: {error}"[:200]
        try:
            self.cognito.describe_user_pool(UserPoolId=self.pool.pool_id)
        except Exception as error:
            parts["moto"] = f"cognito-idp: {type(error).__name__}"[:200]
        parts["stack"] = "ok" if self.ready else "starting"
        return parts


@dataclass(frozen=True, slots=True)
class SignedUp:
    account_id: str
    user_id: str
    token: str


@dataclass(frozen=True, slots=True)
class NewAccount:
    account_id: str
    stripe_customer_id: str
    user_id: str
    token: str


def _api(
    base: str, method: str, path: str, body: dict[str, Any] | None, token: str
) -> dict[str, Any]:
    """A call to the stack's own API (the gateway, the real handlers)."""
    request = urllib.request.Request(  # noqa: S310 - our own local API
        f"{base}{path}",
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            answer: dict[str, Any] = json.load(response)
            return answer
    except urllib.error.HTTPError as error:
        raise RuntimeError(f"{method} {path}: {error.code} {error.read()!r}") from error


def _complete_checkout(url: str, card: Card) -> None:
    """What a person does on the Checkout stand-in's page: add the test card (or the declining
    one). It answers once Stripe's `checkout.session.completed` was delivered."""
    request = urllib.request.Request(  # noqa: S310 - localstripe's page, local http only
        f"{url}/complete",
        data=urllib.parse.urlencode({"card": card}).encode(),
        method="POST",
        headers={
            "Accept": "application/json",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
        json.load(response)


def _result[T](future: Future[T], what: str) -> T:
    try:
        return future.result()
    except StartupError:
        raise
    except Exception as error:
        raise StartupError(f"{what} could not be started: {error}") from error


def _get(url: str) -> None:
    request = urllib.request.Request(  # noqa: S310 - local http only
        url, headers={"Authorization": f"Bearer {SECRET_KEY}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=2):  # noqa: S310
            pass
    except urllib.error.HTTPError:
        pass  # it answered


@contextlib.contextmanager
def running(config: Config) -> Iterator[Stack]:
    """A started stack, stopped on exit (tests and scripts)."""
    stack = Stack(config)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()

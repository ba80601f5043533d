"""`make dev`: the whole system locally, in the foreground, until Ctrl-C or SIGTERM; and the one
place that builds it.

`start(config)` brings every part up and wires them explicitly: the stand-ins (DynamoDB Local,
localstripe and moto, side by side, each in a process of its own unless `config` names an
existing one), the queues, bus, user pool and SES capture of template.yaml, the tables and their
stream, the functions' execution environments (`local.runtime`, with the environment
`local.config.function_environment` gives them), the servers (`local.server`), the stack that
moves work along (`local.stack`) and the demo (`local.seed`). `Running.stop()` takes down
whatever was started, in reverse.

Configured by the environment (`local.config.Config.from_env`: `API_PORT`, `WEBHOOK_PORT`,
`DYNAMODB_PORT`, `STRIPE_PORT`, `MOTO_PORT`, `LOCAL_DATA_DIR`, `AWS_ENDPOINT_URL_DYNAMODB`,
`STRIPE_API_BASE`, `LOCAL_SEED`, `LOCAL_RULES`); prints the URLs and a token.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import secrets
import signal
import socket
import sys
import threading
import time
import traceback
import urllib.request
import warnings
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, TextIO

from lifecycle.directory.cognito import CognitoDirectory
from lifecycle.observability import logger
from lifecycle.payments.stripe_adapter import StripePayments
from lifecycle.settings import settings
from lifecycle.store.repository import Store
from lifecycle.usecases.services import Services
from local import userpool
from local.accounts import Accounts
from local.auth import Issuer
from local.clock import BusinessClock
from local.config import (
    WEBHOOK_EVENTS,
    Config,
    Endpoints,
    Secrets,
    aws_client,
    function_environment,
)
from local.dynamodb_local import DynamoDBLocal
from local.keyfiles import read_or_create
from local.localstripe import SECRET_KEY, register_webhook
from local.localstripe_server import STACK_WEBHOOK_DELAY_SECONDS, LocalStripe
from local.processes import Child, StartupError, free_port, listening, python_env
from local.runtime import Environments, concurrency_limits
from local.seed import DEMO_ACCOUNT, seed_demo
from local.server import Server, api_app, serve, webhook_app
from local.ses import EmailCapture
from local.sources import (
    EventLog,
    QueueSource,
    RuleSource,
    StreamSource,
    WebhookDeliveries,
    create_queues,
    event_sources,
    rule_targets,
)
from local.stack import Sources, Stack
from local.tables import create_tables
from local.template import functions, parameter_values, resources

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


@dataclass
class Running:
    """What `start` brought up, for `stop` to take down (any of it may be missing)."""

    config: Config
    console: TextIO
    timings: dict[str, float] = field(default_factory=dict)  # seconds each part took
    children: list[Any] = field(default_factory=list)  # DynamoDB Local, localstripe, moto
    servers: list[Server] = field(default_factory=list)
    runtime: Environments | None = None
    stack: Stack | None = None
    function_log: TextIO | None = None
    dynamodb_server: DynamoDBLocal | None = None
    endpoints: Endpoints | None = None
    started_in: float | None = None
    seeded_demo: bool = False

    def timed[T](self, part: str, start: Callable[[], T]) -> T:
        began = time.monotonic()
        try:
            return start()
        finally:
            self.timings[part] = time.monotonic() - began

    def say(self, line: str) -> None:
        print(line, file=self.console, flush=True)

    def stop(self) -> None:
        """Stop every part that was started (whatever state `start` reached)."""
        if self.stack is not None:
            self.stack.ready = False
        for server in self.servers:
            with contextlib.suppress(Exception):
                server.stop()
        if self.stack is not None:
            self.stack.stop()
        if self.runtime is not None:
            self.runtime.stop()
        for child in reversed(self.children):
            with contextlib.suppress(Exception):
                child.stop()
        if self.function_log is not None:
            self.function_log.close()
            self.function_log = None


def check_ports(config: Config) -> None:
    """Fail at once, before starting anything, when a port to listen on is taken."""
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


def start(config: Config, running: Running) -> Stack:
    """Bring the whole stack up into `running` (stopped by `running.stop()`, also after a
    failure half way)."""
    began = time.monotonic()
    check_ports(config)
    data = config.data_dir
    data.mkdir(parents=True, exist_ok=True)
    # What the functions print (Powertools' logs and metrics) goes to `functions.log`, as it
    # would go to CloudWatch Logs: their environments write there, and so does the layer's
    # logger when a use case runs in this process; the console keeps the stack's own lines.
    running.function_log = (data / "functions.log").open("a", encoding="utf-8", buffering=1)
    handler = logger.registered_handler
    if isinstance(handler, logging.StreamHandler):
        handler.setStream(running.function_log)
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    clock = BusinessClock(data / "clock.json")
    issuer = Issuer(data / "issuer-key.json")
    keys = Secrets(
        webhook=read_or_create(
            data / "stripe-webhook-secret", lambda: f"whsec_local_{secrets.token_hex(16)}"
        ).strip(),
        # The key of the API's list cursors (lifecycle.usecases.cursors): never in the code.
        cursor=read_or_create(data / "cursor-secret", lambda: secrets.token_urlsafe(32)).strip(),
    )
    with ThreadPoolExecutor(max_workers=3, thread_name_prefix="start") as pool:
        dynamodb_up = pool.submit(running.timed, "dynamodb", lambda: _dynamodb(config, running))
        stripe_up = pool.submit(running.timed, "localstripe", lambda: _stripe(config, running))
        moto_up = pool.submit(running.timed, "moto", lambda: _moto(config, running, clock))
        dynamodb_endpoint = _result(dynamodb_up, "DynamoDB")
        stripe_api_base = _result(stripe_up, "Stripe")
        moto = _result(moto_up, "moto (SQS, EventBridge)")
    endpoints = running.endpoints = Endpoints(
        dynamodb=dynamodb_endpoint, stripe=stripe_api_base, moto=moto.endpoint, ses=moto.ses
    )
    environment = function_environment(
        config,
        endpoints,
        keys,
        user_pool_id=moto.pool.pool_id,
        email_sender=moto.email_sender,
        queues=moto.queue_variables,
    )
    runtime = running.runtime = Environments(
        clock.now,
        limits=concurrency_limits(),
        log_path=running.function_log.name,
        env=environment,
    )
    invoke = runtime.invoke
    dynamodb = aws_client("dynamodb", endpoints.dynamodb)
    store = running.timed("wiring", lambda: _tables(config, dynamodb))
    webhooks = WebhookDeliveries(endpoints.stripe, SECRET_KEY, WEBHOOK_EVENTS)
    streams = aws_client("dynamodbstreams", endpoints.dynamodb)
    tables = {
        "IntegrationsTable": config.table_name,
        "IdempotencyTable": config.idempotency_table_name,
    }
    sources = Sources(
        queues=[QueueSource(*queue, invoke) for queue in moto.queue_sources],
        streams=[
            StreamSource(
                dynamodb,
                streams,
                tables[source.source],
                source,
                data / f"stream-{source.function.logical_id}.json",
                invoke,
            )
            for source in event_sources("DynamoDB")
        ],
        rules=[RuleSource(*rule, invoke) for rule in moto.rule_sources],
        event_log=moto.event_log,
        webhooks=webhooks,
        emails=moto.emails,
    )
    services = Services(
        store=store,
        payments=StripePayments(SECRET_KEY, api_base=endpoints.stripe),
        clock=clock,
        catalog=settings().catalog,
        directory=CognitoDirectory(moto.pool.pool_id, client=moto.cognito),
    )
    accounts = Accounts(
        issuer=issuer,
        cognito=moto.cognito,
        pool=moto.pool,
        services=services,
        invoke=invoke,
        api_url=config.api_url,
        await_webhooks=webhooks.wait,
    )
    stack = running.stack = Stack(
        config,
        clock=clock,
        issuer=issuer,
        invoke=invoke,
        sources=sources,
        accounts=accounts,
        checks={
            "dynamodb": lambda: dynamodb.describe_table(TableName=config.table_name),
            "stripe": lambda: _get(f"{endpoints.stripe}/v1/customers?limit=1"),
            "moto": lambda: (
                moto.sqs.get_queue_attributes(
                    QueueUrl=moto.event_log.url, AttributeNames=["QueueArn"]
                ),
                moto.cognito.describe_user_pool(UserPoolId=moto.pool.pool_id),
            ),
        },
        console=running.console,
    )
    runtime.on_charges = stack.charged
    for port, app, what in (
        (config.api_port, api_app(stack, config.api_port, invoke), "API_PORT"),
        (config.webhook_port, webhook_app(invoke, webhooks.answered, stack.say), "WEBHOOK_PORT"),
    ):
        try:
            running.servers.append(serve(config.host, port, app))
        except OSError as error:
            raise StartupError(f"cannot listen on port {port} ({what}): {error}") from error
    # A name per port: stacks sharing one localstripe each get their own deliveries.
    register_webhook(
        endpoints.stripe,
        f"local-{config.webhook_port}",
        config.webhook_url,
        keys.webhook,
        WEBHOOK_EVENTS,
    )
    stack.run_in_background()
    stack.settle()
    if config.seed:
        running.seeded_demo = running.timed("seed", lambda: seed_demo(accounts, clock))
        stack.settle()
    running.started_in = time.monotonic() - began
    stack.ready = True
    threading.Thread(target=_warm, args=(runtime, stack), name="warm", daemon=True).start()
    return stack


def _dynamodb(config: Config, running: Running) -> str:
    if config.dynamodb_endpoint:
        return config.dynamodb_endpoint
    server = DynamoDBLocal(port=config.dynamodb_port, data_dir=config.data_dir / "ddb")
    running.children.append(server)
    running.dynamodb_server = server
    try:
        server.start()
    except Exception as error:
        raise StartupError(
            f"DynamoDB Local did not start on port {config.dynamodb_port} (DYNAMODB_PORT): {error}"
        ) from error
    return server.endpoint


def _stripe(config: Config, running: Running) -> str:
    if config.stripe_api_base:
        return config.stripe_api_base
    server = LocalStripe(
        config.stripe_port,
        config.data_dir / "stripe.pickle",
        idempotency_keys=True,
        webhook_delay=STACK_WEBHOOK_DELAY_SECONDS,
    )
    running.children.append(server)
    try:
        server.start()
    except Exception as error:
        raise StartupError(f"{error} (port {config.stripe_port}: STRIPE_PORT)") from error
    return server.api_base


@dataclass
class Moto:
    """moto's server and what the template declares in it: queues, the bus and its rules, the
    user pool, the SES capture in front of moto's SES."""

    endpoint: str
    sqs: Any
    cognito: Any
    pool: userpool.LocalPool
    queue_sources: list[tuple[Any, str, str, Any]]
    queue_variables: dict[str, str]
    rule_sources: list[tuple[Any, Any, str, Any, str | None]]
    event_log: EventLog
    emails: EmailCapture
    email_sender: str
    ses: str


def _moto(config: Config, running: Running, clock: BusinessClock) -> Moto:
    """moto's server, then what the template declares in it; run as soon as moto listens,
    while Java still boots. In a process of its own: here it would share the GIL."""
    port = config.moto_port or free_port()
    command = [sys.executable, "-m", "local.devmoto", "-H", config.host, "-p", str(port)]
    command += ["--cognito-data-file", str(config.data_dir / "cognito.pickle")]
    server = Child("moto's server", command, listening(config.host, port), env=python_env())
    running.children.append(server)
    server.start()
    endpoint = f"http://{config.host}:{port}"
    sqs = aws_client("sqs", endpoint)
    events = aws_client("events", endpoint)
    sources = event_sources("SQS")
    # Every queue a function reads (event source) or is given (a `!Ref` in its variables).
    referenced = {
        name: value["Ref"]
        for function in functions().values()
        for name, value in (function.properties.get("Environment", {}).get("Variables", {}).items())
        if isinstance(value, dict) and value.get("Ref") in resources("AWS::SQS::Queue")
    }
    targets = rule_targets() if config.rules else []
    failures = [t.on_failure for t in targets if t.on_failure]
    queues = create_queues(sqs, [*(s.source for s in sources), *referenced.values(), *failures])
    events.create_event_bus(Name=config.bus_name)
    cognito = aws_client("cognito-idp", endpoint)
    # The capture in front of moto's SES v2, on a free port, with the sender verified.
    emails = EmailCapture(endpoint, config.data_dir / "emails.jsonl", clock.now)
    sender = str(parameter_values()["EmailSender"])
    emails.verify_sender(aws_client("sesv2", endpoint), sender)
    ses_port = free_port()
    running.servers.append(serve(config.host, ses_port, emails.app))
    return Moto(
        endpoint=endpoint,
        sqs=sqs,
        cognito=cognito,
        # The user pool of template.yaml, as moto keeps it across restarts.
        pool=userpool.wire(cognito),
        queue_sources=[(sqs, *queues[source.source], source) for source in sources],
        queue_variables={name: queues[queue][0] for name, queue in referenced.items()},
        # Functions invoked by rules on the bus (the notifier), failures to their OnFailure
        # queue.
        rule_sources=[
            (
                events,
                sqs,
                config.bus_name,
                target,
                queues[target.on_failure][0] if target.on_failure else None,
            )
            for target in targets
        ],
        event_log=EventLog(events, sqs, config.bus_name, config.data_dir / "events.jsonl"),
        emails=emails,
        email_sender=sender,
        ses=f"http://{config.host}:{ses_port}",
    )


def _tables(config: Config, dynamodb: Any) -> Store:
    create_tables(
        dynamodb,
        {
            "IntegrationsTable": config.table_name,
            "IdempotencyTable": config.idempotency_table_name,
        },
    )
    return Store(config.table_name, client=dynamodb)


def _warm(runtime: Environments, stack: Stack) -> None:
    """Once ready: one environment of every function not started yet, one at a time in the
    background, so that a developer's first request to a function pays no cold start."""
    for logical_id in functions():
        if not stack.ready:
            return
        try:
            runtime.warm(logical_id)
        except Exception as error:  # the first invocation will say it again, in context
            stack.say(f"could not start an environment of {logical_id}: {error}")


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


# ---------------------------------------------------------------- make dev


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
    running = Running(config, console=sys.stdout)
    print(f"Starting the local stack (data in {config.data_dir})...", flush=True)
    try:
        stack = start(config, running)
        _banner(running, stack)
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
        running.say("Stopping...")
        running.stop()
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


def _banner(running: Running, stack: Stack) -> None:
    config = running.config
    endpoints = running.endpoints
    assert endpoints is not None and running.started_in is not None
    token, _ = stack.issuer.mint(DEMO_ACCOUNT, billing_access=True)
    api = config.api_url
    took = ", ".join(f"{part} {seconds:.1f} s" for part, seconds in running.timings.items())
    lines = [
        f"Local stack ready in {running.started_in:.1f} s ({took})"
        + (", demo seeded" if running.seeded_demo else ""),
        "",
        f"  Dashboard           {api}/  (New account, or pick a user: member or billing)",
        f"  API                 {api}/v1/...",
        f"  Swagger UI          {api}/docs",
        f"  Local routes        {api}/_local/signup, /_local/tokens, /_local/clock, ...",
        f"  Stripe webhook URL  {config.webhook_url}",
        f"  DynamoDB            {endpoints.dynamodb}{_storage(running)}",
        f"  Stripe (localstripe) {endpoints.stripe}",
        f"  SQS, EventBridge, Cognito user pool  {endpoints.moto} (moto)",
        f"  Business clock      {stack.clock.now().isoformat().replace('+00:00', 'Z')}",
        "",
        f"Token for {DEMO_ACCOUNT} (billing access, 12 h):",
        f"  export TOKEN={token}",
        f'  curl -s {api}/v1/integrations -H "Authorization: Bearer $TOKEN"',
        "",
        "Ctrl-C stops everything.",
    ]
    running.say("\n".join(lines))


def _storage(running: Running) -> str:
    """Where DynamoDB Local keeps its data, and whether it syncs it."""
    server = running.dynamodb_server
    if server is None or server.data_dir is None:
        return ""
    syncs = server.no_fsync() is None
    return f" (data in {server.data_dir}{'' if syncs else ', without fsync: eatmydata'})"


if __name__ == "__main__":
    sys.exit(main())

"""How the local stack runs its functions: Lambda execution environments, as processes.

On Lambda each concurrent invocation of a function gets an execution environment of its own: a
process that imported the function once (the cold start) and then serves one invocation at a
time. `Environments` does the same here: every function gets up to its concurrency limit of
processes (spawned on first need, kept warm), and invocations of different functions, or of the
same function in different environments, run side by side. The handlers' module-level state
(the resolver's current event, the batch processor's records, Powertools' process-wide metrics
and logger keys) is then as private to an invocation as it is on Lambda.

Each environment gets the variables `Environments` is given (`local.config.function_environment`:
the template's, the local endpoints, the secrets and the queue URLs) and wires its services from
them: the store, the Stripe adapter counting its charges (the stack waits for webhooks after a
charge), and a clock that reads the business clock's time as each invocation starts.

`InProcess` is the other runtime: the handler called in this process, one invocation at a time
(module-level state would be shared otherwise). The tests' in-process gateway uses it. Either is
handed to whatever invokes a function (`local.gateway.Invoke`): there is no runtime by default.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import socket
import subprocess
import sys
import threading
import traceback
import warnings
from collections.abc import Callable, Mapping
from datetime import datetime
from multiprocessing.connection import Connection
from typing import Any, Protocol

from lifecycle.payments.port import PaymentRequest, PaymentResult
from lifecycle.payments.stripe_adapter import StripePayments
from lifecycle.rules.calendar import format_instant, parse_instant
from lifecycle.settings import settings
from lifecycle.store.repository import Store
from lifecycle.usecases.services import Services, use_services
from local.events import LambdaContext
from local.template import NO_VALUE, ROOT, evaluate, functions

# At most this many environments of one function, whatever the template allows (Lambda's
# account default is 1,000): the functions wait on DynamoDB Local and localstripe, which share
# the machine's cores, so more processes than cores only add cold starts (about 1.5 CPU
# seconds each) and memory (about 100 MB each).
MAX_LOCAL_CONCURRENCY = max(2, os.cpu_count() or 2)
DEFAULT_CONCURRENCY = MAX_LOCAL_CONCURRENCY
STOP_TIMEOUT_SECONDS = 5.0


class FunctionError(RuntimeError):
    """The handler raised (its traceback went to the function log), or its process died."""


class Runtime(Protocol):
    def invoke(self, logical_id: str, event: dict[str, Any]) -> Any: ...

    def stop(self) -> None: ...


def load_handler(folder: str) -> Callable[[dict[str, Any], Any], Any]:
    module = importlib.import_module(f"functions.{folder}.app")
    handler: Callable[[dict[str, Any], Any], Any] = module.lambda_handler
    return handler


class InProcess:
    """Every handler in this process, one invocation at a time across all functions."""

    def __init__(self) -> None:
        self._lock = threading.RLock()

    def invoke(self, logical_id: str, event: dict[str, Any]) -> Any:
        function = functions()[logical_id]
        with self._lock:
            return load_handler(function.folder)(event, LambdaContext(logical_id, function.timeout))

    def stop(self) -> None:
        """Nothing to stop: the handlers live in this process."""


# ---------------------------------------------------------------- execution environments


def concurrency_limits() -> dict[str, int]:
    """Each function's most environments at once, from template.yaml: its reserved concurrency
    and its event sources' `ScalingConfig.MaximumConcurrency`, whichever is lower (parameters
    at their defaults), capped at `MAX_LOCAL_CONCURRENCY`; functions with neither are left out
    (they get `DEFAULT_CONCURRENCY`, the same cap)."""
    limits: dict[str, int] = {}
    for logical_id, function in functions().items():
        found = [_number(function.properties.get("ReservedConcurrentExecutions"))]
        for event in (function.properties.get("Events") or {}).values():
            scaling = (event.get("Properties") or {}).get("ScalingConfig") or {}
            found.append(_number(scaling.get("MaximumConcurrency")))
        numbers = [number for number in found if number is not None]
        if numbers:
            limits[logical_id] = max(1, min(*numbers, MAX_LOCAL_CONCURRENCY))
    return limits


def _number(value: Any) -> int | None:
    """A number of the template, as deployed with the parameters' defaults (a `!Ref`, an `!If`
    on a condition); None when absent or left out (`AWS::NoValue`)."""
    value = evaluate(value)
    return None if value is None or value is NO_VALUE else int(value)


class _Environment:
    """One process (`python -m local.runtime`) serving one function's invocations, one at a
    time, over a socket pair; what the function prints goes to the stack's function log."""

    def __init__(
        self,
        logical_id: str,
        folder: str,
        timeout: float,
        log_path: str | None,
        env: Mapping[str, str],
    ) -> None:
        ours, theirs = socket.socketpair()
        with contextlib.ExitStack() as stack:
            stack.callback(theirs.close)
            output = stack.enter_context(open(log_path, "ab")) if log_path else None
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "local.runtime",
                    str(theirs.fileno()),
                    logical_id,
                    folder,
                    str(timeout),
                ],
                cwd=ROOT,
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=output,
                # The functions' variables (`local.config.function_environment`); each log
                # line written at once.
                env={**env, "PYTHONUNBUFFERED": "1"},
            )
        self.connection = Connection(ours.detach())

    def invoke(self, event: dict[str, Any], now: datetime) -> tuple[str, Any, int]:
        """("ok", result, charges made) or ("error", message, charges made)."""
        try:
            self.connection.send((event, format_instant(now)))
            outcome, value, charges = self.connection.recv()
        except (EOFError, OSError) as error:
            return "died", f"the execution environment died: {error!r}", 0
        return str(outcome), value, int(charges)

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.connection.send(None)
        try:
            self.process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(STOP_TIMEOUT_SECONDS)
        self.connection.close()


class Environments:
    """Up to `limits[function]` (else `DEFAULT_CONCURRENCY`) environments per function; an
    invocation takes an idle one, starts one below the limit, or waits for one to be free."""

    def __init__(
        self,
        now: Callable[[], datetime],
        *,
        limits: Mapping[str, int],
        env: Mapping[str, str],
        log_path: str | None = None,
        on_charges: Callable[[int], None] = lambda count: None,
    ) -> None:
        self.now = now
        self.limits = dict(limits)
        self.env = dict(env)
        self.on_charges = on_charges
        self.log_path = log_path
        self._changed = threading.Condition()
        self._idle: dict[str, list[_Environment]] = {}
        self._count: dict[str, int] = {}
        self._stopped = False

    def invoke(self, logical_id: str, event: dict[str, Any]) -> Any:
        environment = self._take(logical_id)
        outcome, value, charges = environment.invoke(event, self.now())
        self._give_back(logical_id, environment, healthy=outcome != "died" and environment.alive)
        if charges:
            self.on_charges(charges)
        if outcome != "ok":
            raise FunctionError(str(value))
        return value

    def warm(self, logical_id: str) -> None:
        """Start one environment of the function if it has none (a cold start ahead of time)."""
        with self._changed:
            if self._stopped or self._count.get(logical_id, 0):
                return
            self._count[logical_id] = 1
        environment = self._start(logical_id)
        self._give_back(logical_id, environment, healthy=True)

    def stop(self) -> None:
        with self._changed:
            self._stopped = True
            idle = [environment for group in self._idle.values() for environment in group]
            self._idle.clear()
            self._changed.notify_all()
        for environment in idle:
            environment.stop()

    def _take(self, logical_id: str) -> _Environment:
        with self._changed:
            while True:
                if self._stopped:
                    raise FunctionError("the local stack is stopping")
                idle = self._idle.get(logical_id)
                if idle:
                    return idle.pop()
                if self._count.get(logical_id, 0) < self._limit(logical_id):
                    self._count[logical_id] = self._count.get(logical_id, 0) + 1
                    break
                self._changed.wait()
        try:
            return self._start(logical_id)
        except BaseException:
            with self._changed:
                self._count[logical_id] -= 1
                self._changed.notify_all()
            raise

    def _start(self, logical_id: str) -> _Environment:
        function = functions()[logical_id]
        return _Environment(logical_id, function.folder, function.timeout, self.log_path, self.env)

    def _give_back(self, logical_id: str, environment: _Environment, *, healthy: bool) -> None:
        with self._changed:
            if healthy and not self._stopped:
                self._idle.setdefault(logical_id, []).append(environment)
                self._changed.notify_all()
                return
            self._count[logical_id] -= 1
            self._changed.notify_all()
        environment.stop()

    def _limit(self, logical_id: str) -> int:
        return max(1, self.limits.get(logical_id, DEFAULT_CONCURRENCY))


# ---------------------------------------------------------------- inside an environment


class _InvocationClock:
    """The business clock's time at the start of the invocation being served."""

    def __init__(self) -> None:
        self.moment: datetime | None = None

    def now(self) -> datetime:
        assert self.moment is not None, "read outside an invocation"
        return self.moment


def serve(connection: Connection, logical_id: str, folder: str, timeout: float) -> None:
    """An execution environment: wire the services, import the function (its cold start), then
    serve invocations until told to stop or the stack goes away (the socket closes)."""
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    clock = _InvocationClock()
    payments = _wire(clock)
    handler = load_handler(folder)
    while True:
        try:
            message = connection.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        event, now = message
        clock.moment = parse_instant(now)
        before = payments.charges
        try:
            result = handler(event, LambdaContext(logical_id, timeout))
        except Exception as error:
            traceback.print_exc()
            connection.send(
                ("error", f"{type(error).__name__}: {error}", payments.charges - before)
            )
            continue
        connection.send(("ok", result, payments.charges - before))


def _counting_payments() -> Any:
    """The Stripe adapter (localstripe, from the environment), counting its charges: the
    stack awaits webhooks only after a charge."""

    class CountedStripePayments(StripePayments):
        charges = 0

        def charge(self, request: PaymentRequest) -> PaymentResult:
            type(self).charges += 1
            return super().charge(request)

    return CountedStripePayments(os.environ["STRIPE_SECRET_KEY"])


def _wire(clock: _InvocationClock) -> Any:
    """The services, wired from the environment the stack gave this process."""
    payments = _counting_payments()
    use_services(
        Services(
            store=Store(settings().table_name),
            payments=payments,
            clock=clock,
            catalog=settings().catalog,
        )
    )
    return payments


def main(argv: list[str]) -> int:
    descriptor, logical_id, folder, timeout = argv
    # Ctrl-C reaches the whole process group: the stack stops its environments itself (or
    # they see its socket close), after the invocations in flight.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with Connection(int(descriptor)) as connection:
        serve(connection, logical_id, folder, float(timeout))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The running local stack (shared/spec/local.md): its parts, as `local.dev` wired them, and what
moves work along between them.

| part | here |
| --- | --- |
| DynamoDB | DynamoDB Local (data in `<data>/ddb`), tables from template.yaml |
| Stripe | localstripe (`<data>/stripe.pickle`), webhooks sent to the function URL |
| SQS queue, EventBridge bus, user pool | moto's server, in a process of its own, on a free port |
| API Gateway + JWT authorizer, function URL | `local.server` on `API_PORT`, `WEBHOOK_PORT` |
| EventBridge Scheduler | `local.clock`: the business clock (`<data>/clock.json`) |
| event sources (SQS, stream, rules on the bus) | `local.sources` |
| SES | moto's SES v2 behind `local.ses.EmailCapture` (`<data>/emails.jsonl`) |

AWS moves work along on its own; here `settle` does, after every clock advance and from a
background thread twice a second: the renewal queue, the stream to the bus, the rules on the
bus, and Stripe's webhooks, which are awaited after any charge.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO

from lifecycle.clock import FixedClock
from local.accounts import Accounts
from local.auth import Issuer
from local.clock import Advance, Schedule, Scheduler, scheduled_event, schedules
from local.config import Config
from local.gateway import Invoke
from local.ses import EmailCapture
from local.sources import EventLog, QueueSource, RuleSource, StreamSource, WebhookDeliveries

BACKGROUND_PERIOD_SECONDS = 0.5


@dataclass(frozen=True, slots=True)
class Sources:
    """What AWS wires between the functions (`local.sources`), as built from template.yaml."""

    queues: Sequence[QueueSource]
    streams: Sequence[StreamSource]
    rules: Sequence[RuleSource]
    event_log: EventLog
    webhooks: WebhookDeliveries
    emails: EmailCapture


class Stack:
    """The local stack once its parts run: the business clock, the functions (`invoke`), the
    event sources, the accounts; `health` checks each part."""

    def __init__(
        self,
        config: Config,
        *,
        clock: FixedClock,
        issuer: Issuer,
        invoke: Invoke,
        sources: Sources,
        accounts: Accounts,
        checks: dict[str, Callable[[], object]],
        console: TextIO,
    ) -> None:
        self.config = config
        self.clock = clock
        self.issuer = issuer
        self.invoke = invoke
        self.sources = sources
        self.accounts = accounts
        self.checks = checks
        self.console = console
        self.ready = False
        self.scheduler = Scheduler(
            clock, schedules(), accounts.services.store.earliest_due, self._fire
        )
        self._stopping = threading.Event()
        # Held while the stack moves work along (a clock advance, the background pump): one
        # mover at a time, re-entrant so that a slot's run can settle inside an advance.
        self._work = threading.RLock()
        self._charges_seen = 0
        self._charges_made = 0  # by the functions, in their environments (`charged`)
        self._charge_lock = threading.Lock()
        self._background: threading.Thread | None = None

    def say(self, line: str) -> None:
        """A line for the developer's console (what the functions print goes to their log)."""
        print(line, file=self.console, flush=True)

    def charged(self, count: int) -> None:
        """Called by the runtime: the functions made `count` charges (webhooks will follow)."""
        with self._charge_lock:
            self._charges_made += count

    # ---------------------------------------------------------------- moving work along

    def run_in_background(self) -> None:
        """What AWS does at any time, from now on: read the stream, the queue and the bus."""
        self._background = threading.Thread(target=self._pump, name="event-sources", daemon=True)
        self._background.start()

    def stop(self) -> None:
        self.ready = False
        self._stopping.set()
        if self._background is not None:
            self._background.join(timeout=10)

    def _pump(self) -> None:
        last_error = ""
        while not self._stopping.wait(BACKGROUND_PERIOD_SECONDS):
            if not self._work.acquire(blocking=False):
                continue
            try:
                self._drain_queues()
                self._pump_streams()
                self._drain_rules()
                self.sources.event_log.collect()
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
                    work += self.sources.webhooks.wait()
                if not work:
                    break

    def _drain_queues(self) -> int:
        return sum(queue.drain() for queue in self.sources.queues)

    def _pump_streams(self) -> int:
        return sum(stream.pump() for stream in self.sources.streams)

    def _drain_rules(self) -> int:
        return sum(rule.drain() for rule in self.sources.rules)

    def _fire(self, schedule: Schedule, at: datetime) -> Any:
        """Run one schedule slot to the end: the function, then whatever it set in motion."""
        try:
            result = self.invoke(schedule.function, scheduled_event(schedule, at))
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
            self.sources.event_log.collect()
        return self.sources.event_log.items()

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
            for item in self.sources.emails.items()
        ]

    # ---------------------------------------------------------------- health

    def health(self) -> dict[str, str]:
        """Each part's state: `ok`, or what is wrong."""
        parts = {}
        for name, check in self.checks.items():
            try:
                check()
                parts[name] = "ok"
            except Exception as error:
                parts[name] = f"{type(error).__name__}: {error}"[:200]
        parts["stack"] = "ok" if self.ready else "starting"
        return parts

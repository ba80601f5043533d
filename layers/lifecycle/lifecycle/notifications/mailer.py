"""Sending one email through Amazon SES (v2 `SendEmail`, simple content: subject, text, HTML).

The client is built on first use. SES's own words never leave here: an error message may quote
an address, so a failure is raised as `EmailNotSent` with SES's error code only."""

from __future__ import annotations

import functools
from typing import Any, Protocol

from lifecycle import aws
from lifecycle.notifications.render import Email

# Each email names the domain event it is for (support can trace it; the local capture lists
# it as `event_id`).
EVENT_HEADER = "X-Event-Id"


class EmailNotSent(Exception):
    """SES did not take the email (throttled, refused, unreachable): the claim is released and
    the event is retried (Lambda's asynchronous retries, then the notifier's DLQ)."""

    def __init__(self, code: str) -> None:
        super().__init__(f"SES did not send the email ({code})")
        self.code = code


class Mailer(Protocol):
    def send(self, *, sender: str, to: str, email: Email, event_id: str, tag: str) -> str:
        """Send `email` to one address; the provider's message id. Raises EmailNotSent."""
        ...


@functools.cache
def _client() -> Any:
    return aws.client("sesv2")


class SesMailer:
    """Amazon SES v2 (`AWS_ENDPOINT_URL_SESV2` points it at the local capture)."""

    def send(self, *, sender: str, to: str, email: Email, event_id: str, tag: str) -> str:
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

        try:
            response = _client().send_email(
                FromEmailAddress=sender,
                Destination={"ToAddresses": [to]},
                Content={
                    "Simple": {
                        "Subject": {"Data": email.subject, "Charset": "UTF-8"},
                        "Body": {
                            "Text": {"Data": email.text, "Charset": "UTF-8"},
                            "Html": {"Data": email.html, "Charset": "UTF-8"},
                        },
                        "Headers": [{"Name": EVENT_HEADER, "Value": event_id}],
                    }
                },
                EmailTags=[{"Name": "kind", "Value": tag}],
            )
        except ClientError as error:
            raise EmailNotSent(str(error.response.get("Error", {}).get("Code"))) from None
        except BotoCoreError as error:
            raise EmailNotSent(type(error).__name__) from None
        return str(response.get("MessageId", ""))

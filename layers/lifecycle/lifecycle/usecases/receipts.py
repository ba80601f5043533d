"""The receipt of a charge (billing access): PDF, or HTML when the request's Accept prefers it.

Only a charge that succeeded and was applied has a receipt (its number is taken then); a
refunded one keeps it and shows the refund. Any other charge, one of another account, or an
unknown id has none: `404`, the same answer (api.md: another tenant's id is not found)."""

from __future__ import annotations

from dataclasses import dataclass

from lifecycle.documents.receipts import receipt_of, render_html, render_pdf
from lifecycle.ids import is_issued
from lifecycle.rules.errors import NotFound
from lifecycle.settings import settings
from lifecycle.usecases.caller import Caller
from lifecycle.usecases.services import Services

PDF = "application/pdf"
HTML = "text/html"


@dataclass(frozen=True, slots=True)
class Document:
    content_type: str
    body: bytes
    filename: str


def prefers_html(accept: str | None) -> bool:
    """Whether an Accept header ranks text/html above application/pdf (q-values; the more
    specific range wins; PDF when they tie or neither is named)."""
    if not accept:
        return False
    ranks: dict[str, float] = {}
    for part in accept.split(",")[:32]:
        media, *parameters = [p.strip() for p in part.split(";")]
        quality = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        ranks[media.lower()] = max(quality, ranks.get(media.lower(), 0.0))

    def rank(media: str) -> float:
        kind = media.split("/", maxsplit=1)[0]
        for candidate in (media, f"{kind}/*", "*/*"):
            if candidate in ranks:
                return ranks[candidate]
        return 0.0

    return rank(HTML) > rank(PDF)


def receipt(services: Services, caller: Caller, charge_id: str, accept: str | None) -> Document:
    caller.require_billing()
    if not is_issued(charge_id, "ch"):
        raise NotFound("There is no such charge in this account.")
    line = services.store.get_charge(caller.account_id, charge_id)
    if line is None:
        raise NotFound("There is no such charge in this account.")
    if line.receipt_number is None:
        raise NotFound(
            "This charge has no receipt: only a charge that succeeded has one (a pending,"
            " failed or written-off charge, or one refunded before it paid for anything, has"
            " none).",
            charge_status=line.status.value,
        )
    document = receipt_of(line, settings().receipt_seller)
    if prefers_html(accept):
        return Document(f"{HTML}; charset=utf-8", render_html(document).encode(), "")
    return Document(PDF, render_pdf(document), f"receipt-{document.number}.pdf")

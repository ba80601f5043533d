"""A receipt of one ledger line, as PDF (reportlab, imported on the first receipt only: it is
most of a cold start's import time) or as HTML (Jinja2, autoescape on). Both from `Receipt`,
built from the line alone: nothing to keep in sync."""

from __future__ import annotations

import functools
import io
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lifecycle.rules.ledger import ChargeRecord, ChargeStatus, ReceiptItem
from lifecycle.rules.money import format_amount

REFUND_REASONS = {
    "not_applied": "what it paid for could no longer be applied; refunded in full",
    "refunded_at_stripe": "refunded by our billing team",
}


@dataclass(frozen=True, slots=True)
class Receipt:
    seller: str
    account_id: str
    number: str
    charge_id: str
    date: datetime
    description: str
    items: tuple[ReceiptItem, ...]
    total: int
    currency: str
    refunded: bool
    refunded_at: datetime | None
    refund_reason: str | None

    def money(self, amount: int) -> str:
        return format_amount(amount, self.currency)


def receipt_of(line: ChargeRecord, seller: str) -> Receipt:
    """The receipt of a line that has one (`receipt_number` set)."""
    assert line.receipt_number is not None
    refunded = line.status is ChargeStatus.REFUNDED
    return Receipt(
        seller=seller,
        account_id=line.account_id,
        number=line.receipt_number,
        charge_id=line.id,
        date=line.succeeded_at or line.created_at,
        description=line.description,
        items=line.receipt_items,
        total=line.amount,
        currency=line.currency,
        refunded=refunded,
        refunded_at=line.updated_at if refunded else None,
        refund_reason=REFUND_REASONS.get(line.refund_reason or "", line.refund_reason)
        if refunded
        else None,
    )


def _day(moment: datetime) -> str:
    return f"{moment:%d %B %Y}"


def _time(moment: datetime) -> str:
    return f"{moment:%d %B %Y, %H:%M} UTC"


def _lines(receipt: Receipt) -> list[tuple[str, str, str]]:
    """(what, period, amount) per item, as both forms print them."""
    rows = []
    for item in receipt.items:
        what = item.name if not item.plan else f"{item.name} ({item.plan} plan): {item.fee}"
        period = (
            f"{_day(item.period_start)} to {_day(item.period_end)}"
            if item.period_end > item.period_start
            else ""
        )
        if item.proration:
            what = f"{what}; prorated: {item.proration}"
        rows.append((what, period, receipt.money(item.amount)))
    return rows


# ---------------------------------------------------------------- HTML


@functools.cache
def _html_template() -> Any:
    from jinja2 import Environment, PackageLoader, StrictUndefined  # noqa: PLC0415 - lazy

    environment = Environment(
        loader=PackageLoader("lifecycle.documents", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
    )
    return environment.get_template("receipt.html")


def render_html(receipt: Receipt) -> str:
    return str(
        _html_template().render(
            r=receipt,
            rows=_lines(receipt),
            date=_time(receipt.date),
            total=receipt.money(receipt.total),
            refunded_at=_time(receipt.refunded_at) if receipt.refunded_at else "",
        )
    )


# ---------------------------------------------------------------- PDF


def _pdf_text(value: str, limit: int = 110) -> str:
    """A value for the PDF's standard font (Windows-1252): control characters as spaces, what
    the font cannot draw as `?`, at most `limit` characters on a line."""
    flat = "".join(" " if unicodedata.category(c)[0] == "C" else c for c in value)
    flat = flat.encode("cp1252", "replace").decode("cp1252")
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def render_pdf(receipt: Receipt) -> bytes:
    """One A4 page (more when there are many items), drawn with reportlab's canvas."""
    from reportlab.lib.pagesizes import A4  # noqa: PLC0415 - lazy: the receipt route only
    from reportlab.pdfgen.canvas import Canvas  # noqa: PLC0415

    buffer = io.BytesIO()
    pdf = Canvas(buffer, pagesize=A4, invariant=True)
    pdf.setTitle(_pdf_text(f"Receipt {receipt.number}"))
    pdf.setAuthor(_pdf_text(receipt.seller))
    width, height = A4
    left, right = 56.0, width - 56.0
    y = height - 64.0

    def line(text: str, size: float = 10, bold: bool = False, x: float = left) -> None:
        nonlocal y
        if y < 72:
            pdf.showPage()
            y = height - 64.0
        pdf.setFont("Helvetica-Bold" if bold else "Helvetica", size)
        pdf.drawString(x, y, _pdf_text(text))
        y -= size + 6

    def amount_at_right(text: str, bold: bool = False) -> None:
        pdf.setFont("Helvetica-Bold" if bold else "Helvetica", 10)
        pdf.drawRightString(right, y + 16, _pdf_text(text))

    line(receipt.seller, 16, bold=True)
    line(f"Receipt {receipt.number}", 13, bold=True)
    y -= 6
    line(f"Date: {_time(receipt.date)}")
    line(f"Account: {receipt.account_id}")
    line(f"Charge: {receipt.charge_id}")
    line(f"Currency: {receipt.currency.upper()}")
    y -= 10
    line("Items", 11, bold=True)
    for what, period, amount in _lines(receipt):
        line(what)
        if period:
            line(f"Period: {period} (UTC)", 9, x=left + 12)
        amount_at_right(amount)
        y -= 4
    y -= 6
    pdf.line(left, y + 12, right, y + 12)
    line("Total paid", 11, bold=True)
    amount_at_right(receipt.money(receipt.total), bold=True)
    if receipt.refunded:
        y -= 6
        line(f"Refunded: {receipt.money(receipt.total)}", 11, bold=True)
        if receipt.refunded_at:
            line(f"On {_time(receipt.refunded_at)}: {receipt.refund_reason or 'refunded'}")
    y -= 12
    line("All dates and times are in UTC. Amounts in " + receipt.currency.upper() + ".", 8)
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()

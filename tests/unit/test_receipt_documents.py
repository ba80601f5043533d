"""Receipts rendered from a ledger line: a PDF that a PDF reader opens and that holds the number,
the lines and the total (and the refund); an HTML form for the browser, escaped; which one an
Accept header asks for."""

from __future__ import annotations

import io

import pypdf
import pytest

from lifecycle.documents.receipts import receipt_of, render_html, render_pdf
from lifecycle.rules.calendar import utc
from lifecycle.rules.ledger import ChargeRecord, ChargeStatus, ReceiptItem
from lifecycle.usecases.receipts import prefers_html
from tests.factories import T0


def line(**changes) -> ChargeRecord:
    fields = {
        "id": "ch_01JRECEIPT",
        "account_id": "acc_demo",
        "ledger_key": "account-reactivation:acc_demo:2026-11-01T00:00:00Z",
        "kind": "quote",
        "amount": 5800,
        "currency": "usd",
        "description": "Reactivate 2 integrations",
        "integration_ids": ("int_a", "int_b"),
        "status": ChargeStatus.SUCCEEDED,
        "created_at": T0,
        "updated_at": T0,
        "applied": True,
        "receipt_number": "R-DEMO-0042",
        "succeeded_at": T0,
        "receipt_items": (
            ReceiptItem(
                "int_a",
                "Acme <b>Supply</b>",
                "standard",
                "monthly fee",
                T0,
                utc(2026, 12, 21, 10),
                4900,
            ),
            ReceiptItem(
                "int_b",
                "Globex to Amazon",
                "starter",
                "frozen fee",
                T0,
                utc(2026, 12, 21, 10),
                900,
                "4.00 USD x 12.00 of 30.00 days left",
            ),
        ),
    }
    return ChargeRecord(**(fields | changes))


def pdf_text(record: ChargeRecord) -> str:
    document = pypdf.PdfReader(io.BytesIO(render_pdf(receipt_of(record, "Supplier Feeds"))))
    return "\n".join(page.extract_text() for page in document.pages)


def test_the_pdf_opens_and_holds_the_seller_number_lines_period_and_total():
    text = pdf_text(line())

    assert "Supplier Feeds" in text
    assert "Receipt R-DEMO-0042" in text
    assert "Account: acc_demo" in text
    assert "Acme <b>Supply</b> (standard plan): monthly fee" in text
    assert "Globex to Amazon (starter plan): frozen fee" in text
    assert "prorated: 4.00 USD x 12.00 of 30.00 days left" in text
    assert "Period: 21 November 2026 to 21 December 2026 (UTC)" in text
    assert "49.00 USD" in text and "9.00 USD" in text
    assert "Total paid" in text and "58.00 USD" in text
    assert "Currency: USD" in text
    assert "Refunded" not in text


def test_a_refunded_charge_keeps_its_receipt_and_shows_the_refund():
    refunded = line(
        status=ChargeStatus.REFUNDED,
        refund_reason="refunded_at_stripe",
        updated_at=utc(2026, 11, 25, 9, 30),
    )

    text = pdf_text(refunded)
    html = render_html(receipt_of(refunded, "Supplier Feeds"))

    assert "Refunded: 58.00 USD" in text
    assert "On 25 November 2026, 09:30 UTC: refunded by our billing team" in text
    assert "Refunded: 58.00 USD" in html


def test_a_name_the_pdf_font_cannot_draw_is_drawn_with_question_marks_not_an_error():
    odd = line(
        receipt_items=(
            ReceiptItem(
                "int_a",
                "Feed \u2603\U0001f600 \u6771\u4eac\nnext",
                "standard",
                "monthly fee",
                T0,
                utc(2026, 12, 21, 10),
                5800,
            ),
        )
    )

    assert "Feed ?? ?? next (standard plan)" in pdf_text(odd)


def test_the_html_form_escapes_every_value():
    html = render_html(receipt_of(line(), "Supplier <i>Feeds</i>"))

    assert "<b>Supply</b>" not in html and "Acme &lt;b&gt;Supply&lt;/b&gt;" in html
    assert "Supplier &lt;i&gt;Feeds&lt;/i&gt;" in html
    assert "Receipt R-DEMO-0042" in html and "58.00 USD" in html


@pytest.mark.parametrize(
    ("accept", "html"),
    [
        (None, False),
        ("", False),
        ("application/pdf", False),
        ("*/*", False),
        ("text/html", True),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", True),
        ("application/pdf, text/html;q=0.5", False),
        ("application/pdf;q=0.4, text/html;q=0.5", True),
        ("text/*", True),
        ("text/html;q=0, */*", False),
        ("text/html;q=nonsense", False),
    ],
)
def test_html_only_when_accept_ranks_it_above_pdf(accept, html):
    assert prefers_html(accept) is html

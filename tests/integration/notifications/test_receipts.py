"""Receipt numbers and the receipt route, against DynamoDB Local with the payments fake: a number
per succeeded charge, taken in the transaction that applies it, increasing per account with no
gap when charges race (real threads); `ChargeSucceeded` once per charge; the PDF read back; the
route's 404s and 403."""

from __future__ import annotations

import base64
import io
import threading

import pypdf
import pytest

from functions.billing.app import lambda_handler as billing
from lifecycle.rules.ledger import ChargeStatus
from lifecycle.rules.renewal import DueKind
from lifecycle.usecases import renewals
from local.events import LambdaContext
from local.inprocess import claims, http_event, invoke
from tests.factories import add_account
from tests.store_reads import outbox_events

pytestmark = pytest.mark.integration

ROUTE = "/v1/account/charges/{id}/receipt"
BODY = {
    "name": "Acme Supply to Shopify",
    "supplier": "acme",
    "channel": "shopify",
    "plan": "standard",
}


def receipt(charge_id: str, accept: str = "application/pdf", **token) -> dict:
    event = http_event(
        "GET",
        ROUTE,
        {"id": charge_id},
        headers={"accept": accept, "content-type": None},
        token_claims=claims(**token),
    )
    return billing(event, LambdaContext())


def create(name: str = "Acme Supply to Shopify", plan: str = "standard", account: str = "acc_1"):
    status, body = invoke(
        "POST",
        "/v1/integrations",
        body={**BODY, "name": name, "plan": plan},
        token_claims=claims(account),
    )
    assert status == 201, body
    return body


def lines(services, account: str = "acc_1"):
    found, _ = services.store.list_charges(account, limit=100)
    return found


def test_charges_racing_on_one_account_take_consecutive_numbers_with_no_gap(services):
    add_account(services.store, "acc_1")
    count = 12
    barrier = threading.Barrier(count)
    statuses: list[int] = []

    def one(n: int) -> None:
        barrier.wait()
        status, _ = invoke(
            "POST",
            "/v1/integrations",
            body={**BODY, "name": f"Feed {n}"},
            token_claims=claims(user_id=f"user_{n}"),
        )
        statuses.append(status)

    threads = [threading.Thread(target=one, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert statuses == [201] * count
    found = lines(services)
    assert sorted(line.receipt_number for line in found) == [
        f"R-1-{n:04d}" for n in range(1, count + 1)
    ]
    assert all(line.status is ChargeStatus.SUCCEEDED and line.applied for line in found)
    assert services.store.receipts_issued("acc_1") == count
    # Increasing: a later success has a later number.
    by_time = sorted(found, key=lambda line: (line.succeeded_at, line.receipt_number))
    assert [line.receipt_number for line in by_time] == sorted(
        line.receipt_number for line in found
    )
    succeeded = [
        e for e in outbox_events(services.store, "acc_1") if e["detail-type"] == "ChargeSucceeded"
    ]
    assert sorted(e["detail"]["receipt_number"] for e in succeeded) == sorted(
        line.receipt_number for line in found
    )


def test_each_account_counts_its_own_receipts_and_a_renewal_gets_the_next_number(services, clock):
    add_account(services.store, "acc_1")
    add_account(services.store, "acc_2")
    first = create()
    create(account="acc_2")
    clock.set(services.store.get_integration("acc_1", first["id"]).current_period_end)

    for key in services.store.due(DueKind.RENEWAL, clock.now()):
        renewals.renew(services, key.account_id, key.integration_id)

    numbers = sorted(line.receipt_number for line in lines(services))
    assert numbers == ["R-1-0001", "R-1-0002"]
    # The other account, renewed in the same sweep, counts from 1 on its own.
    assert sorted(line.receipt_number for line in lines(services, "acc_2")) == [
        "R-2-0001",
        "R-2-0002",
    ]
    renewal = next(line for line in lines(services) if line.kind == "renewal")
    (item,) = renewal.receipt_items
    assert (item.name, item.plan, item.fee, item.amount) == (
        "Acme Supply to Shopify",
        "standard",
        "monthly fee",
        4900,
    )
    assert (
        item.period_start
        == services.store.get_integration("acc_1", first["id"]).current_period_start
    )
    event = next(
        e["detail"]
        for e in outbox_events(services.store, "acc_1")
        if e["detail-type"] == "ChargeSucceeded" and e["detail"]["charge_id"] == renewal.id
    )
    assert event["receipt_number"] == "R-1-0002"
    assert event["period"] == {
        "start": item.period_start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "end": item.period_end.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    assert (event["amount"], event["currency"], event["integration_ids"]) == (
        4900,
        "usd",
        [first["id"]],
    )


def test_renewals_of_one_account_at_once_take_the_next_numbers_with_no_gap(services, clock):
    """A renewal reads the receipt counter in its first round trip, long before it settles: by
    then the other renewals of the account have moved it, and each must still get a number of
    its own, with no gap (real threads, all due at the same moment)."""
    add_account(services.store, "acc_1")
    count = 8
    created = [create(name=f"Feed {n}") for n in range(count)]
    clock.set(services.store.get_integration("acc_1", created[0]["id"]).current_period_end)
    due = list(services.store.due(DueKind.RENEWAL, clock.now()))
    assert len(due) == count
    barrier = threading.Barrier(count)
    results: list[str] = []

    def one(n: int) -> None:
        barrier.wait()
        results.append(renewals.renew(services, due[n].account_id, due[n].integration_id).result)

    threads = [threading.Thread(target=one, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert results == ["renewed"] * count
    renewed = [line for line in lines(services) if line.kind == "renewal"]
    assert sorted(line.receipt_number for line in renewed) == [
        f"R-1-{n:04d}" for n in range(count + 1, 2 * count + 1)
    ]
    assert services.store.receipts_issued("acc_1") == 2 * count


def test_a_renewal_without_a_race_reads_in_one_round_trip_and_writes_in_two(services, clock):
    add_account(services.store, "acc_1")
    first = create()
    clock.set(services.store.get_integration("acc_1", first["id"]).current_period_end)
    services.store.counter.by_operation.clear()

    assert renewals.renew(services, "acc_1", first["id"]).result == "renewed"

    # The account, its receipt counter, the integration and its settings in one BatchGetItem;
    # the ledger line's conditional PutItem before Stripe; the settle transaction after it.
    assert services.store.counter.by_operation == {
        "BatchGetItem": 1,
        "PutItem": 1,
        "TransactWriteItems": 1,
    }
    assert [line.receipt_number for line in lines(services) if line.kind == "renewal"] == [
        "R-1-0002"
    ]


def test_the_receipt_route_answers_a_pdf_that_holds_the_number_lines_and_total(services):
    add_account(services.store, "acc_1")
    created = create(name="Acme <b>Supply</b> {{ 7*7 }}")
    (line,) = lines(services)

    answer = receipt(line.id)

    assert answer["statusCode"] == 200, answer
    assert answer["headers"]["Content-Type"] == "application/pdf"
    assert answer["isBase64Encoded"] is True
    pdf = base64.b64decode(answer["body"])
    text = "\n".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf)).pages)
    assert "Receipt R-1-0001" in text
    assert "Acme <b>Supply</b> {{ 7*7 }} (standard plan): monthly fee" in text
    assert "Total paid" in text and "49.00 USD" in text
    assert created["current_period_end"][:4] in text


def test_the_receipt_route_answers_html_when_accept_prefers_it(services):
    add_account(services.store, "acc_1")
    create(name="Acme <b>Supply</b>")
    (line,) = lines(services)

    answer = receipt(line.id, accept="text/html,application/xhtml+xml;q=0.9,*/*;q=0.8")

    assert answer["statusCode"] == 200
    assert answer["headers"]["Content-Type"] == "text/html; charset=utf-8"
    html = (
        base64.b64decode(answer["body"]).decode() if answer["isBase64Encoded"] else answer["body"]
    )
    assert "Receipt R-1-0001" in html and "Acme &lt;b&gt;Supply&lt;/b&gt;" in html


def test_another_tenants_charge_an_id_not_issued_and_a_charge_without_receipt_are_404(
    services, payments
):
    add_account(services.store, "acc_1")
    add_account(services.store, "acc_2")
    create(account="acc_2")
    (theirs,) = lines(services, "acc_2")
    payments.cards["cus_acc_1"] = "declined"
    status, _ = invoke("POST", "/v1/integrations", body=BODY)
    assert status == 402
    (failed,) = lines(services)

    for charge_id in (theirs.id, "ch_unknown", "int_1", failed.id):
        answer = receipt(charge_id)
        assert answer["statusCode"] == 404, (charge_id, answer)
        assert answer["headers"]["Content-Type"] == "application/problem+json"
    event = http_event("GET", ROUTE, {"id": "ch_1\n"}, headers={"content-type": None})
    assert billing(event, LambdaContext())["statusCode"] == 404


def test_a_member_without_billing_access_gets_403(services):
    add_account(services.store, "acc_1")
    create()
    (line,) = lines(services)

    answer = receipt(line.id, billing=False)

    assert answer["statusCode"] == 403
    assert '"billing_access_required"' in answer["body"]

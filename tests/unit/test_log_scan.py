"""The log scan finds what it must (so that its silence means something)."""

import pytest

from tests.log_scan import findings


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        ('{"message": "card 4242 4242 4242 4242"}', "card number"),
        ('{"pan": "4000000000000341"}', "card number"),
        ('{"pan": "4242-4242-4242-4242"}', "card number"),
        ('{"email": "merchant@example.com"}', "email address"),
        ('{"key": "sk_test_51Habc123xyz"}', "Stripe secret key"),
        ('{"secret": "whsec_current_8c2e7"}', "webhook signing secret"),
        ('{"auth": "Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1MSJ9.sig"}', "bearer token"),
    ],
)
def test_each_kind_of_secret_is_found(line, kind):
    assert kind in {k for k, _ in findings([line])}


def test_ordinary_log_lines_pass():
    lines = [
        '{"level":"INFO","message":"renewal sweep","enqueued":12,"at":"2026-11-22 00:28:14,910"}',
        '{"charge_id":"ch_01JDEMO0000000000000000001","amount":4900,"event_id":"int_1:3:0"}',
        '{"stripe_request_id":"req_123456789012","function_request_id":"2347a85a-802d-4b8c"}',
        # A UUID whose leading digit groups happen to pass the Luhn check.
        '{"function_request_id":"48231998-4101-4522-9b2e-05293b018a6c"}',
    ]
    assert findings(lines) == []

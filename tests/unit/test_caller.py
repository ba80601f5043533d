"""The caller comes from the JWT authorizer's claims, however the groups claim is spelled."""

import pytest

from lifecycle.http.caller import Unauthorized, caller_from_event, parse_groups
from lifecycle.rules.errors import BillingAccessRequired


@pytest.mark.parametrize(
    ("claim", "groups"),
    [
        ("[billing admin]", {"billing", "admin"}),  # HTTP API JWT authorizer's rendering
        ("[billing]", {"billing"}),
        ('["billing", "admin"]', {"billing", "admin"}),
        (["billing"], {"billing"}),
        ("billing,admin", {"billing", "admin"}),
        ("[]", set()),
        ("", set()),
        (None, set()),
        ("[billingadmin]", {"billingadmin"}),
    ],
)
def test_groups_claim_is_parsed_in_every_form(claim, groups):
    assert parse_groups(claim) == groups


def event(claims):
    return {"requestContext": {"authorizer": {"jwt": {"claims": claims}}}}


def test_billing_access_comes_only_from_the_billing_group():
    billing = caller_from_event(
        event({"sub": "u1", "custom:account_id": "acc_1", "cognito:groups": "[billing]"})
    )
    member = caller_from_event(
        event({"sub": "u2", "custom:account_id": "acc_1", "cognito:groups": "[billing-ish]"})
    )
    assert (billing.account_id, billing.user_id, billing.billing_access) == ("acc_1", "u1", True)
    assert member.billing_access is False
    with pytest.raises(BillingAccessRequired):
        member.require_billing()


@pytest.mark.parametrize(
    "claims",
    [
        {},
        {"sub": "u1"},
        {"custom:account_id": "acc_1"},
        {"sub": "u1", "custom:account_id": "../acc_2"},
    ],
)
def test_missing_or_odd_claims_are_unauthorized(claims):
    with pytest.raises(Unauthorized):
        caller_from_event(event(claims))


def test_no_authorizer_context_is_unauthorized():
    with pytest.raises(Unauthorized):
        caller_from_event({"requestContext": {}})

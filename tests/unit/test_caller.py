"""The caller comes from the JWT authorizer's claims, however the groups claim is spelled."""

import json

import pytest

from lifecycle.http.caller import caller_from_event, parse_groups
from lifecycle.rules.errors import BillingAccessRequired, Unauthorized


@pytest.mark.parametrize(
    ("claim", "groups"),
    [
        ("[billing admin]", {"billing", "admin"}),  # HTTP API JWT authorizer's rendering
        ("[billing]", {"billing"}),
        ('["billing", "admin"]', {"billing", "admin"}),
        (["billing"], {"billing"}),
        ("billing,admin", {"billing,admin"}),  # a comma is part of a Cognito group name
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


# ---- api.md, Input limits: claims are read strictly -------------------------------------------

LOOK_ALIKES = [
    "x,billing",
    "billing,",
    ",billing",
    "x billing",  # a list item with a space (Cognito refuses such a name; a list can carry it)
    "billing ",
    " billing",
    "Billing",
    "BILLING",
    "billing-ish",
    "billingadmin",
    "billing\n",
    "'billing'",
    '"billing"',
    "[billing]",
    "billing]",
    "[billing",
    "bil ling",
    "billing\u200b",
]


def claim_shapes(groups: list[str]) -> dict[str, object]:
    """The same groups in every shape the claim reaches a function (caller.parse_groups)."""
    return {
        "list": list(groups),
        "json string": json.dumps(groups),
        "http api rendering": "[" + " ".join(groups) + "]",
    }


def billing_access(groups_claim: object) -> bool:
    claims = {"sub": "u1", "custom:account_id": "acc_1", "cognito:groups": groups_claim}
    return caller_from_event(event(claims)).billing_access


@pytest.mark.parametrize("shape", ["list", "json string", "http api rendering"])
@pytest.mark.parametrize("others", [[], ["admin"], ["admin", "members"]])
def test_the_exact_billing_group_grants_billing_access_in_every_claim_shape(shape, others):
    assert billing_access(claim_shapes([*others, "billing"])[shape]) is True
    assert billing_access(claim_shapes(["billing", *others])[shape]) is True


@pytest.mark.parametrize("shape", ["list", "json string"])
@pytest.mark.parametrize("look_alike", LOOK_ALIKES)
def test_a_look_alike_group_never_grants_billing_access(shape, look_alike):
    assert billing_access(claim_shapes([look_alike])[shape]) is False
    assert billing_access(claim_shapes(["admin", look_alike])[shape]) is False


@pytest.mark.parametrize(
    "look_alike", [name for name in LOOK_ALIKES if not any(c.isspace() for c in name)]
)
def test_a_look_alike_group_never_grants_billing_access_in_the_http_api_rendering(look_alike):
    # Cognito group names hold no whitespace, so the rendering's spaces are the only separators.
    rendered = claim_shapes(["admin", look_alike])["http api rendering"]
    assert billing_access(rendered) is False
    assert parse_groups(rendered) == {"admin", look_alike}


@pytest.mark.parametrize(
    "claim",
    [
        "[x,billing]",
        "[billing,]",
        "[x,billing admin]",
        "x,billing",
        "billing,admin",
        "[billing\tadmin]",  # only the single space API Gateway writes separates names
        "[billing\nadmin]",
        "[ billing]x",
        "billing admin",  # no brackets: one name, and Cognito has no such group
        '["billing "]',
        '["x,billing"]',
        '{"billing": true}',
        "",
        42,
        True,
        {"billing": True},
        [["billing"]],
        [None, 1],
    ],
)
def test_odd_group_claims_grant_no_billing_access(claim):
    assert billing_access(claim) is False


@pytest.mark.parametrize(
    "account_id",
    [
        "acc_1\n",
        "acc_1 ",
        " acc_1",
        "acc_1\t",
        "acc_1\r\n",
        "acc_1\x00",
        "acc_",
        "acc-1",
        "ACC_1",
        "acc_1/..",
        "acc_1#x",
        "acc_" + "a" * 65,
        "acc_é",
        "int_1",
        "",
        None,
        1,
        ["acc_1"],
    ],
)
def test_an_account_id_outside_the_whole_pattern_is_unauthorized(account_id):
    with pytest.raises(Unauthorized):
        caller_from_event(event({"sub": "u1", "custom:account_id": account_id}))


@pytest.mark.parametrize("account_id", ["acc_1", "acc_demo", "acc_" + "a" * 64, "acc_A_b_9"])
def test_an_account_id_of_the_whole_pattern_is_the_tenant(account_id):
    caller = caller_from_event(event({"sub": "u1", "custom:account_id": account_id}))
    assert caller.account_id == account_id

"""The Cognito adapter of the user directory against botocore's model of the cognito-idp API
(`Stubber` checks every request's parameters and every stubbed answer against the operation's
documented shape), and the IAM grants those calls need: only the users function and the
sign-up trigger may call Cognito's admin API, on the stack's pool only, and each exactly the
calls it makes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from lifecycle.directory.cognito import CognitoDirectory
from lifecycle.directory.port import DirectoryUnavailable, InvalidEmail, UserAlreadyExists
from local.template import resources, template

POOL = "us-east-1_Example01"
USERNAME = "6f1c3a52-2d0e-4b7a-9b55-0d4c1e2f3a4b"
POOL_ARN = {"Fn::GetAtt": ["AccountUserPool", "Arn"]}
USERS_CALLS = {
    "AdminCreateUser",
    "AdminGetUser",
    "AdminAddUserToGroup",
    "AdminRemoveUserFromGroup",
    "AdminDisableUser",
    "AdminUserGlobalSignOut",
}
TRIGGER_CALLS = {"AdminUpdateUserAttributes", "AdminAddUserToGroup"}


class Recorded:
    """A stubbed cognito-idp client that records the operations called."""

    def __init__(self) -> None:
        self.client = boto3.client(
            "cognito-idp",
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        self.stub = Stubber(self.client)
        self.operations: list[str] = []
        self.client.meta.events.register(
            "before-parameter-build.cognito-idp.*",
            lambda model, **_: self.operations.append(model.name),
        )

    def expect(self, operation: str, answer: dict[str, Any], params: dict[str, Any]) -> None:
        self.stub.add_response(operation, answer, {"UserPoolId": POOL, **params})

    def refuse(self, operation: str, code: str) -> None:
        self.stub.add_client_error(operation, service_error_code=code, service_message="no")


@pytest.fixture
def cognito() -> Iterator[Recorded]:
    recorded = Recorded()
    with recorded.stub:
        yield recorded
        recorded.stub.assert_no_pending_responses()


def user(**attributes: str) -> dict[str, Any]:
    return {
        "Username": USERNAME,
        "UserAttributes": [{"Name": k, "Value": v} for k, v in attributes.items()],
        "UserCreateDate": datetime(2026, 11, 21, tzinfo=UTC),
        "UserLastModifiedDate": datetime(2026, 11, 21, tzinfo=UTC),
        "Enabled": True,
        "UserStatus": "FORCE_CHANGE_PASSWORD",
    }


def expect_invitation(cognito, email: str) -> None:
    """The stub expects the AdminCreateUser that invites `email` to acc_1 (a verified email,
    mailed by Cognito) and answers with the new user (its attributes named `Attributes` there)."""
    answer = user(email=email)
    answer["Attributes"] = answer.pop("UserAttributes")
    cognito.expect(
        "admin_create_user",
        {"User": answer},
        {
            "Username": email,
            "UserAttributes": [
                {"Name": "email", "Value": email},
                {"Name": "email_verified", "Value": "true"},
                {"Name": "custom:account_id", "Value": "acc_1"},
            ],
            "DesiredDeliveryMediums": ["EMAIL"],
        },
    )


def test_an_invitation_is_admin_create_user_with_the_account_and_cognitos_email(cognito):
    directory = CognitoDirectory(POOL, cognito.client)
    expect_invitation(cognito, "member@acme.example")

    assert directory.create_user(email="member@acme.example", account_id="acc_1") == USERNAME


def test_an_address_taken_is_the_existing_user_with_its_account(cognito):
    directory = CognitoDirectory(POOL, cognito.client)
    cognito.refuse("admin_create_user", "UsernameExistsException")
    found = user(email="member@acme.example", **{"custom:account_id": "acc_2"})
    found["UserStatus"] = "CONFIRMED"
    cognito.expect("admin_get_user", found, {"Username": "member@acme.example"})

    with pytest.raises(UserAlreadyExists) as raised:
        directory.create_user(email="member@acme.example", account_id="acc_1")

    assert raised.value.existing.account_id == "acc_2"
    assert raised.value.existing.confirmed


def test_a_refused_address_and_a_throttled_directory_are_told_apart(cognito):
    directory = CognitoDirectory(POOL, cognito.client)
    cognito.refuse("admin_create_user", "InvalidParameterException")
    cognito.refuse("admin_add_user_to_group", "TooManyRequestsException")
    cognito.refuse("admin_get_user", "UserNotFoundException")

    with pytest.raises(InvalidEmail):
        directory.create_user(email="x@y.example", account_id="acc_1")
    with pytest.raises(DirectoryUnavailable):
        directory.set_billing_access(USERNAME, True)
    assert directory.get_user(USERNAME) is None


def test_the_calls_of_sign_up_billing_access_and_removal(cognito):
    directory = CognitoDirectory(POOL, cognito.client)
    cognito.expect(
        "admin_update_user_attributes",
        {},
        {
            "Username": USERNAME,
            "UserAttributes": [{"Name": "custom:account_id", "Value": "acc_1"}],
        },
    )
    for operation in ("admin_add_user_to_group", "admin_remove_user_from_group"):
        cognito.expect(operation, {}, {"Username": USERNAME, "GroupName": "billing"})
    cognito.expect("admin_disable_user", {}, {"Username": USERNAME})
    cognito.expect("admin_user_global_sign_out", {}, {"Username": USERNAME})
    cognito.expect(
        "admin_list_groups_for_user",
        {"Groups": [{"GroupName": "billing"}]},
        {"Username": USERNAME, "Limit": 60},
    )

    directory.set_account(USERNAME, "acc_1")
    directory.set_billing_access(USERNAME, True)
    directory.set_billing_access(USERNAME, False)
    directory.disable(USERNAME)

    assert directory.groups(USERNAME) == {"billing"}


# ---------------------------------------------------------------- IAM


def grants() -> list[tuple[str, dict[str, Any]]]:
    """(function logical id, statement) of every IAM statement of the template: the functions'
    inline policy documents and every AWS::IAM::Policy attached to a function's role."""
    found: list[tuple[str, dict[str, Any]]] = []
    for logical_id, function in resources("AWS::Serverless::Function").items():
        for policy in function["Properties"].get("Policies", []):
            if isinstance(policy, dict) and "Statement" in policy:
                found += [(logical_id, statement) for statement in policy["Statement"]]
    for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for policy in resources(kind).values():
            properties = policy["Properties"]
            roles = [role["Ref"].removesuffix("Role") for role in properties.get("Roles", [])]
            for statement in properties["PolicyDocument"]["Statement"]:
                found += [(role, statement) for role in roles or ["(no role)"]]
    return found


def actions(statement: dict[str, Any]) -> set[str]:
    value = statement.get("Action", [])
    return {value} if isinstance(value, str) else set(value)


def test_only_the_users_function_and_the_trigger_may_call_cognitos_admin_api_on_this_pool():
    cognito = [
        (who, statement)
        for who, statement in grants()
        if any(a.lower().startswith("cognito-idp:") or a == "*" for a in actions(statement))
    ]
    by_function: dict[str, set[str]] = {}
    for who, statement in cognito:
        assert statement["Effect"] == "Allow"
        assert statement["Resource"] == POOL_ARN, (who, statement["Resource"])
        assert not any("*" in a for a in actions(statement)), (who, actions(statement))
        by_function.setdefault(who, set()).update(
            a.removeprefix("cognito-idp:") for a in actions(statement)
        )

    assert by_function == {"UsersFunction": USERS_CALLS, "PostConfirmationFunction": TRIGGER_CALLS}
    # No SAM policy template grants Cognito either (CognitoPowerUserPolicy and the like).
    for logical_id, function in resources("AWS::Serverless::Function").items():
        for policy in function["Properties"].get("Policies", []):
            names = [policy] if isinstance(policy, str) else list(policy)
            assert not any("cognito" in str(name).lower() for name in names), logical_id
    assert "Cognito" not in json.dumps(
        [r for r in template()["Resources"].values() if r["Type"] == "AWS::IAM::Role"]
    )


def test_the_grants_are_exactly_the_calls_the_adapter_makes(cognito):
    """What the users use cases and the trigger call (recorded through the adapter) is what
    their functions are granted: no call that would be denied, no grant unused."""
    directory = CognitoDirectory(POOL, cognito.client)
    expect_invitation(cognito, "m@acme.example")
    cognito.expect("admin_get_user", user(email="m@acme.example"), {"Username": USERNAME})
    for operation in ("admin_add_user_to_group", "admin_remove_user_from_group"):
        cognito.expect(operation, {}, {"Username": USERNAME, "GroupName": "billing"})
    cognito.expect("admin_disable_user", {}, {"Username": USERNAME})
    cognito.expect("admin_user_global_sign_out", {}, {"Username": USERNAME})
    directory.create_user(email="m@acme.example", account_id="acc_1")
    directory.get_user(USERNAME)
    directory.set_billing_access(USERNAME, True)
    directory.set_billing_access(USERNAME, False)
    directory.disable(USERNAME)
    users_calls = set(cognito.operations)
    cognito.operations.clear()
    cognito.expect(
        "admin_update_user_attributes",
        {},
        {"Username": USERNAME, "UserAttributes": [{"Name": "custom:account_id", "Value": "acc_1"}]},
    )
    cognito.expect("admin_add_user_to_group", {}, {"Username": USERNAME, "GroupName": "billing"})
    directory.set_account(USERNAME, "acc_1")
    directory.set_billing_access(USERNAME, True)

    assert users_calls == USERS_CALLS
    assert set(cognito.operations) == TRIGGER_CALLS

"""The Cognito stand-in of `make dev`: template.yaml's user pool in moto's cognito-idp server,
sign-ups confirmed as Cognito confirms them, and the claims Cognito would put in a user's ID
token.

moto serves every cognito-idp call the functions make (AdminCreateUser, AdminGetUser,
AdminUpdateUserAttributes, AdminAddUserToGroup, AdminRemoveUserFromGroup, AdminDisableUser,
AdminUserGlobalSignOut, AdminListGroupsForUser) and those the stack makes (CreateUserPool,
CreateGroup, CreateUserPoolClient, SignUp, AdminConfirmSignUp), with Cognito's email-username
pools: the username is a generated UUID, also the `sub`, and the email address is accepted
wherever a username is. What it does not do, the stack does: it invokes no Lambda trigger (the
stack runs the post-confirmation handler itself, with Cognito's event), sends no email (the
invitation's temporary password goes nowhere), and enforces no app-client attribute permissions.
Its data is kept by `local.devmoto` in the data folder.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from local.template import evaluate, resources

POOL_NAME = "integrations-local-users"
CLIENT_NAME = "local-dashboard"
# What Cognito takes for a password here: the template's policy (12 characters, upper and
# lower case, a digit); nobody signs in with it (tokens come from the local issuer).
_PASSWORD_TAIL = "Aa1-"  # noqa: S105 - a suffix that meets the policy, not a secret


@dataclass(frozen=True, slots=True)
class LocalPool:
    pool_id: str
    client_id: str
    region: str = "us-east-1"


@dataclass(frozen=True, slots=True)
class Identity:
    """A user as the ID token Cognito would issue now would describe them."""

    username: str
    email: str | None
    account_id: str | None
    groups: tuple[str, ...]
    enabled: bool


def _pool_resource() -> tuple[str, dict[str, Any]]:
    ((logical_id, pool),) = resources("AWS::Cognito::UserPool").items()
    return logical_id, pool


def trigger_function() -> str:
    """The logical id of the function the pool runs after a sign-up is confirmed."""
    _, pool = _pool_resource()
    reference = pool["Properties"]["LambdaConfig"]["PostConfirmation"]["Ref"]
    return str(reference).removesuffix(".Alias")


def wire(client: Any) -> LocalPool:
    """The pool as the template declares it (made once; kept across restarts by moto's data
    file), its groups, and an app client for sign-ups."""
    logical_id, pool = _pool_resource()
    properties = evaluate(pool["Properties"])
    found = [p for p in _all_pools(client) if p["Name"] == POOL_NAME]
    if found:
        pool_id = found[0]["Id"]
    else:
        created = client.create_user_pool(
            PoolName=POOL_NAME,
            UsernameAttributes=properties.get("UsernameAttributes", []),
            AutoVerifiedAttributes=properties.get("AutoVerifiedAttributes", []),
            UsernameConfiguration=properties.get("UsernameConfiguration", {}),
            Schema=properties.get("Schema", []),
            Policies=properties.get("Policies", {}),
            AdminCreateUserConfig={
                "AllowAdminCreateUserOnly": properties["AdminCreateUserConfig"][
                    "AllowAdminCreateUserOnly"
                ]
            },
        )
        pool_id = created["UserPool"]["Id"]
    groups = {
        group["GroupName"] for group in client.list_groups(UserPoolId=pool_id).get("Groups", [])
    }
    for group in resources("AWS::Cognito::UserPoolGroup").values():
        name = group["Properties"]["GroupName"]
        if group["Properties"]["UserPoolId"] == {"Ref": logical_id} and name not in groups:
            client.create_group(UserPoolId=pool_id, GroupName=name)
    clients = client.list_user_pool_clients(UserPoolId=pool_id, MaxResults=60)
    named = [c for c in clients.get("UserPoolClients", []) if c["ClientName"] == CLIENT_NAME]
    if named:
        client_id = named[0]["ClientId"]
    else:
        client_id = client.create_user_pool_client(
            UserPoolId=pool_id, ClientName=CLIENT_NAME, GenerateSecret=False
        )["UserPoolClient"]["ClientId"]
    return LocalPool(pool_id=pool_id, client_id=client_id)


def _all_pools(client: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    request: dict[str, Any] = {"MaxResults": 60}
    while True:
        page = client.list_user_pools(**request)
        found += page.get("UserPools", [])
        if not page.get("NextToken"):
            return found
        request["NextToken"] = page["NextToken"]


def sign_up(client: Any, pool: LocalPool, email: str) -> str:
    """A self sign-up, confirmed (the code Cognito would mail, entered): the new username.
    Raises the client's UsernameExistsException for an address that is a user already."""
    answer = client.sign_up(
        ClientId=pool.client_id,
        Username=email,
        Password=secrets.token_urlsafe(12) + _PASSWORD_TAIL,
        UserAttributes=[{"Name": "email", "Value": email}],
    )
    username = str(answer["UserSub"])
    client.admin_confirm_sign_up(UserPoolId=pool.pool_id, Username=username)
    return username


def confirmation_event(client: Any, pool: LocalPool, username: str) -> dict[str, Any]:
    """Cognito's post-confirmation event for a confirmed sign-up (its documented shape:
    events/cognito/post-confirmation-sign-up.json)."""
    user = client.admin_get_user(UserPoolId=pool.pool_id, Username=username)
    attributes = {a["Name"]: a["Value"] for a in user.get("UserAttributes", [])}
    attributes.setdefault("email_verified", "true")
    attributes["cognito:user_status"] = "CONFIRMED"
    if "email" in attributes:
        attributes["cognito:email_alias"] = attributes["email"]
    return {
        "version": "1",
        "region": pool.region,
        "userPoolId": pool.pool_id,
        "userName": username,
        "callerContext": {
            "awsSdkVersion": "aws-sdk-unknown-unknown",
            "clientId": pool.client_id,
        },
        "triggerSource": "PostConfirmation_ConfirmSignUp",
        "request": {"userAttributes": attributes},
        "response": {},
    }


def identity(client: Any, pool: LocalPool, username: str) -> Identity | None:
    """The user's account and groups as the directory has them now (None: no such user)."""
    try:
        user = client.admin_get_user(UserPoolId=pool.pool_id, Username=username)
    except client.exceptions.UserNotFoundException:
        return None
    attributes = {a["Name"]: a["Value"] for a in user.get("UserAttributes", [])}
    groups = client.admin_list_groups_for_user(UserPoolId=pool.pool_id, Username=username)
    return Identity(
        username=str(user["Username"]),
        email=attributes.get("email"),
        account_id=attributes.get("custom:account_id"),
        groups=tuple(sorted(g["GroupName"] for g in groups.get("Groups", []))),
        enabled=bool(user.get("Enabled", True)),
    )

"""The user directory on a Cognito user pool (its admin API), whose users sign in with their email
address: Cognito generates each user's username (a UUID, also its `sub`), and the email address
may be given wherever a username is.

The pool is `user_pool_id`, else env `USER_POOL_ID` (template.yaml sets it to the stack's pool).
boto3 honours `AWS_ENDPOINT_URL_COGNITO_IDP` (the local stack's moto). The client is built on
first use, never at import.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from lifecycle import aws
from lifecycle.directory.port import (
    BILLING_GROUP,
    DirectoryUnavailable,
    DirectoryUser,
    InvalidEmail,
    UserAlreadyExists,
)

ACCOUNT_ATTRIBUTE = "custom:account_id"
# Answers that mean "not now": the caller may retry (503), nothing was done.
_UNAVAILABLE = frozenset(
    {
        "TooManyRequestsException",
        "LimitExceededException",
        "InternalErrorException",
        "ServiceUnavailable",
        "ThrottlingException",
    }
)


class CognitoDirectory:
    """The `Directory` port on one Cognito user pool."""

    def __init__(self, user_pool_id: str | None = None, client: Any | None = None) -> None:
        self._pool = user_pool_id
        self._client = client

    @property
    def pool(self) -> str:
        if self._pool is None:
            found = os.environ.get("USER_POOL_ID")
            if not found:
                raise RuntimeError("no user pool: set USER_POOL_ID")
            self._pool = found
        return self._pool

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = aws.client("cognito-idp")
        return self._client

    def in_pool(self, user_pool_id: str) -> CognitoDirectory:
        if user_pool_id == self._pool:
            return self
        return CognitoDirectory(user_pool_id, self._client)

    def create_user(self, *, email: str, account_id: str) -> str:
        """AdminCreateUser with the email address as the username (the pool makes the username
        itself), the address verified (the invitation goes to it, and it is how the user resets
        a password), the account, and Cognito's invitation email with a temporary password."""
        from botocore.exceptions import ClientError  # noqa: PLC0415 - loaded with the client

        try:
            created = self.client.admin_create_user(
                UserPoolId=self.pool,
                Username=email,
                UserAttributes=[
                    {"Name": "email", "Value": email},
                    {"Name": "email_verified", "Value": "true"},
                    {"Name": ACCOUNT_ATTRIBUTE, "Value": account_id},
                ],
                DesiredDeliveryMediums=["EMAIL"],
            )
        except ClientError as error:
            code = _code(error)
            if code in ("UsernameExistsException", "AliasExistsException"):
                existing = self.get_user(email)
                if existing is None:  # removed meanwhile: the caller may try again
                    raise DirectoryUnavailable("the user changed meanwhile") from None
                raise UserAlreadyExists(existing) from None
            if code == "InvalidParameterException":
                # Cognito's message names the field; it is not logged either way.
                raise InvalidEmail(_message(error)) from None
            _raise_if_unavailable(error)
            raise
        return str(created["User"]["Username"])

    def get_user(self, username: str) -> DirectoryUser | None:
        from botocore.exceptions import ClientError  # noqa: PLC0415 - loaded with the client

        try:
            found = self.client.admin_get_user(UserPoolId=self.pool, Username=username)
        except ClientError as error:
            if _code(error) == "UserNotFoundException":
                return None
            _raise_if_unavailable(error)
            raise
        attributes = _attributes(found.get("UserAttributes") or [])
        return DirectoryUser(
            username=str(found["Username"]),
            email=attributes.get("email"),
            account_id=attributes.get(ACCOUNT_ATTRIBUTE),
            enabled=bool(found.get("Enabled", True)),
            confirmed=found.get("UserStatus") == "CONFIRMED",
        )

    def set_account(self, username: str, account_id: str) -> None:
        self._call(
            "admin_update_user_attributes",
            Username=username,
            UserAttributes=[{"Name": ACCOUNT_ATTRIBUTE, "Value": account_id}],
        )

    def set_billing_access(self, username: str, billing_access: bool) -> None:
        operation = "admin_add_user_to_group" if billing_access else "admin_remove_user_from_group"
        self._call(operation, Username=username, GroupName=BILLING_GROUP)

    def disable(self, username: str) -> None:
        self._call("admin_disable_user", Username=username)
        self._call("admin_user_global_sign_out", Username=username)

    def groups(self, username: str) -> frozenset[str]:
        found: set[str] = set()
        request: dict[str, Any] = {"Username": username, "Limit": 60}
        while True:
            page = self._call("admin_list_groups_for_user", **request)
            found |= {str(group["GroupName"]) for group in page.get("Groups") or []}
            if not page.get("NextToken"):
                return frozenset(found)
            request["NextToken"] = page["NextToken"]

    def _call(self, operation: str, **parameters: Any) -> dict[str, Any]:
        from botocore.exceptions import ClientError  # noqa: PLC0415 - loaded with the client

        try:
            answer: dict[str, Any] = getattr(self.client, operation)(
                UserPoolId=self.pool, **parameters
            )
        except ClientError as error:
            _raise_if_unavailable(error)
            raise
        return answer


def _attributes(pairs: list[Mapping[str, Any]]) -> dict[str, str]:
    return {str(pair["Name"]): str(pair.get("Value", "")) for pair in pairs}


def _message(error: Exception) -> str:
    response = getattr(error, "response", None) or {}
    return str((response.get("Error") or {}).get("Message") or "The directory refused it.")[:200]


def _code(error: Exception) -> str | None:
    response = getattr(error, "response", None) or {}
    code = (response.get("Error") or {}).get("Code")
    return str(code) if code else None


def _raise_if_unavailable(error: Exception) -> None:
    """Cognito's "not now" answers (throttling, its own faults) as DirectoryUnavailable; the
    caller re-raises any other error as it is (a bug or a misconfiguration: a 500, alarmed)."""
    code = _code(error)
    if code in _UNAVAILABLE:
        raise DirectoryUnavailable(str(code)) from error

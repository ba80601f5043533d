"""Accounts and users of a deployed stack by hand, through the use cases the stack runs
(docs/operations.md#first-users). People open accounts themselves (sign-up); these are the
runbook's repairs:

    # A sign-up whose post-confirmation trigger failed: the user is confirmed, with no account.
    python -m ops.accounts finish-sign-up --stack integrations-prod --username 6f1c3a52-...

    # A user added to an existing account (moving the users of a pool made before sign-up).
    python -m ops.accounts add-user --stack integrations-prod --account-id acc_acme \\
        --email alice@acme.example --billing

Both are idempotent: run again, they find what the first run did. Nothing is printed of a
user but ids.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

from lifecycle.clock import SystemClock
from lifecycle.directory.cognito import CognitoDirectory
from lifecycle.directory.port import Directory
from lifecycle.ids import is_account_id
from lifecycle.rules.catalog import DEFAULT_CATALOG
from lifecycle.store.repository import Store
from lifecycle.usecases import signup, users
from lifecycle.usecases.caller import Caller
from lifecycle.usecases.services import Services

# Who the account activity names for a change made here.
OPERATOR = "operator"


class NoPayments:
    """These commands move no money: any call to the payments port is a bug."""

    def __getattr__(self, name: str) -> object:
        raise RuntimeError(f"ops.accounts does not call the payment provider ({name})")


@dataclass(frozen=True, slots=True)
class Done:
    account_id: str
    user_id: str


def finish_sign_up(services: Services, username: str) -> Done:
    """Open the account of a confirmed sign-up whose trigger failed (or find the one a run of
    it opened), then set the user's account and billing group: what the trigger does."""
    found = services.directory.get_user(username)
    if found is None or not found.confirmed or not found.email:
        raise ValueError("no confirmed user with that username and an email address")
    if found.account_id and services.store.login(found.username) is None:
        raise ValueError("that user belongs to an account already (invited): nothing to finish")
    done = signup.sign_up(services, found.username, found.email)
    return Done(done.account_id, done.user_id)


def add_user(services: Services, account_id: str, email: str, billing_access: bool) -> Done:
    """Invite `email` into `account_id`, as a billing user of the account would."""
    if not is_account_id(account_id) or services.store.get_account(account_id) is None:
        raise ValueError("no such account")
    caller = Caller(account_id, OPERATOR, billing_access=True)
    view = users.invite_user(services, caller, email, billing_access)
    return Done(account_id, view.id)


def services_of(table: str, directory: Directory) -> Services:
    return Services(
        store=Store(table),
        payments=NoPayments(),  # type: ignore[arg-type]
        clock=SystemClock(),
        catalog=DEFAULT_CATALOG,
        directory=directory,
    )


def main(argv: list[str] | None = None) -> int:
    from ops.redrive import stack_outputs  # noqa: PLC0415 - boto3 only for the command

    parser = argparse.ArgumentParser(description="Accounts and users of a deployed stack.")
    commands = parser.add_subparsers(dest="command", required=True)
    finish = commands.add_parser("finish-sign-up")
    finish.add_argument("--username", required=True)
    add = commands.add_parser("add-user")
    add.add_argument("--account-id", required=True)
    add.add_argument("--email", required=True)
    add.add_argument("--billing", action="store_true")
    for command in (finish, add):
        command.add_argument("--stack")
        command.add_argument("--table")
        command.add_argument("--user-pool")
    arguments = parser.parse_args(argv)
    outputs = stack_outputs(arguments.stack) if arguments.stack else {}
    table = arguments.table or outputs.get("TableName")
    pool = arguments.user_pool or outputs.get("UserPoolId")
    if not table or not pool:
        parser.error("--stack, or --table and --user-pool, are needed")
    services = services_of(table, CognitoDirectory(pool))
    if arguments.command == "finish-sign-up":
        done = finish_sign_up(services, arguments.username)
    else:
        done = add_user(services, arguments.account_id, arguments.email, arguments.billing)
    print(f"{arguments.command}: account {done.account_id}, user {done.user_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

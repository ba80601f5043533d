"""An account and its Stripe customer, for the first users of a new stack
(docs/operations.md#first-users), until sign-up creates accounts itself (api.md, Sign-up).

    python -m ops.accounts create --stack integrations-prod --account-id acc_acme \\
        --stripe-customer cus_...

The customer is made in Stripe first, with a default card (Stripe's dashboard); users are then
created in Cognito with this account id (the runbook's commands). An account id that exists is
refused, never overwritten.
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import datetime

from lifecycle.clock import SystemClock
from lifecycle.rules.model import Account, AccountStatus
from lifecycle.store.repository import Store

# The claim's pattern (api.md: custom:account_id), and Stripe's customer ids.
ACCOUNT_ID = re.compile(r"acc_[0-9A-Za-z_]{1,64}")
STRIPE_CUSTOMER = re.compile(r"cus_[0-9A-Za-z]+")


def create_account(
    store: Store, account_id: str, stripe_customer_id: str, now: datetime
) -> Account:
    """An active account billed to `stripe_customer_id` (whose default card pays)."""
    if not ACCOUNT_ID.fullmatch(account_id):
        raise ValueError(f"{account_id!r} is not an account id (acc_ and 1-64 letters, digits, _)")
    if not STRIPE_CUSTOMER.fullmatch(stripe_customer_id):
        raise ValueError(f"{stripe_customer_id!r} is not a Stripe customer id (cus_...)")
    account = Account(
        id=account_id,
        status=AccountStatus.ACTIVE,
        created_at=now,
        stripe_customer_id=stripe_customer_id,
        has_payment_method=True,
        version=1,
    )
    store.create_account(account)
    return account


def main(argv: list[str] | None = None) -> int:
    from ops.redrive import stack_outputs  # noqa: PLC0415 - boto3 only for the command

    parser = argparse.ArgumentParser(description="Create an account of a deployed stack.")
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create")
    create.add_argument("--stack")
    create.add_argument("--table")
    create.add_argument("--account-id", required=True)
    create.add_argument("--stripe-customer", required=True)
    arguments = parser.parse_args(argv)
    table = arguments.table or stack_outputs(arguments.stack).get("TableName")
    if not table:
        parser.error("--table or --stack is needed")
    account = create_account(
        Store(table), arguments.account_id, arguments.stripe_customer, SystemClock().now()
    )
    print(f"created {account.id} (Stripe customer {account.stripe_customer_id}) in {table}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

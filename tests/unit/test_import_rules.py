"""The rules package is pure: importing it loads no AWS, Stripe or Powertools module."""

import subprocess
import sys


def test_importing_every_rules_module_loads_no_aws_stripe_or_powertools():
    code = (
        "import sys, pkgutil, importlib, lifecycle.rules as r\n"
        "for m in pkgutil.iter_modules(r.__path__):\n"
        "    importlib.import_module('lifecycle.rules.' + m.name)\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in "
        "{'boto3', 'botocore', 'stripe', 'aws_lambda_powertools', 'pydantic'})\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""

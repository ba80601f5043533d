"""Shared test set-up: fake AWS credentials and region, so nothing can reach a real account."""

import os

for name, value in {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    # What template.yaml sets for every function; Powertools reads them at import.
    "POWERTOOLS_METRICS_NAMESPACE": "Integrations",
    "POWERTOOLS_SERVICE_NAME": "integrations",
}.items():
    os.environ.setdefault(name, value)
os.environ.pop("AWS_PROFILE", None)

"""template.yaml as an operator needs it: every function, queue and dead-letter queue alarmed on
the alarm topic with a runbook section, canary deploys rolled back by alarms, the renewals
switch, prod parameters that cannot be "*" or http, timeouts above the Stripe adapter's worst
case, reservations off by default, names from the stack name."""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from lifecycle.payments.stripe_adapter import worst_case_call_seconds
from local.clock import schedules
from local.template import NO_VALUE, ROOT, evaluate, parameter_values, resources, template

TOPIC = {"Fn::If": ["CreateAlarmTopic", {"Ref": "AlarmTopic"}, {"Ref": "AlarmTopicArn"}]}
RUNBOOK = ROOT / "docs" / "operations.md"
# The HTTP API gives up on an integration after 30 s (not adjustable): a longer API function
# would only run on after its caller got a 503.
HTTP_API_TIMEOUT_SECONDS = 30
# A cold start (about a second, measured: docs/operations.md#memory-and-timeouts) and the
# DynamoDB round trips around the Stripe call.
COLD_START_AND_STORE_SECONDS = 3.0
# Lambda's advice for an SQS event source: a visibility timeout of 6 x the function's timeout.
VISIBILITY_PER_TIMEOUT = 6
PROD_VALUES = {
    "Environment": "prod",
    "DashboardUrl": "https://app.example.com/",
    "DashboardOrigin": "https://app.example.com",
    "AlarmEmail": "oncall@example.com",
}


def alarms() -> dict[str, Any]:
    return {k: r["Properties"] for k, r in resources("AWS::CloudWatch::Alarm").items()}


def functions() -> dict[str, Any]:
    return {k: r["Properties"] for k, r in resources("AWS::Serverless::Function").items()}


def dimension(alarm: Mapping[str, Any], name: str) -> Any:
    found = [d["Value"] for d in alarm.get("Dimensions", []) if d["Name"] == name]
    return found[0] if found else None


def anchors(markdown: str) -> set[str]:
    """The fragment each heading gets on GitHub: lower case, punctuation dropped, spaces to -."""
    found = set()
    for heading in re.findall(r"^#{1,6} (.+)$", markdown, flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        found.add(slug)
    return found


# ---------------------------------------------------------------- alarms


def test_every_alarm_notifies_the_alarm_topic_and_names_a_runbook_section_that_exists():
    sections = anchors(RUNBOOK.read_text(encoding="utf-8"))

    assert alarms()
    for logical_id, alarm in alarms().items():
        assert alarm["AlarmActions"] == [TOPIC], logical_id
        description = alarm["AlarmDescription"]["Fn::Sub"]
        (anchor,) = re.findall(r"\$\{RunbookUrl\}#([a-z0-9-]+)", description)
        assert anchor in sections, f"{logical_id}: no section #{anchor} in docs/operations.md"
        assert alarm["AlarmName"]["Fn::Sub"].startswith("${AWS::StackName}-"), logical_id


def test_the_alarm_topic_is_the_stacks_own_unless_one_is_given_and_mails_the_alarm_email():
    topic = resources("AWS::SNS::Topic")["AlarmTopic"]
    (subscription,) = resources("AWS::SNS::Subscription").values()

    assert topic["Condition"] == "CreateAlarmTopic"
    assert subscription["Condition"] == "SubscribeAlarmEmail"
    assert subscription["Properties"]["Endpoint"] == {"Ref": "AlarmEmail"}
    assert evaluate({"Condition": "CreateAlarmTopic"}) is True
    assert evaluate({"Condition": "SubscribeAlarmEmail"}, {"AlarmEmail": "a@b.example"}) is True
    assert evaluate({"Condition": "CreateAlarmTopic"}, {"AlarmTopicArn": "arn:x"}) is False


@pytest.mark.parametrize("metric", ["Errors", "Throttles"])
def test_every_function_has_an_errors_and_a_throttles_alarm(metric: str):
    """A function added to the template without its two alarms fails here."""
    alarmed = {
        json.dumps(dimension(alarm, "FunctionName"))
        for alarm in alarms().values()
        if alarm.get("Namespace") == "AWS/Lambda" and alarm.get("MetricName") == metric
    }

    for logical_id, function in functions().items():
        assert json.dumps(function["FunctionName"]) in alarmed, f"{logical_id} has no {metric}"


def dead_letter_targets(node: Any, key: str = "") -> Iterator[str]:
    """Logical ids of the queues named as a dead-letter target: a queue's RedrivePolicy, a
    function's DeadLetterQueue, a schedule's DeadLetterConfig, an OnFailure destination."""
    if isinstance(node, dict):
        if (
            key in {"deadLetterTargetArn", "TargetArn", "Destination", "Arn"}
            and "Fn::GetAtt" in node
        ):
            yield node["Fn::GetAtt"][0]
        for k, v in node.items():
            yield from dead_letter_targets(v, k)
    elif isinstance(node, list):
        for item in node:
            yield from dead_letter_targets(item, key)


def queue_roles() -> tuple[set[str], set[str]]:
    """(queues something reads, dead-letter queues)."""
    queues = set(resources("AWS::SQS::Queue"))
    dead = queues & set(dead_letter_targets(template()["Resources"]))
    return queues - dead, dead


def test_every_queue_has_an_age_alarm_and_every_dead_letter_queue_a_depth_alarm():
    work, dead = queue_roles()
    by_queue: dict[str, set[str]] = {}
    for alarm in alarms().values():
        queue = dimension(alarm, "QueueName")
        if alarm.get("Namespace") == "AWS/SQS" and queue:
            by_queue.setdefault(queue["Fn::GetAtt"][0], set()).add(alarm["MetricName"])

    assert "RenewalQueue" in work
    assert dead >= {"RenewalDLQ", "SchedulerDLQ", "EventsDLQ"}
    for queue in work:
        assert "ApproximateAgeOfOldestMessage" in by_queue.get(queue, set()), queue
    for queue in dead:
        assert "ApproximateNumberOfMessagesVisible" in by_queue.get(queue, set()), queue


def test_the_api_the_stream_and_the_sweeps_have_their_alarms():
    found = {(a.get("Namespace"), a.get("MetricName")) for a in alarms().values()}
    math = [a for a in alarms().values() if "5xx" in json.dumps(a.get("Metrics"))]

    assert ("AWS/ApiGateway", "Latency") in found
    assert ("AWS/Lambda", "IteratorAge") in found
    assert ("Integrations", "WebhookMismatch") in found
    (rate,) = math
    assert {
        m["MetricStat"]["Metric"]["MetricName"] for m in rate["Metrics"] if "MetricStat" in m
    } == {
        "5xx",
        "Count",
    }
    heartbeats = {
        dimension(a, "FunctionName")["Fn::Sub"]
        for a in alarms().values()
        if a.get("MetricName") == "Invocations"
    }
    assert heartbeats == {"${AWS::StackName}-renewal-sweep", "${AWS::StackName}-deletion-sweep"}
    for alarm in alarms().values():
        if alarm.get("MetricName") == "Invocations":
            assert alarm["TreatMissingData"] == "breaching"  # no run is no data
            assert alarm["Period"] * alarm["EvaluationPeriods"] >= 3600


def test_the_custom_metric_alarms_name_the_dimensions_the_functions_emit(capsys):
    from lifecycle.observability import metrics  # noqa: PLC0415

    metrics.add_metric(name="WebhookMismatch", unit="Count", value=1)
    metrics.flush_metrics()
    (line,) = [x for x in capsys.readouterr().out.splitlines() if "CloudWatchMetrics" in x]
    emitted = json.loads(line)
    (directive,) = emitted["_aws"]["CloudWatchMetrics"]
    variables = template()["Globals"]["Function"]["Environment"]["Variables"]

    for alarm in alarms().values():
        if alarm.get("Namespace") != "Integrations":
            continue
        assert (
            alarm["Namespace"]
            == directive["Namespace"]
            == variables["POWERTOOLS_METRICS_NAMESPACE"]
        )
        names = {d["Name"] for d in alarm["Dimensions"]}
        assert [sorted(names)] == [sorted(d) for d in directive["Dimensions"]]
        assert dimension(alarm, "service") == variables["POWERTOOLS_SERVICE_NAME"]
        # The value the functions read from ENVIRONMENT is the alarm's.
        assert dimension(alarm, "environment") == variables["ENVIRONMENT"] == {"Ref": "Environment"}


def test_the_dashboard_is_json_with_the_alarmed_figures_and_the_money_per_hour():
    body = resources("AWS::CloudWatch::Dashboard")["OperationsDashboard"]["Properties"][
        "DashboardBody"
    ]["Fn::Sub"]
    parsed = json.loads(re.sub(r"\$\{[^}]+\}", "x", body))
    text = json.dumps(parsed)

    for metric in [
        "5xx",
        "Latency",
        "ApproximateAgeOfOldestMessage",
        "ApproximateNumberOfMessagesVisible",
        "IteratorAge",
        "Invocations",
        "WebhookMismatch",
        "IntegrationRenewed",
        "ChargeSucceeded",
        "ChargeRefunded",
        "PaymentFailed",
    ]:
        assert f'"{metric}"' in text, metric
    for metric in ["Errors", "Throttles", "Duration"]:
        assert f'MetricName=\\"{metric}\\"' in text, metric


# ---------------------------------------------------------------- deploys


def deployed_through_http(function: Mapping[str, Any]) -> bool:
    events = (function.get("Events") or {}).values()
    return "FunctionUrlConfig" in function or any(e["Type"] == "HttpApi" for e in events)


def test_api_and_webhook_functions_shift_their_alias_by_canary_rolled_back_by_their_errors_alarm():
    assert template()["Globals"]["Function"]["AutoPublishAlias"] == "live"
    assert evaluate({"Ref": "DeploymentType"}).startswith("Canary")
    layer = resources("AWS::Serverless::LayerVersion")["LifecycleLayer"]["Properties"]
    assert layer["PublishLambdaVersion"] is True
    errors = {
        json.dumps(dimension(a, "FunctionName")): logical_id
        for logical_id, a in alarms().items()
        if a.get("MetricName") == "Errors"
    }

    http = {k: f for k, f in functions().items() if deployed_through_http(f)}
    assert {"FreezeFunction", "AccountFunction", "StripeWebhookFunction"} <= set(http)
    for logical_id, function in functions().items():
        # A layer change alone publishes a version (with the layer's PublishLambdaVersion).
        assert function["AutoPublishAliasAllProperties"] is True, logical_id
    for logical_id, function in http.items():
        preference = function["DeploymentPreference"]
        assert preference["Type"] == {"Ref": "DeploymentType"}, logical_id
        own = errors[json.dumps(function["FunctionName"])]
        assert {"Ref": own} in preference["Alarms"], logical_id


# ---------------------------------------------------------------- the incident switch


def test_the_renewals_switch_disables_both_schedules_and_the_worker_queue():
    def events(logical_id: str, kind: str) -> list[dict[str, Any]]:
        found = functions()[logical_id].get("Events") or {}
        return [e["Properties"] for e in found.values() if e["Type"] == kind]

    scheduled = events("RenewalSweepFunction", "ScheduleV2") + events(
        "DeletionSweepFunction", "ScheduleV2"
    )
    queued = events("RenewalWorkerFunction", "SQS")

    assert len(scheduled) == 2 and len(queued) == 1
    assert [evaluate(e["State"]) for e in scheduled] == ["ENABLED", "ENABLED"]
    assert [evaluate(e["Enabled"]) for e in queued] == [True]
    paused = {"RenewalsEnabled": "false"}
    assert [evaluate(e["State"], paused) for e in scheduled] == ["DISABLED", "DISABLED"]
    assert [evaluate(e["Enabled"], paused) for e in queued] == [False]
    # The local scheduler honours it too (at the default: on).
    assert {s.folder for s in schedules()} == {"renewal_sweep", "deletion_sweep"}


# ---------------------------------------------------------------- prod parameters


def parameter_errors(values: Mapping[str, Any]) -> list[str]:
    """What CloudFormation refuses before the Rules: AllowedPattern (the whole value),
    AllowedValues, MinValue and MaxValue."""
    errors = []
    for name, declared in template()["Parameters"].items():
        value = values.get(name, declared.get("Default"))
        text = str(value)
        pattern = declared.get("AllowedPattern")
        if pattern and not re.fullmatch(pattern, text):
            errors.append(f"{name}={text!r}: {declared.get('ConstraintDescription', pattern)}")
        if "AllowedValues" in declared and text not in {str(v) for v in declared["AllowedValues"]}:
            errors.append(f"{name}={text!r}: not one of {declared['AllowedValues']}")
        if "MinValue" in declared and float(text) < declared["MinValue"]:
            errors.append(f"{name}={text!r}: below {declared['MinValue']}")
        if "MaxValue" in declared and float(text) > declared["MaxValue"]:
            errors.append(f"{name}={text!r}: above {declared['MaxValue']}")
    return errors


def rule_failures(values: Mapping[str, Any]) -> list[str]:
    """The AssertDescription of every assertion the template's Rules refuse."""
    failures = []
    for rule in template().get("Rules", {}).values():
        if "RuleCondition" in rule and not evaluate(rule["RuleCondition"], values):
            continue
        for assertion in rule["Assertions"]:
            if not evaluate(assertion["Assert"], values):
                failures.append(assertion["AssertDescription"])
    return failures


def refused(values: Mapping[str, Any]) -> list[str]:
    return parameter_errors(values) or rule_failures(values)


def test_dev_deploys_with_the_defaults():
    assert refused({}) == []
    assert parameter_values()["DashboardOrigin"] == "*"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DashboardOrigin", "*"),
        ("DashboardOrigin", "http://localhost:3000"),
        ("DashboardOrigin", "http://app.example.com"),
        ("DashboardOrigin", "https://app.example.com/path"),
        ("DashboardUrl", "http://localhost:3000/"),
        ("DashboardUrl", "http://app.example.com/"),
        ("DashboardUrl", "ftp://app.example.com/"),
        ("AlarmEmail", ""),
    ],
)
def test_prod_refuses_a_star_origin_anything_but_https_and_no_one_to_alarm(name: str, value: str):
    assert refused(PROD_VALUES) == []

    assert refused({**PROD_VALUES, name: value})


def test_an_alarm_topic_of_the_team_is_enough_for_prod():
    topic = "arn:aws:sns:us-east-1:123456789012:oncall"
    assert refused({**PROD_VALUES, "AlarmEmail": "", "AlarmTopicArn": topic}) == []


def samconfig_parameters(environment: str) -> dict[str, str]:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text(encoding="utf-8"))
    overrides = config[environment]["deploy"]["parameters"]["parameter_overrides"]
    return dict(pair.split("=", 1) for pair in shlex.split(overrides))


@pytest.mark.parametrize("environment", ["default", "prod"])
def test_the_samconfig_environments_pass_the_parameters_and_the_rules(environment: str):
    values = samconfig_parameters(environment)

    assert refused(values) == []
    if environment == "prod":
        assert values["Environment"] == "prod"
        assert values["DashboardUrl"].startswith("https://")


# ---------------------------------------------------------------- timeouts and capacity


def stripe_functions() -> dict[str, Any]:
    """Functions granted the Stripe key: the ones that call Stripe."""
    return {
        k: f
        for k, f in functions().items()
        if any(
            p.get("SSMParameterWithSlashPrefixReadPolicy", {}).get("ParameterName")
            == {"Ref": "StripeSecretKeyParam"}
            for p in f.get("Policies", [])
        )
    }


def timeout(function: Mapping[str, Any]) -> float:
    return float(function.get("Timeout", template()["Globals"]["Function"]["Timeout"]))


def test_functions_that_call_stripe_outlast_one_stripe_call_at_its_worst():
    worst = worst_case_call_seconds()

    assert 20 < worst < HTTP_API_TIMEOUT_SECONDS - COLD_START_AND_STORE_SECONDS
    assert set(stripe_functions()) >= {
        "ReactivateFunction",
        "IntegrationsFunction",
        "BulkFunction",
        "AccountFunction",
        "BillingFunction",
        "StripeWebhookFunction",
        "RenewalWorkerFunction",
    }
    for logical_id, function in stripe_functions().items():
        assert timeout(function) >= worst + COLD_START_AND_STORE_SECONDS, logical_id
    for logical_id, function in functions().items():
        if deployed_through_http(function):
            assert timeout(function) < HTTP_API_TIMEOUT_SECONDS, logical_id


def test_the_renewal_worker_outlasts_a_batch_of_worst_cases_and_the_queue_outlasts_the_worker():
    worker = functions()["RenewalWorkerFunction"]
    (source,) = worker["Events"].values()
    queue = resources("AWS::SQS::Queue")["RenewalQueue"]["Properties"]
    batch = source["Properties"]["BatchSize"]

    # Messages of a batch are renewed one after the other, each waiting for Stripe at worst.
    assert timeout(worker) >= batch * worst_case_call_seconds() + COLD_START_AND_STORE_SECONDS
    assert queue["VisibilityTimeout"] >= VISIBILITY_PER_TIMEOUT * timeout(worker)


def reserved(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    found = {}
    for logical_id, function in functions().items():
        value = evaluate(function.get("ReservedConcurrentExecutions", NO_VALUE), overrides)
        if value is not NO_VALUE:
            found[logical_id] = int(value)
    return found


def test_no_concurrency_is_reserved_by_default_and_the_parameters_reserve_it():
    assert reserved() == {}
    assert reserved({"WebhookReservedConcurrency": 20, "SweepReservedConcurrency": 1}) == {
        "StripeWebhookFunction": 20,
        "RenewalSweepFunction": 1,
        "DeletionSweepFunction": 1,
    }


# ---------------------------------------------------------------- identity and names


def test_the_user_pool_outlives_the_stack_and_asks_every_user_for_a_totp():
    pool = resources("AWS::Cognito::UserPool")["AccountUserPool"]

    assert pool["DeletionPolicy"] == pool["UpdateReplacePolicy"] == "Retain"
    assert pool["Properties"]["MfaConfiguration"] == "ON"
    assert pool["Properties"]["EnabledMfas"] == ["SOFTWARE_TOKEN_MFA"]


def named(node: Any, key: str = "") -> Iterator[tuple[str, Any]]:
    """Every (key, value) whose key names a resource (Name, TopicName, FunctionName, ...)."""
    if isinstance(node, dict):
        for k, v in node.items():
            if (k.endswith("Name") or k == "Domain") and not isinstance(v, list):
                yield k, v
            yield from named(v, k)
    elif isinstance(node, list):
        for item in node:
            yield from named(item, key)


def test_names_come_from_the_stack_name_never_from_the_environment():
    for logical_id, resource in template()["Resources"].items():
        for key, value in named(resource.get("Properties", {})):
            text = json.dumps(value)
            assert "Environment" not in text, f"{logical_id}.{key} = {text}"
    bus = resources("AWS::Events::EventBus")["EventBus"]["Properties"]["Name"]
    assert "${AWS::StackName}" in bus["Fn::Sub"]


def test_the_stack_outputs_what_the_runbook_uses():
    runbook = RUNBOOK.read_text(encoding="utf-8")
    used = set(re.findall(r"\$\(out ([A-Za-z]+)\)", runbook))

    assert used
    assert used <= set(template()["Outputs"])


def test_every_link_to_a_runbook_section_lands_on_one():
    sections = anchors(RUNBOOK.read_text(encoding="utf-8"))
    files = [
        ROOT / "template.yaml",
        ROOT / "samconfig.toml",
        ROOT / "Makefile",
        ROOT / "README.md",
        ROOT / "docs" / "architecture.md",
        RUNBOOK,
        *(ROOT / "ops").glob("*.py"),
    ]
    for file in files:
        text = file.read_text(encoding="utf-8")
        linked = set(re.findall(r"docs/operations\.md#([a-z0-9-]+)", text))
        if file == RUNBOOK:
            linked |= set(re.findall(r"\]\(#([a-z0-9-]+)\)", text))
        assert linked <= sections, f"{file.name}: no section {sorted(linked - sections)}"


def test_the_runbook_registers_the_handled_events_at_the_adapters_api_version():
    from lifecycle.payments.stripe_adapter import STRIPE_API_VERSION  # noqa: PLC0415
    from lifecycle.usecases.webhooks import HANDLED  # noqa: PLC0415

    runbook = RUNBOOK.read_text(encoding="utf-8")
    registered = set(re.findall(r"enabled_events\[\]=([a-z_.]+)", runbook))

    assert set(HANDLED) <= registered
    assert re.findall(r"api_version=([0-9a-z.-]+)", runbook) == [STRIPE_API_VERSION]

"""The CloudFormation template (deploy/aws/template.yaml): linters clean, contract kept.

cfn-lint runs from the project venv (a dev extra). checkov cannot live there: it
pins boto3==1.35.49, packaging<24 and networkx<2.7, so the first test to need it
builds its own venv under ``.venv-tools/`` from deploy/aws/lint-requirements.txt
(once per requirements version, under a file lock so xdist workers wait for one
another). Both run as subprocesses, never imported: ``filterwarnings = error``.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "deploy" / "aws" / "template.yaml"
LINT_REQUIREMENTS = ROOT / "deploy" / "aws" / "lint-requirements.txt"
TOOLS_VENV = Path(os.environ.get("BREWLINE_TOOLS_VENV", ROOT / ".venv-tools"))

# Each is justified in the template's Metadata; a new skip must be added here on purpose.
EXPECTED_CHECKOV_SKIPS = {
    ("CKV_AWS_18", "AWS::S3::Bucket.AccessLogBucket"),
    ("CKV_AWS_116", "AWS::Lambda::Function.Loader"),
    ("CKV_AWS_116", "AWS::Lambda::Function.Checker"),
    ("CKV_AWS_173", "AWS::Lambda::Function.Loader"),
    ("CKV_AWS_173", "AWS::Lambda::Function.Checker"),
}
# The contract with brewline.aws: these names, and nothing that is a secret.
ENVIRONMENT = {
    "BREWLINE_SECRET_ID",
    "BREWLINE_QUARANTINE",
    "BREWLINE_ALERT_TOPIC_ARN",
    "BREWLINE_REQUIRE_PII_KEY",
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
}
ENVIRONMENT_LITERALS = {
    "BREWLINE_REQUIRE_PII_KEY": "true",
    "POWERTOOLS_SERVICE_NAME": "brewline",
    "POWERTOOLS_METRICS_NAMESPACE": "Brewline",
}
CUSTOM_METRICS = {
    "FilesLoaded",
    "FilesSkipped",
    "FilesReplaced",
    "FilesRejected",
    "FilesFailed",
    "RowsRead",
    "RowsLoaded",
    "RowsRejected",
    "RunSeconds",
    "ChecksFailed",
}


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that reads CloudFormation's short tags (``!Ref x`` -> ``{"Ref": x}``)."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {"Ref" if suffix == "Ref" else f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _intrinsic)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.load(TEMPLATE.read_text(encoding="utf-8"), _CfnLoader)
    return loaded


def _resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {
        name: resource
        for name, resource in template["Resources"].items()
        if resource["Type"] == kind
    }


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)


@pytest.fixture(scope="session")
def checkov() -> Path:
    """The checkov executable of the tools venv, built on first use."""
    digest = hashlib.sha256(LINT_REQUIREMENTS.read_bytes()).hexdigest()[:12]
    stamp = TOOLS_VENV / f".installed-{digest}"
    executable = TOOLS_VENV / "bin" / "checkov"
    TOOLS_VENV.mkdir(parents=True, exist_ok=True)
    with (TOOLS_VENV / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not stamp.exists():
            for old in TOOLS_VENV.glob(".installed-*"):
                old.unlink()
            steps = [
                [sys.executable, "-m", "venv", str(TOOLS_VENV)],
                [str(TOOLS_VENV / "bin" / "python"), "-m", "pip", "install", "--quiet",
                 "--disable-pip-version-check", "-r", str(LINT_REQUIREMENTS)],
            ]  # fmt: skip
            for step in steps:
                done = _run(step)
                if done.returncode != 0:
                    pytest.fail(f"building {TOOLS_VENV} failed: {step}\n{done.stderr[-3000:]}")
            stamp.touch()
    return executable


def test_cfn_lint_finds_nothing() -> None:
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    done = _run([str(cfn_lint), "--format", "parseable", "--", str(TEMPLATE)])
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_checkov_fails_nothing_and_skips_only_the_justified(checkov: Path) -> None:
    done = _run(
        [str(checkov), "--file", str(TEMPLATE), "--framework", "cloudformation",
         "--output", "json", "--skip-download"]
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(done.stdout)
    summary = report["summary"]
    failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert failed == []
    assert summary["parsing_errors"] == 0
    assert summary["passed"] >= 50
    skipped = {(c["check_id"], c["resource"]) for c in report["results"]["skipped_checks"]}
    assert skipped == EXPECTED_CHECKOV_SKIPS


def test_every_skip_says_why(template: dict[str, Any]) -> None:
    for name, resource in template["Resources"].items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert re.fullmatch(r"CKV2?_AWS_\d+", skip["id"]), name
            assert len(skip.get("comment", "")) > 40, f"{name} {skip['id']}: justify the skip"
        assert "cfn-lint" not in resource.get("Metadata", {}), f"{name}: cfn-lint ignores"


def test_functions_run_the_brewline_handlers(template: dict[str, Any]) -> None:
    functions = _resources(template, "AWS::Lambda::Function")
    assert {name: f["Properties"]["Handler"] for name, f in functions.items()} == {
        "Loader": "brewline.aws.handler",
        "Checker": "brewline.aws.check_handler",
    }
    for function in functions.values():
        properties = function["Properties"]
        assert properties["Runtime"] == "python3.11"
        assert set(properties["VpcConfig"]) == {"SubnetIds", "SecurityGroupIds"}
        assert "ReservedConcurrentExecutions" in properties


def test_environment_names_no_secret(template: dict[str, Any]) -> None:
    for name, function in _resources(template, "AWS::Lambda::Function").items():
        variables = function["Properties"]["Environment"]["Variables"]
        assert set(variables) == ENVIRONMENT, name
        for variable, value in variables.items():
            text = json.dumps(value)
            assert "postgres" not in text.lower(), (name, variable)
            assert "pii_key" not in text.lower(), (name, variable)
            # Only the three fixed words are literals; the rest come from the stack.
            if isinstance(value, str):
                assert ENVIRONMENT_LITERALS.get(variable) == value, (name, variable)
        assert variables["BREWLINE_SECRET_ID"] == {"Ref": "Secret"}
        assert variables["BREWLINE_ALERT_TOPIC_ARN"] == {"Ref": "AlertTopic"}
        assert variables["BREWLINE_QUARANTINE"] == {"Fn::Sub": "s3://${LandingBucket}/_quarantine/"}


def test_queue_feeds_the_loader_with_partial_batch_failures(template: dict[str, Any]) -> None:
    (mapping,) = _resources(template, "AWS::Lambda::EventSourceMapping").values()
    properties = mapping["Properties"]
    assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert properties["EventSourceArn"] == {"Fn::GetAtt": ["Queue", "Arn"]}
    assert properties["FunctionName"] == {"Ref": "Loader"}
    assert properties["ScalingConfig"]["MaximumConcurrency"] == {"Ref": "MaxConcurrency"}

    queue = template["Resources"]["Queue"]["Properties"]
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]},
        "maxReceiveCount": {"Ref": "MaxReceiveCount"},
    }
    for name in ("Queue", "DeadLetterQueue"):
        assert template["Resources"][name]["Properties"]["KmsMasterKeyId"] == {"Ref": "Key"}


def test_visibility_timeout_is_six_function_timeouts_plus_the_window(
    template: dict[str, Any],
) -> None:
    parameters = template["Parameters"]
    table = template["Mappings"]["VisibilityTimeout"]
    assert set(table) == set(parameters["LoaderTimeoutSeconds"]["AllowedValues"])
    window = parameters["BatchingWindowSeconds"]["MaxValue"]
    for timeout, row in table.items():
        assert 6 * int(timeout) + window <= row["Seconds"] <= 43_200, timeout
    assert template["Resources"]["Loader"]["Properties"]["Timeout"] == {
        "Ref": "LoaderTimeoutSeconds"
    }


def test_landing_bucket_is_private_encrypted_and_notifies_on_csv(
    template: dict[str, Any],
) -> None:
    bucket = template["Resources"]["LandingBucket"]["Properties"]
    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
    assert len(bucket["PublicAccessBlockConfiguration"]) == 4
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    (notification,) = bucket["NotificationConfiguration"]["QueueConfigurations"]
    assert notification["Event"] == "s3:ObjectCreated:*"
    assert notification["Filter"]["S3Key"]["Rules"] == [
        {"Name": "prefix", "Value": {"Ref": "LandingPrefix"}},
        {"Name": "suffix", "Value": ".csv"},
    ]
    expiry = {r["Id"]: r for r in bucket["LifecycleConfiguration"]["Rules"]}
    assert expiry["ExpireQuarantine"]["Prefix"] == "_quarantine/"
    policy = template["Resources"]["LandingBucketPolicy"]["Properties"]["PolicyDocument"]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in policy["Statement"]
    )


def test_roles_name_their_resources(template: dict[str, Any]) -> None:
    """No inline statement grants on "*": ENI management comes from AWS's managed policy."""
    for name, role in _resources(template, "AWS::IAM::Role").items():
        for policy in role["Properties"]["Policies"]:
            for statement in policy["PolicyDocument"]["Statement"]:
                assert statement["Resource"] != "*", (name, statement["Sid"])
                assert "*" not in statement["Action"], (name, statement["Sid"])


def test_alarms_go_to_the_topic(template: dict[str, Any]) -> None:
    alarms = _resources(template, "AWS::CloudWatch::Alarm")
    watched = {
        (a["Properties"]["Namespace"], a["Properties"]["MetricName"]) for a in alarms.values()
    }
    assert watched >= {
        ("AWS/Lambda", "Errors"),
        ("AWS/Lambda", "Throttles"),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        ("AWS/SQS", "ApproximateAgeOfOldestMessage"),
        ("Brewline", "ChecksFailed"),
        ("Brewline", "FilesFailed"),
    }
    for name, alarm in alarms.items():
        properties = alarm["Properties"]
        assert properties["AlarmActions"] == [{"Ref": "AlertTopic"}], name
        assert properties["TreatMissingData"] == "notBreaching", name
        if properties["Namespace"] == "Brewline":
            assert properties["Dimensions"] == [{"Name": "service", "Value": "brewline"}]


def test_dashboard_shows_every_brewline_metric(template: dict[str, Any]) -> None:
    body = template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    dashboard = json.loads(re.sub(r"\$\{[^}]+\}", "x", body))
    metrics = [
        row for widget in dashboard["widgets"] for row in widget["properties"].get("metrics", [])
    ]
    shown = {row[1] for row in metrics if row[0] == "Brewline"}
    assert shown == CUSTOM_METRICS
    assert all(row[2:4] == ["service", "brewline"] for row in metrics if row[0] == "Brewline")
    namespaces = {row[0] for row in metrics}
    assert namespaces == {"Brewline", "AWS/Lambda", "AWS/SQS"}

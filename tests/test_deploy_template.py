"""The CloudFormation templates (deploy/aws/template.yaml, ecr.yaml): linters clean, contract kept.

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
ECR_TEMPLATE = ROOT / "deploy" / "aws" / "ecr.yaml"
TEMPLATES = [TEMPLATE, ECR_TEMPLATE]
LINT_REQUIREMENTS = ROOT / "deploy" / "aws" / "lint-requirements.txt"
TOOLS_VENV = Path(os.environ.get("BREWLINE_TOOLS_VENV", ROOT / ".venv-tools"))

# Each is justified in the template's Metadata; a new skip must be added here on purpose.
EXPECTED_CHECKOV_SKIPS = {
    TEMPLATE: {
        ("CKV_AWS_18", "AWS::S3::Bucket.AccessLogBucket"),
        ("CKV_AWS_116", "AWS::Lambda::Function.Loader"),
        ("CKV_AWS_116", "AWS::Lambda::Function.Checker"),
        ("CKV_AWS_173", "AWS::Lambda::Function.Loader"),
        ("CKV_AWS_173", "AWS::Lambda::Function.Checker"),
        ("CKV_AWS_116", "AWS::Lambda::Function.Syncer"),
        ("CKV_AWS_173", "AWS::Lambda::Function.Syncer"),
    },
    ECR_TEMPLATE: set(),
}
# The fewest checks each must pass: a parsing problem would show as fewer.
MINIMUM_CHECKOV_PASSED = {TEMPLATE: 70, ECR_TEMPLATE: 4}
# The image (deploy/aws/Dockerfile) runs a handler named by the function's command.
HANDLERS = {
    "Loader": "brewline.aws.handler",
    "Checker": "brewline.aws.check_handler",
    "Syncer": "brewline.aws.sync_handler",
}
# The contract with brewline.aws: these names, and nothing that is a secret.
_COMMON_ENVIRONMENT = {
    "BREWLINE_SECRET_ID",
    "BREWLINE_ALERT_TOPIC_ARN",
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
}
_LOADING_ENVIRONMENT = _COMMON_ENVIRONMENT | {"BREWLINE_QUARANTINE", "BREWLINE_REQUIRE_PII_KEY"}
ENVIRONMENT = {
    "Loader": _LOADING_ENVIRONMENT,
    "Checker": _LOADING_ENVIRONMENT,
    # The source URL is the secret's "totesys_source" key, not a variable.
    "Syncer": _COMMON_ENVIRONMENT | {"BREWLINE_TOTESYS_LAKE"},
}
# The Syncer's lake: in the landing bucket, outside the notified prefix and the quarantine.
TOTESYS_LAKE = {"Fn::Sub": "s3://${LandingBucket}/totesys-lake/"}
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
    "RunsFailed",
    "ChecksFailed",
    "ChecksWarned",
    "RowsExtracted",
    "SyncSeconds",
    "SyncLagSeconds",
    "SyncsFailed",
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


def _load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.load(path.read_text(encoding="utf-8"), _CfnLoader)
    return loaded


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return _load(TEMPLATE)


@pytest.fixture(scope="module")
def ecr_template() -> dict[str, Any]:
    return _load(ECR_TEMPLATE)


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


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_cfn_lint_finds_nothing(path: Path) -> None:
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    done = _run([str(cfn_lint), "--format", "parseable", "--", str(path)])
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_checkov_fails_nothing_and_skips_only_the_justified(checkov: Path, path: Path) -> None:
    done = _run(
        [str(checkov), "--file", str(path), "--framework", "cloudformation",
         "--output", "json", "--skip-download"]
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(done.stdout)
    summary = report["summary"]
    failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert failed == []
    assert summary["parsing_errors"] == 0
    assert summary["passed"] >= MINIMUM_CHECKOV_PASSED[path]
    skipped = {(c["check_id"], c["resource"]) for c in report["results"]["skipped_checks"]}
    assert skipped == EXPECTED_CHECKOV_SKIPS[path]


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_every_skip_says_why(path: Path) -> None:
    for name, resource in _load(path)["Resources"].items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert re.fullmatch(r"CKV2?_AWS_\d+", skip["id"]), name
            assert len(skip.get("comment", "")) > 40, f"{name} {skip['id']}: justify the skip"
        assert "cfn-lint" not in resource.get("Metadata", {}), f"{name}: cfn-lint ignores"


def test_functions_run_the_brewline_handlers(template: dict[str, Any]) -> None:
    """Both functions run the one image; its command names the handler (no zip, no runtime)."""
    functions = _resources(template, "AWS::Lambda::Function")
    assert {name: f["Properties"]["ImageConfig"]["Command"] for name, f in functions.items()} == {
        name: [handler] for name, handler in HANDLERS.items()
    }
    for function in functions.values():
        properties = function["Properties"]
        assert properties["PackageType"] == "Image"
        assert properties["Code"] == {"ImageUri": {"Ref": "ImageUri"}}
        assert properties["Architectures"] == ["x86_64"]
        assert not {"Runtime", "Handler", "Layers"} & set(properties)
        assert set(properties["VpcConfig"]) == {"SubnetIds", "SecurityGroupIds"}
        assert "ReservedConcurrentExecutions" in properties
    assert not {"CodeS3Bucket", "CodeS3Key"} & set(template["Parameters"])


@pytest.mark.parametrize(
    ("uri", "valid"),
    [
        ("123456789012.dkr.ecr.eu-west-2.amazonaws.com/brewline:1a2b3c4", True),
        ("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/team/brewline:v1.2", True),
        ("123456789012.dkr.ecr.eu-west-2.amazonaws.com/brewline@sha256:" + "a" * 64, True),
        ("123456789012.dkr.ecr.eu-west-2.amazonaws.com/brewline", False),  # no tag
        ("public.ecr.aws/lambda/python:3.11", False),  # Lambda runs private ECR images only
        ("docker.io/library/brewline:1", False),
    ],
)
def test_image_uri_is_an_ecr_image(template: dict[str, Any], uri: str, valid: bool) -> None:
    pattern = template["Parameters"]["ImageUri"]["AllowedPattern"]
    assert (re.fullmatch(pattern, uri) is not None) == valid


def test_dockerfile_defaults_to_the_loader() -> None:
    """The image's CMD is the Loader's handler; the template names it anyway."""
    dockerfile = (ROOT / "deploy" / "aws" / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM public\.ecr\.aws/lambda/python:3\.11$", dockerfile, re.M)
    assert f'CMD ["{HANDLERS["Loader"]}"]' in dockerfile


def test_ecr_repository_lets_only_lambda_pull_these_functions(
    template: dict[str, Any], ecr_template: dict[str, Any]
) -> None:
    (repository,) = _resources(ecr_template, "AWS::ECR::Repository").values()
    properties = repository["Properties"]
    assert properties["ImageTagMutability"] == "IMMUTABLE"
    assert properties["ImageScanningConfiguration"] == {"ScanOnPush": True}
    (statement,) = properties["RepositoryPolicyText"]["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert sorted(statement["Action"]) == ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    source = statement["Condition"]["StringLike"]["aws:SourceArn"]["Fn::Sub"]
    assert source.endswith(":function:${FunctionNamePrefix}-*")
    # The pattern covers the functions template.yaml names, for the same prefix.
    names = {
        f["Properties"]["FunctionName"]["Fn::Sub"]
        for f in _resources(template, "AWS::Lambda::Function").values()
    }
    assert names == {"${NamePrefix}-loader", "${NamePrefix}-checker", "${NamePrefix}-syncer"}
    assert (
        ecr_template["Parameters"]["FunctionNamePrefix"]["Default"]
        == template["Parameters"]["NamePrefix"]["Default"]
    )
    lifecycle = json.loads(
        re.sub(r"\$\{[^}]+\}", "1", properties["LifecyclePolicy"]["LifecyclePolicyText"]["Fn::Sub"])
    )
    assert [rule["action"]["type"] for rule in lifecycle["rules"]] == ["expire", "expire"]


def test_environment_names_no_secret(template: dict[str, Any]) -> None:
    functions = _resources(template, "AWS::Lambda::Function")
    assert set(functions) == set(ENVIRONMENT)
    for name, function in functions.items():
        variables = function["Properties"]["Environment"]["Variables"]
        assert set(variables) == ENVIRONMENT[name], name
        for variable, value in variables.items():
            text = json.dumps(value)
            assert "postgres" not in text.lower(), (name, variable)
            assert "pii_key" not in text.lower(), (name, variable)
            assert "totesys_source" not in text.lower(), (name, variable)
            # Only the three fixed words are literals; the rest come from the stack.
            if isinstance(value, str):
                assert ENVIRONMENT_LITERALS.get(variable) == value, (name, variable)
        assert variables["BREWLINE_SECRET_ID"] == {"Ref": "Secret"}
        assert variables["BREWLINE_ALERT_TOPIC_ARN"] == {"Ref": "AlertTopic"}
        if "BREWLINE_QUARANTINE" in variables:
            quarantine = {"Fn::Sub": "s3://${LandingBucket}/_quarantine/"}
            assert variables["BREWLINE_QUARANTINE"] == quarantine
    assert (
        functions["Syncer"]["Properties"]["Environment"]["Variables"]["BREWLINE_TOTESYS_LAKE"]
        == TOTESYS_LAKE
    )


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


def _statements(template: dict[str, Any], role: str) -> dict[str, dict[str, Any]]:
    (policy,) = template["Resources"][role]["Properties"]["Policies"]
    return {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}


def test_loader_reads_landed_files_and_writes_only_the_quarantine(
    template: dict[str, Any],
) -> None:
    statements = _statements(template, "LoaderRole")
    s3 = {
        sid: (statement["Action"], statement["Resource"])
        for sid, statement in statements.items()
        if "s3:" in json.dumps(statement["Action"])
    }
    assert s3 == {
        # GET and HEAD of the event's keys.
        "ReadLandedFiles": ("s3:GetObject", {"Fn::Sub": "${LandingBucket.Arn}/${LandingPrefix}*"}),
        # So that HEAD of a key deleted since its event answers 404, not 403.
        "ListLandingBucket": ("s3:ListBucket", {"Fn::GetAtt": ["LandingBucket", "Arn"]}),
        "WriteQuarantine": ("s3:PutObject", {"Fn::Sub": "${LandingBucket.Arn}/_quarantine/*"}),
    }
    # Run alerts (a run with rejected or failed files) go to the topic.
    assert statements["PublishRunAlerts"]["Action"] == "sns:Publish"
    assert statements["PublishRunAlerts"]["Resource"] == {"Ref": "AlertTopic"}
    assert statements["ReadSecret"]["Resource"] == {"Ref": "Secret"}
    checker = _statements(template, "CheckerRole")
    assert not any("s3:" in json.dumps(s["Action"]) for s in checker.values())
    assert checker["PublishCheckFailures"]["Resource"] == {"Ref": "AlertTopic"}


def test_syncer_reads_and_writes_only_the_lake(template: dict[str, Any]) -> None:
    statements = _statements(template, "SyncerRole")
    s3 = {
        sid: (statement["Action"], statement["Resource"])
        for sid, statement in statements.items()
        if "s3:" in json.dumps(statement["Action"])
    }
    assert s3 == {
        "ReadWriteLake": (
            ["s3:GetObject", "s3:PutObject"],
            {"Fn::Sub": "${LandingBucket.Arn}/totesys-lake/*"},
        ),
        # Lists the manifests; and a GET of star/_current.json before the first model
        # answers 404 (which the sync expects), not 403, only with s3:ListBucket.
        "ListLandingBucket": ("s3:ListBucket", {"Fn::GetAtt": ["LandingBucket", "Arn"]}),
    }
    # The lake is where the role may write: not under the notified prefix or the quarantine.
    lake = TOTESYS_LAKE["Fn::Sub"].removeprefix("s3://${LandingBucket}/")
    assert statements["ReadWriteLake"]["Resource"]["Fn::Sub"].endswith(f"/{lake}*")
    landing = template["Parameters"]["LandingPrefix"]["Default"]
    assert not lake.startswith((landing, "_quarantine/"))
    assert statements["ReadSecret"] == {
        "Sid": "ReadSecret",
        "Effect": "Allow",
        "Action": "secretsmanager:GetSecretValue",
        "Resource": {"Ref": "Secret"},
    }
    assert statements["PublishSyncAlerts"]["Action"] == "sns:Publish"
    assert statements["PublishSyncAlerts"]["Resource"] == {"Ref": "AlertTopic"}
    kms = statements["UseKeyThroughTheseServices"]
    assert sorted(kms["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert kms["Resource"] == {"Fn::GetAtt": ["Key", "Arn"]}
    services = [s["Fn::Sub"] for s in kms["Condition"]["StringEquals"]["kms:ViaService"]]
    assert {s.split(".", 1)[0] for s in services} == {"s3", "secretsmanager", "sns"}
    assert statements["Logs"]["Resource"] == {"Fn::GetAtt": ["SyncerLogGroup", "Arn"]}
    # Nothing of the Loader's queue.
    assert not any("sqs:" in json.dumps(s["Action"]) for s in statements.values())


def test_syncer_runs_one_at_a_time_on_a_schedule_that_can_be_disabled(
    template: dict[str, Any],
) -> None:
    parameters, resources = template["Parameters"], template["Resources"]
    syncer = resources["Syncer"]["Properties"]
    assert syncer["ImageConfig"]["Command"] == ["brewline.aws.sync_handler"]
    assert syncer["ReservedConcurrentExecutions"] == 1
    assert syncer["Timeout"] == {"Ref": "SyncerTimeoutSeconds"}
    assert parameters["SyncerTimeoutSeconds"]["Default"] == 300
    assert syncer["LoggingConfig"]["LogGroup"] == {"Ref": "SyncerLogGroup"}

    assert parameters["SyncSchedule"]["Default"] == "rate(5 minutes)"
    pattern = parameters["SyncSchedule"]["AllowedPattern"]
    assert re.fullmatch(pattern, "rate(5 minutes)")
    assert re.fullmatch(pattern, "cron(0/5 * * * ? *)")
    assert parameters["SyncEnabled"]["AllowedValues"] == ["true", "false"]
    assert parameters["SyncEnabled"]["Default"] == "true"
    assert template["Conditions"]["SyncIsEnabled"] == {
        "Fn::Equals": [{"Ref": "SyncEnabled"}, "true"]
    }

    rule = resources["SyncerSchedule"]["Properties"]
    assert rule["ScheduleExpression"] == {"Ref": "SyncSchedule"}
    assert rule["State"] == {"Fn::If": ["SyncIsEnabled", "ENABLED", "DISABLED"]}
    assert rule["Targets"] == [{"Id": "syncer", "Arn": {"Fn::GetAtt": ["Syncer", "Arn"]}}]
    permission = resources["SyncerInvokedBySchedule"]["Properties"]
    assert permission == {
        "Action": "lambda:InvokeFunction",
        "FunctionName": {"Ref": "Syncer"},
        "Principal": "events.amazonaws.com",
        "SourceArn": {"Fn::GetAtt": ["SyncerSchedule", "Arn"]},
    }
    # No retries of a failed tick (the next tick is the retry); a throttled tick (the
    # previous sync still running) is dropped before the next one is due.
    invoke = resources["SyncerInvokeConfig"]["Properties"]
    assert invoke["FunctionName"] == {"Ref": "Syncer"}
    assert invoke["MaximumRetryAttempts"] == 0
    assert 60 <= invoke["MaximumEventAgeInSeconds"] < 300


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
        ("Brewline", "RunsFailed"),
        ("Brewline", "SyncsFailed"),
        ("Brewline", "SyncLagSeconds"),
    }
    for name, alarm in alarms.items():
        properties = alarm["Properties"]
        assert properties["AlarmActions"] == [{"Ref": "AlertTopic"}], name
        assert properties["TreatMissingData"] == "notBreaching", name
        if properties["Namespace"] == "Brewline":
            assert properties["Dimensions"] == [{"Name": "service", "Value": "brewline"}]


def test_sync_alarms(template: dict[str, Any]) -> None:
    """Syncer errors, failed syncs and the lag behind the source, on the same topic."""
    alarms = _resources(template, "AWS::CloudWatch::Alarm")
    watched = {
        name: (
            a["Properties"]["Namespace"],
            a["Properties"]["MetricName"],
            a["Properties"]["Statistic"],
            a["Properties"]["ComparisonOperator"],
            a["Properties"]["Threshold"],
        )
        for name, a in alarms.items()
    }
    assert watched["SyncerErrorsAlarm"] == (
        "AWS/Lambda",
        "Errors",
        "Sum",
        "GreaterThanThreshold",
        0,
    )
    assert alarms["SyncerErrorsAlarm"]["Properties"]["Dimensions"] == [
        {"Name": "FunctionName", "Value": {"Ref": "Syncer"}}
    ]
    assert watched["SyncsFailedAlarm"] == (
        "Brewline",
        "SyncsFailed",
        "Sum",
        "GreaterThanThreshold",
        0,
    )
    assert watched["SyncLagAlarm"] == (
        "Brewline",
        "SyncLagSeconds",
        "Maximum",
        "GreaterThanThreshold",
        {"Ref": "SyncLagAlarmSeconds"},
    )
    assert template["Parameters"]["SyncLagAlarmSeconds"]["Default"] == 900
    for name in ("SyncerErrorsAlarm", "SyncsFailedAlarm", "SyncLagAlarm"):
        assert alarms[name]["Properties"]["AlarmActions"] == [{"Ref": "AlertTopic"}]


def test_metric_names_are_those_brewline_aws_emits() -> None:
    """CUSTOM_METRICS is what src/brewline/aws.py emits: literal names and the per-state ones."""
    from brewline.vocabulary import FileState

    code = (ROOT / "src" / "brewline" / "aws.py").read_text(encoding="utf-8")
    literal = set(re.findall(r'add_metric\(\s*name="(\w+)"', code))
    assert 'f"Files{state.value.capitalize()}"' in code
    per_state = {f"Files{state.value.capitalize()}" for state in FileState}
    rows = {"RowsRead", "RowsLoaded", "RowsRejected"}  # from the report's rows_* totals
    assert literal | per_state | rows == CUSTOM_METRICS


def test_dashboard_shows_every_brewline_metric(template: dict[str, Any]) -> None:
    body = template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    dashboard = json.loads(re.sub(r"\$\{[^}]+\}", "0", body))  # "0": a number too
    metrics = [
        row for widget in dashboard["widgets"] for row in widget["properties"].get("metrics", [])
    ]
    shown = {row[1] for row in metrics if row[0] == "Brewline"}
    assert shown == CUSTOM_METRICS
    assert all(row[2:4] == ["service", "brewline"] for row in metrics if row[0] == "Brewline")
    namespaces = {row[0] for row in metrics}
    assert namespaces == {"Brewline", "AWS/Lambda", "AWS/SQS"}
    # The sync's row: every alarm is on the alarm widget, the Syncer's errors are shown.
    alarms = re.findall(r"\$\{(\w+)\.Arn\}", body)
    assert set(alarms) == set(_resources(template, "AWS::CloudWatch::Alarm"))
    assert '["AWS/Lambda", "Errors", "FunctionName", "${Syncer}"]' in body

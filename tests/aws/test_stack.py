"""deploy/aws/template.yaml created in moto's CloudFormation: a smoke test of its resources.

The stack is created on the suite's moto server (the ``aws`` fixture) with boto3, then each
resource is read back through its own service's API, not through the stack's description.

moto's CloudFormation does not model every resource type the template uses (see
MOTO_UNSUPPORTED_TYPES): the stack is created from a copy of the template, made here in
code, without them. Every resource of a type moto models stays in, so references to a
dropped resource become placeholders (see ``moto_copy``), not further removals. Where
moto creates a resource but ignores some of its properties, only what it reflects is
asserted, except the landing bucket's settings, which the test puts itself from the
template's values to check them and smoke the S3 -> SQS wiring (``bucket_settings``).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

import boto3
import pytest
from tests.motoserver import MotoServer
from tests.test_deploy_template import TEMPLATE, _load

# Resource types of the template that moto 5.x's CloudFormation has no model for
# (moto.cloudformation.parsing.get_model_map()): it skips such a resource with a warning,
# and a stack whose other resources reference one fails ("Fn::GetAtt references undefined
# resource"). The copy of the template leaves them out; test_moto_lacks_the_dropped_types
# fails once moto learns one of them, so the list cannot go stale.
MOTO_UNSUPPORTED_TYPES = frozenset(
    {
        "AWS::CloudWatch::Alarm",
        "AWS::Lambda::EventInvokeConfig",
        "AWS::S3::BucketPolicy",
        "AWS::SNS::Subscription",
        "AWS::SNS::TopicPolicy",
        "AWS::SQS::QueuePolicy",
        "AWS::SecretsManager::Secret",
    }
)

IMAGE_URI = "123456789012.dkr.ecr.eu-west-2.amazonaws.com/brewline:test"
ALERT_EMAIL = "alerts@example.com"
# Non-default values where the template derives something from them, so the assertions
# show the parameters (and the VisibilityTimeout mapping) flowing through.
PARAMETERS = {
    "ImageUri": IMAGE_URI,
    "SubnetIds": "subnet-0a1b2c3d4e5f60001,subnet-0a1b2c3d4e5f60002",
    "SecurityGroupIds": "sg-0a1b2c3d4e5f60003",
    "AlertEmail": ALERT_EMAIL,
    "LoaderTimeoutSeconds": "120",
    "MaxReceiveCount": "3",
    "QuarantineRetentionDays": "14",
    "MaxConcurrency": "4",
    "SyncSchedule": "rate(10 minutes)",
    "SyncerTimeoutSeconds": "240",
}


def placeholder(logical_id: str, attribute: str | None = None) -> str:
    """What a reference to a dropped resource becomes in the copy."""
    return f"moto-unsupported:{logical_id}" + (f".{attribute}" if attribute else "")


def moto_copy(template: dict[str, Any]) -> dict[str, Any]:
    """The template without MOTO_UNSUPPORTED_TYPES. A ``Ref``, ``Fn::GetAtt`` or ``${...}``
    in ``Fn::Sub`` naming a dropped resource becomes ``placeholder(...)``; ``DependsOn``
    forgets it. Nothing else changes."""
    resources = template["Resources"]
    dropped = {name for name, r in resources.items() if r["Type"] in MOTO_UNSUPPORTED_TYPES}

    def sub_variable(match: re.Match[str]) -> str:
        name, _, attribute = match[1].partition(".")
        return placeholder(name, attribute or None) if name in dropped else match[0]

    def rewrite(node: Any) -> Any:
        if isinstance(node, list):
            return [rewrite(item) for item in node]
        if not isinstance(node, dict):
            return node
        if node.keys() == {"Ref"} and node["Ref"] in dropped:
            return placeholder(node["Ref"])
        if node.keys() == {"Fn::GetAtt"} and node["Fn::GetAtt"][0] in dropped:
            return placeholder(*node["Fn::GetAtt"])
        if node.keys() == {"Fn::Sub"} and isinstance(node["Fn::Sub"], str):
            return {"Fn::Sub": re.sub(r"\$\{([A-Za-z0-9.]+)\}", sub_variable, node["Fn::Sub"])}
        return {key: rewrite(value) for key, value in node.items()}

    kept = {name: rewrite(r) for name, r in resources.items() if name not in dropped}
    for resource in kept.values():
        if "DependsOn" in resource:
            depends = resource.pop("DependsOn")
            depends = [depends] if isinstance(depends, str) else depends
            if remaining := [d for d in depends if d not in dropped]:
                resource["DependsOn"] = remaining
    return {**template, "Resources": kept, "Outputs": rewrite(template.get("Outputs", {}))}


@dataclass(frozen=True)
class Created:
    template: dict[str, Any]  # the original
    parameters: dict[str, str]  # every parameter's value, defaults included
    physical: dict[str, str]  # logical id -> physical id, as the stack reports them
    outputs: dict[str, str]

    def dropped(self) -> set[str]:
        resources = self.template["Resources"]
        return {n for n, r in resources.items() if r["Type"] in MOTO_UNSUPPORTED_TYPES}

    def of_type(self, resource_type: str) -> list[str]:
        resources = self.template["Resources"]
        return [n for n, r in resources.items() if r["Type"] == resource_type]


def create_stack(name: str, template: dict[str, Any], parameters: dict[str, str]) -> str:
    """Create the stack and wait for a final status, which must be CREATE_COMPLETE."""
    cloudformation = boto3.client("cloudformation")
    stack_id = cloudformation.create_stack(
        StackName=name,
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM"],
    )["StackId"]
    deadline = time.monotonic() + 30
    while True:
        stack = cloudformation.describe_stacks(StackName=stack_id)["Stacks"][0]
        if not stack["StackStatus"].endswith("_IN_PROGRESS") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    return stack_id


@pytest.fixture(scope="module")
def created(aws: MotoServer) -> Created:
    template = _load(TEMPLATE)
    prefix = f"t{uuid.uuid4().hex[:10]}"  # names the buckets: unique on the shared server
    parameters = {"NamePrefix": prefix, **PARAMETERS}
    stack_id = create_stack(f"brewline-{prefix}", moto_copy(template), parameters)
    cloudformation = boto3.client("cloudformation")
    summaries = cloudformation.list_stack_resources(StackName=stack_id)["StackResourceSummaries"]
    stack = cloudformation.describe_stacks(StackName=stack_id)["Stacks"][0]
    defaults = {
        name: str(spec["Default"])
        for name, spec in template["Parameters"].items()
        if "Default" in spec
    }
    return Created(
        template,
        {**defaults, **parameters},
        {s["LogicalResourceId"]: s.get("PhysicalResourceId", "") for s in summaries},
        {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])},
    )


# -- the stack as a whole ------------------------------------------------------------------------


def test_moto_lacks_the_dropped_types(aws: MotoServer) -> None:
    """Each dropped type is still one moto's CloudFormation skips: a stack holding one
    resource of it completes with no resource created."""
    template = {"Resources": {f"R{i}": {"Type": t} for i, t in enumerate(MOTO_UNSUPPORTED_TYPES)}}
    stack_id = create_stack(f"unsupported-{uuid.uuid4().hex[:10]}", template, {})
    summaries = boto3.client("cloudformation").list_stack_resources(StackName=stack_id)
    # moto lists a skipped resource as one blank entry.
    modelled = {
        template["Resources"][s["LogicalResourceId"]]["Type"]
        for s in summaries["StackResourceSummaries"]
        if s["LogicalResourceId"]
    }
    assert not modelled, f"moto now models {modelled}: keep them in the copy"


def test_every_modelled_resource_is_created(created: Created) -> None:
    expected = set(created.template["Resources"]) - created.dropped()
    assert set(created.physical) == expected
    # What the copy leaves out, pinned: a new resource of an unsupported type is a choice.
    assert created.dropped() == {
        "AccessLogBucketPolicy",
        "LandingBucketPolicy",
        "QueuePolicy",
        "Secret",
        "AlertTopicPolicy",
        "AlertSubscription",
        "SyncerInvokeConfig",
        *created.of_type("AWS::CloudWatch::Alarm"),
    }


def test_outputs(created: Created) -> None:
    assert set(created.outputs) == set(created.template["Outputs"])
    physical, outputs = created.physical, created.outputs
    for output, resource in {
        "LandingBucketName": "LandingBucket",
        "QueueUrl": "Queue",
        "DeadLetterQueueUrl": "DeadLetterQueue",
        "AlertTopicArn": "AlertTopic",
        "LoaderFunctionName": "Loader",
        "CheckerFunctionName": "Checker",
        "SyncerFunctionName": "Syncer",
        "LoaderLogGroupName": "LoaderLogGroup",
        "CheckerLogGroupName": "CheckerLogGroup",
        "SyncerLogGroupName": "SyncerLogGroup",
        "SyncerScheduleName": "SyncerSchedule",
    }.items():
        assert outputs[output] == physical[resource], output
    assert outputs["KeyArn"].endswith(f":key/{physical['Key']}")
    assert outputs["QueueArn"].endswith(":" + outputs["QueueUrl"].rsplit("/", 1)[1])
    assert outputs["DeadLetterQueueArn"].endswith(
        ":" + outputs["DeadLetterQueueUrl"].rsplit("/", 1)[1]
    )
    assert outputs["DashboardUrl"].endswith(f"#dashboards:name={physical['Dashboard']}")
    assert outputs["TotesysLake"] == f"s3://{outputs['LandingBucketName']}/totesys-lake/"
    # The secret is one of the types moto cannot create: its output is the placeholder.
    assert outputs["SecretArn"] == placeholder("Secret")


# -- storage, queues, key ------------------------------------------------------------------------


def test_landing_bucket_as_created(created: Created) -> None:
    """What moto's CloudFormation applies of an AWS::S3::Bucket: name and encryption.
    (It ignores the public access block, versioning, lifecycle, logging, ownership and
    notification properties: see test_landing_bucket_settings_and_wiring.)"""
    s3 = boto3.client("s3")
    prefix = created.parameters["NamePrefix"]
    bucket = created.outputs["LandingBucketName"]
    assert bucket == f"{prefix}-landing-123456789012-eu-west-2"
    s3.head_bucket(Bucket=bucket)
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert [r["ApplyServerSideEncryptionByDefault"] for r in rules] == [
        {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": created.outputs["KeyArn"]}
    ]
    access_logs = created.physical["AccessLogBucket"]
    rules = s3.get_bucket_encryption(Bucket=access_logs)["ServerSideEncryptionConfiguration"]
    assert rules["Rules"][0]["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}


def test_queues(created: Created) -> None:
    sqs = boto3.client("sqs")
    queue = sqs.get_queue_attributes(QueueUrl=created.outputs["QueueUrl"], AttributeNames=["All"])
    dlq = sqs.get_queue_attributes(
        QueueUrl=created.outputs["DeadLetterQueueUrl"], AttributeNames=["All"]
    )
    queue, dlq = queue["Attributes"], dlq["Attributes"]
    assert json.loads(queue["RedrivePolicy"]) == {
        "deadLetterTargetArn": created.outputs["DeadLetterQueueArn"],
        "maxReceiveCount": int(created.parameters["MaxReceiveCount"]),
    }
    assert queue["QueueArn"] == created.outputs["QueueArn"]
    mapping = created.template["Mappings"]["VisibilityTimeout"]
    seconds = mapping[created.parameters["LoaderTimeoutSeconds"]]["Seconds"]
    assert queue["VisibilityTimeout"] == str(seconds)
    # The DLQ keeps a message longer than the queue does (it keeps its first enqueue time).
    assert int(dlq["MessageRetentionPeriod"]) > int(queue["MessageRetentionPeriod"])
    assert "RedrivePolicy" not in dlq
    for attributes in (queue, dlq):
        assert attributes["KmsMasterKeyId"] == created.physical["Key"]


def test_key(created: Created) -> None:
    # Not DescribeKey: moto answers it with a 500 for a key CloudFormation created (it
    # stores the KeyPolicy object unparsed and fails evaluating it).
    kms = boto3.client("kms")
    key = created.outputs["KeyArn"]
    assert kms.get_key_rotation_status(KeyId=key)["KeyRotationEnabled"] is True
    aliases = kms.list_aliases(KeyId=key)["Aliases"]
    assert [a["AliasName"] for a in aliases] == [f"alias/{created.parameters['NamePrefix']}"]


# -- alerts, secret, logs ------------------------------------------------------------------------


def test_alert_topic(created: Created) -> None:
    sns = boto3.client("sns")
    topic = created.outputs["AlertTopicArn"]
    attributes = sns.get_topic_attributes(TopicArn=topic)["Attributes"]
    assert attributes["DisplayName"] == "Brewline alerts"
    assert attributes["KmsMasterKeyId"] == created.physical["Key"]
    # The e-mail subscription is an AWS::SNS::Subscription, which moto cannot create; what
    # can be checked is the declaration: on this topic, e-mail, the AlertEmail parameter.
    assert sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"] == []
    subscription = created.template["Resources"]["AlertSubscription"]["Properties"]
    assert subscription == {
        "TopicArn": {"Ref": "AlertTopic"},
        "Protocol": "email",
        "Endpoint": {"Ref": "AlertEmail"},
    }


def test_no_secret_and_no_alarms_in_moto(created: Created) -> None:
    """The secret and the alarms are of types moto cannot create: none exist, and the
    template still declares them (the alarm names below are what a real stack gets)."""
    prefix = created.parameters["NamePrefix"]
    secrets = boto3.client("secretsmanager").list_secrets()["SecretList"]
    assert not [s for s in secrets if prefix in s["Name"]]
    alarms = boto3.client("cloudwatch").describe_alarms()["MetricAlarms"]
    assert not [a for a in alarms if prefix in a["AlarmName"]]
    declared = {
        (r["Properties"]["Namespace"], r["Properties"]["MetricName"])
        for name in created.of_type("AWS::CloudWatch::Alarm")
        for r in [created.template["Resources"][name]]
    }
    assert declared == {
        ("AWS/Lambda", "Errors"),  # Loader, Checker and Syncer
        ("AWS/Lambda", "Throttles"),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),  # the DLQ
        ("AWS/SQS", "ApproximateAgeOfOldestMessage"),
        ("Brewline", "ChecksFailed"),
        ("Brewline", "FilesFailed"),
        ("Brewline", "RunsFailed"),
        ("Brewline", "SyncsFailed"),
        ("Brewline", "SyncLagSeconds"),
    }


def test_log_groups(created: Created) -> None:
    logs = boto3.client("logs")
    prefix = created.parameters["NamePrefix"]
    groups = logs.describe_log_groups(logGroupNamePrefix=f"/{prefix}/")["logGroups"]
    assert {g["logGroupName"]: g["retentionInDays"] for g in groups} == {
        f"/{prefix}/loader": int(created.parameters["LogRetentionDays"]),
        f"/{prefix}/checker": int(created.parameters["LogRetentionDays"]),
        f"/{prefix}/syncer": int(created.parameters["LogRetentionDays"]),
    }


def test_dashboard(created: Created) -> None:
    body = boto3.client("cloudwatch").get_dashboard(DashboardName=created.physical["Dashboard"])
    widgets = json.loads(body["DashboardBody"])["widgets"]
    text = json.dumps(widgets)
    for resource in ("Loader", "Checker", "Syncer"):
        assert f'"FunctionName", "{created.physical[resource]}"' in text
    for queue in ("QueueUrl", "DeadLetterQueueUrl"):
        name = created.outputs[queue].rsplit("/", 1)[1]
        assert f'"QueueName", "{name}"' in text
    # Every alarm the template declares is on the alarm widget (as placeholders here).
    [alarm_widget] = [w for w in widgets if w["type"] == "alarm"]
    assert set(alarm_widget["properties"]["alarms"]) == {
        placeholder(name, "Arn") for name in created.of_type("AWS::CloudWatch::Alarm")
    }


# -- functions -----------------------------------------------------------------------------------


def test_functions(created: Created) -> None:
    """moto's CloudFormation passes a function's Code, Role, Description, MemorySize,
    Timeout, VpcConfig, Environment and ReservedConcurrentExecutions on, and drops
    PackageType (it reports Zip), ImageConfig, Architectures and LoggingConfig: those are
    not asserted here (tests/test_deploy_template.py checks their declarations)."""
    awslambda = boto3.client("lambda")
    parameters = created.parameters
    bucket = created.outputs["LandingBucketName"]
    for resource in ("Loader", "Checker", "Syncer"):
        config = awslambda.get_function_configuration(FunctionName=created.physical[resource])
        assert config["Role"].endswith(f":role/{created.physical[resource + 'Role']}")
        assert config["VpcConfig"]["SubnetIds"] == parameters["SubnetIds"].split(",")
        assert config["VpcConfig"]["SecurityGroupIds"] == parameters["SecurityGroupIds"].split(",")
        environment = config["Environment"]["Variables"]
        # The secret is dropped from the copy: the variable holds the reference's placeholder.
        assert environment["BREWLINE_SECRET_ID"] == placeholder("Secret")
        assert environment["BREWLINE_ALERT_TOPIC_ARN"] == created.outputs["AlertTopicArn"]
        if resource == "Syncer":
            assert environment["BREWLINE_TOTESYS_LAKE"] == f"s3://{bucket}/totesys-lake/"
            assert "BREWLINE_QUARANTINE" not in environment
        else:
            assert environment["BREWLINE_QUARANTINE"] == f"s3://{bucket}/_quarantine/"
        assert not [v for v in environment.values() if "postgresql://" in v]
        code = awslambda.get_function(FunctionName=created.physical[resource])["Code"]
        assert code["ImageUri"] == IMAGE_URI
    loader = awslambda.get_function_configuration(FunctionName=created.physical["Loader"])
    assert loader["Timeout"] == int(parameters["LoaderTimeoutSeconds"])
    assert loader["MemorySize"] == int(parameters["LoaderMemoryMB"])
    concurrency = awslambda.get_function_concurrency(FunctionName=created.physical["Loader"])
    assert concurrency["ReservedConcurrentExecutions"] == int(parameters["MaxConcurrency"])
    syncer = awslambda.get_function_configuration(FunctionName=created.physical["Syncer"])
    assert syncer["Timeout"] == int(parameters["SyncerTimeoutSeconds"])
    assert syncer["MemorySize"] == int(parameters["SyncerMemoryMB"])
    concurrency = awslambda.get_function_concurrency(FunctionName=created.physical["Syncer"])
    assert concurrency["ReservedConcurrentExecutions"] == 1


def test_loader_event_source(created: Created) -> None:
    awslambda = boto3.client("lambda")
    [mapping] = awslambda.list_event_source_mappings(FunctionName=created.physical["Loader"])[
        "EventSourceMappings"
    ]
    assert mapping["EventSourceArn"] == created.outputs["QueueArn"]
    assert mapping["BatchSize"] == int(created.parameters["BatchSize"])
    assert mapping["MaximumBatchingWindowInSeconds"] == int(
        created.parameters["BatchingWindowSeconds"]
    )
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["ScalingConfig"] == {
        "MaximumConcurrency": int(created.parameters["MaxConcurrency"])
    }
    assert mapping["State"] == "Enabled"


def test_checker_schedule(created: Created) -> None:
    events, awslambda = boto3.client("events"), boto3.client("lambda")
    rule = events.describe_rule(Name=created.physical["CheckerSchedule"])
    assert rule["ScheduleExpression"] == created.parameters["CheckSchedule"]
    assert rule["State"] == "ENABLED"
    checker_arn = awslambda.get_function_configuration(FunctionName=created.physical["Checker"])[
        "FunctionArn"
    ]
    targets = events.list_targets_by_rule(Rule=created.physical["CheckerSchedule"])["Targets"]
    assert [t["Arn"] for t in targets] == [checker_arn]
    policy = json.loads(awslambda.get_policy(FunctionName=created.physical["Checker"])["Policy"])
    [statement] = policy["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Condition"]["ArnLike"]["AWS:SourceArn"] == rule["Arn"]


def test_syncer_schedule(created: Created) -> None:
    events, awslambda = boto3.client("events"), boto3.client("lambda")
    rule = events.describe_rule(Name=created.physical["SyncerSchedule"])
    assert rule["ScheduleExpression"] == created.parameters["SyncSchedule"]
    assert rule["State"] == "ENABLED"  # SyncEnabled defaults to true
    syncer_arn = awslambda.get_function_configuration(FunctionName=created.physical["Syncer"])[
        "FunctionArn"
    ]
    targets = events.list_targets_by_rule(Rule=created.physical["SyncerSchedule"])["Targets"]
    assert [t["Arn"] for t in targets] == [syncer_arn]
    assert "Input" not in targets[0]  # the tick's own event: no "full" reconciliation
    policy = json.loads(awslambda.get_policy(FunctionName=created.physical["Syncer"])["Policy"])
    [statement] = policy["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Condition"]["ArnLike"]["AWS:SourceArn"] == rule["Arn"]


def test_sync_enabled_false_disables_the_rule(aws: MotoServer) -> None:
    """The rule's State follows SyncEnabled through the template's own condition: the rule
    with its parameters and conditions, alone (its target a placeholder), created twice."""
    template = _load(TEMPLATE)
    rule = json.loads(json.dumps(template["Resources"]["SyncerSchedule"]))
    target = "arn:aws:lambda:eu-west-2:123456789012:function:placeholder"
    rule["Properties"]["Targets"] = [{"Id": "syncer", "Arn": target}]
    alone = {
        "Parameters": {k: template["Parameters"][k] for k in ("SyncSchedule", "SyncEnabled")},
        "Conditions": template["Conditions"],
        "Resources": {"SyncerSchedule": rule},
    }
    events, cloudformation = boto3.client("events"), boto3.client("cloudformation")
    for enabled, state in (("false", "DISABLED"), ("true", "ENABLED")):
        stack_id = create_stack(
            f"sync-rule-{uuid.uuid4().hex[:10]}", alone, {"SyncEnabled": enabled}
        )
        [resource] = cloudformation.list_stack_resources(StackName=stack_id)[
            "StackResourceSummaries"
        ]
        described = events.describe_rule(Name=resource["PhysicalResourceId"])
        assert (described["State"], described["ScheduleExpression"]) == (
            state,
            "rate(5 minutes)",
        ), enabled


# -- the landing bucket's settings and the S3 -> SQS wiring --------------------------------------


def bucket_settings(created: Created) -> dict[str, Any]:
    """The LandingBucket properties moto's CloudFormation ignores, as S3 API requests.

    moto creates an AWS::S3::Bucket with its name, encryption and tags only. So that the
    template's public access block, versioning, lifecycle and notification settings are
    still checked (S3 validates them) and the notification can be smoked, the test puts
    them through the S3 API, translated from the template's own property values."""
    properties = created.template["Resources"]["LandingBucket"]["Properties"]

    def value(node: Any) -> Any:
        if isinstance(node, dict) and node.keys() == {"Ref"}:
            return created.parameters[node["Ref"]]
        if isinstance(node, dict) and node.keys() == {"Fn::GetAtt"}:
            assert node["Fn::GetAtt"] == ["Queue", "Arn"], node
            return created.outputs["QueueArn"]
        return node

    def lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
        converted: dict[str, Any] = {"ID": rule["Id"], "Status": rule["Status"]}
        converted["Filter"] = {"Prefix": rule.get("Prefix", "")}
        if "ExpirationInDays" in rule:
            converted["Expiration"] = {"Days": int(value(rule["ExpirationInDays"]))}
        if rule.get("ExpiredObjectDeleteMarker"):
            converted["Expiration"] = {"ExpiredObjectDeleteMarker": True}
        if "NoncurrentVersionExpiration" in rule:
            days = rule["NoncurrentVersionExpiration"]["NoncurrentDays"]
            converted["NoncurrentVersionExpiration"] = {"NoncurrentDays": int(value(days))}
        if "AbortIncompleteMultipartUpload" in rule:
            converted["AbortIncompleteMultipartUpload"] = rule["AbortIncompleteMultipartUpload"]
        return converted

    def queue_configuration(configuration: dict[str, Any]) -> dict[str, Any]:
        rules = configuration["Filter"]["S3Key"]["Rules"]
        return {
            "QueueArn": value(configuration["Queue"]),
            "Events": [configuration["Event"]],
            "Filter": {
                "Key": {
                    "FilterRules": [{"Name": r["Name"], "Value": value(r["Value"])} for r in rules]
                }
            },
        }

    return {
        "PublicAccessBlockConfiguration": properties["PublicAccessBlockConfiguration"],
        "VersioningConfiguration": properties["VersioningConfiguration"],
        "LifecycleConfiguration": {
            "Rules": [lifecycle_rule(r) for r in properties["LifecycleConfiguration"]["Rules"]]
        },
        "NotificationConfiguration": {
            "QueueConfigurations": [
                queue_configuration(c)
                for c in properties["NotificationConfiguration"]["QueueConfigurations"]
            ]
        },
    }


def receive_all(queue_url: str) -> list[str]:
    """Every message body on the queue now (S3 notifies synchronously in moto)."""
    sqs, bodies = boto3.client("sqs"), []
    while messages := sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
    ).get("Messages", []):
        bodies += [m["Body"] for m in messages]
    return bodies


@pytest.fixture
def loader_mapping_off(created: Created) -> Iterator[None]:
    """moto would hand each new queue message to the Loader (in Docker), hiding it for the
    queue's visibility timeout: while the smoke reads the queue itself, the stack's event
    source mapping is switched off (and on again after, for the other tests)."""
    awslambda = boto3.client("lambda")
    [mapping] = awslambda.list_event_source_mappings(FunctionName=created.physical["Loader"])[
        "EventSourceMappings"
    ]
    awslambda.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
    yield
    awslambda.update_event_source_mapping(UUID=mapping["UUID"], Enabled=True)


@pytest.mark.usefixtures("loader_mapping_off")
def test_landing_bucket_settings_and_wiring(created: Created) -> None:
    s3 = boto3.client("s3")
    bucket = created.outputs["LandingBucketName"]
    queue_url = created.outputs["QueueUrl"]
    landing = created.parameters["LandingPrefix"]

    settings = bucket_settings(created)
    s3.put_public_access_block(
        Bucket=bucket, PublicAccessBlockConfiguration=settings["PublicAccessBlockConfiguration"]
    )
    s3.put_bucket_versioning(
        Bucket=bucket, VersioningConfiguration=settings["VersioningConfiguration"]
    )
    s3.put_bucket_lifecycle_configuration(
        Bucket=bucket, LifecycleConfiguration=settings["LifecycleConfiguration"]
    )
    s3.put_bucket_notification_configuration(
        Bucket=bucket, NotificationConfiguration=settings["NotificationConfiguration"]
    )

    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert block == dict.fromkeys(
        ["BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"],
        True,
    )
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    [quarantine] = [r for r in rules if r["Filter"].get("Prefix") == "_quarantine/"]
    assert quarantine["Status"] == "Enabled"
    assert quarantine["Expiration"] == {"Days": int(created.parameters["QuarantineRetentionDays"])}
    notification = s3.get_bucket_notification_configuration(Bucket=bucket)
    [queue_configuration] = notification["QueueConfigurations"]
    assert queue_configuration["QueueArn"] == created.outputs["QueueArn"]
    assert queue_configuration["Events"] == ["s3:ObjectCreated:*"]
    rules = queue_configuration["Filter"]["Key"]["FilterRules"]
    assert {r["Name"].lower(): r["Value"] for r in rules} == {"prefix": landing, "suffix": ".csv"}

    # The smoke: only a .csv under the landing prefix reaches the queue.
    for key in (f"{landing}notes.txt", "_quarantine/x.csv", f"{landing}2024-12-18/b01.csv"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"date,branch\n")
    keys = []
    for body in receive_all(queue_url):
        event = json.loads(body)
        if event.get("Event") == "s3:TestEvent":
            continue
        # Keys in S3 event notifications are URL-encoded (as AWS sends them).
        keys += [(r["eventName"], unquote_plus(r["s3"]["object"]["key"])) for r in event["Records"]]
    assert [k for _, k in keys] == [f"{landing}2024-12-18/b01.csv"]
    assert keys[0][0].startswith("ObjectCreated:")

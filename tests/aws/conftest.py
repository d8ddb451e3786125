"""A deployed-like stack on the local AWS endpoint: bucket -> queue (+ DLQ), secret, topic."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import boto3
import pytest
from tests.conftest import PII_KEY
from tests.motoserver import MotoServer


@dataclass(frozen=True)
class Stack:
    bucket: str
    queue_url: str
    dlq_url: str
    secret_id: str
    topic_arn: str
    alerts_url: str  # a queue subscribed to the topic, to read what was published
    warehouse: str
    env: dict[str, str]


def _queue(sqs: object, name: str, **attributes: str) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]  # type: ignore[attr-defined]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])  # type: ignore[attr-defined]
    return url, arn["Attributes"]["QueueArn"]


@pytest.fixture
def stack(aws: MotoServer, postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    """What deploy/aws/template.yaml declares, made on moto: S3 notifies SQS for new .csv
    objects under landing/, a DLQ after 2 receives, the secret, the alert topic."""
    from brewline import aws as brewline_aws

    run = uuid.uuid4().hex[:10]
    s3, sqs, sns = boto3.client("s3"), boto3.client("sqs"), boto3.client("sns")
    bucket = f"landing-{run}"
    s3.create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": aws.env["AWS_REGION"]}
    )
    dlq_url, dlq_arn = _queue(sqs, f"dlq-{run}")
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2})
    queue_url, queue_arn = _queue(sqs, f"q-{run}", VisibilityTimeout="2", RedrivePolicy=redrive)
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": queue_arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {
                        "Key": {
                            "FilterRules": [
                                {"Name": "prefix", "Value": "landing/"},
                                {"Name": "suffix", "Value": ".csv"},
                            ]
                        }
                    },
                }
            ]
        },
    )
    # S3 sends one s3:TestEvent when a notification is configured; the handler ignores
    # it (tested), the tests count only the objects' own messages.
    for message in sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1).get("Messages", []):
        assert "s3:TestEvent" in message["Body"]
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    secret_id = boto3.client("secretsmanager").create_secret(
        Name=f"brewline-{run}",
        SecretString=json.dumps({"warehouse": postgres_url, "pii_key": PII_KEY}),
    )["ARN"]
    topic_arn = sns.create_topic(Name=f"alerts-{run}")["TopicArn"]
    alerts_url, alerts_arn = _queue(sqs, f"alerts-{run}")
    sns.subscribe(
        TopicArn=topic_arn,
        Protocol="sqs",
        Endpoint=alerts_arn,
        Attributes={"RawMessageDelivery": "true"},
    )
    env = {
        "BREWLINE_SECRET_ID": secret_id,
        "BREWLINE_QUARANTINE": f"s3://{bucket}/_quarantine/",
        "BREWLINE_ALERT_TOPIC_ARN": topic_arn,
        "BREWLINE_REQUIRE_PII_KEY": "true",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("BREWLINE_WAREHOUSE", raising=False)
    brewline_aws._secret.cache_clear()
    yield Stack(
        bucket,
        queue_url,
        dlq_url,
        secret_id,
        topic_arn,
        alerts_url,
        postgres_url,
        {**aws.env, **env},
    )
    brewline_aws._secret.cache_clear()

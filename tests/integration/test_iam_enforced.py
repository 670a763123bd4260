"""Least privilege, proven: the upload, Batch Operations and Distributed Map flows run against moto as
the template's roles, every request they make is evaluated against exactly the policies
template.yaml gives that role (tests/iam_policies.py) by an IAM policy simulator, and then each grant
is removed in turn to show some flow needs it.

What runs for real: the handler (lambda_handler, as the function's role), the S3 -> SQS notification
and the queue (moto), the Batch Operations manifest and job request built by bulk/batch_ops.py, the
Distributed Map's item listing and ResultWriter files. What no emulator does (Lambda's log writes and
event source polling, Batch Operations and Step Functions invoking the alias, the Map's children,
S3 Inventory's delivery) is recorded as the service's request, each citing AWS's page.
Why a simulator and not moto's own IAM enforcement: docs/decisions.md.
"""

from __future__ import annotations

import copy
import csv
import io
import json
from urllib.parse import unquote_plus

import boto3
import iam_policies as tpl
import pytest
import requests
from helpers import fixture_bytes, load_event
from iam_calls import Call, Recorder, simulate, simulator_missing

from bulk import batch_ops
from handler import aws
from handler.aws_events import BATCH_OPERATIONS, MAP_BATCH, SQS, event_kind
from handler.config import Settings, load_settings

pytestmark = pytest.mark.skipif(simulator_missing() is not None, reason=str(simulator_missing()))

PRINCIPALS = tpl.principals()
INPUT, OUTPUT = tpl.resource_name("InputBucket"), tpl.resource_name("OutputBucket")
ALIAS = tpl.resource_name("FaceReadFunction.Alias")
FUNCTION_ROLE = tpl.role_of("FaceReadFunction")
SERVICE_S3 = "s3.amazonaws.com"
DOCS = {
    "logs": "https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs.html",
    "sqs": "https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html",
    "s3-sqs": "https://docs.aws.amazon.com/AmazonS3/latest/userguide/ways-to-add-notification-config-to-bucket.html",
    "batch": "https://docs.aws.amazon.com/AmazonS3/latest/userguide/batch-ops-iam-role-policies.html",
    "inventory": "https://docs.aws.amazon.com/AmazonS3/latest/userguide/configure-inventory.html",
    "map": "https://docs.aws.amazon.com/step-functions/latest/dg/iam-policies-eg-dist-map.html",
    "writer": "https://docs.aws.amazon.com/step-functions/latest/dg/input-output-resultwriter.html",
    "presigned": "https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-presigned-url.html",
}


def _function_handler(recorder: Recorder, event: dict) -> dict:
    """One invocation of the live alias: the handler's calls as the function's role, plus Lambda's log writes."""
    handle = {SQS: aws.handle_sqs, BATCH_OPERATIONS: aws.handle_batch_operations,
              MAP_BATCH: aws.handle_map_batch}[event_kind(event)]
    with recorder.acting_as(FUNCTION_ROLE):
        answer = handle(event, settings=_function_settings())
    group = tpl.properties("FaceReadFunction")["LoggingConfig"]["LogGroup"]
    log_group = f"arn:aws:logs:{tpl.REGION}:{tpl.ACCOUNT}:log-group:{group}"
    for action in ("logs:CreateLogStream", "logs:PutLogEvents"):
        recorder.service_call(FUNCTION_ROLE, action, f"{log_group}:log-stream:2026/01/01/[live]abc", DOCS["logs"])
    return answer


def _function_settings() -> Settings:
    """The handler's settings from the function's environment in the template (its buckets, its prefixes)."""
    variables = tpl.properties("FaceReadFunction")["Environment"]["Variables"]
    return load_settings({name: str(value) for name, value in variables.items()})


def _upload_flow(recorder: Recorder, s3, sqs) -> None:
    """S3 -> SQS -> function with the template's notification and queue: an upload deleted before it
    is read (a 404 the role must see as one), a presigned upload (POST /uploads), a redelivery the skip
    rule answers with one HEAD, and an overwrite whose rewrite deletes the replaced image."""
    queue_arn = tpl.resource_arn("UploadQueue")
    queue_url = sqs.create_queue(QueueName=queue_arn.rsplit(":", 1)[-1])["QueueUrl"]
    notification = tpl.properties("InputBucket")["NotificationConfiguration"]
    configs = [{"QueueArn": c["Queue"], "Events": [c["Event"]],
                "Filter": {"Key": {"FilterRules": [{"Name": r["Name"], "Value": r["Value"]}
                                                   for r in c["Filter"]["S3Key"]["Rules"]]}}}
               for c in notification["QueueConfigurations"]]
    s3.put_bucket_notification_configuration(Bucket=INPUT, NotificationConfiguration={"QueueConfigurations": configs})
    s3.put_object(Bucket=INPUT, Key="uploads/queued/one.png", Body=fixture_bytes("camera.png"))
    s3.put_object(Bucket=INPUT, Key="uploads/queued/gone.png", Body=fixture_bytes("camera.png"))
    s3.delete_object(Bucket=INPUT, Key="uploads/queued/gone.png")
    for _ in configs:  # S3 delivers each notification as itself, allowed only by the queue's policy
        recorder.service_call(SERVICE_S3, "sqs:SendMessage", queue_arn, DOCS["s3-sqs"],
                              **{"aws:SourceArn": f"arn:aws:s3:::{INPUT}", "aws:SourceAccount": tpl.ACCOUNT})
    upload_key = _presigned_upload(recorder, s3)
    # Deliveries, as the event source mapping polls as the function's role: the three uploads, the same
    # messages again (the skip rule answers with one HEAD), then a new version of one.png, whose result is
    # rewritten and whose old image the rewrite deletes.
    _deliver(recorder, sqs, queue_url, queue_arn, rounds=2)
    s3.put_object(Bucket=INPUT, Key="uploads/queued/one.png", Body=fixture_bytes("astronaut.png"))
    _deliver(recorder, sqs, queue_url, queue_arn, rounds=1)
    s3.head_object(Bucket=OUTPUT, Key="results/queued/one.png.json")
    s3.head_object(Bucket=OUTPUT, Key=f"results/{upload_key.removeprefix('uploads/')}.json")


def _presigned_upload(recorder: Recorder, s3) -> str:
    """POST /uploads as the function (a presigned form: no request), then the caller's form POST, which S3
    authorises as the signer, the function's role (AWS, "Sharing objects with presigned URLs")."""
    from handler import uploads

    settings = _function_settings()
    answer = uploads.create({"content_type": "image/png"}, uploads.S3Uploads(aws.s3_client()), settings)
    form = answer["upload"]
    sent = requests.post(form["url"], data=form["fields"],
                         files={"file": ("big.png", fixture_bytes("camera.png"), "image/png")}, timeout=30)
    assert sent.status_code in (200, 201, 204), sent.text
    recorder.service_call(FUNCTION_ROLE, "s3:PutObject", f"arn:aws:s3:::{INPUT}/{answer['key']}", DOCS["presigned"])
    return answer["key"]


def _deliver(recorder: Recorder, sqs, queue_url: str, queue_arn: str, rounds: int) -> None:
    """The event source mapping: poll the queue as the function's role, invoke, delete what succeeded."""
    sample = load_event("sqsS3Event.json")["Records"][0]
    for _ in range(rounds):
        with recorder.acting_as(FUNCTION_ROLE):
            sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])
            messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                           VisibilityTimeout=0).get("Messages", [])
        records = [{**sample, "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                    "eventSourceARN": queue_arn} for m in messages]
        assert records, "moto delivered no notification"
        answer = _function_handler(recorder, {"Records": records})
        assert answer == {"batchItemFailures": []}
    with recorder.acting_as(FUNCTION_ROLE):
        for record in records:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=record["receiptHandle"])


def _batch_operations_flow(recorder: Recorder, s3) -> None:
    """A LambdaInvoke job as python -m bulk builds it: CSV manifest, then an S3 Inventory manifest."""
    role = "BatchOperationsRole"
    keys = ["uploads/batch/one.png", "uploads/batch/two.png"]
    for key in keys:
        s3.put_object(Bucket=INPUT, Key=key, Body=fixture_bytes("camera.png"))
    manifest_key = batch_ops.MANIFEST_PREFIX + "iam.csv"
    etag = s3.put_object(Bucket=OUTPUT, Key=manifest_key, Body=batch_ops.manifest_csv(INPUT, keys))["ETag"]
    inventory_key = _inventory_delivery(recorder, s3, keys)
    assert batch_ops.inventory_manifest_problem(s3, f"s3://{OUTPUT}/{inventory_key}", OUTPUT) is None
    for manifest, inventory in ((manifest_key, False), (inventory_key, True)):
        request = batch_ops.job_request(
            account_id=tpl.ACCOUNT, function_arn=ALIAS, role_arn=tpl.resource_arn(role), report_bucket=OUTPUT,
            manifest_arn=batch_ops.s3_arn("aws", OUTPUT, manifest), manifest_etag=etag.strip('"'),
            inventory=inventory)
        assert request["RoleArn"] == tpl.resource_arn(role)
        location = request["Manifest"]["Location"]
        assert "ObjectVersionId" not in location  # so the role reads it with s3:GetObject
        rows = _read_manifest(recorder, s3, role, location["ObjectArn"], inventory)
        event = copy.deepcopy(load_event("s3BatchOperationEventSchemaV2.json"))
        event["job"]["userArguments"] = request["Operation"]["LambdaInvoke"]["UserArguments"]
        template_task = event["tasks"][0]
        event["tasks"] = [{**template_task, "taskId": str(i), "s3Bucket": bucket, "s3Key": key, "s3VersionId": None}
                          for i, (bucket, key) in enumerate(rows)]
        function = request["Operation"]["LambdaInvoke"]["FunctionArn"]
        recorder.service_call(role, "lambda:InvokeFunction", function, DOCS["batch"])
        answer = _function_handler(recorder, event)
        assert {r["resultCode"] for r in answer["results"]} == {"Succeeded"}
        report = request["Report"]
        with recorder.acting_as(role):  # the completion report, as the job's role
            prefix = f"{report['Prefix']}/job-iam{int(inventory)}"
            report_bucket = report["Bucket"].rsplit(":", 1)[-1]
            s3.put_object(Bucket=report_bucket, Key=f"{prefix}/results/a.csv", Body=b"")
            s3.put_object(Bucket=report_bucket, Key=f"{prefix}/manifest.json", Body=b"{}")


def _inventory_delivery(recorder: Recorder, s3, keys: list[str]) -> str:
    """S3 Inventory of the input bucket writing into batch/manifests/ of the output bucket (as S3 does:
    the service principal, the source bucket and account, bucket-owner-full-control)."""
    base = f"{batch_ops.MANIFEST_PREFIX}{INPUT}/weekly/2026-01-01T00-00Z"
    data_key = f"{batch_ops.MANIFEST_PREFIX}{INPUT}/weekly/data/part-0.csv"
    manifest = {"sourceBucket": INPUT, "destinationBucket": f"arn:aws:s3:::{OUTPUT}", "fileFormat": "CSV",
                "fileSchema": "Bucket, Key", "files": [{"key": data_key}]}
    context = {"aws:SourceArn": f"arn:aws:s3:::{INPUT}", "aws:SourceAccount": tpl.ACCOUNT}
    with recorder.acting_as(SERVICE_S3, **context):
        s3.put_object(Bucket=OUTPUT, Key=data_key, Body=batch_ops.manifest_csv(INPUT, keys),
                      ACL="bucket-owner-full-control")
        s3.put_object(Bucket=OUTPUT, Key=f"{base}/manifest.json", Body=json.dumps(manifest).encode(),
                      ACL="bucket-owner-full-control")
    return f"{base}/manifest.json"


def _read_manifest(recorder: Recorder, s3, role: str, arn: str, inventory: bool) -> list[tuple[str, str]]:
    """Batch Operations reading a manifest (and an inventory's data files) as the job's role."""
    bucket, key = arn.split(":::", 1)[1].split("/", 1)
    with recorder.acting_as(role):
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        if inventory:
            files = [s3.get_object(Bucket=bucket, Key=f["key"])["Body"].read() for f in json.loads(body)["files"]]
            body = b"".join(files)
    return [(row[0], unquote_plus(row[1])) for row in csv.reader(io.StringIO(body.decode()))]


def _distributed_map_flow(recorder: Recorder, s3) -> None:
    """The template's state machine definition, run by hand: ItemReader, ItemBatcher, the Task, ResultWriter."""
    role, machine = "BackfillStateMachineRole", tpl.resource_arn("BackfillStateMachine")
    definition = tpl.state_machine_definition()
    state = definition["States"][definition["StartAt"]]
    start = {"bucket": INPUT, "prefix": "uploads/"}  # what bulk/dmap.py starts it with
    with recorder.acting_as(role):
        listed = s3.list_objects_v2(Bucket=start["bucket"], Prefix=start["prefix"]).get("Contents", [])
    items = [{"Key": o["Key"], "Etag": o["ETag"], "Size": o["Size"]} for o in listed]
    # Children of a distributed Map are executions of this state machine (Step Functions' IAM page).
    recorder.service_call(role, "states:StartExecution", machine, DOCS["map"])
    execution = machine.replace(":stateMachine:", ":execution:") + "/maprun:child"
    for action in ("states:DescribeExecution", "states:StopExecution"):
        recorder.service_call(role, action, execution, DOCS["map"])
    task = state["ItemProcessor"]["States"][state["ItemProcessor"]["StartAt"]]
    recorder.service_call(role, "lambda:InvokeFunction", task["Parameters"]["FunctionName"], DOCS["map"])
    batch = {"BatchInput": {"bucket": start["bucket"]}, "Items": items[:state["ItemBatcher"]["MaxItemsPerBatch"]]}
    answer = _function_handler(recorder, batch)
    assert {r["status"] for r in answer["results"]} <= {"analyzed", "unchanged"}
    writer = state["ResultWriter"]["Parameters"]
    prefix = f"{writer['Prefix']}/maprun"
    with recorder.acting_as(role):
        s3.put_object(Bucket=writer["Bucket"], Key=f"{prefix}/SUCCEEDED_0.json", Body=b"[]")
        s3.put_object(Bucket=writer["Bucket"], Key=f"{prefix}/manifest.json", Body=b"{}")
    # ResultWriter writes large files as multipart uploads and reads them back (Step Functions' page).
    for action in ("s3:GetObject", "s3:ListMultipartUploadParts", "s3:AbortMultipartUpload"):
        recorder.service_call(role, action, f"arn:aws:s3:::{writer['Bucket']}/{prefix}/SUCCEEDED_0.json",
                              DOCS["writer"])


@pytest.fixture(scope="module")
def calls(s3) -> list[Call]:
    """Every request the three flows make, by principal."""
    recorder = Recorder(tpl.ACCOUNT, tpl.REGION)
    for bucket in (INPUT, OUTPUT):
        s3.create_bucket(Bucket=bucket)
    versioning = tpl.properties("InputBucket").get("VersioningConfiguration")
    if versioning:
        s3.put_bucket_versioning(Bucket=INPUT, VersioningConfiguration={"Status": versioning["Status"]})
    recorder.watch(s3)
    recorder.watch(aws.s3_client())
    sqs = recorder.watch(boto3.client("sqs", endpoint_url=s3.meta.endpoint_url, region_name=tpl.REGION))
    _upload_flow(recorder, s3, sqs)
    _batch_operations_flow(recorder, s3)
    _distributed_map_flow(recorder, s3)
    return recorder.calls


def _guards(arn: str, call: Call) -> bool:
    """Whether the resource policy on `arn` (a queue or a bucket) applies to the call."""
    return call.resource == arn or call.resource.startswith(arn + "/")


def _decisions(calls: list[Call], principal: tpl.Principal | None = None, without: int | None = None) -> list[str]:
    policies = tpl.resource_policies()
    requests = []
    for call in calls:
        holder = PRINCIPALS.get(call.principal)
        identity = (principal.policy(without) if principal and holder is principal else
                    holder.policy() if holder else None)
        resource = next((p for arn, p in policies.items() if _guards(arn, call)), None)
        requests.append((call, identity, resource))
    return simulate(requests, tpl.ACCOUNT)


def test_every_request_of_the_three_flows_is_allowed(calls: list[Call]) -> None:
    assert {c.principal for c in calls} >= {FUNCTION_ROLE, "BatchOperationsRole", "BackfillStateMachineRole",
                                            SERVICE_S3}
    denied = [str(c) for c, d in zip(calls, _decisions(calls)) if d != "Allowed"]
    assert not denied, "denied by the template's policies:\n" + "\n".join(denied)


GRANTS = [(name, i) for name, p in PRINCIPALS.items() for i in range(len(p.grants))]


@pytest.mark.parametrize(("name", "index"), GRANTS, ids=[PRINCIPALS[n].label(i) for n, i in GRANTS])
def test_each_grant_is_needed_by_some_request(calls: list[Call], name: str, index: int) -> None:
    principal = PRINCIPALS[name]
    own = [c for c in calls if c.principal == name]
    decisions = _decisions(own, principal, without=index)
    assert any(d != "Allowed" for d in decisions), (
        f"{principal.label(index)} is surplus: every request of the flows is allowed without it")


def test_no_grant_is_on_every_resource() -> None:
    broad = [p.label(i) for p in PRINCIPALS.values() for i, g in enumerate(p.grants) if g["Resource"] == "*"]
    assert not broad, f"Resource \"*\": {broad}"


def test_resource_policy_grants_are_each_needed(calls: list[Call]) -> None:
    """The queue's and the output bucket's policies: each statement allows some service request."""
    for arn, policy in tpl.resource_policies().items():
        for statement in policy["Statement"]:
            own = [c for c in calls if c.principal == statement["Principal"].get("Service")
                   and _guards(arn, c)]
            alone = {"Version": "2012-10-17", "Statement": [statement]}
            decisions = simulate([(c, None, alone) for c in own], tpl.ACCOUNT)
            assert "Allowed" in decisions, f"{arn}: statement {statement.get('Sid')} allows none of the flows' requests"

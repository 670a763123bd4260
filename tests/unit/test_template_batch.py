"""The template's bulk resources: upload queue + DLQ, Batch Operations role, Distributed Map state machine.

cfn-lint runs on the whole template in test_template.py; these pin what no linter knows: the queue
settings AWS recommends, the roles' trust and least privilege, and the state machine's definition.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cfnlint.decode import decode

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tpl() -> dict:
    template, errors = decode(str(ROOT / "template.yaml"))
    assert not errors
    return template


@pytest.fixture(scope="module")
def res(tpl: dict) -> dict:
    return tpl["Resources"]


def statements(role: dict) -> list[dict]:
    return [s for p in role["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]]


def actions(statement: dict) -> list[str]:
    return statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]


def test_upload_queue_dlq_and_event_source_mapping(tpl: dict, res: dict) -> None:
    params = tpl["Parameters"]
    queue = res["UploadQueue"]["Properties"]
    assert queue["RedrivePolicy"] == {"deadLetterTargetArn": {"Fn::GetAtt": ["UploadDeadLetterQueue", "Arn"]},
                                      "maxReceiveCount": {"Ref": "UploadMaxReceiveCount"}}
    # The visibility timeout, receive count and retentions: tests/unit/test_template_timeouts.py.
    [sqs] = [r["Properties"] for r in res.values() if r["Type"] == "AWS::Lambda::EventSourceMapping"]
    assert sqs["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert sqs["MaximumBatchingWindowInSeconds"] > 0 and sqs["BatchSize"] <= 10
    assert sqs["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "UploadMaxConcurrency"}}
    assert int(params["UploadMaxConcurrency"]["MinValue"]) == 2  # Lambda's floor for MaximumConcurrency


def test_only_the_input_bucket_may_send_to_the_queue(res: dict) -> None:
    [statement] = res["UploadQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"} and statement["Action"] == "sqs:SendMessage"
    assert "-input-" in statement["Condition"]["ArnEquals"]["aws:SourceArn"]["Fn::Sub"]
    assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
    assert res["InputBucket"]["DependsOn"] == "UploadQueuePolicy"


def test_batch_operations_role_trust_and_least_privilege(res: dict) -> None:
    role = res["BatchOperationsRole"]
    [trust] = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "batchoperations.s3.amazonaws.com"} and trust["Action"] == "sts:AssumeRole"
    granted = {}
    for s in statements(role):
        assert s["Effect"] == "Allow"
        for action in actions(s):
            assert "*" not in action  # no wildcard actions
            granted.setdefault(action, []).append(s["Resource"])
    # Read manifests, invoke the pinned alias; PutObject only for the completion report Batch Operations
    # writes. Never the objects: the function reads them as its own role (test_iam_enforced.py).
    assert set(granted) == {"s3:GetObject", "lambda:InvokeFunction", "s3:PutObject"}
    assert granted["lambda:InvokeFunction"] == [{"Ref": "FaceReadFunction.Alias"}]  # never the unqualified function
    [reports] = granted["s3:PutObject"]
    assert reports["Fn::Sub"].endswith("-output-${AWS::AccountId}-${AWS::Region}/batch/reports/*")
    [reads] = granted["s3:GetObject"]
    assert reads["Fn::Sub"].endswith("-output-${AWS::AccountId}-${AWS::Region}/batch/manifests/*")


def test_state_machine_role_has_no_wildcard_actions_and_invokes_only_the_alias(res: dict) -> None:
    role = res["BackfillStateMachineRole"]
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "states.amazonaws.com"}
    for s in statements(role):
        assert all("*" not in a for a in actions(s))
        if "lambda:InvokeFunction" in actions(s):
            assert s["Resource"] == {"Ref": "FaceReadFunction.Alias"}


@pytest.fixture(scope="module")
def definition(res: dict) -> dict:
    """The Amazon States Language JSON with the template's substitutions filled in by example values."""
    text, local_names = res["BackfillStateMachine"]["Properties"]["DefinitionString"]["Fn::Sub"]
    values = {"BackfillBatchSize": "20", "BackfillMaxConcurrency": "100", "BackfillToleratedFailurePercentage": "5",
              "AWS::Partition": "aws", "FunctionAlias": "arn:aws:lambda:us-east-1:1:function:f:live",
              "OutputBucketName": "out", "ChildExecutionType": "EXPRESS"}
    assert set(re.findall(r"\$\{([^}]+)\}", text)) <= set(values) and set(local_names) <= set(values)
    return json.loads(re.sub(r"\$\{([^}]+)\}", lambda m: values[m.group(1)], text))


def test_distributed_map_definition(definition: dict) -> None:
    state = definition["States"][definition["StartAt"]]
    assert state["Type"] == "Map"
    assert state["ItemReader"]["Resource"] == "arn:aws:states:::s3:listObjectsV2"
    assert state["ItemBatcher"] == {"MaxItemsPerBatch": 20, "BatchInput": {"bucket.$": "$.bucket"}}
    assert state["MaxConcurrency"] == 100 and state["ToleratedFailurePercentage"] == 5
    assert state["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    assert state["ResultWriter"]["Parameters"] == {"Bucket": "out", "Prefix": "batch/map-results"}
    task = state["ItemProcessor"]["States"][state["ItemProcessor"]["StartAt"]]
    assert task["Parameters"]["FunctionName"].endswith(":live")
    [retry] = task["Retry"]
    assert {"Lambda.TooManyRequestsException", "RetryableBatchError"} <= set(retry["ErrorEquals"])


def test_cloud_run_job_runs_the_sharded_entry_point() -> None:
    import yaml

    job = yaml.safe_load((ROOT / "infra" / "gcp" / "job.yaml").read_text())
    assert job["kind"] == "Job"
    spec = job["spec"]["template"]["spec"]
    assert spec["taskCount"] >= 1 and spec["parallelism"] >= 1
    [container] = spec["template"]["spec"]["containers"]
    assert container["command"] == ["python", "-m", "handler.gcs_job"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert {"JOB_BUCKET", "JOB_PREFIX", "OUTPUT_BUCKET"} <= set(env) and env["JOB_BUCKET"] != env["OUTPUT_BUCKET"]
    assert spec["template"]["spec"]["maxRetries"] > 0  # a task with a storage failure exits 1 and is retried

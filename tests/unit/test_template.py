"""The deployment templates lint clean and keep the facts the handler relies on.

cfn-lint (a dev dependency) validates template.yaml against the SAM and
CloudFormation schemas and infra/autoscaling.yaml against CloudFormation's;
the other tests pin structure that no linter knows about: the S3 prefix filter,
the separate output bucket, the environment variables, the warm-ping input.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cfnlint.api import ManualArgs, lint_file
from cfnlint.decode import decode

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
AUTOSCALING = ROOT / "infra" / "autoscaling.yaml"

def load(path: Path) -> dict:
    template, errors = decode(str(path))
    assert not errors, [str(e) for e in errors]
    return template


@pytest.fixture(scope="module")
def tpl() -> dict:
    return load(TEMPLATE)


@pytest.fixture(scope="module")
def fn(tpl: dict) -> dict:
    return tpl["Resources"]["FaceReadFunction"]["Properties"]


def events_of(fn: dict, kind: str) -> dict:
    return {name: ev["Properties"] for name, ev in fn["Events"].items() if ev["Type"] == kind}


@pytest.mark.parametrize("path", [TEMPLATE, AUTOSCALING], ids=lambda p: p.name)
def test_cfn_lint_reports_nothing(path: Path) -> None:
    # Errors, warnings and informational findings, in a few regions.
    args = ManualArgs(
        include_checks=["I"],
        regions=["us-east-1", "eu-west-1", "eu-central-1", "ap-southeast-2"],
    )
    findings = lint_file(path, config=args)
    assert findings == [], "\n".join(str(f) for f in findings)


def test_function_basics(fn: dict) -> None:
    assert fn["Handler"] == "handler.aws.lambda_handler"
    assert fn["Runtime"] == "python3.12"
    assert fn["CodeUri"] == "build/lambda/"
    assert fn["AutoPublishAlias"] == "live"


def test_memory_and_timeout_parameters(tpl: dict, fn: dict) -> None:
    params = tpl["Parameters"]
    assert fn["MemorySize"] == {"Ref": "MemorySize"}
    assert int(params["MemorySize"]["Default"]) == 2048
    assert int(params["MemorySize"]["MinValue"]) >= 1024
    assert fn["Timeout"] == {"Ref": "FunctionTimeout"}
    # HTTP API integrations time out at 30 s whatever the function allows.
    assert int(params["FunctionTimeout"]["Default"]) == 30


def test_s3_trigger_is_filtered_to_the_input_prefix(tpl: dict, fn: dict) -> None:
    # Uploads reach the function through the upload queue (test_template_batch.py checks the queue).
    [notification] = tpl["Resources"]["InputBucket"]["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
    assert notification["Queue"] == {"Fn::GetAtt": ["UploadQueue", "Arn"]}
    assert notification["Event"] == "s3:ObjectCreated:*"
    rules = notification["Filter"]["S3Key"]["Rules"]
    assert {"Name": "prefix", "Value": {"Ref": "InputPrefix"}} in rules
    assert tpl["Parameters"]["InputPrefix"]["Default"] == "uploads/"
    # The handler must use the same prefix the notification is filtered on.
    assert fn["Environment"]["Variables"]["INPUT_PREFIX"] == {"Ref": "InputPrefix"}


def test_results_go_to_a_separate_bucket_without_notifications(tpl: dict, fn: dict) -> None:
    resources = tpl["Resources"]
    in_name = resources["InputBucket"]["Properties"]["BucketName"]
    out_name = resources["OutputBucket"]["Properties"]["BucketName"]
    assert in_name != out_name
    assert "NotificationConfiguration" not in resources["OutputBucket"]["Properties"]
    assert fn["Environment"]["Variables"]["OUTPUT_BUCKET"] == out_name
    # Only the input bucket feeds the function (through the upload queue), never the output bucket.
    assert events_of(fn, "S3") == {} and events_of(fn, "SQS") == {}
    mappings = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::EventSourceMapping"]
    assert [(m["EventSourceArn"], m["FunctionName"]) for m in mappings] == [
        ({"Fn::GetAtt": ["UploadQueue", "Arn"]}, {"Ref": "FaceReadFunction.Alias"})]


def function_statements(tpl: dict, fn: dict) -> list[dict]:
    role = tpl["Resources"][fn["Role"]["Fn::GetAtt"][0]]
    return [s for p in role["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]]


def test_no_policy_refs_a_bucket_resource(tpl: dict, fn: dict) -> None:
    # A Ref/GetAtt of a bucket in the role policy recreates the classic
    # bucket -> notification -> function -> policy -> bucket cycle.
    text = json.dumps(function_statements(tpl, fn))
    assert "InputBucket" not in text and "OutputBucket" not in text


def test_least_privilege_s3_actions(tpl: dict, fn: dict) -> None:
    # Each grant proven needed and enough by tests/integration/test_iam_enforced.py; this pins the S3 part.
    statements = [s for s in function_statements(tpl, fn) if str(s["Action"]).startswith("s3:")]
    grants = sorted((s["Action"], "-output-" in s["Resource"]["Fn::Sub"]) for s in statements)
    # Read uploads, read, write and delete results (the skip rule HEADs them, a rewrite deletes the
    # replaced images), presign uploads, and list both buckets so that a missing object is a 404, not
    # a 403. No Delete on the input bucket, no object versions (the input bucket is not versioned).
    assert grants == [("s3:DeleteObject", True), ("s3:GetObject", False), ("s3:GetObject", True),
                      ("s3:ListBucket", False), ("s3:ListBucket", True),
                      ("s3:PutObject", False), ("s3:PutObject", True)]
    for s in statements:
        assert s["Effect"] == "Allow"
        resource = s["Resource"]["Fn::Sub"]
        # Objects only under their prefix (presigned uploads only under the upload route's own);
        # ListBucket is on the bucket itself.
        if s["Sid"] == "PresignUploads":
            assert resource.endswith("/${InputPrefix}http/*")
            continue
        assert resource.endswith("${InputPrefix}*" if "-input-" in resource else "${OutputPrefix}*") \
            != (s["Action"] == "s3:ListBucket")


def test_warm_ping_schedule(tpl: dict, fn: dict) -> None:
    (ping,) = events_of(fn, "Schedule").values()
    assert json.loads(ping["Input"]) == {"warmup": True}
    assert ping["Schedule"] == {"Ref": "WarmPingSchedule"}
    assert tpl["Parameters"]["WarmPingSchedule"]["Default"] == "rate(5 minutes)"
    assert ping["State"] == {"Fn::If": ["WarmPingOn", "ENABLED", "DISABLED"]}
    assert "WarmPingOn" in tpl["Conditions"]


def test_warmup_event_sample_matches_schedule_input(fn: dict) -> None:
    (ping,) = events_of(fn, "Schedule").values()
    sample = json.loads((ROOT / "tests" / "events" / "warmupEvent.json").read_text())
    assert sample == json.loads(ping["Input"])


def test_provisioned_concurrency_is_conditional(tpl: dict, fn: dict) -> None:
    assert "HasProvisionedConcurrency" in tpl["Conditions"]
    cond, on, off = fn["ProvisionedConcurrencyConfig"]["Fn::If"]
    assert cond == "HasProvisionedConcurrency"
    assert on == {"ProvisionedConcurrentExecutions": {"Ref": "ProvisionedConcurrency"}}
    assert off == {"Ref": "AWS::NoValue"}
    assert int(tpl["Parameters"]["ProvisionedConcurrency"]["Default"]) == 0


def test_snapstart_is_switchable_and_excludes_provisioned_concurrency(tpl: dict, fn: dict) -> None:
    assert fn["SnapStart"]["ApplyOn"] == {"Fn::If": ["SnapStartOn", "PublishedVersions", "None"]}
    rule = tpl["Rules"]["SnapStartExcludesProvisionedConcurrency"]
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "EnableSnapStart"}, "true"]}
    assert rule["Assertions"][0]["Assert"] == {"Fn::Equals": [{"Ref": "ProvisionedConcurrency"}, "0"]}


def test_outputs(tpl: dict) -> None:
    assert {"ApiUrl", "InputBucketName", "OutputBucketName", "FunctionAliasArn", "FunctionName"} <= set(tpl["Outputs"])
    assert tpl["Outputs"]["FunctionAliasArn"]["Value"] == {"Ref": "FaceReadFunction.Alias"}


def test_autoscaling_targets_the_alias_provisioned_concurrency() -> None:
    res = load(AUTOSCALING)["Resources"]
    target = res["ProvisionedConcurrencyTarget"]["Properties"]
    assert target["ServiceNamespace"] == "lambda"
    assert target["ScalableDimension"] == "lambda:function:ProvisionedConcurrency"
    assert target["ResourceId"] == {"Fn::Sub": "function:${FunctionName}:${AliasName}"}
    schedules = {a["ScheduledActionName"]: a["Schedule"] for a in target["ScheduledActions"]}
    assert schedules == {"business-hours-up": {"Ref": "ScaleUpCron"}, "nights-down": {"Ref": "ScaleDownCron"}}

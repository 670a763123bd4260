"""What template.yaml derives from FunctionTimeout, and the queue and log settings AWS's guides ask for.

Checked for every value a deploy may pass, not only the defaults:
- the upload queue's visibility timeout is at least 6 x the function timeout (AWS Lambda developer
  guide, "Creating and configuring an Amazon SQS event source mapping": at least six times; Lambda
  refuses an event source mapping whose queue's visibility timeout is shorter than the function's);
- UploadMaxReceiveCount can't go below 5 (the same guide's advice for throttling);
- the dead-letter queue outlives the upload queue (SQS developer guide, "Setting-up dead-letter
  queue retention": a standard queue's message keeps its first enqueue time);
- a Distributed Map child can finish its batch, retries included, inside its workflow type's limit
  (Step Functions: an Express execution runs at most 5 minutes);
- the HTTP API's access log carries $context.integrationErrorMessage (API Gateway, "Troubleshooting
  issues with HTTP API Lambda integrations").
"""

from __future__ import annotations

import json
import re

import pytest
from deploy_files import load_template

EXPRESS_LIMIT_S = 300  # Step Functions: an Express workflow execution runs at most five minutes
INVOKE_OVERHEAD_S = 2  # per attempt: Step Functions -> Lambda -> back, beyond the function's own timeout
# Per attempt, too: a cold environment's Init phase, which Lambda limits to 10 s ("Lambda execution
# environment lifecycle"); every attempt of a batch may land on a new environment.
INIT_PHASE_S = 10
SQS_MAX_VISIBILITY_S = 43_200


@pytest.fixture(scope="module")
def tpl() -> dict:
    return load_template()


def timeouts(tpl: dict) -> list[int]:
    """Every FunctionTimeout a deploy may pass."""
    param = tpl["Parameters"]["FunctionTimeout"]
    assert "AllowedValues" in param, "FunctionTimeout must be a closed list: each value needs its mapping row"
    return [int(v) for v in param["AllowedValues"]]


def derived(tpl: dict, timeout: int, key: str):
    return tpl["Mappings"]["FunctionTimeouts"][str(timeout)][key]


def test_every_function_timeout_has_its_row(tpl: dict) -> None:
    assert sorted(int(k) for k in tpl["Mappings"]["FunctionTimeouts"]) == sorted(timeouts(tpl))
    assert int(tpl["Parameters"]["FunctionTimeout"]["Default"]) in timeouts(tpl)
    assert max(timeouts(tpl)) <= 900  # Lambda's maximum


def test_visibility_timeout_is_six_times_the_function_timeout_for_every_value(tpl: dict) -> None:
    queue = tpl["Resources"]["UploadQueue"]["Properties"]
    assert queue["VisibilityTimeout"] == {"Fn::FindInMap": ["FunctionTimeouts", {"Ref": "FunctionTimeout"},
                                                            "UploadVisibility"]}
    assert tpl["Resources"]["FaceReadFunction"]["Properties"]["Timeout"] == {"Ref": "FunctionTimeout"}
    for timeout in timeouts(tpl):
        visibility = derived(tpl, timeout, "UploadVisibility")
        assert 6 * timeout <= visibility <= SQS_MAX_VISIBILITY_S, (timeout, visibility)
    # no second, free parameter that could disagree with FunctionTimeout
    assert not [p for p in tpl["Parameters"] if "Visibility" in p]


def test_max_receive_count_is_at_least_five(tpl: dict) -> None:
    param = tpl["Parameters"]["UploadMaxReceiveCount"]
    allowed = [int(v) for v in param.get("AllowedValues", [])]
    assert int(param.get("MinValue", min(allowed, default=0))) >= 5 and int(param["Default"]) >= 5
    assert all(v >= 5 for v in allowed)
    redrive = tpl["Resources"]["UploadQueue"]["Properties"]["RedrivePolicy"]
    assert redrive["maxReceiveCount"] == {"Ref": "UploadMaxReceiveCount"}


def test_dead_letter_queue_outlives_the_upload_queue(tpl: dict) -> None:
    res = tpl["Resources"]
    source = int(res["UploadQueue"]["Properties"]["MessageRetentionPeriod"])
    dlq = int(res["UploadDeadLetterQueue"]["Properties"]["MessageRetentionPeriod"])
    assert dlq <= 1_209_600  # SQS's maximum, 14 days
    # A message dead-lettered at the end of its life in the upload queue still has a week in the DLQ.
    assert dlq - source >= 7 * 86_400, (source, dlq)


def retry_waits(retry: dict) -> list[float]:
    """The longest waits before each retry (JitterStrategy FULL only shortens them)."""
    interval, rate = retry.get("IntervalSeconds", 1), retry.get("BackoffRate", 2.0)
    cap = retry.get("MaxDelaySeconds", float("inf"))
    return [min(interval * rate**i, cap) for i in range(retry.get("MaxAttempts", 3))]


def child_definition(tpl: dict) -> tuple[dict, dict]:
    text, names = tpl["Resources"]["BackfillStateMachine"]["Properties"]["DefinitionString"]["Fn::Sub"]
    definition = json.loads(re.sub(r"\$\{[^}]+\}", "0", text.replace('"${ChildExecutionType}"', '"X"')))
    return definition["States"][definition["StartAt"]], names


def test_backfill_children_finish_inside_their_workflow_types_limit(tpl: dict) -> None:
    state, names = child_definition(tpl)
    assert state["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "X"}
    assert names["ChildExecutionType"] == {"Fn::FindInMap": ["FunctionTimeouts", {"Ref": "FunctionTimeout"},
                                                             "BackfillChildren"]}
    processor = state["ItemProcessor"]
    (task,) = processor["States"].values()
    assert task["Type"] == "Task" and "TimeoutSeconds" not in task  # the function's own timeout bounds it
    (retry,) = task["Retry"]
    waits = retry_waits(retry)
    for timeout in timeouts(tpl):
        worst = (len(waits) + 1) * (timeout + INIT_PHASE_S + INVOKE_OVERHEAD_S) + sum(waits)
        kind = derived(tpl, timeout, "BackfillChildren")
        # EXPRESS wherever the worst case fits (cheaper per batch); STANDARD (no 5-minute cap) elsewhere
        assert kind == ("EXPRESS" if worst <= EXPRESS_LIMIT_S else "STANDARD"), (timeout, worst, kind)
    # The issue-25 case: every attempt cold at FunctionTimeout 30 is 7 x (30 + 10 + 2) + 62 = 356 s > 300.
    assert derived(tpl, 30, "BackfillChildren") == "STANDARD" and derived(tpl, 20, "BackfillChildren") == "EXPRESS"


def test_http_api_access_log_names_the_integration_error(tpl: dict) -> None:
    fmt = tpl["Resources"]["HttpApiStage"]["Properties"]["AccessLogSettings"]["Format"]
    record = json.loads(fmt)  # one JSON object per request, as CloudWatch Logs Insights reads it
    assert "$context.integrationErrorMessage" in record.values()
    assert {"$context.requestId", "$context.status", "$context.integrationStatus",
            "$context.error.message"} <= set(record.values())

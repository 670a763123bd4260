"""What template.yaml grants, as IAM policy documents with every intrinsic resolved to real ARNs.

For one example deployment (ACCOUNT, REGION, STACK, the template's default parameters):
- every `AWS::IAM::Role`'s inline policies;
- for a SAM function without its own `Role`, the role SAM would generate: its `Policies` plus the
  managed policies SAM attaches (AWSLambdaBasicExecutionRole always, one per event type), whose
  documents are AWS's own (AWS managed policy reference), so that a template falling back to them
  is judged by what they grant;
- every resource policy (`AWS::SQS::QueuePolicy`, `AWS::S3::BucketPolicy`) by the resource it guards.

Physical names CloudFormation would generate are `<STACK>-<logical id>`; the flows in
tests/integration/test_iam_enforced.py create their moto resources under the same names.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from typing import Any

from deploy_files import load_template, resolve

ACCOUNT, REGION, PARTITION, STACK = "123456789012", "us-east-1", "aws", "faceread-test"

# AWS managed policies SAM attaches to a role it generates
# (https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AWSLambdaBasicExecutionRole.html,
#  .../AWSLambdaSQSQueueExecutionRole.html): their statements as AWS publishes them.
_LOGS = {"Effect": "Allow", "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
         "Resource": "*"}
MANAGED = {
    "AWSLambdaBasicExecutionRole": [_LOGS],
    "AWSLambdaSQSQueueExecutionRole": [
        {"Effect": "Allow", "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
         "Resource": "*"}, _LOGS],
}
# SAM event type -> the managed policy it attaches to a generated role (AWS SAM, "EventSource").
SAM_EVENT_POLICIES = {"SQS": "AWSLambdaSQSQueueExecutionRole"}


@dataclass(frozen=True)
class Principal:
    """A role the template defines (or SAM would generate) and its grants, one action on one resource
    each (a statement of 2 actions on 2 resources is 4 grants), so that each can be removed alone."""

    name: str
    grants: tuple[dict, ...]

    def policy(self, without: int | None = None) -> dict:
        """The identity policy, less the grant at index `without`."""
        return {"Version": "2012-10-17", "Statement": [g for i, g in enumerate(self.grants) if i != without]}

    def label(self, index: int) -> str:
        grant = self.grants[index]
        return f"{self.name}.{grant.get('Sid', '-')}.{grant['Action']}@{grant['Resource']}"


def actions(statement: dict) -> list[str]:
    value = statement["Action"]
    return value if isinstance(value, list) else [value]


def atomize(statement: dict) -> list[dict]:
    """One statement per (action, resource) of `statement`, its Sid, Effect and Condition kept."""
    resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
    return [{**statement, "Action": a, "Resource": r} for a in actions(statement) for r in resources]


def physical_name(logical: str) -> str:
    return f"{STACK}-{logical}"


def _ref(name: str, params: dict[str, str], resources: dict) -> str:
    pseudo = {"AWS::AccountId": ACCOUNT, "AWS::Region": REGION, "AWS::Partition": PARTITION,
              "AWS::StackName": STACK, "AWS::URLSuffix": "amazonaws.com"}
    if name in pseudo:
        return pseudo[name]
    if name in params:
        return params[name]
    if name.endswith(".Alias"):  # SAM's AutoPublishAlias: the alias ARN
        return f"{_arn(name.removesuffix('.Alias'), resources, params)}:live"
    resource = resources[name]
    kind = resource["Type"]
    if kind in ("AWS::S3::Bucket", "AWS::Logs::LogGroup"):  # their names are given in the template
        return _value(resource["Properties"]["BucketName" if kind == "AWS::S3::Bucket" else "LogGroupName"],
                      params, resources)
    if kind == "AWS::StepFunctions::StateMachine":
        return _arn(name, resources, params)
    return physical_name(name)


def _arn(name: str, resources: dict, params: dict[str, str]) -> str:
    """GetAtt <name>.Arn for the resource types the template's policies name."""
    resource = resources[name]
    kind, props = resource["Type"], resource.get("Properties", {})
    if kind == "AWS::SQS::Queue":
        return f"arn:{PARTITION}:sqs:{REGION}:{ACCOUNT}:{physical_name(name)}"
    if kind == "AWS::Logs::LogGroup":  # CloudFormation's Arn of a log group ends in :*
        return f"arn:{PARTITION}:logs:{REGION}:{ACCOUNT}:log-group:{_value(props['LogGroupName'], params, resources)}:*"
    if kind == "AWS::Serverless::Function":
        return f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:function:{physical_name(name)}"
    if kind == "AWS::StepFunctions::StateMachine":
        machine = _value(props["StateMachineName"], params, resources)
        return f"arn:{PARTITION}:states:{REGION}:{ACCOUNT}:stateMachine:{machine}"
    if kind == "AWS::IAM::Role":
        return f"arn:{PARTITION}:iam::{ACCOUNT}:role/{physical_name(name)}"
    if kind == "AWS::S3::Bucket":
        return f"arn:{PARTITION}:s3:::{_ref(name, params, resources)}"
    raise AssertionError(f"iam_policies: no ARN rule for {kind} ({name})")


def _sub(text: str, local: dict, params: dict[str, str], resources: dict) -> str:
    def one(match: re.Match) -> str:
        name = match.group(1)
        if name in local:
            return str(_value(local[name], params, resources))
        if "." in name and not name.endswith(".Alias"):
            logical, attr = name.split(".", 1)
            assert attr == "Arn", name
            return _arn(logical, resources, params)
        return _ref(name, params, resources)
    return re.sub(r"\$\{([^}!]+)\}", one, text)


def _value(node: Any, params: dict[str, str], resources: dict) -> Any:
    """Resolve Ref, Fn::Sub, Fn::GetAtt (Arn) and Fn::FindInMap-free values to strings."""
    if isinstance(node, list):
        return [_value(x, params, resources) for x in node]
    if not isinstance(node, dict):
        return node
    if set(node) == {"Ref"}:
        return _ref(node["Ref"], params, resources)
    if set(node) == {"Fn::GetAtt"}:
        logical, attr = node["Fn::GetAtt"] if isinstance(node["Fn::GetAtt"], list) else node["Fn::GetAtt"].split(".")
        assert attr == "Arn", node
        return _arn(logical, resources, params)
    if set(node) == {"Fn::Sub"}:
        arg = node["Fn::Sub"]
        text, local = (arg, {}) if isinstance(arg, str) else arg
        return _sub(text, local, params, resources)
    return {k: _value(v, params, resources) for k, v in node.items()}


def deployed(overrides: dict[str, str] | None = None) -> dict:
    """The template resolved for these parameters (deploy_files.resolve), for the helpers below."""
    return _deployed(tuple(sorted((overrides or {}).items())))


@functools.cache
def _deployed(overrides: tuple[tuple[str, str], ...]) -> dict:
    return resolve(load_template(), dict(overrides))


def role_of(function: str, overrides: dict[str, str] | None = None) -> str:
    """The logical id of a function's role: its `Role`'s, or `<function>Role`, the one SAM generates."""
    role = deployed(overrides)["Resources"][function]["Properties"].get("Role")
    return role["Fn::GetAtt"][0] if role else function + "Role"


def principals(overrides: dict[str, str] | None = None) -> dict[str, Principal]:
    """Every role of the deployment by logical id (SAM-generated ones as `<function>Role`)."""
    resolved = deployed(overrides)
    params, resources = resolved["Parameters"], resolved["Resources"]
    out = {}
    for name, resource in resources.items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Role":
            statements = [s for p in props.get("Policies", []) for s in p["PolicyDocument"]["Statement"]]
            for arn in props.get("ManagedPolicyArns", []):
                statements += MANAGED[str(_value(arn, params, resources)).rsplit("/", 1)[-1]]
        elif resource["Type"] == "AWS::Serverless::Function" and "Role" not in props:
            name = name + "Role"
            statements = list(MANAGED["AWSLambdaBasicExecutionRole"])
            for event in props.get("Events", {}).values():
                statements += MANAGED.get(SAM_EVENT_POLICIES.get(event["Type"], ""), [])
            for policy in props.get("Policies", []):
                assert isinstance(policy, dict) and "Statement" in policy, (
                    f"iam_policies: expand SAM policy template or managed policy {policy!r} here")
                statements += policy["Statement"]
        else:
            continue
        out[name] = Principal(name, tuple(g for s in statements for g in atomize(_value(s, params, resources))))
    return out


def resource_policies(overrides: dict[str, str] | None = None) -> dict[str, dict]:
    """Resource policies by the ARN of what they guard (queues, buckets)."""
    resolved = deployed(overrides)
    params, resources = resolved["Parameters"], resolved["Resources"]
    out = {}
    for resource in resources.values():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::SQS::QueuePolicy":
            for queue in props["Queues"]:
                logical = next(n for n, r in resources.items() if r["Type"] == "AWS::SQS::Queue"
                               and _ref(n, params, resources) == _value(queue, params, resources))
                out[_arn(logical, resources, params)] = _value(props["PolicyDocument"], params, resources)
        elif resource["Type"] == "AWS::S3::BucketPolicy":
            bucket = props["Bucket"]["Ref"]
            out[_arn(bucket, resources, params)] = _value(props["PolicyDocument"], params, resources)
    return out


def state_machine_definition(logical: str = "BackfillStateMachine", overrides: dict[str, str] | None = None) -> dict:
    """The Amazon States Language of a state machine, its substitutions resolved (FindInMap by hand)."""
    resolved = deployed(overrides)
    params, resources = resolved["Parameters"], resolved["Resources"]
    text, local = resources[logical]["Properties"]["DefinitionString"]["Fn::Sub"]
    local = {k: v for k, v in local.items() if not (isinstance(v, dict) and "Fn::FindInMap" in v)}
    text = text.replace("${ChildExecutionType}", "EXPRESS")
    return json.loads(_sub(text, local, params, resources))


def resource_name(logical: str, overrides: dict[str, str] | None = None) -> str:
    """The physical name (Ref) of a resource in the example deployment."""
    resolved = deployed(overrides)
    return _ref(logical, resolved["Parameters"], resolved["Resources"])


def resource_arn(logical: str, overrides: dict[str, str] | None = None) -> str:
    resolved = deployed(overrides)
    return _arn(logical, resolved["Resources"], resolved["Parameters"])


def properties(logical: str, overrides: dict[str, str] | None = None) -> dict:
    """A resource's Properties in the example deployment, Ref/Sub/GetAtt resolved."""
    resolved = deployed(overrides)
    params, resources = resolved["Parameters"], resolved["Resources"]
    return _value(resources[logical].get("Properties", {}), params, resources)

"""What a flow asks AWS to do, as (principal, IAM action, resource ARN, condition context), and AWS's verdict.

`Recorder.watch(client)` hooks a boto3 client's events: every call the flow makes while a principal
is acting (`recorder.acting_as(...)`) is turned into the IAM requests AWS authorises it by (the
Service Authorization Reference: HeadObject is s3:GetObject, a versioned read s3:GetObjectVersion,
and a 404 on a read needs s3:ListBucket, without which S3 answers 403). An operation without a row
here fails the flow, so a new kind of call can't go unchecked. Calls the services make on the
roles' behalf, which no emulator makes (Batch Operations invoking, Lambda writing logs, a
Distributed Map starting children), are added with `recorder.service_call`, each naming the AWS page
that says so.

`simulate` evaluates requests with @cloud-copilot/iam-simulate (package.json), which follows AWS's
policy evaluation logic: actions, resource ARNs and condition operators.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SIMULATOR = ROOT / "tests" / "iam_simulate.mjs"
SIMULATOR_PACKAGE = ROOT / "node_modules" / "@cloud-copilot" / "iam-simulate"


@dataclass(frozen=True)
class Call:
    """One authorisation request: `principal` is a role's logical id, or a service principal
    (s3.amazonaws.com) whose request only a resource policy can allow."""

    principal: str
    action: str
    resource: str
    context: tuple[tuple[str, str], ...] = ()
    source: str = ""

    def __str__(self) -> str:
        ctx = f" {dict(self.context)}" if self.context else ""
        return f"{self.principal}: {self.action} on {self.resource}{ctx} ({self.source})"


def _queue_arn(url: str, region: str, account: str) -> str:
    return f"arn:aws:sqs:{region}:{account}:{url.rstrip('/').rsplit('/', 1)[-1]}"


def _s3_read(params: dict, parsed: dict) -> list[tuple[str, str, dict]]:
    bucket, key = params["Bucket"], params["Key"]
    action = "s3:GetObjectVersion" if params.get("VersionId") else "s3:GetObject"
    out = [(action, f"arn:aws:s3:::{bucket}/{key}", {})]
    if parsed.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
        out.append(("s3:ListBucket", f"arn:aws:s3:::{bucket}", {"s3:prefix": key}))
    return out


# (service, operation) -> the IAM requests AWS makes of it (Service Authorization Reference).
OPERATIONS = {
    ("s3", "HeadObject"): _s3_read,
    ("s3", "GetObject"): _s3_read,
    ("s3", "PutObject"): lambda p, r: [("s3:PutObject", f"arn:aws:s3:::{p['Bucket']}/{p['Key']}",
                                        {"s3:x-amz-acl": p["ACL"]} if p.get("ACL") else {})],
    # DeleteObject: s3:DeleteObject on the object (a key that isn't there is still a 204, never a 404).
    ("s3", "DeleteObject"): lambda p, r: [("s3:DeleteObject", f"arn:aws:s3:::{p['Bucket']}/{p['Key']}", {})],
    ("s3", "ListObjectsV2"): lambda p, r: [("s3:ListBucket", f"arn:aws:s3:::{p['Bucket']}",
                                            {"s3:prefix": p.get("Prefix", "")})],
    ("sqs", "ReceiveMessage"): "sqs:ReceiveMessage",
    ("sqs", "DeleteMessage"): "sqs:DeleteMessage",
    ("sqs", "DeleteMessageBatch"): "sqs:DeleteMessage",
    ("sqs", "GetQueueAttributes"): "sqs:GetQueueAttributes",
    ("sqs", "ChangeMessageVisibility"): "sqs:ChangeMessageVisibility",
}


class Recorder:
    """Collects the Calls made while a principal acts; calls made as nobody (test set-up) are not kept."""

    def __init__(self, account: str, region: str) -> None:
        self.account, self.region = account, region
        self.calls: list[Call] = []
        self.acting: str | None = None
        self.context: dict[str, str] = {}

    @contextmanager
    def acting_as(self, principal: str, **context: str) -> Iterator[None]:
        before = self.acting, self.context
        self.acting, self.context = principal, context
        try:
            yield
        finally:
            self.acting, self.context = before

    def watch(self, client: Any) -> Any:
        events = client.meta.events
        events.register("before-parameter-build", self._stash, unique_id="iam-recorder-stash")
        events.register("after-call", self._record, unique_id="iam-recorder-record")
        return client

    def _stash(self, params: dict, model: Any, context: dict, **_: Any) -> None:
        context["iam_recorder"] = (dict(params), self.acting, dict(self.context))

    def _record(self, parsed: dict, model: Any, context: dict, **_: Any) -> None:
        params, acting, extra = context.get("iam_recorder", ({}, None, {}))
        if acting is None:
            return
        service = model.service_model.endpoint_prefix
        rule = OPERATIONS.get((service, model.name))
        assert rule is not None, f"iam_calls: no IAM action row for {service}:{model.name}; add one to OPERATIONS"
        if isinstance(rule, str):
            requests = [(rule, _queue_arn(params["QueueUrl"], self.region, self.account), {})]
        else:
            requests = rule(params, parsed)
        for action, resource, ctx in requests:
            self.calls.append(Call(acting, action, resource, tuple(sorted({**extra, **ctx}.items())),
                                   f"{service}:{model.name}"))

    def service_call(self, principal: str, action: str, resource: str, source: str, **context: str) -> None:
        """A request a service makes as `principal` that no emulator makes; `source` cites AWS's page."""
        self.calls.append(Call(principal, action, resource, tuple(sorted(context.items())), source))


def simulator_missing() -> str | None:
    """Why the simulator can't run here, or None."""
    if shutil.which("node") is None:
        return "node is not installed (make axe installs npm and node)"
    if not SIMULATOR_PACKAGE.is_dir():
        return "@cloud-copilot/iam-simulate is not installed: run `make axe` (npm ci from package-lock.json)"
    return None


def simulate(requests: list[tuple[Call, dict | None, dict | None]], account: str) -> list[str]:
    """AWS's decision ('Allowed', 'ImplicitlyDenied', 'ExplicitlyDenied') for each (call, identity
    policy, resource policy), in one node process."""
    payload = [{"principal": call.principal if call.principal.endswith(".amazonaws.com")  # a service
                else f"arn:aws:iam::{account}:role/{call.principal}",
                "action": call.action, "resource": call.resource, "account": account,
                "context": dict(call.context), "identity": identity, "resourcePolicy": resource}
               for call, identity, resource in requests]
    done = subprocess.run(["node", str(SIMULATOR)], input=json.dumps(payload), capture_output=True, text=True,
                          cwd=ROOT, check=False, timeout=600)
    assert done.returncode == 0, done.stderr
    answers = json.loads(done.stdout)
    errors = [(str(r[0]), a) for r, a in zip(requests, answers) if a.startswith("error")]
    assert not errors, f"the simulator refused requests: {errors[:5]}"
    return answers
